//! `llm-bench gate`: fail CI on a real slowdown between two saved Criterion runs, stay quiet
//! on noise. Exit 0: nothing regressed; 1: something did; 2: bad input.

use anyhow::Context;
use llm_bench::fs::write_atomically;
use llm_bench::gate::{self, GateReport, NamedRun};
use llm_bench::output::{Bmf, Exporter, Json, Markdown, Table};
use regex::Regex;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Markdown,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Export {
    /// Bencher Metric Format JSON of the `--against` run
    Bmf,
}

#[derive(clap::Args)]
pub struct Args {
    /// The saved run to compare against (`cargo bench -- --save-baseline NAME`); with
    /// --paired, the name of one side's rounds (`NAME.1`, `NAME.2`, …)
    #[arg(long)]
    baseline: String,
    /// The run under test: another saved baseline, or `new` (the latest `cargo bench`)
    #[arg(long, default_value = "new")]
    against: String,
    /// Slowdown of the median that counts as a regression, e.g. 5% or 0.05
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    threshold: f64,
    /// Compare interleaved rounds (`scripts/bench-ab`): runs saved as `<baseline>.1`,
    /// `<against>.1`, `<baseline>.2`, …; the change is the median of per-round ratios
    #[arg(long)]
    paired: bool,
    /// Only ids matching this regular expression
    #[arg(long)]
    filter: Option<String>,
    /// Criterion's output folder [default: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion,
    /// else target/criterion: where `cargo bench` writes]
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Also write the `--against` run (with --paired, its last round) in another format
    #[arg(long, value_enum)]
    export: Option<Export>,
    /// Where `--export` writes [default: <criterion-dir>/<against>.bmf.json]
    #[arg(long)]
    export_to: Option<PathBuf>,
}

/// `5%` or `0.05`. A bare number above 1 is refused: `--threshold 5` most likely means 5%,
/// not 500%, and a silent 500% gate would pass every regression.
pub(crate) fn parse_threshold(s: &str) -> Result<f64, String> {
    let both = "write a percentage like 5% or a fraction like 0.05";
    let text = s.trim();
    let (number, percent) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (text, false),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{s:?} is not a number: {both}"))?;
    if !percent && value > 1.0 {
        return Err(format!(
            "{s:?} is ambiguous: {both} (a bare number is a fraction, so {s} would mean {:.0}%)",
            value * 100.0
        ));
    }
    let fraction = if percent { value / 100.0 } else { value };
    if !(fraction > 0.0 && fraction < 10.0) {
        return Err(format!(
            "the threshold must be above 0% and below 1000% (found {s:?}): {both}"
        ));
    }
    Ok(fraction)
}

pub fn run(mut args: Args) -> anyhow::Result<i32> {
    let criterion_dir = args
        .criterion_dir
        .take()
        .unwrap_or_else(llm_bench::bench::criterion_dir);
    let filter = args
        .filter
        .as_deref()
        .map(Regex::new)
        .transpose()
        .context("--filter is not a valid regular expression")?;
    let keep = |id: &str| filter.as_ref().is_none_or(|f| f.is_match(id));
    let (report, new, sizes) = if args.paired {
        let base = gate::read_rounds(&criterion_dir, &args.baseline)?;
        let new = gate::read_rounds(&criterion_dir, &args.against)?;
        let report = gate::compare_paired(
            &args.baseline,
            &base,
            &args.against,
            &new,
            args.threshold,
            keep,
        )?;
        let ids = |r: &std::collections::BTreeMap<u32, gate::Run>| {
            r.values().map(|run| run.len()).max().unwrap_or(0)
        };
        let sizes = (ids(&base), ids(&new));
        // --export writes the last round of the run under test.
        let last = new.into_values().next_back().unwrap_or_default();
        (report, last, sizes)
    } else {
        let base = gate::read_run(&criterion_dir, &args.baseline)?;
        let new = gate::read_run(&criterion_dir, &args.against)?;
        let report = gate::compare(
            &args.baseline,
            &base,
            &args.against,
            &new,
            args.threshold,
            keep,
        );
        let sizes = (base.len(), new.len());
        (report, new, sizes)
    };
    if report.comparisons.is_empty() {
        anyhow::bail!(
            "no benchmark id is in both {:?} ({} ids) and {:?} ({} ids){}: nothing to compare",
            args.baseline,
            sizes.0,
            args.against,
            sizes.1,
            if filter.is_some() {
                " that matches --filter"
            } else {
                ""
            }
        );
    }
    let exporter: &dyn Exporter<GateReport> = match args.format {
        OutputFormat::Table => &Table,
        OutputFormat::Markdown => &Markdown,
        OutputFormat::Json => &Json,
    };
    super::out::print(&exporter.text(&report)?)?;
    if let Some(Export::Bmf) = args.export {
        let run = NamedRun {
            name: &args.against,
            run: &new,
        };
        for bmf in Bmf.export(&run)? {
            let path = (args.export_to.clone()).unwrap_or_else(|| criterion_dir.join(&bmf.name));
            write_atomically(&path, bmf.text.as_bytes())?;
            eprintln!("wrote Bencher Metric Format to {}", path.display());
        }
    }
    let regressed = report.regressed().count();
    if regressed > 0 {
        eprintln!(
            "gate: {regressed} benchmark(s) regressed by more than {:.1}%",
            report.threshold * 100.0
        );
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_threshold;

    #[test]
    fn thresholds_take_percentages_and_fractions_and_refuse_bare_numbers_above_one() {
        assert_eq!(parse_threshold("5%"), Ok(0.05));
        assert_eq!(parse_threshold("0.05"), Ok(0.05));
        assert_eq!(parse_threshold(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_threshold("1"), Ok(1.0));
        let err = parse_threshold("5").unwrap_err();
        assert!(
            err.contains("5%") && err.contains("0.05") && err.contains("500%"),
            "{err}"
        );
        for bad in ["0", "0%", "-5%", "1000%", "abc", "NaN", "inf%", ""] {
            assert!(parse_threshold(bad).is_err(), "{bad} accepted");
        }
    }
}
