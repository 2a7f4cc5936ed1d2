//! The sampling strategies section: the same requests under each strategy.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry], charts: &[&str]) {
    out.push_str("\n## Sampling strategies\n\nSame prompts and length, seeded.\n\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| e.run.strategies.as_ref().map(|p| (e, p)))
        .flat_map(|(e, p)| {
            p.groups.iter().map(move |g| {
                vec![
                    e.label.clone(),
                    g.setting.strategy.clone(),
                    g.summary.requests.to_string(),
                    format!("{:.1}", g.summary.e2e_ms.p50),
                    g.summary
                        .decode_tokens_per_s
                        .as_ref()
                        .map_or("-".into(), |d| mean_std(d, 1)),
                    format!("{:.1}", g.summary.generated_tokens_per_s),
                ]
            })
        })
        .collect();
    out.push_str(&table(
        &[
            "run",
            "strategy",
            "requests",
            "E2E p50 ms",
            "decode tokens/s",
            "generated tokens/s",
        ],
        &rows,
    ));
    embed(
        out,
        charts,
        charts::STRATEGIES,
        "decode tokens/s per sampling strategy",
    );
}
