//! Markdown: the report (its sections: `report`), a comparison of two runs, and the gate's
//! verdicts, each as a document a pull request or a wiki shows as it is.

use super::gate_rows::{columns, contention_notes, method, one_sided, rows};
use super::{one, Exporter, File};
use crate::compare::{Comparison, Verdict};
use crate::error::Result;
use crate::gate::GateReport;
use crate::markdown::table;
use crate::report::Report;

/// GitHub-flavoured Markdown.
pub struct Markdown;

impl Exporter<Report<'_>> for Markdown {
    fn export(&self, doc: &Report) -> Result<Vec<File>> {
        let charts: Vec<&str> = doc.charts.iter().map(String::as_str).collect();
        let text = crate::report::markdown(doc.inputs, doc.price_per_hour, &charts);
        one::<Report>("md", text)
    }
}

impl Exporter<Comparison> for Markdown {
    fn export(&self, doc: &Comparison) -> Result<Vec<File>> {
        one::<Comparison>("md", comparison(doc))
    }
}

impl Exporter<GateReport> for Markdown {
    fn export(&self, doc: &GateReport) -> Result<Vec<File>> {
        one::<GateReport>("md", gate(doc))
    }
}

fn percent(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

/// A comparison as a Markdown table with its notes.
fn comparison(c: &Comparison) -> String {
    let mut out = format!(
        "# {} vs {}\n\nBase `{}` ({}), other `{}` ({}). Change = other ÷ base − 1 of the medians, with a 95% bootstrap interval over requests; factor > 1 means the other run is better.\n\n",
        c.other.format,
        c.base.format,
        c.base.label,
        c.base.file.display(),
        c.other.label,
        c.other.file.display(),
    );
    let rows: Vec<Vec<String>> = c
        .metrics
        .iter()
        .map(|m| {
            vec![
                format!("{} ({})", m.metric, m.unit),
                m.base.text(),
                m.other.text(),
                match m.change_interval {
                    Some((lo, hi)) => {
                        format!("{} [{}, {}]", percent(m.change), percent(lo), percent(hi))
                    }
                    None => percent(m.change),
                },
                format!("{:.2}x", m.improvement_factor),
                match m.verdict {
                    Verdict::Better => "better".into(),
                    Verdict::Worse => "worse".into(),
                    Verdict::WithinNoise => "within noise".into(),
                    Verdict::SingleMeasurement => "one value each".into(),
                },
            ]
        })
        .collect();
    out += &table(
        &[
            "metric",
            "base (mean ± std)",
            "other (mean ± std)",
            "change [95% CI]",
            "factor",
            "verdict",
        ],
        &rows,
    );
    for w in &c.warnings {
        out += &format!("\nNote: {w}.\n");
    }
    out
}

/// The gate's verdicts as a Markdown table with its notes.
fn gate(report: &GateReport) -> String {
    let headers: Vec<&str> = columns(report).iter().map(|c| c.header).collect();
    let mut out = format!(
        "**{}** vs **{}**, threshold {:.1}% ({})\n\n{}",
        report.against,
        report.baseline,
        report.threshold * 100.0,
        method(report),
        table(&headers, &rows(report))
    );
    let notes = one_sided(report) + &contention_notes(report);
    if !notes.is_empty() {
        out += &format!("\n{notes}");
    }
    out
}
