//! The throughput section: queries/s and generated tokens/s per run.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry]) {
    out.push_str("\n## Throughput\n\nAll prompts × rounds, back to back, one at a time.\n\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| e.run.throughput.as_ref().map(|p| (e, &p.groups[0].summary)))
        .map(|(e, s)| {
            vec![
                e.label.clone(),
                s.requests.to_string(),
                format!("{:.1}", s.wall_seconds),
                format!("{:.3}", s.queries_per_s),
                format!("{:.1}", s.generated_tokens_per_s),
                format!("{:.1}", s.e2e_ms.p50),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "run",
            "queries",
            "wall s",
            "queries/s",
            "generated tokens/s",
            "E2E p50 ms",
        ],
        &rows,
    ));
}
