//! The serving-latency suite behind `llm-bench run`: per format, load (timed, with its memory),
//! warm up, then the phases (latency, throughput, strategies, scaling, batch), each under a
//! resource sampler, writing `results.json` atomically after every step so an interrupted run
//! keeps what finished. The thread sweep runs in processes of its own (`sweep.rs`).

mod config;
mod prompts;
mod sweep;

pub use config::SuiteConfig;
pub use prompts::{Prompts, BUILTIN_PROMPTS};

use crate::bandwidth::{self, Bandwidth, Roofline};
use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::generate::{generate, Request, Strategy};
use crate::model::{plan, Model, Planned};
use crate::resources::{self, current_rss_bytes, release_freed_memory, Sampler};
pub use crate::results::PhaseName;
use crate::results::{
    FormatRun, Group, GroupSummary, LoadFailure, LoadPhase, ModelFacts, Phase, RequestRecord,
    RequestSetting, Results, RESULTS_FILE, SCHEMA_ID, SCHEMA_VERSION,
};
use crate::system::{BuildInfo, SystemInfo};
use crate::units::mib;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Output length of each warm-up request (warm-ups are not recorded).
pub const WARMUP_NEW_TOKENS: usize = 8;

/// What the suite tells its front end as it goes (the CLI draws progress bars).
pub trait Progress {
    /// A step starts: `requests` to run, or `None` for one that is not counted in requests.
    fn start(&mut self, run: &str, step: &str, requests: Option<usize>);
    /// Called after each request.
    fn request_done(&mut self);
    /// The step finished; `outcome` is a one-line summary.
    fn finish(&mut self, outcome: &str);
}

/// Runs the suite. Returns the results also saved to `OUT/results.json`; a format that fails
/// midway keeps its finished phases and records the error, and the next format still runs.
pub fn run(config: &SuiteConfig, progress: &mut dyn Progress) -> Result<Results> {
    config.validate()?;
    let (spec, notices) = crate::defaults::choose_spec(config.model.as_deref())?;
    // Every engine and format is planned (and checked) before anything runs.
    let mut planned: Vec<(EngineChoice, Planned)> = Vec::new();
    for &engine in &config.engines {
        for format in &config.formats {
            let p = plan(&spec, *format)?;
            engine.supports(&p)?;
            if !planned.iter().any(|(e, q)| q.label(*e) == p.label(engine)) {
                planned.push((engine, p));
            }
        }
    }
    check_fits_context(config, &planned[0].1)?;
    // Inputs are valid: only now does the output folder appear.
    crate::fs::prepare_output_dir(&config.out_dir)?;
    // One run per folder: two would overwrite each other's results.json.
    let _held = crate::fs::lock_output_dir(&config.out_dir)?;
    warn_if_busy(config.threads);
    let system = SystemInfo::collect(config.threads);
    let bandwidth = if config.measure_bandwidth {
        progress.start("machine", "memory bandwidth", None);
        let bandwidth = bandwidth::measure_or_cached(&config.out_dir, &system)?;
        progress.finish(&format!(
            "memory read bandwidth {:.1} GB/s with {} threads (per buffer: {}){}{}",
            bandwidth.read_bytes_per_s / 1e9,
            bandwidth.threads,
            bandwidth.per_buffer_gb_per_s(),
            if bandwidth.from_cache { ", cached" } else { "" },
            bandwidth.contention.as_ref().map_or(String::new(), |why| {
                format!(" — CONTENDED, not cached: {why}")
            })
        ));
        Some(bandwidth)
    } else {
        None
    };
    let now = SystemTime::now();
    let mut results = Results {
        schema: SCHEMA_ID.into(),
        schema_version: SCHEMA_VERSION,
        complete: false,
        created: humantime::format_rfc3339_seconds(now).to_string(),
        created_unix: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        command_line: std::env::args().collect(),
        settings: Some(config.settings(
            &spec.to_string(),
            planned.iter().map(|(e, p)| p.label(*e)).collect(),
        )),
        system: (&system).into(),
        build: (&BuildInfo::current()).into(),
        memory_bandwidth: bandwidth.as_ref().map(Into::into),
        runs: vec![],
        load_failures: vec![],
        endpoints: vec![],
    };
    let path = config.out_dir.join(RESULTS_FILE);
    results.save(&path)?;
    for (engine, planned) in planned {
        let label = planned.label(engine);
        let runs_before = results.runs.len();
        let mut runner = FormatRunner {
            config,
            results: &mut results,
            path: &path,
            bandwidth: bandwidth.as_ref(),
            progress,
        };
        if let Err(e) = runner.run(planned, engine, &notices) {
            progress.finish(&format!("stopped: {e}"));
            // Failed after loading: the run keeps its finished phases. Before: nothing to keep.
            if results.runs.len() > runs_before {
                results.runs[runs_before].error = Some(e.to_string());
            } else {
                results.load_failures.push(LoadFailure {
                    label,
                    error: e.to_string(),
                });
            }
            results.save(&path)?;
        }
    }
    results.complete = true;
    results.save(&path)?;
    Ok(results)
}

