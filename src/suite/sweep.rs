//! The `threads` phase: each thread count in an `llm-bench run` process of its own, because
//! candle sizes its thread pools once per process (in one process a "1-thread" pool still ran
//! candle's kernels on every core). Each process also measures the memory read bandwidth
//! with its count: decode is bandwidth-bound, so its speedup is bounded by that one's.

use super::{outcome_line, FormatRunner, GroupPlan, SuiteConfig};
use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::results::{Group, Phase, PhaseName, Results, RESULTS_FILE};
use std::path::Path;

impl FormatRunner<'_> {
    /// The `threads` phase: for each count, `llm-bench run --phases latency` in a process of
    /// its own (candle sizes its thread pools once per process) over the phase's prompts,
    /// after that process's warm-up; its requests become this phase's group for the count,
    /// with the read bandwidth it measured on that many threads.
    /// The phase's resources are those of the last count's process.
    pub(super) fn sweep_threads(
        &mut self,
        label: &str,
        format_arg: &str,
        engine: EngineChoice,
    ) -> Result<Phase> {
        let c = self.config;
        let worker = c.worker.as_ref().ok_or_else(|| Error::InvalidSetting {
            name: "--phases",
            reason: "the threads phase runs the llm-bench executable once per count, and none was given (SuiteConfig::worker)".into(),
        })?;
        let plans = self.groups_of(PhaseName::Threads);
        let total = plans.iter().map(|g| g.prompts.len()).sum();
        self.progress
            .start(label, PhaseName::Threads.name(), Some(total));
        let scratch = c.out_dir.join(format!(".threads-{}", std::process::id()));
        let mut groups = Vec::with_capacity(plans.len());
        let mut resources = None;
        let mut contended: Option<String> = None;
        for plan in &plans {
            let swept = run_worker(worker, &scratch, self.results, c, plan, format_arg, engine);
            let _ = std::fs::remove_dir_all(&scratch);
            let (mut group, usage) = swept.map_err(|detail| Error::Sweep {
                threads: plan.threads,
                detail,
            })?;
            for (request, &prompt) in group.requests.iter_mut().zip(&plan.prompts) {
                request.prompt_index = prompt;
            }
            for _ in &group.requests {
                self.progress.request_done();
            }
            group.setting.threads = Some(plan.threads);
            groups.push(group);
            if let Some(why) = &usage.contention {
                contended.get_or_insert_with(|| format!("on {} thread(s): {why}", plan.threads));
            }
            resources = Some(usage);
        }
        let mut resources = resources.expect("a sweep has at least one count");
        // Contention at any count distorts the comparison of counts.
        resources.contention = contended;
        let phase = Phase { groups, resources };
        self.progress
            .finish(&outcome_line(PhaseName::Threads, &phase));
        Ok(phase)
    }
}

/// One count of the thread sweep: `llm-bench run` with this count, the phase's prompts and
/// output length, the latency phase only, into `scratch`; its latency group and resources.
fn run_worker(
    worker: &Path,
    scratch: &Path,
    parent: &Results,
    config: &SuiteConfig,
    plan: &GroupPlan,
    format_arg: &str,
    engine: EngineChoice,
) -> std::result::Result<(Group, crate::results::Usage), String> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let prompts = scratch.join("prompts.jsonl");
    let lines: String = plan
        .prompts
        .iter()
        .map(|&i| serde_json::json!({ "prompt": config.prompts.list[i] }).to_string() + "\n")
        .collect();
    std::fs::write(&prompts, lines)
        .map_err(|e| format!("cannot write {}: {e}", prompts.display()))?;
    // A run's file always has its settings (only `load` writes a file without).
    let model = parent.settings.as_ref().map_or("", |s| s.model.as_str());
    let out = std::process::Command::new(worker)
        .arg("run")
        .args(["--model", model])
        .args(["--format", format_arg])
        .args(["--engine", engine.name()])
        .args(["--threads", &plan.threads.to_string()])
        .args(["--phases", "latency", "--runs", "1"])
        .args(["--max-new-tokens", &plan.new_tokens.to_string()])
        .args(["--seed", &config.seed.to_string()])
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(scratch)
        .env_remove(crate::system::THREADS_ENV)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", worker.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!(
            "{} exited with {}: {}",
            worker.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    let results = Results::load(&scratch.join(RESULTS_FILE)).map_err(|e| e.to_string())?;
    let run = results.runs.into_iter().next().ok_or("it ran nothing")?;
    let latency = run.latency.ok_or("it has no latency phase")?;
    let mut group = latency.groups.into_iter().next().ok_or("it has no group")?;
    group.read_bytes_per_s = results.memory_bandwidth.map(|b| b.read_bytes_per_s);
    Ok((group, latency.resources))
}
