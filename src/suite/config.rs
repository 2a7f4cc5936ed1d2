//! What `llm-bench run` was asked to do, after defaults, and how it is checked.

use super::{PhaseName, Prompts};
use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::generate::Strategy;
use crate::results::Settings;
use std::path::PathBuf;

/// Everything `llm-bench run` was asked to do, after defaults.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// A model spec; `None` for the default chain.
    pub model: Option<String>,
    /// `None` = the model's own format.
    pub formats: Vec<Option<WeightFormat>>,
    /// Every format runs on each engine, engine by engine.
    pub engines: Vec<EngineChoice>,
    /// The prompts.
    pub prompts: Prompts,
    /// Requests per setting.
    pub runs: usize,
    /// New tokens per request.
    pub max_new_tokens: usize,
    /// Requests run and dropped before measuring.
    pub warmup_requests: usize,
    /// Rounds of the throughput phase.
    pub throughput_rounds: usize,
    /// Prompts per point of the scaling and batch phases.
    pub prompts_per_point: usize,
    /// The sampling strategies compared.
    pub strategies: Vec<Strategy>,
    /// Output lengths of the scaling phase.
    pub scaling_new_tokens: Vec<usize>,
    /// Batch sizes of the batch phase.
    pub batch_sizes: Vec<usize>,
    /// The sampler's seed.
    pub seed: u64,
    /// The quick sizes (`--quick`).
    pub quick: bool,
    /// Threads of every phase but the thread sweep.
    pub threads: usize,
    /// The thread sweep's counts; empty: 1, 2, 4, … up to the logical CPUs.
    pub thread_counts: Vec<usize>,
    /// The `llm-bench` executable the thread sweep runs once per count (candle sizes its
    /// thread pools once per process, so each count gets a fresh process).
    pub worker: Option<PathBuf>,
    /// Measure (or read the cached) memory bandwidth for the roofline; the sweep's worker
    /// processes skip it.
    pub measure_bandwidth: bool,
    /// The phases to run.
    pub phases: Vec<PhaseName>,
    /// The output folder.
    pub out_dir: PathBuf,
}

pub use crate::results::MAX_REQUESTS_PER_PHASE;

impl SuiteConfig {
    /// Full runs: 5 passes over the prompts for latency, 4 for throughput, 64 new tokens.
    /// Quick runs: one pass, 32 new tokens, 2 prompts per point.
    pub fn new(quick: bool) -> Self {
        Self {
            model: None,
            formats: vec![None],
            engines: vec![EngineChoice::default()],
            prompts: Prompts::builtin(),
            runs: if quick { 1 } else { 5 },
            max_new_tokens: if quick { 32 } else { 64 },
            warmup_requests: 3,
            throughput_rounds: if quick { 1 } else { 4 },
            prompts_per_point: if quick { 2 } else { 5 },
            strategies: Strategy::STANDARD.to_vec(),
            scaling_new_tokens: vec![32, 64, 128, 256],
            batch_sizes: vec![1, 2, 4, 8],
            seed: 42,
            quick,
            threads: 1,
            thread_counts: vec![],
            worker: None,
            measure_bandwidth: true,
            phases: PhaseName::DEFAULT.to_vec(),
            out_dir: "llm-bench-results".into(),
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        let at_least_one = |name: &'static str, value: usize| {
            if value == 0 {
                Err(Error::InvalidSetting {
                    name,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        at_least_one("--runs", self.runs)?;
        at_least_one("--max-new-tokens", self.max_new_tokens)?;
        at_least_one("--throughput-rounds", self.throughput_rounds)?;
        at_least_one("--prompts-per-point", self.prompts_per_point)?;
        at_least_one("--format", self.formats.len())?;
        at_least_one("--engine", self.engines.len())?;
        at_least_one("--phases", self.phases.len())?;
        if self.prompts.list.is_empty() {
            return Err(Error::NoPrompts {
                path: self.prompts.source.clone().into(),
            });
        }
        // Every request is kept (its trace in memory, then in results.json): a count no run
        // could finish is refused before anything is allocated for it.
        let prompts = self.prompts.list.len();
        for (name, count, per_prompt) in [
            ("--runs", self.runs, true),
            ("--throughput-rounds", self.throughput_rounds, true),
            ("--prompts-per-point", self.prompts_per_point, false),
        ] {
            let requests = if per_prompt {
                count.checked_mul(prompts)
            } else {
                Some(count)
            };
            if requests.is_none_or(|r| r > MAX_REQUESTS_PER_PHASE) {
                return Err(Error::InvalidSetting {
                    name,
                    reason: format!(
                        "{count}{} would make {} requests in one phase, each kept in results.json; at most {MAX_REQUESTS_PER_PHASE} are allowed",
                        if per_prompt { format!(" × {prompts} prompts") } else { String::new() },
                        requests.map_or("more than 2^64".to_string(), |r| r.to_string())
                    ),
                });
            }
        }
        for (name, list) in [
            ("--batch-sizes", &self.batch_sizes),
            ("--scaling-tokens", &self.scaling_new_tokens),
            ("--threads", &self.sweep()),
        ] {
            if list.is_empty() || list.contains(&0) {
                return Err(Error::InvalidSetting {
                    name,
                    reason: format!("expected a list of whole numbers >= 1, found {list:?}"),
                });
            }
        }
        Ok(())
    }

    pub(super) fn settings(&self, model: &str, format_labels: Vec<String>) -> Settings {
        Settings {
            model: model.to_string(),
            formats: format_labels,
            prompts_source: self.prompts.source.clone(),
            prompts: self.prompts.list.clone(),
            runs: self.runs,
            max_new_tokens: self.max_new_tokens,
            warmup_requests: self.warmup_requests,
            throughput_rounds: self.throughput_rounds,
            prompts_per_point: self.prompts_per_point,
            strategies: self.strategies.iter().map(Strategy::to_string).collect(),
            scaling_new_tokens: self.scaling_new_tokens.clone(),
            batch_sizes: self.batch_sizes.clone(),
            seed: self.seed,
            quick: self.quick,
            threads: self.threads,
            thread_counts: if self.phases.contains(&PhaseName::Threads) {
                self.sweep()
            } else {
                vec![]
            },
            phases: self.phases.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The thread counts of the sweep.
    pub(super) fn sweep(&self) -> Vec<usize> {
        if self.thread_counts.is_empty() {
            crate::system::default_thread_sweep()
        } else {
            self.thread_counts.clone()
        }
    }

    /// The longest output any request asks for.
    pub(super) fn longest_output(&self) -> usize {
        let scaling = if self.phases.contains(&PhaseName::Scaling) {
            self.scaling_new_tokens.iter().copied().max().unwrap_or(0)
        } else {
            0
        };
        self.max_new_tokens.max(scaling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_settings_are_smaller_in_every_dimension() {
        let (full, quick) = (SuiteConfig::new(false), SuiteConfig::new(true));
        assert_eq!(
            (full.runs, full.max_new_tokens, full.throughput_rounds),
            (5, 64, 4)
        );
        assert!(quick.runs < full.runs && quick.max_new_tokens < full.max_new_tokens);
        assert!(quick.throughput_rounds < full.throughput_rounds);
        assert!(quick.prompts_per_point < full.prompts_per_point);
        assert_eq!(full.scaling_new_tokens, [32, 64, 128, 256]);
        assert_eq!(full.batch_sizes, [1, 2, 4, 8]);
    }
}
