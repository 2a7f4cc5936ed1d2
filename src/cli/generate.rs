//! `llm-bench generate`: one prompt, streamed text, and its timings.

use super::out::{out, outln};
use anyhow::Context;
use llm_bench::engine::EngineChoice;
use llm_bench::generate::{self, Request, Strategy, Trace};
use llm_bench::system::{configure_threads, SystemInfo};
use llm_bench::tokenizer::TextTokenizer;
use llm_bench::{Model, WeightFormat};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: org/name[@rev], a folder, a .gguf file or synthetic:<preset> [default: the fetched SmolLM2 GGUF]
    #[arg(long, env = "LLM_BENCH_MODEL")]
    model: Option<String>,
    /// Weight format: f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, q5_1, q2k..q6k [default: the file's own]
    #[arg(long, value_parser = super::parse_format)]
    format: Option<WeightFormat>,
    /// Inference engine: candle, tuned (llm-bench's own kernels), or llama-cpp (a build with --features llama-cpp)
    #[arg(long, default_value = "candle", value_parser = super::parse_engine)]
    engine: EngineChoice,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Generate at least this many tokens, ignoring end-of-sequence, so timings compare
    #[arg(long, default_value_t = 0)]
    min_new_tokens: usize,
    /// greedy, temperature=0.7, top-k=50 or top-p=0.9
    #[arg(long, default_value = "greedy", value_parser = super::parse_strategy)]
    strategy: Strategy,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Sequences generated together, each from the same prompt
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Threads for the kernels; a list (1,2,4) generates once per count, each in its own
    /// process after a warm-up, and prints a table [default: RAYON_NUM_THREADS, else all cores]
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Untimed requests (8 new tokens each) before the measured one
    #[arg(long, default_value_t = 0)]
    warm_up: usize,
    /// Print one JSON object (an array of them for a thread list) instead of streamed text and a summary
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sweep = super::thread_list(&args.threads)?;
    if sweep.len() > 1 {
        return run_sweep(&args, &sweep);
    }
    let threads = configure_threads(sweep.first().copied());
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let mut model = llm_bench::defaults::load_chosen_or_default(
        args.model.as_deref(),
        args.format,
        args.engine,
    )
    .context("loading the model")?;
    for notice in &model.info.notices {
        eprintln!("note: {notice}");
    }
    let request = Request {
        prompt: args.prompt.clone(),
        max_new_tokens: args.max_new_tokens,
        min_new_tokens: args.min_new_tokens,
        strategy: args.strategy,
        seed: args.seed,
        batch: args.batch,
    };
    for _ in 0..args.warm_up {
        let tokens = llm_bench::suite::WARMUP_NEW_TOKENS.min(request.max_new_tokens);
        let warm_up = Request {
            max_new_tokens: tokens,
            min_new_tokens: tokens,
            ..request.clone()
        };
        generate::generate(&mut model, &warm_up, |_, _| {})?;
    }
    let trace = if args.json {
        generate::generate(&mut model, &request, |_, _| {})?
    } else {
        let mut printer = StreamPrinter::default();
        let trace = generate::generate(&mut model, &request, |tokenizer, step| {
            printer.push(tokenizer, step[0])
        })?;
        printer.written?;
        outln!()?;
        trace
    };
    let text = model.tokenizer.decode(&trace.output_tokens[0])?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report(&model, &args, &trace, &text, threads))?
        )?;
    } else {
        print_summary(&model, &trace, threads)?;
    }
    Ok(())
}

/// `--threads 1,2,4`: this command once per count, each in a process of its own (candle sizes
/// its thread pools once per process) with one untimed warm-up request, then a table with the
/// speedup over the first count and the parallel efficiency (speedup / thread ratio).
fn run_sweep(args: &Args, sweep: &[usize]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the llm-bench executable")?;
    let mut reports: Vec<serde_json::Value> = Vec::with_capacity(sweep.len());
    for &threads in sweep {
        let mut child = std::process::Command::new(&exe);
        child.arg("generate");
        if let Some(model) = &args.model {
            child.args(["--model", model]);
        }
        if let Some(format) = args.format {
            child.args(["--format", format.name()]);
        }
        child
            .args(["--engine", args.engine.name()])
            .args(["--prompt", &args.prompt])
            .args(["--max-new-tokens", &args.max_new_tokens.to_string()])
            .args(["--min-new-tokens", &args.min_new_tokens.to_string()])
            .args(["--strategy", &args.strategy.to_string()])
            .args(["--seed", &args.seed.to_string()])
            .args(["--batch", &args.batch.to_string()])
            .args(["--threads", &threads.to_string()])
            .args(["--warm-up", &args.warm_up.max(1).to_string(), "--json"])
            .env_remove(llm_bench::system::THREADS_ENV)
            .stderr(std::process::Stdio::inherit());
        let out = child
            .output()
            .context("running generate for one thread count")?;
        if !out.status.success() {
            anyhow::bail!("generate on {threads} thread(s) failed (its error is above)");
        }
        reports.push(serde_json::from_slice(&out.stdout).context("reading generate's JSON")?);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?)?;
        return Ok(());
    }
    let number = |r: &serde_json::Value, key: &str| r[key].as_f64().unwrap_or(0.0);
    if let Some(text) = reports[0]["text"].as_str() {
        outln!("{text}")?;
    }
    for r in &reports {
        outln!("---")?;
        outln!(
            "{} threads: TTFT {:.1} ms | prefill {:.1} tokens/s | decode {} | E2E {:.1} ms",
            r["threads"],
            number(r, "ttft_ms"),
            number(r, "prefill_tokens_per_s"),
            rate(r["decode_tokens_per_s"].as_f64()),
            number(r, "e2e_ms")
        )?;
    }
    let points: Vec<llm_bench::report::threads::Point> = reports
        .iter()
        .map(|r| llm_bench::report::threads::Point {
            threads: r["threads"].as_u64().unwrap_or(0) as usize,
            prefill_tokens_per_s: number(r, "prefill_tokens_per_s"),
            decode_tokens_per_s: r["decode_tokens_per_s"].as_f64(),
            thread_wait_share: r["thread_wait_share"].as_f64(),
            // `generate` does not probe the memory; `run --threads 1,2` does.
            read_bytes_per_s: None,
        })
        .collect();
    outln!("---")?;
    outln!("{}", llm_bench::report::threads::table(&points))?;
    Ok(())
}

