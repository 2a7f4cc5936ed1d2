//! The output-length scaling section: tokens/s as the generation grows.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry], charts: &[&str]) {
    out.push_str("\n## Scaling with output length\n\nGenerated tokens/s counts the whole request (the prompt's prefill included, which longer outputs amortise); decode tokens/s only the steps after the first token, which slow as the KV cache grows. Efficiency = generated tokens/s ÷ the same at the first length.\n\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| e.run.scaling.as_ref().map(|p| (e, p)))
        .flat_map(|(e, p)| {
            let first = p.groups[0].summary.generated_tokens_per_s;
            p.groups.iter().map(move |g| {
                vec![
                    e.label.clone(),
                    g.setting.new_tokens.to_string(),
                    format!("{:.1}", g.summary.e2e_ms.p50),
                    format!("{:.1}", g.summary.generated_tokens_per_s),
                    decode_p50(g).map_or("-".into(), |d| format!("{d:.1}")),
                    if first > 0.0 {
                        format!("{:.2}", g.summary.generated_tokens_per_s / first)
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
            "new tokens",
            "E2E p50 ms",
            "generated tokens/s",
            "decode tokens/s (p50)",
            "efficiency",
        ],
        &rows,
    ));
    embed(
        out,
        charts,
        charts::SCALING,
        "generated tokens/s against output length",
    );
}
