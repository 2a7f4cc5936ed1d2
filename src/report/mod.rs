//! `llm-bench report`: results files in, a Markdown report with SVG charts out, in the
//! sections of the tutorial this project grew from (latency, throughput, resources, scaling,
//! system, cost), plus sampling strategies, batch sizes and the memory-bandwidth roofline.

pub mod charts;
mod contention;
mod cost;
mod engines;
pub mod threads;

pub use cost::{cost_per_1k_queries, monthly_cost, DEFAULT_PRICE_PER_HOUR, HOURS_PER_MONTH};

use crate::results::{FormatRun, Group, PhaseName, Results, Summary};
use crate::source::WeightsKind;
use std::fmt::Write;
use std::path::PathBuf;

/// One format run with the file it came from and the name the report gives it.
pub struct Entry<'a> {
    pub label: String,
    pub run: &'a FormatRun,
    pub file: usize,
}

/// Results files as loaded, with their paths.
pub struct Inputs {
    pub files: Vec<(PathBuf, Results)>,
}

impl Inputs {
    /// Every run of every file. Labels are `name@format`; a label seen in more than one file
    /// gets the file's position (`#2`) so rows stay apart.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let all: Vec<(usize, &FormatRun)> = self
            .files
            .iter()
            .enumerate()
            .flat_map(|(i, (_, r))| r.runs.iter().map(move |run| (i, run)))
            .collect();
        all.iter()
            .map(|&(file, run)| {
                let base = run.label();
                let repeated = all.iter().filter(|(_, r)| r.label() == base).count() > 1;
                Entry {
                    label: if repeated {
                        format!("{base} #{}", file + 1)
                    } else {
                        base
                    },
                    run,
                    file,
                }
            })
            .collect()
    }
}

pub use crate::markdown::table;

use crate::units::mean_plus_minus;
pub use crate::units::mib;

fn opt_mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), mib)
}

/// `mean ± std` of a summary, or the mean alone for one value.
pub fn mean_std(s: &Summary, decimals: usize) -> String {
    mean_plus_minus(s.mean, s.std, decimals)
}

fn latency_row(label: &str, s: &Summary) -> Vec<String> {
    let f = |v: f64| format!("{v:.1}");
    vec![
        label.to_string(),
        s.n.to_string(),
        mean_std(s, 1),
        f(s.min),
        f(s.p50),
        f(s.p90),
        f(s.p95),
        f(s.p99),
        f(s.max),
    ]
}

/// Picks one summary out of a group.
type SummaryOf = fn(&Group) -> Option<&Summary>;

const LATENCY_HEADERS: [&str; 9] = [
    "run",
    "n",
    "mean ± std",
    "min",
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
];

/// The peak resident memory over the load and every phase.
pub fn peak_rss(run: &FormatRun) -> Option<u64> {
    run.finished_phases()
        .map(|p| p.resources.peak_rss_bytes)
        .chain([run.load.resources.peak_rss_bytes])
        .flatten()
        .max()
}

fn decode_p50(g: &Group) -> Option<f64> {
    g.summary.decode_tokens_per_s.as_ref().map(|d| d.p50)
}

fn weights_word(kind: WeightsKind) -> &'static str {
    match kind {
        WeightsKind::Real => "real",
        WeightsKind::Synthetic => "synthetic",
    }
}

fn weights_explained(kind: WeightsKind) -> &'static str {
    match kind {
        WeightsKind::Real => "real",
        WeightsKind::Synthetic => "synthetic (random-weight twin: timing only)",
    }
}

