//! The batch section: aggregate and per-sequence tokens/s per batch size.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry], charts: &[&str]) {
    out.push_str("\n## Batch size\n\nN copies of a prompt generated together; tokens/s counts every sequence.\n\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| e.run.batch.as_ref().map(|p| (e, p)))
        .flat_map(|(e, p)| {
            let first = p.groups[0].summary.generated_tokens_per_s;
            p.groups.iter().map(move |g| {
                let per_sequence = decode_p50(g).map(|d| d / g.setting.batch as f64);
                vec![
                    e.label.clone(),
                    g.setting.batch.to_string(),
                    format!("{:.1}", g.summary.e2e_ms.p50),
                    format!("{:.1}", g.summary.generated_tokens_per_s),
                    per_sequence.map_or("-".into(), |d| format!("{d:.1}")),
                    if first > 0.0 {
                        format!("{:.2}x", g.summary.generated_tokens_per_s / first)
                    } else {
                        "-".into()
                    },
                ]
            })
        })
        .collect();
    out.push_str(&table(
        &[
            "run",
            "batch",
            "E2E p50 ms",
            "generated tokens/s",
            "decode tokens/s per sequence",
            "vs first",
        ],
        &rows,
    ));
    embed(
        out,
        charts,
        charts::BATCH,
        "generated tokens/s against batch size",
    );
}
