//! Command-line parsing; one file per subcommand.

mod gate;
mod generate;

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
}

/// Runs the command; the number is the exit code (errors exit 2, see `main`).
pub fn run() -> anyhow::Result<i32> {
    match Cli::parse().command {
        Command::Generate(args) => generate::run(args).map(|()| 0),
        Command::Gate(args) => gate::run(args),
    }
}

pub fn parse_format(s: &str) -> Result<llm_bench::WeightFormat, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}

pub fn parse_strategy(s: &str) -> Result<llm_bench::generate::Strategy, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}