/// The one-screen table printed at the end of `llm-bench run`: one row per format.
pub fn summary_table(results: &Results) -> String {
    let rows: Vec<Vec<String>> = results
        .runs
        .iter()
        .map(|run| {
            let latency = run.latency.as_ref().map(|p| &p.groups[0].summary);
            let cell =
                |f: &dyn Fn(&crate::results::GroupSummary) -> String| latency.map_or("-".into(), f);
            vec![
                run.label(),
                weights_word(run.model.weights).into(),
                cell(&|s| format!("{:.1}", s.ttft_ms.p50)),
                cell(&|s| {
                    s.itl_ms
                        .as_ref()
                        .map_or("-".into(), |i| format!("{:.2}", i.p50))
                }),
                cell(&|s| format!("{:.0} ({:.0})", s.e2e_ms.p50, s.e2e_ms.p99)),
                cell(&|s| mean_std(&s.prefill_tokens_per_s, 1)),
                cell(&|s| {
                    s.decode_tokens_per_s
                        .as_ref()
                        .map_or("-".into(), |d| mean_std(d, 1))
                }),
                run.throughput.as_ref().map_or("-".into(), |p| {
                    format!("{:.2}", p.groups[0].summary.queries_per_s)
                }),
                opt_mib(run.serving_rss_added_bytes()),
                opt_mib(peak_rss(run)),
                run.roofline.as_ref().map_or("-".into(), |r| {
                    format!("{:.0}%", 100.0 * r.fraction_of_limit)
                }),
                run.error
                    .as_ref()
                    .map_or("ok".into(), |e| format!("FAILED: {e}")),
            ]
        })
        .collect();
    table(
        &[
            "run",
            "weights",
            "TTFT p50 ms",
            "ITL p50 ms",
            "E2E p50 (p99) ms",
            "prefill tok/s",
            "decode tok/s",
            "queries/s",
            "model RSS",
            "peak RSS",
            "of BW limit",
            "status",
        ],
        &rows,
    )
}

/// Embeds `file` if it was drawn (`charts` lists the files drawn).
fn embed(out: &mut String, charts: &[&str], file: &str, alt: &str) {
    if charts.contains(&file) {
        let _ = writeln!(out, "\n![{alt}]({file})");
    }
}

/// The Markdown report.
pub fn markdown(inputs: &Inputs, price_per_hour: f64, charts: &[&str]) -> String {
    let entries = inputs.entries();
    let mut out = String::from("# llm-bench report\n\n");
    for (path, results) in &inputs.files {
        let _ = writeln!(
            out,
            "- `{}`: {} run(s) of `{}`, {}{}",
            path.display(),
            results.runs.len(),
            results.settings.model,
            results.created,
            if results.complete {
                ""
            } else {
                " — **incomplete run**: only the phases that finished are shown"
            }
        );
    }
    let _ = writeln!(
        out,
        "\nWeights: {}.",
        entries
            .iter()
            .map(|e| format!("{} {}", e.label, weights_explained(e.run.model.weights)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    out += "Compare ratios measured in one run; absolute times move between machines and runs.\n";

    contention::banner(&mut out, inputs, &entries, None);

    models_section(&mut out, &entries);
    engines::section(&mut out, &entries);
    latency_section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Latency));
    throughput_section(&mut out, &entries);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Throughput));
    strategies_section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Strategies));
    scaling_section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Scaling));
    batch_section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Batch));
    threads::section(&mut out, &entries, charts);
    contention::banner(&mut out, inputs, &entries, Some(PhaseName::Threads));
    resources_section(&mut out, &entries);
    roofline_section(&mut out, inputs, &entries, charts);
    cost::section(&mut out, &entries, price_per_hour);
    system_section(&mut out, inputs);
    notices_section(&mut out, inputs, &entries);
    out
}

fn models_section(out: &mut String, entries: &[Entry]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let m = &e.run.model;
            vec![
                e.label.clone(),
                format!("`{}`", m.spec),
                weights_explained(m.weights).into(),
                m.format.clone(),
                format!(
                    "{} {} ({})",
                    m.engine.name, m.engine.version, m.engine.detail
                ),
                format!("{:.1} M", m.parameters as f64 / 1e6),
                mib(m.weight_bytes),
                m.context_length.to_string(),
                m.tokenizer.clone(),
            ]
        })
        .collect();
    let _ = write!(
        out,
        "\n## Models\n\n{}",
        table(
            &[
                "run",
                "spec",
                "weights",
                "format",
                "engine",
                "parameters",
                "size",
                "context",
                "tokenizer"
            ],
            &rows
        )
    );
}

