//! `llm-bench serve`: a model behind an OpenAI-compatible HTTP server with continuous
//! batching, until SIGINT or SIGTERM.

use anyhow::Context;
use llm_bench::engine::EngineChoice;
use llm_bench::scheduler::{Scheduler, Settings};
use llm_bench::server::{self, Served};
use llm_bench::WeightFormat;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: org/name[@rev], a folder, a .gguf file or synthetic:<preset> [default: the fetched SmolLM2 GGUF]
    #[arg(long, env = "LLM_BENCH_MODEL")]
    model: Option<String>,
    /// Weight format [default: the file's own]
    #[arg(long, value_parser = super::parse_format)]
    format: Option<WeightFormat>,
    /// Inference engine: tuned and llama-cpp batch sequences that come and go; candle runs one at a time
    #[arg(long, default_value = "tuned", value_parser = super::parse_engine)]
    engine: EngineChoice,
    /// Address to listen on: loopback unless told otherwise (0.0.0.0 for every interface)
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free one; the address is printed)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sequences decoded together at most
    #[arg(long, default_value_t = 16)]
    max_sequences: usize,
    /// Requests that may wait for a sequence; beyond it requests get HTTP 429 at once
    #[arg(long, default_value_t = 64)]
    max_waiting: usize,
    /// Tokens one engine step runs at most: decode tokens first, then chunks of prompts
    #[arg(long, default_value_t = 256)]
    step_tokens: usize,
    /// Longest a request may take, queue included (HTTP 504 after it): 600s, 2m
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// The model's name in requests and /v1/models [default: the model's own]
    #[arg(long)]
    served_name: Option<String>,
    /// Threads for the kernels [default: RAYON_NUM_THREADS, else all cores]
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for (name, value) in [
        ("--max-sequences", args.max_sequences),
        ("--step-tokens", args.step_tokens),
    ] {
        if value == 0 {
            anyhow::bail!("{name} must be at least 1, found 0");
        }
    }
    let threads = llm_bench::system::configure_threads(args.threads);
    let model = llm_bench::defaults::load_chosen_or_default(
        args.model.as_deref(),
        args.format,
        args.engine,
    )
    .context("loading the model")?;
    for notice in &model.info.notices {
        eprintln!("note: {notice}");
    }
    let slots = args.max_sequences.min(model.engine.max_sequences());
    if slots < args.max_sequences {
        eprintln!(
            "note: the {} engine runs {slots} sequence(s) at a time; --engine tuned batches up to {}",
            args.engine, args.max_sequences
        );
    }
    let name = args
        .served_name
        .clone()
        .unwrap_or_else(|| model.info.name.clone());
    let (tokenizer, context) = (model.tokenizer.clone(), model.context_length());
    let description = format!(
        "{} ({}, {} engine, {threads} threads)",
        name, model.info.format, model.info.engine.name
    );
    let settings = Settings {
        max_sequences: slots,
        max_waiting: args.max_waiting,
        step_tokens: args.step_tokens,
    };
    let (scheduler, worker) = Scheduler::start(model, settings)?;
    let state = Served::new(name, tokenizer, context, scheduler, args.request_timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async move {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| {
            format!("cannot listen on {address}: pick a free port with --port (0: any)")
        })?;
        let local = listener.local_addr()?;
        eprintln!(
            "llm-bench serve: listening on http://{local} with {description}, up to {slots} sequences; Ctrl-C stops"
        );
        server::serve(listener, state, shutdown()).await?;
        eprintln!("llm-bench serve: stopped");
        anyhow::Ok(())
    })?;
    // Every sender is gone with the server: the scheduler ends once its sequences have.
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    eprintln!("llm-bench serve: shutting down after the requests under way");
}
