//! A plain-text table: the gate's verdicts as a terminal shows them, columns aligned.

use super::gate_rows::{columns, contention_notes, method, one_sided, rows};
use super::{one, Exporter, File};
use crate::error::Result;
use crate::gate::GateReport;

/// Columns padded to their widest cell.
pub struct Table;

impl Exporter<GateReport> for Table {
    fn export(&self, doc: &GateReport) -> Result<Vec<File>> {
        one::<GateReport>("txt", table(doc))
    }
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