/// Says so before a run when other processes are already using the CPUs the run needs
/// (the contention rule of `resources::contention`, over half a second), naming the biggest.
fn warn_if_busy(threads: usize) {
    let Some(busy) = resources::busy_before_run(std::time::Duration::from_millis(500)) else {
        return;
    };
    let cores = crate::system::logical_cpus();
    if let Some(why) =
        resources::contention(busy.others_percent, busy.steal_percent, threads, cores)
    {
        let busiest = busy.busiest();
        eprintln!(
            "warning: the machine is busy before the run starts ({why}{}): timings will be distorted and flagged as contended; stop those processes or rerun later",
            if busiest.is_empty() {
                String::new()
            } else {
                format!("; busiest: {busiest}")
            }
        );
    }
}

/// Every prompt plus the longest output must fit the model's context; checked before any
/// model is loaded, so a mistake costs a second, not a run.
fn check_fits_context(config: &SuiteConfig, planned: &Planned) -> Result<()> {
    let tokenizer = &planned.resolved.tokenizer;
    let context_length = planned.resolved.config.max_position_embeddings;
    let mut longest_prompt = 0;
    for prompt in &config.prompts.list {
        longest_prompt = longest_prompt.max(tokenizer.encode(prompt)?.len());
    }
    let new_tokens = config.longest_output();
    if longest_prompt.saturating_add(new_tokens) <= context_length {
        let batch = if config.phases.contains(&PhaseName::Batch) {
            config.batch_sizes.iter().copied().max().unwrap_or(1)
        } else {
            1
        };
        let weight_bytes = planned.weight_bytes();
        return crate::model::check_request_memory(
            &planned.resolved.config,
            weight_bytes,
            batch,
            longest_prompt,
            new_tokens,
        )
        .map_err(|e| match e {
            Error::InvalidSetting { reason, .. } => Error::InvalidSetting {
                name: "--batch-sizes",
                reason,
            },
            other => other,
        });
    }
    if new_tokens > config.max_new_tokens {
        return Err(Error::InvalidSetting {
            name: "--scaling-tokens",
            reason: format!(
                "the longest prompt has {longest_prompt} tokens, and with {new_tokens} new tokens it exceeds the model's context of {context_length}: use lengths up to {}",
                context_length.saturating_sub(longest_prompt)
            ),
        });
    }
    Err(Error::ContextOverflow {
        prompt_tokens: longest_prompt,
        new_tokens,
        context_length,
    })
}

/// One group of a phase before it runs: requests with one setting over these prompts.
struct GroupPlan {
    strategy: Strategy,
    new_tokens: usize,
    batch: usize,
    threads: usize,
    prompts: Vec<usize>,
}

struct FormatRunner<'a> {
    config: &'a SuiteConfig,
    results: &'a mut Results,
    path: &'a Path,
    bandwidth: Option<&'a Bandwidth>,
    progress: &'a mut dyn Progress,
}

