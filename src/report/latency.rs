//! The latency section: TTFT, ITL, TPOT and E2E percentiles per run, and the latency chart.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry], charts: &[&str]) {
    out.push_str(
        "\n## Latency\n\nGreedy, fixed output length, each prompt × runs (milliseconds).\n",
    );
    let groups: Vec<(&str, &Group)> = entries
        .iter()
        .filter_map(|e| {
            e.run
                .latency
                .as_ref()
                .map(|p| (e.label.as_str(), &p.groups[0]))
        })
        .collect();
    if groups.is_empty() {
        out.push_str("\nNo latency phase in these results.\n");
        return;
    }
    let metrics: [(&str, SummaryOf); 4] = [
        ("Time to first token (TTFT)", |g| Some(&g.summary.ttft_ms)),
        ("Inter-token latency (ITL), every gap", |g| {
            g.summary.itl_ms.as_ref()
        }),
        ("Time per output token (TPOT), per request", |g| {
            g.summary.tpot_ms.as_ref()
        }),
        ("End-to-end latency (E2E)", |g| Some(&g.summary.e2e_ms)),
    ];
    for (title, metric) in metrics {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .filter_map(|(label, g)| metric(g).map(|s| latency_row(label, s)))
            .collect();
        let _ = write!(out, "\n### {title}\n\n{}", table(&LATENCY_HEADERS, &rows));
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(label, g)| {
            vec![
                label.to_string(),
                mean_std(&g.summary.prefill_tokens_per_s, 1),
                g.summary
                    .decode_tokens_per_s
                    .as_ref()
                    .map_or("-".into(), |d| mean_std(d, 1)),
                g.setting.new_tokens.to_string(),
            ]
        })
        .collect();
    let _ = write!(
        out,
        "\n### Prefill and decode speed\n\n{}",
        table(
            &["run", "prefill tokens/s", "decode tokens/s", "new tokens"],
            &rows
        )
    );
    embed(
        out,
        charts,
        charts::LATENCY,
        "TTFT and E2E distribution per run",
    );
}