/// Prints the first sequence's text as it grows, holding back incomplete UTF-8. The first
/// write error is kept in `written` and stops the printing.
struct StreamPrinter {
    tokens: Vec<u32>,
    printed: usize,
    written: anyhow::Result<()>,
}

impl Default for StreamPrinter {
    fn default() -> Self {
        Self {
            tokens: vec![],
            printed: 0,
            written: Ok(()),
        }
    }
}

impl StreamPrinter {
    fn push(&mut self, tokenizer: &TextTokenizer, token: u32) {
        if tokenizer.is_eos(token) || self.written.is_err() {
            return;
        }
        self.tokens.push(token);
        let Ok(text) = tokenizer.decode(&self.tokens) else {
            return;
        };
        if text.len() > self.printed
            && !text.ends_with('\u{FFFD}')
            && text.is_char_boundary(self.printed)
        {
            self.written = out!("{}", &text[self.printed..]);
            self.printed = text.len();
        }
    }
}

fn report(
    model: &Model,
    args: &Args,
    trace: &Trace,
    text: &str,
    threads: usize,
) -> serde_json::Value {
    let info = &model.info;
    let decoded = !trace.itl_ms.is_empty();
    let mut value = json!({
        "model": info.spec,
        "model_name": info.name,
        "weights": info.weights,
        "format": info.format,
        "engine": info.engine,
        "architecture": info.architecture,
        "parameters": info.parameters,
        "weight_bytes": info.weight_bytes,
        "bytes_read_per_token": info.bytes_read_per_token,
        "tokenizer": info.tokenizer,
        "load_seconds": info.load_seconds,
        "prompt": args.prompt,
        "strategy": args.strategy.to_string(),
        "seed": args.seed,
        "batch": trace.batch,
        "prompt_tokens": trace.prompt_tokens,
        "output_tokens": trace.output_tokens[0],
        "text": text,
        "tokenize_ms": trace.tokenize_ms,
        "prefill_ms": trace.prefill_ms,
        "ttft_ms": trace.ttft_ms,
        "itl_ms": trace.itl_ms,
        "e2e_ms": trace.e2e_ms,
        "prefill_tokens_per_s": trace.prefill_tokens_per_s(),
        // No decode step ran for a single token: null, not a rate of 0.
        "decode_tokens_per_s": decoded.then(|| trace.decode_tokens_per_s()),
        "decode_tokens_per_s_per_sequence": decoded.then(|| trace.decode_tokens_per_s_per_sequence()),
        "thread_wait_ms": trace.thread_wait_ms,
        "thread_wait_share": trace.thread_wait_share(),
        "threads": threads,
        "peak_rss_bytes": llm_bench::system::peak_rss_bytes(),
        "system": SystemInfo::collect(threads),
        "notices": info.notices,
    });
    if trace.batch > 1 {
        value["batch_output_tokens"] = json!(trace.output_tokens);
    }
    value
}

fn print_summary(model: &Model, trace: &Trace, threads: usize) -> anyhow::Result<()> {
    let info = &model.info;
    let mean_itl = if trace.itl_ms.is_empty() {
        0.0
    } else {
        trace.itl_ms.iter().sum::<f64>() / trace.itl_ms.len() as f64
    };
    outln!("---")?;
    outln!(
        "model {} ({} weights, {}, {} engine), {} threads, batch {}",
        info.spec,
        serde_json::to_value(info.weights)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("?"),
        info.format,
        info.engine.name,
        threads,
        trace.batch
    )?;
    outln!(
        "prompt {} tokens, generated {} tokens per sequence",
        trace.prompt_tokens.len(),
        trace.output_tokens[0].len()
    )?;
    outln!(
        "TTFT {:.1} ms (tokenize {:.2} ms, prefill {:.1} ms) | ITL mean {:.2} ms | E2E {:.1} ms",
        trace.ttft_ms,
        trace.tokenize_ms,
        trace.prefill_ms,
        mean_itl,
        trace.e2e_ms
    )?;
    let decoded = !trace.itl_ms.is_empty();
    outln!(
        "prefill {:.1} tokens/s | decode {} ({} per sequence)",
        trace.prefill_tokens_per_s(),
        rate(decoded.then(|| trace.decode_tokens_per_s())),
        rate(decoded.then(|| trace.decode_tokens_per_s_per_sequence()))
    )?;
    if let (Some(waited), Some(share), true) =
        (trace.thread_wait_ms, trace.thread_wait_share(), threads > 1)
    {
        outln!(
            "threads waiting for one another: {waited:.1} ms per thread, {:.1}% of the request",
            share * 100.0
        )?;
    }
    Ok(())
}

/// A rate in tokens/s, or "n/a" where none was measured (one generated token: no decode step).
fn rate(tokens_per_s: Option<f64>) -> String {
    match tokens_per_s {
        Some(r) => format!("{r:.1} tokens/s"),
        None => "n/a (one token: no decode step)".into(),
    }
}
