//! `llm-bench report`: results files in, a Markdown report with SVG charts out, in the
//! sections of the tutorial this project grew from (latency, throughput, resources, scaling,
//! system, cost), plus sampling strategies, batch sizes and the memory-bandwidth roofline.

mod batch;
pub mod charts;
mod contention;
mod cost;
mod engines;
mod latency;
pub mod load;
mod models;
mod notices;
mod resources;
mod roofline;
mod scaling;
mod strategies;
mod system;
pub mod threads;
mod throughput;

pub use cost::{cost_per_1k_queries, monthly_cost, DEFAULT_PRICE_PER_HOUR, HOURS_PER_MONTH};

use crate::results::WeightsKind;
use crate::results::{FormatRun, Group, PhaseName, Results, Summary};
use std::fmt::Write;
use std::path::PathBuf;

/// One format run with the file it came from and the name the report gives it.
pub struct Entry<'a> {
    /// The run's name in the report.
    pub label: String,
    /// The run.
    pub run: &'a FormatRun,
    /// The index of its file.
    pub file: usize,
}

/// A report to render: the results files, the instance price for the cost section, and the
/// charts drawn beside it (embedded where they belong; `output::Svg` draws them).
pub struct Report<'a> {
    /// The results files.
    pub inputs: &'a Inputs,
    /// USD per hour.
    pub price_per_hour: f64,
    /// The chart files drawn (`charts::LATENCY`, ...).
    pub charts: Vec<String>,
}

/// Results files as loaded, with their paths.
pub struct Inputs {
    /// Each file's path and its results.
    pub files: Vec<(PathBuf, Results)>,
}

impl Inputs {
    /// Every run of every file. Labels are `name@format`; a label seen in more than one file
    /// gets the file's position (`#2`) so rows stay apart.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let all: Vec<(usize, &FormatRun)> = self
            .files
            .iter()
            .enumerate()
            .flat_map(|(i, (_, r))| r.runs.iter().map(move |run| (i, run)))
            .collect();
        all.iter()
            .map(|&(file, run)| {
                let base = run.label();
                let repeated = all.iter().filter(|(_, r)| r.label() == base).count() > 1;
                Entry {
                    label: if repeated {
                        format!("{base} #{}", file + 1)
                    } else {
                        base
                    },
                    run,
                    file,
                }
            })
            .collect()
    }
}

pub use crate::markdown::table;

use crate::units::mean_plus_minus;
pub use crate::units::mib;

fn opt_mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), mib)
}

/// `mean ± std` of a summary, or the mean alone for one value.
pub fn mean_std(s: &Summary, decimals: usize) -> String {
    mean_plus_minus(s.mean, s.std, decimals)
}

fn latency_row(label: &str, s: &Summary) -> Vec<String> {
    let f = |v: f64| format!("{v:.1}");
    vec![
        label.to_string(),
        s.n.to_string(),
        mean_std(s, 1),
        f(s.min),
        f(s.p50),
        f(s.p90),
        f(s.p95),
        f(s.p99),
        f(s.max),
    ]
}

/// Picks one summary out of a group.
type SummaryOf = fn(&Group) -> Option<&Summary>;

const LATENCY_HEADERS: [&str; 9] = [
    "run",
    "n",
    "mean ± std",
    "min",
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
];

/// The peak resident memory over the load and every phase.
pub fn peak_rss(run: &FormatRun) -> Option<u64> {
    run.finished_phases()
        .map(|p| p.resources.peak_rss_bytes)
        .chain([run.load.resources.peak_rss_bytes])
        .flatten()
        .max()
}

fn decode_p50(g: &Group) -> Option<f64> {
    g.summary.decode_tokens_per_s.as_ref().map(|d| d.p50)
}

fn weights_word(kind: WeightsKind) -> &'static str {
    match kind {
        WeightsKind::Real => "real",
        WeightsKind::Synthetic => "synthetic",
    }
}

fn weights_explained(kind: WeightsKind) -> &'static str {
    match kind {
        WeightsKind::Real => "real",
        WeightsKind::Synthetic => "synthetic (random-weight twin: timing only)",
    }
}

