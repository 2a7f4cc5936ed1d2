//! What llm-bench writes from what it measured, one format per file behind one trait (as
//! hyperfine's exporters are): [`Markdown`] (the report, a comparison, a gate verdict),
//! [`Table`] (the gate's plain-text table), [`Json`] (any of them as data), [`Svg`] (the
//! report's charts) and [`Bmf`] (a Criterion run in Bencher Metric Format).
//!
//! An exporter renders in memory; the caller writes, all files at once, so a failure
//! leaves nothing half-written.

mod bmf;
mod gate_rows;
mod json;
mod markdown;
mod svg;
mod table;

pub use bmf::Bmf;
pub use json::Json;
pub use markdown::Markdown;
pub use svg::Svg;
pub use table::Table;

use crate::error::Result;

/// A rendered file: its name (in the output folder, for formats that write one there) and
/// its text.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// The file's name, `report.md`, `latency.svg`.
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// One output format for documents of type `D`.
pub trait Exporter<D: ?Sized> {
    /// The files `doc` becomes in this format (one for every format but the charts).
    fn export(&self, doc: &D) -> Result<Vec<File>>;

    /// The text of all of them, one after another (the one file of a one-file format).
    fn text(&self, doc: &D) -> Result<String> {
        Ok(self.export(doc)?.into_iter().map(|f| f.text).collect())
    }
}

/// A document's name, which its one-file formats take (`comparison.md`, `gate.json`).
pub trait Named {
    /// The file stem.
    const STEM: &'static str;
}

impl Named for crate::report::Report<'_> {
    const STEM: &'static str = "report";
}

impl Named for crate::compare::Comparison {
    const STEM: &'static str = "comparison";
}

impl Named for crate::gate::GateReport {
    const STEM: &'static str = "gate";
}

/// The one file a one-file format makes of a `D`.
fn one<D: Named + ?Sized>(extension: &str, text: String) -> Result<Vec<File>> {
    Ok(vec![File {
        name: format!("{}.{extension}", D::STEM),
        text,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{Comparison, GateReport, Verdict};

    fn report() -> GateReport {
        GateReport {
            baseline: "main".into(),
            against: "branch".into(),
            threshold: 0.05,
            paired: false,
            comparisons: vec![Comparison {
                id: "decode/q4_0".into(),
                base_median_ns: 2.0e6,
                new_median_ns: 2.5e6,
                change: 0.25,
                change_ci_low: 0.2,
                change_ci_high: 0.3,
                significant: true,
                verdict: Verdict::Regressed,
                base_throughput_per_s: Some(500.0),
                new_throughput_per_s: Some(400.0),
                throughput_unit: Some("elements/s"),
                rounds: None,
                base_contention: None,
                new_contention: Some("load 1.5".into()),
            }],
            only_in_baseline: vec!["prefill/f32".into()],
            only_in_against: vec![],
        }
    }

    /// Each one-file format names its file after the document, and every format carries
    /// the same verdict: the JSON is the document's own serialization, and the table and the
    /// Markdown show its figures and notes.
    #[test]
    fn every_format_of_one_document_carries_the_same_verdict() {
        let doc = report();
        let exporters: [(&dyn Exporter<GateReport>, &str); 3] = [
            (&Table, "gate.txt"),
            (&Markdown, "gate.md"),
            (&Json, "gate.json"),
        ];
        for (exporter, name) in exporters {
            let files = exporter.export(&doc).unwrap();
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].name, name);
            assert_eq!(exporter.text(&doc).unwrap(), files[0].text);
        }
        let json: serde_json::Value = serde_json::from_str(&Json.text(&doc).unwrap()).unwrap();
        assert_eq!(json, serde_json::to_value(&doc).unwrap());
        for text in [Table.text(&doc).unwrap(), Markdown.text(&doc).unwrap()] {
            for shown in [
                "decode/q4_0",
                "2.000 ms",
                "2.500 ms",
                "+25.0% [+20.0%, +30.0%]",
                "REGRESSED, CONTENDED (new)",
                "only in main: prefill/f32",
                "contended: decode/q4_0 (branch): load 1.5",
            ] {
                assert!(text.contains(shown), "{shown:?} missing from\n{text}");
            }
        }
        assert!(Markdown.text(&doc).unwrap().contains("| benchmark |"));
    }
}
