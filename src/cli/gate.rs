//! `llm-bench gate`: fail CI on a real slowdown between two saved Criterion runs, stay quiet
//! on noise. Exit 0: nothing regressed; 1: something did; 2: bad input.

use anyhow::Context;
use llm_bench::fs::write_atomically;
use llm_bench::gate::{self, Comparison, GateReport, Verdict};
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
    match args.format {
        OutputFormat::Table => super::out::print(&table(&report))?,
        OutputFormat::Markdown => super::out::print(&markdown(&report))?,
        OutputFormat::Json => super::out::outln!("{}", serde_json::to_string_pretty(&report)?)?,
    }
    if let Some(Export::Bmf) = args.export {
        let path = args
            .export_to
            .unwrap_or_else(|| criterion_dir.join(format!("{}.bmf.json", args.against)));
        let bmf = gate::bmf::export(&new);
        write_atomically(&path, serde_json::to_string_pretty(&bmf)?.as_bytes())?;
        eprintln!("wrote Bencher Metric Format to {}", path.display());
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

fn time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.3} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.3} µs", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

fn rate(per_s: Option<f64>, unit: Option<&str>) -> String {
    match (per_s, unit) {
        (Some(r), Some("B/s")) => format!("{:.2} GiB/s", r / (1u64 << 30) as f64),
        (Some(r), Some(_)) if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
        (Some(r), Some(_)) => format!("{r:.1}/s"),
        _ => "-".into(),
    }
}

fn verdict(c: &Comparison, threshold: f64) -> String {
    let verdict = match c.verdict {
        Verdict::Regressed => "REGRESSED".into(),
        Verdict::Improved => "improved".into(),
        Verdict::Unchanged if c.significant => {
            format!("unchanged (significant, within {:.0}%)", threshold * 100.0)
        }
        Verdict::Unchanged => "unchanged (noise)".into(),
    };
    let contended: Vec<&str> = [
        c.base_contention.as_ref().map(|_| "base"),
        c.new_contention.as_ref().map(|_| "new"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if contended.is_empty() {
        verdict
    } else {
        format!("{verdict}, CONTENDED ({})", contended.join(", "))
    }
}

/// A column of the gate's table: its header next to the function that fills its cell.
struct Column {
    header: &'static str,
    cell: fn(&Comparison, &GateReport) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "benchmark",
        cell: |c, _| c.id.clone(),
    },
    Column {
        header: "base median",
        cell: |c, _| time(c.base_median_ns),
    },
    Column {
        header: "new median",
        cell: |c, _| time(c.new_median_ns),
    },
    Column {
        header: "change [95% CI]",
        cell: |c, _| {
            format!(
                "{:+.1}% [{:+.1}%, {:+.1}%]",
                c.change * 100.0,
                c.change_ci_low * 100.0,
                c.change_ci_high * 100.0
            )
        },
    },
    Column {
        header: "rounds",
        cell: |c, _| c.rounds.map_or("-".into(), |n| n.to_string()),
    },
    Column {
        header: "throughput",
        cell: |c, _| {
            format!(
                "{} -> {}",
                rate(c.base_throughput_per_s, c.throughput_unit),
                rate(c.new_throughput_per_s, c.throughput_unit)
            )
        },
    },
    Column {
        header: "verdict",
        cell: |c, r| verdict(c, r.threshold),
    },
];

/// The columns this report fills: "rounds" only in paired mode.
fn columns(report: &GateReport) -> Vec<&'static Column> {
    COLUMNS
        .iter()
        .filter(|c| report.paired || c.header != "rounds")
        .collect()
}

fn rows(report: &GateReport) -> Vec<Vec<String>> {
    let columns = columns(report);
    report
        .comparisons
        .iter()
        .map(|c| columns.iter().map(|col| (col.cell)(c, report)).collect())
        .collect()
}

fn method(report: &GateReport) -> &'static str {
    if report.paired {
        "median of per-round ratios of medians, 95% bootstrap CI over rounds"
    } else {
        "median of per-iteration times, 95% bootstrap CI"
    }
}

/// The contention behind each CONTENDED verdict, one line per side.
fn contention_notes(report: &GateReport) -> String {
    let mut out = String::new();
    for c in &report.comparisons {
        for (side, why) in [
            (&report.baseline, &c.base_contention),
            (&report.against, &c.new_contention),
        ] {
            if let Some(why) = why {
                out += &format!("contended: {} ({side}): {why}\n", c.id);
            }
        }
    }
    if !out.is_empty() {
        out += "contended timings may be distorted by other processes: rerun on a quiet machine (llm-bench doctor) before trusting them\n";
    }
    out
}

fn one_sided(report: &GateReport) -> String {
    let mut out = String::new();
    for (side, ids) in [
        (&report.baseline, &report.only_in_baseline),
        (&report.against, &report.only_in_against),
    ] {
        if !ids.is_empty() {
            out += &format!("only in {side}: {}\n", ids.join(", "));
        }
    }
    out
}

fn table(report: &GateReport) -> String {
    let headers: Vec<&str> = columns(report).iter().map(|c| c.header).collect();
    let rows = rows(report);
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = format!(
        "gate: {} vs {} (threshold {:.1}%, {})\n",
        report.against,
        report.baseline,
        report.threshold * 100.0,
        method(report)
    );
    out += &line(headers.clone());
    for r in &rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out + &one_sided(report) + &contention_notes(report)
}

fn markdown(report: &GateReport) -> String {
    let headers: Vec<&str> = columns(report).iter().map(|c| c.header).collect();
    let mut out = format!(
        "**{}** vs **{}**, threshold {:.1}% ({})\n\n{}",
        report.against,
        report.baseline,
        report.threshold * 100.0,
        method(report),
        llm_bench::markdown::table(&headers, &rows(report))
    );
    let notes = one_sided(report) + &contention_notes(report);
    if !notes.is_empty() {
        out += &format!("\n{notes}");
    }
    out
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
