//! `llm-bench compare`: one run against another, with the spread of both.

use llm_bench::compare::Comparison;
use llm_bench::compare::{compare, select};
use llm_bench::fs::write_atomically;
use llm_bench::output::{Exporter, Json, Markdown};
use llm_bench::results::Results;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Markdown,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// The base run's results.json
    base: PathBuf,
    /// The other run's results.json [default: the base file, for two formats of one run]
    other: Option<PathBuf>,
    /// The base run's format (or name@format+engine) when its file holds several
    #[arg(long)]
    base_format: Option<String>,
    /// The other run's format (or name@format+engine) when its file holds several
    #[arg(long)]
    other_format: Option<String>,
    /// The base run's engine (candle, tuned, llama-cpp) when its file holds several
    #[arg(long)]
    base_engine: Option<String>,
    /// The other run's engine when its file holds several
    #[arg(long)]
    other_engine: Option<String>,
    #[arg(long, value_enum, default_value = "markdown")]
    output: Output,
    /// Also write the comparison to this file
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let other_path = args.other.clone().unwrap_or_else(|| args.base.clone());
    let base = Results::load(&args.base)?;
    let other = Results::load(&other_path)?;
    let base_run = select(
        &args.base,
        &base,
        args.base_format.as_deref(),
        args.base_engine.as_deref(),
        ("--base-format", "--base-engine"),
    )?;
    let other_run = select(
        &other_path,
        &other,
        args.other_format.as_deref(),
        args.other_engine.as_deref(),
        ("--other-format", "--other-engine"),
    )?;
    let comparison = compare(
        (&args.base, &base, base_run),
        (&other_path, &other, other_run),
    );
    let exporter: &dyn Exporter<Comparison> = match args.output {
        Output::Markdown => &Markdown,
        Output::Json => &Json,
    };
    let text = exporter.text(&comparison)?;
    if let Some(path) = &args.out {
        write_atomically(path, text.as_bytes())?;
    }
    super::out::print(&text)?;
    Ok(0)
}
