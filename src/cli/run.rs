//! `llm-bench run`: the serving-latency suite over one or more formats, into results.json.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use llm_bench::engine::EngineChoice;
use llm_bench::generate::Strategy;
use llm_bench::results::RESULTS_FILE;
use llm_bench::suite::{self, PhaseName, Progress, Prompts, SuiteConfig};
use llm_bench::system::configure_threads;
use llm_bench::WeightFormat;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: org/name[@rev], a folder, a .gguf file or synthetic:<preset> [default: the fetched SmolLM2 GGUF]
    #[arg(long, env = "LLM_BENCH_MODEL")]
    model: Option<String>,
    /// Weight format; repeat to run several one after another (`native` = the file's own) [default: native]
    #[arg(long = "format", value_parser = parse_format_or_native)]
    formats: Vec<Option<WeightFormat>>,
    /// Inference engine; repeat to run every format on several (candle, tuned, llama-cpp) [default: candle]
    #[arg(long = "engine", value_parser = super::parse_engine)]
    engines: Vec<EngineChoice>,
    /// One prompt per line, or JSONL with a "prompt" field [default: the five customer-support prompts]
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Passes over the prompts in the latency phase [default: 5, quick 1]
    #[arg(long, env = "LLM_BENCH_RUNS")]
    runs: Option<usize>,
    /// Output length of every request except the scaling phase's (EOS ignored) [default: 64, quick 32]
    #[arg(long, env = "LLM_BENCH_MAX_NEW_TOKENS")]
    max_new_tokens: Option<usize>,
    /// Batch sizes of the batch phase
    #[arg(
        long,
        value_delimiter = ',',
        env = "LLM_BENCH_BATCH_SIZES",
        default_value = "1,2,4,8"
    )]
    batch_sizes: Vec<usize>,
    /// Output lengths of the scaling phase
    #[arg(
        long,
        value_delimiter = ',',
        env = "LLM_BENCH_SCALING_TOKENS",
        default_value = "32,64,128,256"
    )]
    scaling_tokens: Vec<usize>,
    /// Sampling strategies of the strategies phase
    #[arg(long, value_delimiter = ',', value_parser = super::parse_strategy,
          default_value = "greedy,temperature=0.7,top-k=50,top-p=0.9")]
    strategies: Vec<Strategy>,
    /// Passes over the prompts in the throughput phase [default: 4, quick 1]
    #[arg(long, env = "LLM_BENCH_THROUGHPUT_ROUNDS")]
    throughput_rounds: Option<usize>,
    /// Prompts per point in the strategies, scaling and batch phases [default: 5, quick 2]
    #[arg(long, env = "LLM_BENCH_PROMPTS_PER_POINT")]
    prompts_per_point: Option<usize>,
    /// Phases to run (add `threads` for a thread sweep)
    #[arg(long, value_delimiter = ',', value_parser = parse_phase,
          default_value = "latency,throughput,strategies,scaling,batch")]
    phases: Vec<PhaseName>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads for the kernels; a list (1,2,4) also runs the thread sweep phase over it, the
    /// other phases on the largest [default: RAYON_NUM_THREADS, else all cores]
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Output folder: results.json, and the cached memory-bandwidth figure
    #[arg(long, default_value = "llm-bench-results")]
    out: PathBuf,
    /// Fewer and shorter requests: a first look in minutes
    #[arg(long)]
    quick: bool,
    /// Skip the memory-bandwidth probe and the roofline (the thread sweep's own runs use it)
    #[arg(long, hide = true)]
    no_bandwidth: bool,
}

fn parse_format_or_native(s: &str) -> Result<Option<WeightFormat>, String> {
    if s.trim() == "native" {
        Ok(None)
    } else {
        super::parse_format(s).map(Some)
    }
}

fn parse_phase(s: &str) -> Result<PhaseName, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let sweep = super::thread_list(&args.threads)?;
    let threads = configure_threads(sweep.iter().copied().max());
    let mut config = SuiteConfig::new(args.quick);
    config.model = args.model;
    if !args.formats.is_empty() {
        config.formats = args.formats;
    }
    if !args.engines.is_empty() {
        config.engines = args.engines;
    }
    if let Some(path) = &args.prompts {
        config.prompts = Prompts::read(path)?;
    }
    config.runs = args.runs.unwrap_or(config.runs);
    config.max_new_tokens = args.max_new_tokens.unwrap_or(config.max_new_tokens);
    config.throughput_rounds = args.throughput_rounds.unwrap_or(config.throughput_rounds);
    config.prompts_per_point = args.prompts_per_point.unwrap_or(config.prompts_per_point);
    config.batch_sizes = args.batch_sizes;
    config.scaling_new_tokens = args.scaling_tokens;
    config.strategies = args.strategies;
    config.phases = args.phases;
    if sweep.len() > 1 {
        config.thread_counts = sweep;
        if !config.phases.contains(&PhaseName::Threads) {
            config.phases.push(PhaseName::Threads);
        }
    }
    config.seed = args.seed;
    config.threads = threads;
    config.out_dir = args.out;
    config.measure_bandwidth = !args.no_bandwidth;
    config.worker = std::env::current_exe().ok();

    let results = suite::run(&config, &mut Bars::default()).context("llm-bench run")?;
    // results.json is saved already; a failing stdout is reported after the failures.
    let printed =
        super::out::outln!("{}", llm_bench::report::summary_table(&results)).and_then(|()| {
            super::out::outln!(
                "results: {} (llm-bench report {0} for the Markdown report and charts)",
                config.out_dir.join(RESULTS_FILE).display()
            )
        });
    let failed: Vec<String> = results
        .runs
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.label())))
        .chain(
            results
                .load_failures
                .iter()
                .map(|f| format!("{}: {}", f.label, f.error)),
        )
        .collect();
    printed?;
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "error: {} format(s) failed or stopped early (finished phases are saved):",
            failed.len()
        );
        for line in failed {
            eprintln!("  {line}");
        }
        Ok(2)
    }
}

/// A progress bar per step on a terminal; one line per finished step either way.
#[derive(Default)]
struct Bars {
    bar: Option<ProgressBar>,
    prefix: String,
}

impl Progress for Bars {
    fn start(&mut self, run: &str, step: &str, requests: Option<usize>) {
        self.prefix = format!("{run} {step}");
        let bar = match requests {
            Some(n) => ProgressBar::new(n as u64).with_style(
                ProgressStyle::with_template("{prefix} [{bar:20}] {pos}/{len} {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix} {spinner} {elapsed}")
                    .expect("a valid template"),
            ),
        };
        bar.set_prefix(self.prefix.clone());
        // Redrawn 5 times a second: cheap enough not to disturb 2-core measurements.
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn request_done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&mut self, outcome: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{}: {outcome}", self.prefix);
    }
}
