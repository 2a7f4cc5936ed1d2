//! The types of `results.json`, version 3. Times are milliseconds, sizes bytes, rates per
//! second. Each phase is absent until it has finished, so an interrupted run's file holds
//! exactly the phases that completed (and `complete` is false).

// Doc comments here are the versioned schema's descriptions (`llm-bench schema`,
// schemas/results-v3.schema.json): they change with a schema version, not to satisfy a lint.
#![allow(missing_docs)]

use super::endpoint::EndpointRun;
use super::facts::{Bandwidth, BuildInfo, EngineInfo, Roofline, SystemInfo, Usage, WeightsKind};
use super::summary::GroupSummary;
use crate::error::{Error, Result};
use crate::generate::Trace;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Results {
    /// Always "llm-bench/results".
    pub schema: String,
    pub schema_version: u32,
    /// False while the run is going (or if it was interrupted).
    pub complete: bool,
    /// RFC 3339, UTC.
    pub created: String,
    pub created_unix: u64,
    pub command_line: Vec<String>,
    /// What `llm-bench run` was asked for; null in a file only `llm-bench load` wrote.
    pub settings: Option<Settings>,
    pub system: SystemInfo,
    pub build: BuildInfo,
    pub memory_bandwidth: Option<Bandwidth>,
    /// One per `--format` that loaded, in the order run.
    pub runs: Vec<FormatRun>,
    /// Formats that could not be loaded (the others still ran).
    pub load_failures: Vec<LoadFailure>,
    /// Servers `llm-bench load` measured, one sweep each, in the order measured.
    pub endpoints: Vec<EndpointRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadFailure {
    /// `name@format`
    pub label: String,
    pub error: String,
}

/// What was asked for, after defaults and `--quick` were applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Settings {
    pub model: String,
    /// The runs asked for, `name@format+engine`.
    pub formats: Vec<String>,
    /// The prompts file, or "built-in" for the customer-support prompts.
    pub prompts_source: String,
    pub prompts: Vec<String>,
    /// Passes over the prompts in the latency phase.
    pub runs: usize,
    /// Output length of the latency, throughput, strategies and batch phases (EOS ignored).
    pub max_new_tokens: usize,
    pub warmup_requests: usize,
    /// Passes over the prompts in the throughput phase.
    pub throughput_rounds: usize,
    /// Prompts per point in the strategies, scaling and batch phases.
    pub prompts_per_point: usize,
    pub strategies: Vec<String>,
    pub scaling_new_tokens: Vec<usize>,
    pub batch_sizes: Vec<usize>,
    pub seed: u64,
    pub quick: bool,
    /// Threads of every phase but the thread sweep.
    pub threads: usize,
    /// The thread sweep's counts (empty without one; absent from files before sweeps).
    #[serde(default)]
    pub thread_counts: Vec<usize>,
    pub phases: Vec<String>,
}

/// The phases of a run, in the order they run; each is a field of [`FormatRun`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseName {
    Latency,
    Throughput,
    Strategies,
    Scaling,
    Batch,
    Threads,
}

impl PhaseName {
    pub const ALL: [PhaseName; 6] = [
        PhaseName::Latency,
        PhaseName::Throughput,
        PhaseName::Strategies,
        PhaseName::Scaling,
        PhaseName::Batch,
        PhaseName::Threads,
    ];
    /// What `run` does unless told: a thread sweep is asked for with `--threads 1,2,4` or
    /// `--phases threads`.
    pub const DEFAULT: [PhaseName; 5] = [
        PhaseName::Latency,
        PhaseName::Throughput,
        PhaseName::Strategies,
        PhaseName::Scaling,
        PhaseName::Batch,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PhaseName::Latency => "latency",
            PhaseName::Throughput => "throughput",
            PhaseName::Strategies => "strategies",
            PhaseName::Scaling => "scaling",
            PhaseName::Batch => "batch",
            PhaseName::Threads => "threads",
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PhaseName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PhaseName::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| Error::InvalidSetting {
                name: "--phases",
                reason: format!(
                    "unknown phase {s:?}; expected some of: latency, throughput, strategies, scaling, batch"
                ),
            })
    }
}

/// One model in one format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FormatRun {
    pub model: ModelFacts,
    pub load: LoadPhase,
    pub latency: Option<Phase>,
    pub throughput: Option<Phase>,
    pub strategies: Option<Phase>,
    pub scaling: Option<Phase>,
    pub batch: Option<Phase>,
    /// The thread sweep: one group per thread count (absent from files before sweeps).
    #[serde(default)]
    pub threads: Option<Phase>,
    /// Decode speed against the memory-bandwidth limit (from the latency phase).
    pub roofline: Option<Roofline>,
    /// Why this format stopped early, if it did; finished phases are kept.
    pub error: Option<String>,
}

impl FormatRun {
    pub fn phase(&self, name: PhaseName) -> Option<&Phase> {
        match name {
            PhaseName::Latency => self.latency.as_ref(),
            PhaseName::Throughput => self.throughput.as_ref(),
            PhaseName::Strategies => self.strategies.as_ref(),
            PhaseName::Scaling => self.scaling.as_ref(),
            PhaseName::Batch => self.batch.as_ref(),
            PhaseName::Threads => self.threads.as_ref(),
        }
    }