impl FormatRunner<'_> {
    fn run(&mut self, planned: Planned, engine: EngineChoice, notices: &[String]) -> Result<()> {
        let label = planned.label(engine);
        let format_arg = planned.format.map_or("native", |f| f.name()).to_string();
        self.progress.start(&label, "load", None);
        release_freed_memory();
        let rss_before_bytes = current_rss_bytes();
        let (loaded, usage) = resources::measure(|| planned.load_with(engine));
        let mut model = loaded?;
        model.info.notices.splice(0..0, notices.iter().cloned());
        self.progress.finish(&format!(
            "loaded in {:.1} s, {} of weights, peak RSS {}",
            model.info.load_seconds,
            mib(model.info.weight_bytes),
            mib(usage.peak_rss_bytes.unwrap_or(0))
        ));
        self.results.runs.push(FormatRun {
            model: ModelFacts::of(&model.info),
            load: LoadPhase {
                seconds: model.info.load_seconds,
                rss_before_bytes,
                resources: (&usage).into(),
            },
            latency: None,
            throughput: None,
            strategies: None,
            scaling: None,
            batch: None,
            threads: None,
            roofline: None,
            error: None,
        });
        self.results.save(self.path)?;
        let in_process: Vec<PhaseName> = PhaseName::ALL
            .into_iter()
            .filter(|p| *p != PhaseName::Threads && self.config.phases.contains(p))
            .collect();
        if !in_process.is_empty() {
            self.warm_up(&mut model, &label)?;
        }
        for phase in in_process {
            let groups = self.groups_of(phase);
            let measured = self.run_phase(&mut model, &label, phase, &groups)?;
            let run = self.results.runs.last_mut().expect("pushed above");
            if phase == PhaseName::Latency {
                run.roofline = self
                    .bandwidth
                    .zip(measured.groups[0].summary.decode_tokens_per_s.as_ref())
                    .map(|(bandwidth, decode)| {
                        (&Roofline::new(
                            model.info.bytes_read_per_token,
                            bandwidth.read_bytes_per_s,
                            decode.p50,
                        ))
                            .into()
                    });
            }
            *run.phase_mut(phase) = Some(measured);
            self.results.save(self.path)?;
        }
        if self.config.phases.contains(&PhaseName::Threads) {
            // The sweep's processes load their own copy: free this one first.
            drop(model);
            release_freed_memory();
            let measured = self.sweep_threads(&label, &format_arg, engine)?;
            let run = self.results.runs.last_mut().expect("pushed above");
            run.threads = Some(measured);
            self.results.save(self.path)?;
        }
        Ok(())
        // `model` drops here: its memory is freed before the next format loads.
    }

    fn warm_up(&mut self, model: &mut Model, label: &str) -> Result<()> {
        let count = self.config.warmup_requests;
        self.progress.start(label, "warm-up", Some(count));
        for i in 0..count {
            let request = self.request(0, Strategy::Greedy, WARMUP_NEW_TOKENS, 1, i);
            generate(model, &request, |_, _| {})?;
            self.progress.request_done();
        }
        self.progress
            .finish(&format!("{count} requests, not recorded"));
        Ok(())
    }

    /// The groups of a phase: one setting each, with the prompts (indices) it runs.
    fn groups_of(&self, phase: PhaseName) -> Vec<GroupPlan> {
        let c = self.config;
        let all = c.prompts.list.len();
        let passes = |n: usize| -> Vec<usize> { (0..n).flat_map(|_| 0..all).collect() };
        let per_point: Vec<usize> = (0..c.prompts_per_point).map(|i| i % all).collect();
        let group = |strategy, new_tokens, batch, prompts| GroupPlan {
            strategy,
            new_tokens,
            batch,
            threads: c.threads,
            prompts,
        };
        let greedy = Strategy::Greedy;
        match phase {
            PhaseName::Latency => vec![group(greedy, c.max_new_tokens, 1, passes(c.runs))],
            PhaseName::Throughput => vec![group(
                greedy,
                c.max_new_tokens,
                1,
                passes(c.throughput_rounds),
            )],
            PhaseName::Strategies => c
                .strategies
                .iter()
                .map(|&s| group(s, c.max_new_tokens, 1, per_point.clone()))
                .collect(),
            PhaseName::Scaling => c
                .scaling_new_tokens
                .iter()
                .map(|&n| group(greedy, n, 1, per_point.clone()))
                .collect(),
            PhaseName::Batch => c
                .batch_sizes
                .iter()
                .map(|&b| group(greedy, c.max_new_tokens, b, per_point.clone()))
                .collect(),
            PhaseName::Threads => c
                .sweep()
                .into_iter()
                .map(|threads| GroupPlan {
                    threads,
                    ..group(greedy, c.max_new_tokens, 1, per_point.clone())
                })
                .collect(),
        }
    }

    fn run_phase(
        &mut self,
        model: &mut Model,
        label: &str,
        phase: PhaseName,
        groups: &[GroupPlan],
    ) -> Result<Phase> {
        let total = groups.iter().map(|g| g.prompts.len()).sum();
        self.progress.start(label, phase.name(), Some(total));
        let sampler = Sampler::start();
        let mut measured = Vec::with_capacity(groups.len());
        for plan in groups {
            let started = Instant::now();
            let mut requests = Vec::with_capacity(plan.prompts.len());
            for (i, &prompt) in plan.prompts.iter().enumerate() {
                let request = self.request(prompt, plan.strategy, plan.new_tokens, plan.batch, i);
                let trace = generate(model, &request, |_, _| {})?;
                requests.push(RequestRecord::of(prompt, &trace));
                self.progress.request_done();
            }
            let summary = GroupSummary::of(&requests, started.elapsed().as_secs_f64())
                .expect("every group has at least one prompt");
            measured.push(Group {
                setting: RequestSetting {
                    strategy: plan.strategy.to_string(),
                    new_tokens: plan.new_tokens,
                    batch: plan.batch,
                    threads: Some(plan.threads),
                },
                summary,
                requests,
                read_bytes_per_s: None,
            });
        }
        let mut resources = sampler.finish();
        resources.judge(self.config.threads);
        let phase_result = Phase {
            groups: measured,
            resources: (&resources).into(),
        };

        self.progress.finish(&outcome_line(phase, &phase_result));
        Ok(phase_result)
    }

    fn request(
        &self,
        prompt: usize,
        strategy: Strategy,
        new_tokens: usize,
        batch: usize,
        i: usize,
    ) -> Request {
        Request {
            prompt: self.config.prompts.list[prompt].clone(),
            max_new_tokens: new_tokens,
            // End-of-sequence is ignored so every request is the same length and runs compare.
            min_new_tokens: new_tokens,
            strategy,
            seed: self.config.seed.wrapping_add(i as u64),
            batch,
        }
    }
}

