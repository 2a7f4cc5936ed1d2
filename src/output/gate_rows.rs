//! The gate's rows: its columns and notes, which the plain-text table and the Markdown share.

use crate::gate::{Comparison, GateReport, Verdict};

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
pub(super) struct Column {
    pub(super) header: &'static str,
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
pub(super) fn columns(report: &GateReport) -> Vec<&'static Column> {
    COLUMNS
        .iter()
        .filter(|c| report.paired || c.header != "rounds")
        .collect()
}

pub(super) fn rows(report: &GateReport) -> Vec<Vec<String>> {
    let columns = columns(report);
    report
        .comparisons
        .iter()
        .map(|c| columns.iter().map(|col| (col.cell)(c, report)).collect())
        .collect()
}

pub(super) fn method(report: &GateReport) -> &'static str {
    if report.paired {
        "median of per-round ratios of medians, 95% bootstrap CI over rounds"
    } else {
        "median of per-iteration times, 95% bootstrap CI"
    }
}

/// The contention behind each CONTENDED verdict, one line per side.
pub(super) fn contention_notes(report: &GateReport) -> String {
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

pub(super) fn one_sided(report: &GateReport) -> String {
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
