//! The roofline section: decode against the memory-bandwidth limit.

use super::*;

pub(super) fn section(out: &mut String, inputs: &Inputs, entries: &[Entry], charts: &[&str]) {
    out.push_str("\n## Memory-bandwidth roofline\n\nA decode step reads every weight once, so bandwidth ÷ bytes read per token bounds decode tokens/s.\n\n");
    for (path, results) in &inputs.files {
        if let Some(bw) = &results.memory_bandwidth {
            let _ = writeln!(
                out,
                "- `{}`: read bandwidth {:.1} GB/s ({} threads; median over {} buffers of {}, each the best of {} passes: {} GB/s{})",
                path.display(),
                bw.read_bytes_per_s / 1e9,
                bw.threads,
                bw.per_allocation_bytes_per_s.len(),
                mib(bw.buffer_bytes),
                bw.passes,
                bw.per_buffer_gb_per_s(),
                if bw.from_cache { ", cached" } else { "" }
            );
        }
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| e.run.roofline.as_ref().map(|r| (e, r)))
        .map(|(e, r)| {
            vec![
                e.label.clone(),
                mib(r.bytes_read_per_token),
                format!("{:.1}", r.limit_tokens_per_s),
                format!("{:.1}", r.decode_tokens_per_s),
                format!("{:.0}%", 100.0 * r.fraction_of_limit),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "run",
            "read per token",
            "limit tokens/s",
            "decode tokens/s (p50)",
            "of limit",
        ],
        &rows,
    ));
    let above: Vec<&str> = entries
        .iter()
        .filter(|e| {
            e.run
                .roofline
                .as_ref()
                .is_some_and(|r| r.fraction_of_limit > 1.0)
        })
        .map(|e| e.label.as_str())
        .collect();
    if !above.is_empty() {
        let _ = writeln!(
            out,
            "\nAbove 100% ({}): decode read the weights faster than the probe's summing loop did, so the probe's figure is a floor on this machine's bandwidth, not its ceiling (on virtual machines it varies between allocations and runs). Read such a run as at the memory limit.",
            above.join(", ")
        );
    }
    embed(
        out,
        charts,
        charts::ROOFLINE,
        "decode tokens/s against the bandwidth limit",
    );
}
