//! The engines side by side: for each model and format run on more than one engine, the
//! latency phase's medians per engine and each one's ratio to the first engine listed.

use super::{mib, peak_rss, table, Entry};
use crate::results::GroupSummary;
use std::fmt::Write;

/// A column: its header next to the function that fills its cell (higher is better when
/// `higher_better`, which decides the direction of the ratio).
struct Column {
    header: &'static str,
    value: fn(&GroupSummary) -> Option<f64>,
    higher_better: bool,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "prefill tok/s p50",
        value: |s| Some(s.prefill_tokens_per_s.p50),
        higher_better: true,
    },
    Column {
        header: "decode tok/s p50",
        value: |s| s.decode_tokens_per_s.as_ref().map(|d| d.p50),
        higher_better: true,
    },
    Column {
        header: "TTFT p50 ms",
        value: |s| Some(s.ttft_ms.p50),
        higher_better: false,
    },
    Column {
        header: "E2E p50 ms",
        value: |s| Some(s.e2e_ms.p50),
        higher_better: false,
    },
    Column {
        header: "E2E p99 ms",
        value: |s| Some(s.e2e_ms.p99),
        higher_better: false,
    },
];

/// `x.xx (1.23x)`: the value, and how much better it is than the base (above 1 = better).
fn cell(value: Option<f64>, base: Option<f64>, higher_better: bool) -> String {
    let Some(v) = value else {
        return "-".into();
    };
    let ratio = base
        .filter(|b| *b > 0.0 && v > 0.0)
        .map(|b| if higher_better { v / b } else { b / v });
    match ratio {
        Some(r) => format!("{v:.1} ({r:.2}x)"),
        None => format!("{v:.1}"),
    }
}

pub fn section(out: &mut String, entries: &[Entry]) {
    // Runs keyed by model and format, in order of first appearance.
    let mut keys: Vec<(String, String)> = vec![];
    for e in entries {
        let key = (e.run.model.name.clone(), e.run.model.format.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut rows: Vec<Vec<String>> = vec![];
    for (name, format) in &keys {
        let same: Vec<&Entry> = entries
            .iter()
            .filter(|e| &e.run.model.name == name && &e.run.model.format == format)
            .filter(|e| e.run.latency.is_some())
            .collect();
        let engines: Vec<&str> = same
            .iter()
            .map(|e| e.run.model.engine.name.as_str())
            .collect();
        if engines.iter().all(|e| *e == engines[0]) {
            continue;
        }
        let base = &same[0].run.latency.as_ref().expect("filtered").groups[0].summary;
        for e in &same {
            let summary = &e.run.latency.as_ref().expect("filtered").groups[0].summary;
            let mut row = vec![
                format!("{name}@{format}"),
                format!("{} {}", e.run.model.engine.name, e.run.model.engine.version),
            ];
            row.extend(
                COLUMNS
                    .iter()
                    .map(|c| cell((c.value)(summary), (c.value)(base), c.higher_better)),
            );
            row.push(peak_rss(e.run).map_or("-".into(), mib));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Engines side by side\n\nThe latency phase's medians per engine, on the same prompts, token ids, sampling and clock; in brackets, each engine against the first listed (above 1x = better).\n"
    );
    let mut headers = vec!["model@format", "engine"];
    headers.extend(COLUMNS.iter().map(|c| c.header));
    headers.push("peak RSS");
    out.push_str(&table(&headers, &rows));
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn ratios_point_the_same_way_for_rates_and_times() {
        assert_eq!(cell(Some(200.0), Some(100.0), true), "200.0 (2.00x)");
        assert_eq!(cell(Some(50.0), Some(100.0), false), "50.0 (2.00x)");
        assert_eq!(cell(None, Some(1.0), true), "-");
        assert_eq!(cell(Some(3.0), Some(0.0), true), "3.0");
    }
}