fn latency_section(out: &mut String, entries: &[Entry], charts: &[&str]) {
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

fn throughput_section(out: &mut String, entries: &[Entry]) {
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

fn strategies_section(out: &mut String, entries: &[Entry], charts: &[&str]) {
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

fn scaling_section(out: &mut String, entries: &[Entry], charts: &[&str]) {
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

fn batch_section(out: &mut String, entries: &[Entry], charts: &[&str]) {
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

fn resources_section(out: &mut String, entries: &[Entry]) {
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

fn roofline_section(out: &mut String, inputs: &Inputs, entries: &[Entry], charts: &[&str]) {
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

fn system_section(out: &mut String, inputs: &Inputs) {
    out.push_str("\n## System\n");
    for (path, r) in &inputs.files {
        let s = &r.system;
        let b = &r.build;
        let rows = vec![
            vec!["CPU".into(), s.cpu_model.clone()],
            vec![
                "cores".into(),
                format!(
                    "{} logical, {} physical",
                    s.logical_cores,
                    s.physical_cores.map_or("?".into(), |p| p.to_string())
                ),
            ],
            vec![
                "threads".into(),
                format!("{} (RAYON_NUM_THREADS={})", s.threads, s.rayon_num_threads_env.as_deref().unwrap_or("unset")),
            ],
            vec!["RAM".into(), format!("{:.1} GiB", s.total_memory_bytes as f64 / (1u64 << 30) as f64)],
            vec!["OS".into(), format!("{} (kernel {}, {})", s.os, s.kernel, s.arch)],
            vec!["SIMD compiled in".into(), s.compiled_target_features.join(", ")],
            vec!["llm-bench".into(), format!("{} (git {})", b.llm_bench_version, b.git_commit)],
            vec!["candle".into(), b.candle_version.clone()],
            vec!["RUSTFLAGS".into(), format!("`{}`", b.rustflags)],
            vec!["run at".into(), r.created.clone()],
            vec!["command".into(), format!("`{}`", r.command_line.join(" "))],
            vec![
                "settings".into(),
                format!(
                    "{} prompts ({}), runs {}, {} new tokens, throughput rounds {}, {} prompts per point, seed {}{}",
                    r.settings.prompts.len(),
                    r.settings.prompts_source,
                    r.settings.runs,
                    r.settings.max_new_tokens,
                    r.settings.throughput_rounds,
                    r.settings.prompts_per_point,
                    r.settings.seed,
                    if r.settings.quick { ", quick" } else { "" }
                ),
            ],
        ];
        let _ = write!(out, "\n`{}`\n\n{}", path.display(), table(&["", ""], &rows));
    }
}

fn notices_section(out: &mut String, inputs: &Inputs, entries: &[Entry]) {
    let load_failures = inputs.files.iter().flat_map(|(_, r)| {
        r.load_failures
            .iter()
            .map(|f| format!("- {}: **could not be loaded**: {}", f.label, f.error))
    });
    let lines: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            let notices = e
                .run
                .model
                .notices
                .iter()
                .map(move |n| format!("- {}: {n}", e.label));
            let error = e
                .run
                .error
                .iter()
                .map(move |err| format!("- {}: **stopped early**: {err}", e.label));
            notices.chain(error)
        })
        .chain(load_failures)
        .collect();
    if !lines.is_empty() {
        let _ = write!(out, "\n## Notices\n\n{}\n", lines.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_formula_against_hand_computed_values() {
        // 0.5 queries/s = 1,800 per hour; at 0.145 USD/h, 1,000 queries cost 0.145 / 1.8.
        let cost = cost_per_1k_queries(0.5, 0.145).unwrap();
        assert!((cost - 0.145 / 1.8).abs() < 1e-12, "{cost}");
        // 10 queries/s = 36,000 queries per hour; at 3.6 USD/h that is 0.1 USD per 1K.
        assert!((cost_per_1k_queries(10.0, 3.6).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(cost_per_1k_queries(0.0, 0.145), None);
        assert!((monthly_cost(0.145) - 105.85).abs() < 1e-9);
    }

    #[test]
    fn tables_have_one_separator_cell_per_header() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
