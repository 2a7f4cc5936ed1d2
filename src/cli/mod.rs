//! Command-line parsing; one file per subcommand.

mod compare;
mod doctor;
mod export;
mod gate;
mod generate;
mod load;
#[macro_use]
pub(crate) mod out;
mod report;
mod run;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "llm-bench",
    version,
    about = "Measure LLM inference speed on CPUs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt and report exact timings (TTFT, ITL, E2E, tokens/s).
    Generate(generate::Args),
    /// Compare two saved Criterion runs; exit 1 on a significant slowdown beyond the threshold.
    Gate(gate::Args),
    /// Run the serving-latency suite (TTFT, ITL, E2E, throughput, resources) into results.json.
    Run(run::Args),
    /// Write a Markdown report with SVG charts from results.json files.
    Report(report::Args),
    /// Compare two runs (e.g. f32 against q4_1): speedup, memory, throughput, with their spread.
    Compare(compare::Args),
    /// Check this machine for what would distort a benchmark (governor, boost, SMT, load, steal, memory, build); exit 1 on a warning.
    Doctor(doctor::Args),
    /// Write a model (e.g. a synthetic twin) as a GGUF file that llama.cpp loads.
    Export(export::Args),
    /// Serve a model over an OpenAI-compatible HTTP API with continuous batching.
    Serve(serve::Args),
    /// Load an OpenAI-compatible server: concurrency or request-rate sweeps, streamed latencies, goodput.
    Load(load::Args),
    /// Print the JSON Schema of results.json (the repo keeps a copy in schemas/).
    Schema,
}

/// Runs the command; the number is the exit code (errors exit 2, see `main`).
pub fn run() -> anyhow::Result<i32> {
    let command = Cli::parse().command;
    // `serve` shuts down cleanly on its own signal handling; the others remove their
    // temporary files and exit.
    if !matches!(command, Command::Serve(_)) {
        let _ = llm_bench::fs::remove_temporaries_on_signals();
    }
    match command {
        Command::Serve(args) => serve::run(args).map(|()| 0),
        Command::Load(args) => load::run(args),
        Command::Generate(args) => generate::run(args).map(|()| 0),
        Command::Gate(args) => gate::run(args),
        Command::Run(args) => run::run(args),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Export(args) => export::run(args).map(|()| 0),
        Command::Doctor(args) => doctor::run(args),
        Command::Schema => {
            let schema = llm_bench::results::json_schema();
            out::outln!("{}", serde_json::to_string_pretty(&schema)?)?;
            Ok(0)
        }
    }
}

pub fn parse_format(s: &str) -> Result<llm_bench::WeightFormat, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}

pub fn parse_engine(s: &str) -> Result<llm_bench::engine::EngineChoice, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}

/// `--threads 1,2,4`: each count at most the logical CPUs (with a warning), no zeros, no
/// repeats. Empty when not given.
pub fn thread_list(wanted: &[usize]) -> anyhow::Result<Vec<usize>> {
    if wanted.contains(&0) {
        anyhow::bail!("--threads: expected whole numbers >= 1 (like 1,2,4), found {wanted:?}");
    }
    let (counts, warnings) =
        llm_bench::system::cap_thread_list(wanted, llm_bench::system::logical_cpus());
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(counts)
}

pub fn parse_strategy(s: &str) -> Result<llm_bench::generate::Strategy, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}
