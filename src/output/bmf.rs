//! Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/): one
//! object per benchmark id with `latency` (nanoseconds, median with its bootstrap interval)
//! and, where the benchmark declared one, `throughput` (per second), so an existing
//! continuous-benchmarking server can track the results over time.

use super::{Exporter, File};
use crate::error::{Error, Result};
use crate::gate::{read_run_summary, NamedRun};
use serde_json::{json, Map, Value};

/// Bencher Metric Format: `<run>.bmf.json`.
pub struct Bmf;

impl Exporter<NamedRun<'_>> for Bmf {
    fn export(&self, doc: &NamedRun) -> Result<Vec<File>> {
        let name = format!("{}.bmf.json", doc.name);
        let text = serde_json::to_string_pretty(&metrics(doc)).map_err(|e| Error::Render {
            file: name.clone(),
            detail: e.to_string(),
        })?;
        Ok(vec![File { name, text }])
    }
}

/// Each benchmark's measures.
fn metrics(doc: &NamedRun) -> Value {
    let mut out = Map::new();
    for (id, m) in doc.run {
        let (median, lo, hi) = read_run_summary(m);
        let mut measures = Map::new();
        measures.insert(
            "latency".into(),
            json!({"value": median, "lower_value": lo, "upper_value": hi}),
        );
        if let Some(t) = m.throughput {
            let per_s = |ns: f64| t.amount() as f64 / (ns / 1e9);
            measures.insert(
                "throughput".into(),
                json!({"value": per_s(median), "lower_value": per_s(hi), "upper_value": per_s(lo)}),
            );
        }
        out.insert(id.clone(), Value::Object(measures));
    }
    Value::Object(out)
}
