//! The serving-latency suite behind `llm-bench run`: per format, load (timed, with its memory),
//! warm up, then the phases (latency, throughput, strategies, scaling, batch), each under a
//! resource sampler, writing `results.json` atomically after every step so an interrupted run
//! keeps what finished.

use crate::bandwidth::{self, Bandwidth, Roofline};
use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::generate::{generate, Request, Strategy};
use crate::model::{plan, Model, Planned};
use crate::report::mib;
use crate::resources::{self, current_rss_bytes, release_freed_memory, Sampler};
pub use crate::results::PhaseName;
use crate::results::{
    FormatRun, Group, GroupSummary, LoadFailure, LoadPhase, ModelFacts, Phase, RequestRecord,
    RequestSetting, Results, Settings, RESULTS_FILE, SCHEMA_ID, SCHEMA_VERSION,
};
use crate::system::{BuildInfo, SystemInfo};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The tutorial's five customer-support prompts.
pub const BUILTIN_PROMPTS: &str = include_str!("../fixtures/prompts/customer-support.txt");
/// Output length of each warm-up request (warm-ups are not recorded).
const WARMUP_NEW_TOKENS: usize = 8;

/// The prompts and where they came from.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub source: String,
    pub list: Vec<String>,
}

impl Prompts {
    pub fn builtin() -> Self {
        Self {
            source: "built-in (fixtures/prompts/customer-support.txt)".into(),
            list: BUILTIN_PROMPTS
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// One prompt per line, or JSONL with a `prompt` field per line; blank lines are skipped.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut list = Vec::new();
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() {
                continue;
            }
            if line.starts_with('{') {
                let bad = |problem: &str| Error::BadField {
                    path: path.into(),
                    field: format!("prompt (line {number})"),
                    problem: problem.to_string(),
                };
                let value: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| bad(&format!("is on a line that is not valid JSON: {e}")))?;
                let prompt = value
                    .get("prompt")
                    .and_then(|p| p.as_str())
                    .ok_or_else(|| {
                        bad("is missing or not a string; expected {\"prompt\": \"...\"}")
                    })?;
                if prompt.trim().is_empty() {
                    return Err(bad("is empty"));
                }
                list.push(prompt.to_string());
            } else {
                list.push(line.to_string());
            }
        }
        if list.is_empty() {
            return Err(Error::NoPrompts { path: path.into() });
        }
        Ok(Self {
            source: path.display().to_string(),
            list,
        })
    }
}

/// Everything `llm-bench run` was asked to do, after defaults.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// A model spec; `None` for the default chain.
    pub model: Option<String>,
    /// `None` = the model's own format.
    pub formats: Vec<Option<WeightFormat>>,
    /// Every format runs on each engine, engine by engine.
    pub engines: Vec<EngineChoice>,
    pub prompts: Prompts,
    pub runs: usize,
    pub max_new_tokens: usize,
    pub warmup_requests: usize,
    pub throughput_rounds: usize,
    pub prompts_per_point: usize,
    pub strategies: Vec<Strategy>,
    pub scaling_new_tokens: Vec<usize>,
    pub batch_sizes: Vec<usize>,
    pub seed: u64,
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
    pub phases: Vec<PhaseName>,
    pub out_dir: PathBuf,
}

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

    fn validate(&self) -> Result<()> {
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

    fn settings(&self, model: &str, format_labels: Vec<String>) -> Settings {
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
    fn sweep(&self) -> Vec<usize> {
        if self.thread_counts.is_empty() {
            crate::system::default_thread_sweep()
        } else {
            self.thread_counts.clone()
        }
    }

    /// The longest output any request asks for.
    fn longest_output(&self) -> usize {
        let scaling = if self.phases.contains(&PhaseName::Scaling) {
            self.scaling_new_tokens.iter().copied().max().unwrap_or(0)
        } else {
            0
        };
        self.max_new_tokens.max(scaling)
    }
}

/// What the suite tells its front end as it goes (the CLI draws progress bars).
pub trait Progress {
    /// A step starts: `requests` to run, or `None` for one that is not counted in requests.
    fn start(&mut self, run: &str, step: &str, requests: Option<usize>);
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
    let system = SystemInfo::collect(config.threads);
    let bandwidth = if config.measure_bandwidth {
        progress.start("machine", "memory bandwidth", None);
        let bandwidth = bandwidth::measure_or_cached(&config.out_dir, &system)?;
        progress.finish(&format!(
            "memory read bandwidth {:.1} GB/s with {} threads (per buffer: {}){}",
            bandwidth.read_bytes_per_s / 1e9,
            bandwidth.threads,
            bandwidth.per_buffer_gb_per_s(),
            if bandwidth.from_cache { ", cached" } else { "" }
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
        settings: config.settings(
            &spec.to_string(),
            planned.iter().map(|(e, p)| p.label(*e)).collect(),
        ),
        system,
        build: BuildInfo::current(),
        memory_bandwidth: bandwidth.clone(),
        runs: vec![],
        load_failures: vec![],
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
                resources: usage,
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
                        Roofline::new(
                            model.info.bytes_read_per_token,
                            bandwidth.read_bytes_per_s,
                            decode.p50,
                        )
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

    /// The `threads` phase: for each count, `llm-bench run --phases latency` in a process of
    /// its own (candle sizes its thread pools once per process) over the phase's prompts,
    /// after that process's warm-up; its requests become this phase's group for the count.
    /// The phase's resources are those of the last count's process.
    fn sweep_threads(
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
            resources = Some(usage);
        }
        let phase = Phase {
            groups,
            resources: resources.expect("a sweep has at least one count"),
        };
        self.progress
            .finish(&outcome_line(PhaseName::Threads, &phase));
        Ok(phase)
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
            });
        }
        let phase_result = Phase {
            groups: measured,
            resources: sampler.finish(),
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
) -> std::result::Result<(Group, crate::resources::Usage), String> {
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
    let out = std::process::Command::new(worker)
        .arg("run")
        .args(["--model", &parent.settings.model])
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
        .arg("--no-bandwidth")
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
    let group = latency.groups.into_iter().next().ok_or("it has no group")?;
    Ok((group, latency.resources))
}

fn outcome_line(phase: PhaseName, result: &Phase) -> String {
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
    fn prompts_files_take_plain_lines_and_jsonl_and_skip_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.jsonl");
        std::fs::write(
            &path,
            "First prompt\n\n{\"prompt\": \"Second, from JSON\", \"id\": 7}\n  Third  \n",
        )
        .unwrap();
        let prompts = Prompts::read(&path).unwrap();
        assert_eq!(prompts.list, ["First prompt", "Second, from JSON", "Third"]);
        assert_eq!(prompts.source, path.display().to_string());
        assert_eq!(Prompts::builtin().list.len(), 5);
    }

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
