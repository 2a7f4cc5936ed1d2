//! The resources section: load time, RSS and CPU per phase.

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry]) {
    out.push_str("\n## Resources\n\nRSS sampled every 50 ms. \"RSS added by the model\" = mean RSS while serving (latency phase) − RSS before loading: the fair memory figure across formats run in one process. Peak RSS covers the load and every phase, the largest batch included. CPU from the kernel's counters over the phase (100% = one core busy).\n\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let run = e.run;
            let latency = run.latency.as_ref().map(|p| &p.resources);
            vec![
                e.label.clone(),
                mib(run.model.weight_bytes),
                format!("{:.1}", run.load.seconds),
                opt_mib(run.load.resources.peak_rss_bytes),
                opt_mib(run.serving_rss_added_bytes()),
                opt_mib(peak_rss(run)),
                opt_mib(latency.and_then(|r| r.mean_rss_bytes)),
                latency
                    .and_then(|r| r.process_cpu_percent)
                    .map_or("-".into(), |c| format!("{c:.0}%")),
                latency.map_or("-".into(), |r| {
                    r.per_core_busy_percent
                        .iter()
                        .map(|p| format!("{p:.0}"))
                        .collect::<Vec<_>>()
                        .join("/")
                }),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "run",
            "weights",
            "load s",
            "load peak RSS",
            "RSS added by the model",
            "peak RSS",
            "mean RSS (latency)",
            "process CPU (latency)",
            "per-core busy % (latency)",
        ],
        &rows,
    ));
}
