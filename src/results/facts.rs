//! The machine, build, engine, weights, bandwidth and resource facts results.json records, as
//! plain data owned here: the harness's own types (`system`, `bandwidth`, `resources`,
//! `engine`, `source`) convert into these, so a change there cannot change the versioned file
//! without a change here (and the committed schema, which a test compares).

// Doc comments here are the versioned schema's descriptions (`llm-bench schema`,
// schemas/results-v3.schema.json): they change with a schema version, not to satisfy a lint.
#![allow(missing_docs)]

use crate::bandwidth;
use crate::engine;
use crate::resources;
use crate::source;
use crate::system;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct SystemInfo {
    pub cpu_model: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    pub total_memory_bytes: u64,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    /// SIMD features compiled into this binary (what the kernels can actually use).
    pub compiled_target_features: Vec<String>,
    pub threads: usize,
    pub rayon_num_threads_env: Option<String>,
}

impl From<&system::SystemInfo> for SystemInfo {
    fn from(s: &system::SystemInfo) -> Self {
        Self {
            cpu_model: s.cpu_model.clone(),
            physical_cores: s.physical_cores,
            logical_cores: s.logical_cores,
            total_memory_bytes: s.total_memory_bytes,
            os: s.os.clone(),
            kernel: s.kernel.clone(),
            arch: s.arch.clone(),
            compiled_target_features: s.compiled_target_features.clone(),
            threads: s.threads,
            rayon_num_threads_env: s.rayon_num_threads_env.clone(),
        }
    }
}

/// What this binary was built from and with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct BuildInfo {
    pub llm_bench_version: String,
    pub candle_version: String,
    pub git_commit: String,
    pub rustflags: String,
    pub target_features: Vec<String>,
}

impl From<&system::BuildInfo> for BuildInfo {
    fn from(b: &system::BuildInfo) -> Self {
        Self {
            llm_bench_version: b.llm_bench_version.clone(),
            candle_version: b.candle_version.clone(),
            git_commit: b.git_commit.clone(),
            rustflags: b.rustflags.clone(),
            target_features: b.target_features.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bandwidth {
    /// The median of `per_allocation_bytes_per_s`.
    pub read_bytes_per_s: f64,
    /// Best-of-passes figure of each freshly allocated buffer.
    pub per_allocation_bytes_per_s: Vec<f64>,
    pub threads: usize,
    pub buffer_bytes: u64,
    pub passes: usize,
    /// Which machine it was measured on: the cache is used only on the same one.
    pub machine: Machine,
    pub measured_unix: u64,
    /// True when taken from the cache file rather than measured in this run.
    #[serde(default)]
    pub from_cache: bool,
    /// Why the figure may be low (other processes busy while it was measured); such a
    /// figure is reported but never cached.
    #[serde(default)]
    pub contention: Option<String>,
}

impl Bandwidth {
    /// Each buffer's figure in GB/s: "32.5, 32.9, 33.2".
    pub fn per_buffer_gb_per_s(&self) -> String {
        bandwidth::gb_per_s_list(&self.per_allocation_bytes_per_s)
    }
}

impl From<&bandwidth::Bandwidth> for Bandwidth {
    fn from(b: &bandwidth::Bandwidth) -> Self {
        Self {
            read_bytes_per_s: b.read_bytes_per_s,
            per_allocation_bytes_per_s: b.per_allocation_bytes_per_s.clone(),
            threads: b.threads,
            buffer_bytes: b.buffer_bytes,
            passes: b.passes,
            machine: Machine {
                host_name: b.machine.host_name.clone(),
                cpu_model: b.machine.cpu_model.clone(),
                logical_cores: b.machine.logical_cores,
                total_memory_bytes: b.machine.total_memory_bytes,
            },
            measured_unix: b.measured_unix,
            from_cache: b.from_cache,
            contention: b.contention.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Machine {
    pub host_name: String,
    pub cpu_model: String,
    pub logical_cores: usize,
    pub total_memory_bytes: u64,
}

/// Where decode sits against the memory-bandwidth roofline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Roofline {
    pub bytes_read_per_token: u64,
    pub read_bytes_per_s: f64,
    /// The decode speed if every step only had to stream the weights at full bandwidth.
    pub limit_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// `bytes_read_per_token x decode_tokens_per_s / bandwidth`: 1.0 = at the limit.
    pub fraction_of_limit: f64,
}

impl From<&bandwidth::Roofline> for Roofline {
    fn from(r: &bandwidth::Roofline) -> Self {
        Self {
            bytes_read_per_token: r.bytes_read_per_token,
            read_bytes_per_s: r.read_bytes_per_s,
            limit_tokens_per_s: r.limit_tokens_per_s,
            decode_tokens_per_s: r.decode_tokens_per_s,
            fraction_of_limit: r.fraction_of_limit,
        }
    }
}

/// Which engine ran, as results record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineInfo {
    /// The registered name: `candle`, `llama-cpp`.
    pub name: String,
    /// The engine's own version: candle's crate version, llama.cpp's build.
    pub version: String,
    /// Which of the engine's paths runs this model: `dense`, `quantized`, `cpu`.
    pub detail: String,
}

impl From<&engine::EngineInfo> for EngineInfo {
    fn from(e: &engine::EngineInfo) -> Self {
        Self {
            name: e.name.clone(),
            version: e.version.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// Real trained weights, or a random-weight twin of the same shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeightsKind {
    Real,
    Synthetic,
}

impl From<source::WeightsKind> for WeightsKind {
    fn from(w: source::WeightsKind) -> Self {
        match w {
            source::WeightsKind::Real => Self::Real,
            source::WeightsKind::Synthetic => Self::Synthetic,
        }
    }
}

/// Resource use over one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub wall_seconds: f64,
    /// RSS samples taken (one at the start, one every 50 ms, one at the end).
    pub samples: usize,
    pub peak_rss_bytes: Option<u64>,
    pub mean_rss_bytes: Option<u64>,
    /// This process's CPU time over wall time, as `top` shows it: 100 = one core busy.
    pub process_cpu_percent: Option<f64>,
    /// How busy each logical CPU was over the phase (all processes), 0-100.
    pub per_core_busy_percent: Vec<f64>,
    /// CPU other processes (and the hypervisor's steal) took over the phase: all cores' busy
    /// time less this process's, in percent of one core (absent from older files). Over at
    /// least [`JUDGED_WINDOW`] from the phase's start: a shorter phase is followed by an idle wait.
    #[serde(default)]
    pub other_cpu_percent: Option<f64>,
    /// Time the hypervisor gave this VM's CPUs to others, in percent of one core (over the same
    /// window as `other_cpu_percent`).
    #[serde(default)]
    pub steal_percent: Option<f64>,
    /// Why the phase's timings may be distorted (see [`contention`]), or `None` when the
    /// machine was quiet enough.
    #[serde(default)]
    pub contention: Option<String>,
}

impl From<&resources::Usage> for Usage {
    fn from(u: &resources::Usage) -> Self {
        Self {
            wall_seconds: u.wall_seconds,
            samples: u.samples,
            peak_rss_bytes: u.peak_rss_bytes,
            mean_rss_bytes: u.mean_rss_bytes,
            process_cpu_percent: u.process_cpu_percent,
            per_core_busy_percent: u.per_core_busy_percent.clone(),
            other_cpu_percent: u.other_cpu_percent,
            steal_percent: u.steal_percent,
            contention: u.contention.clone(),
        }
    }
}