    pub fn phase_mut(&mut self, name: PhaseName) -> &mut Option<Phase> {
        match name {
            PhaseName::Latency => &mut self.latency,
            PhaseName::Throughput => &mut self.throughput,
            PhaseName::Strategies => &mut self.strategies,
            PhaseName::Scaling => &mut self.scaling,
            PhaseName::Batch => &mut self.batch,
            PhaseName::Threads => &mut self.threads,
        }
    }

    /// The phases that finished, in run order.
    pub fn finished_phases(&self) -> impl Iterator<Item = &Phase> {
        PhaseName::ALL.into_iter().filter_map(|p| self.phase(p))
    }

    /// `name@format+engine`, e.g. `smollm2-135m-instruct@q4_1+candle`.
    pub fn label(&self) -> String {
        crate::model::run_label(
            &self.model.name,
            &self.model.format,
            &self.model.engine.name,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelFacts {
    pub spec: String,
    pub name: String,
    /// Real trained weights, or a random-weight twin of the same shapes (timing only).
    pub weights: WeightsKind,
    pub format: String,
    pub engine: EngineInfo,
    pub architecture: String,
    pub parameters: u64,
    pub weight_bytes: u64,
    pub bytes_read_per_token: u64,
    pub context_length: usize,
    pub tokenizer: String,
    pub notices: Vec<String>,
}

impl ModelFacts {
    pub fn of(info: &crate::ModelInfo) -> Self {
        Self {
            spec: info.spec.clone(),
            name: info.name.clone(),
            weights: info.weights.into(),
            format: info.format.clone(),
            engine: (&info.engine).into(),
            architecture: info.architecture.clone(),
            parameters: info.parameters,
            weight_bytes: info.weight_bytes,
            bytes_read_per_token: info.bytes_read_per_token,
            context_length: info.config.max_position_embeddings,
            tokenizer: info.tokenizer.clone(),
            notices: info.notices.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadPhase {
    pub seconds: f64,
    /// The process's RSS just before loading (after the previous format was freed).
    pub rss_before_bytes: Option<u64>,
    pub resources: Usage,
}

impl FormatRun {
    /// Resident memory the model added while serving: mean RSS of the latency phase minus
    /// the RSS before loading. Fairer across formats run in one process than the peak.
    pub fn serving_rss_added_bytes(&self) -> Option<u64> {
        let serving = self.latency.as_ref()?.resources.mean_rss_bytes?;
        Some(serving.saturating_sub(self.load.rss_before_bytes?))
    }
}

/// A phase: groups of requests, one group per setting, and what the phase cost the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Phase {
    pub groups: Vec<Group>,
    pub resources: Usage,
}

/// Requests run back to back with one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Group {
    pub setting: RequestSetting,
    pub summary: GroupSummary,
    pub requests: Vec<RequestRecord>,
    /// The thread sweep: the memory read bandwidth measured with this group's thread count
    /// (in its own process, before its model loaded), so that decode's speedup can be read
    /// against what the memory gives more threads. Absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bytes_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestSetting {
    /// greedy, temperature=0.7, top-k=50, top-p=0.9
    pub strategy: String,
    /// Generated per sequence, end-of-sequence ignored so every request is this long.
    pub new_tokens: usize,
    pub batch: usize,
    /// Threads the engine ran on; absent from files before thread sweeps (then it is
    /// `settings.threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// One request's timings (see `generate.rs` for the definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestRecord {
    /// Index into `settings.prompts`.
    pub prompt_index: usize,
    pub prompt_tokens: usize,
    /// Over all sequences of the batch.
    pub generated_tokens: usize,
    pub batch: usize,
    pub tokenize_ms: f64,
    pub prefill_ms: f64,
    pub ttft_ms: f64,
    pub itl_ms: Vec<f64>,
    pub e2e_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// Time the engine's kernel threads spent waiting for one another (at barriers, and
    /// idle while another thread worked alone), averaged over the threads; absent for
    /// engines that do not count it (candle, llama.cpp) and in files before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_wait_ms: Option<f64>,
}

impl RequestRecord {
    pub fn of(prompt_index: usize, trace: &Trace) -> Self {
        Self {
            prompt_index,
            prompt_tokens: trace.prompt_tokens.len(),
            generated_tokens: trace.output_tokens.iter().map(Vec::len).sum(),
            batch: trace.batch,
            tokenize_ms: trace.tokenize_ms,
            prefill_ms: trace.prefill_ms,
            ttft_ms: trace.ttft_ms,
            itl_ms: trace.itl_ms.clone(),
            e2e_ms: trace.e2e_ms,
            prefill_tokens_per_s: trace.prefill_tokens_per_s(),
            decode_tokens_per_s: trace.decode_tokens_per_s(),
            thread_wait_ms: trace.thread_wait_ms,
        }
    }
}