/// The one-screen table printed at the end of `llm-bench run`: one row per format.
pub fn summary_table(results: &Results) -> String {
    let rows: Vec<Vec<String>> = results
        .runs
        .iter()
        .map(|run| {
            let latency = run.latency.as_ref().map(|p| &p.groups[0].summary);
            let cell =
                |f: &dyn Fn(&crate::results::GroupSummary) -> String| latency.map_or("-".into(), f);
            vec![
                run.label(),
                weights_word(run.model.weights).into(),
                cell(&|s| format!("{:.1}", s.ttft_ms.p50)),
                cell(&|s| {
                    s.itl_ms
                        .as_ref()
                        .map_or("-".into(), |i| format!("{:.2}", i.p50))
                }),
                cell(&|s| format!("{:.0} ({:.0})", s.e2e_ms.p50, s.e2e_ms.p99)),
                cell(&|s| mean_std(&s.prefill_tokens_per_s, 1)),
                cell(&|s| {
                    s.decode_tokens_per_s
                        .as_ref()
                        .map_or("-".into(), |d| mean_std(d, 1))
                }),
                run.throughput.as_ref().map_or("-".into(), |p| {
                    format!("{:.2}", p.groups[0].summary.queries_per_s)
                }),
                opt_mib(run.serving_rss_added_bytes()),
                opt_mib(peak_rss(run)),
                run.roofline.as_ref().map_or("-".into(), |r| {
                    format!("{:.0}%", 100.0 * r.fraction_of_limit)
                }),
                run.error
                    .as_ref()
                    .map_or("ok".into(), |e| format!("FAILED: {e}")),
            ]
        })
        .collect();
    table(
        &[
            "run",
            "weights",
            "TTFT p50 ms",
            "ITL p50 ms",
            "E2E p50 (p99) ms",
            "prefill tok/s",
            "decode tok/s",
            "queries/s",
            "model RSS",
            "peak RSS",
            "of BW limit",
            "status",
        ],
        &rows,
    )
}

/// Embeds `file` if it was drawn (`charts` lists the files drawn).
fn embed(out: &mut String, charts: &[&str], file: &str, alt: &str) {
    if charts.contains(&file) {
        let _ = writeln!(out, "\n![{alt}]({file})");
    }
}

/// The Markdown report.
pub fn markdown(inputs: &Inputs, price_per_hour: f64, charts: &[&str]) -> String {
    let entries = inputs.entries();
    let mut out = String::from("# llm-bench report\n\n");
    for (path, results) in &inputs.files {
        let what = match &results.settings {
            Some(settings) => format!("{} run(s) of `{}`", results.runs.len(), settings.model),
            None => String::from("no model runs"),
        };
        let endpoints = match results.endpoints.len() {
            0 => String::new(),
            n => format!(", {n} endpoint sweep(s)"),
        };
        let _ = writeln!(
            out,
            "- `{}`: {what}{endpoints}, {}{}",
            path.display(),
            results.created,
            if results.complete {
                ""
            } else {
                " — **incomplete run**: only the phases that finished are shown"
            }
        );
    }
    let _ = writeln!(
        out,
        "\nWeights: {}.",
        entries
            .iter()
            .map(|e| format!("{} {}", e.label, weights_explained(e.run.model.weights)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    out += "Compare ratios measured in one run; absolute times move between machines and runs.\n";

    contention::banner(&mut out, inputs, &entries, None);

    models::section(&mut out, &entries);
    engines::section(&mut out, &entries);
    latency::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Latency));
    throughput::section(&mut out, &entries);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Throughput));
    strategies::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Strategies));
    scaling::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Scaling));
    batch::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Batch));
    threads::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Threads));
    resources::section(&mut out, &entries);
    roofline::section(&mut out, inputs, &entries, charts);
    cost::section(&mut out, &entries, price_per_hour);
    load::section(&mut out, inputs, charts, price_per_hour);
    system::section(&mut out, inputs);
    notices::section(&mut out, inputs, &entries);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_formula_against_hand_computed_values() {
        // 0.5 queries/s = 1,800 per hour; at 0.145 USD/h, 1,000 queries cost 0.145 / 1.8.
        let cost = cost_per_1k_queries(0.5, 0.145).unwrap();
        assert!((cost - 0.145 / 1.8).abs() < 1e-12, "{cost}");
        // 10 queries/s = 36,000 queries per hour; at 3.6 USD/h that is 0.1 USD per 1K.
        assert!((cost_per_1k_queries(10.0, 3.6).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(cost_per_1k_queries(0.0, 0.145), None);
        assert!((monthly_cost(0.145) - 105.85).abs() < 1e-9);
    }

    #[test]
    fn tables_have_one_separator_cell_per_header() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
