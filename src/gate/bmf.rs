//! Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/): one
//! object per benchmark id with `latency` (nanoseconds, median with its bootstrap interval)
//! and, where the benchmark declared one, `throughput` (per second), so an existing
//! continuous-benchmarking server can track the results over time.

use super::{read_run_summary, Measurement};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn export(run: &BTreeMap<String, Measurement>) -> Value {
    let mut out = Map::new();
    for (id, m) in run {
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