/// The phase's one-line summary, and a warning when it ran contended.
fn outcome_line(phase: PhaseName, result: &Phase) -> String {
    let line = phase_summary(phase, result);
    match &result.resources.contention {
        Some(why) => format!("{line} — CONTENDED: {why}"),
        None => line,
    }
}

fn phase_summary(phase: PhaseName, result: &Phase) -> String {
    let decode = |g: &Group| {
        g.summary
            .decode_tokens_per_s
            .as_ref()
            .map_or(0.0, |d| d.p50)
    };
    match phase {
        PhaseName::Latency => {
            let s = &result.groups[0].summary;
            format!(
                "TTFT p50 {:.1} ms, ITL p50 {:.2} ms, E2E p50 {:.0} ms (p99 {:.0}), decode {:.1} tokens/s",
                s.ttft_ms.p50,
                s.itl_ms.as_ref().map_or(0.0, |i| i.p50),
                s.e2e_ms.p50,
                s.e2e_ms.p99,
                decode(&result.groups[0])
            )
        }
        PhaseName::Throughput => {
            let s = &result.groups[0].summary;
            format!(
                "{:.2} queries/s, {:.1} generated tokens/s",
                s.queries_per_s, s.generated_tokens_per_s
            )
        }
        _ => {
            result
                .groups
                .iter()
                .map(|g| {
                    let key = match phase {
                        PhaseName::Scaling => format!("{} tokens", g.setting.new_tokens),
                        PhaseName::Batch => format!("batch {}", g.setting.batch),
                        PhaseName::Threads => {
                            format!("{} threads", g.setting.threads.unwrap_or_default())
                        }
                        _ => g.setting.strategy.clone(),
                    };
                    format!("{key}: {:.1}", g.summary.generated_tokens_per_s)
                })
                .collect::<Vec<_>>()
                .join(", ")
                + " generated tokens/s"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_parse_by_name_and_unknown_ones_list_the_choices() {
        for phase in PhaseName::ALL {
            assert_eq!(phase.name().parse::<PhaseName>().unwrap(), phase);
        }
        let err = "warmup".parse::<PhaseName>().unwrap_err().to_string();
        assert!(
            err.contains("latency, throughput, strategies, scaling, batch"),
            "{err}"
        );
    }
}
