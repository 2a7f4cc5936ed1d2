//! Command-line parsing; one file per subcommand.

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
}

pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(args) => generate::run(args),
    }
}

pub fn parse_format(s: &str) -> Result<llm_bench::WeightFormat, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}

pub fn parse_strategy(s: &str) -> Result<llm_bench::generate::Strategy, String> {
    s.parse().map_err(|e: llm_bench::Error| e.to_string())
}
