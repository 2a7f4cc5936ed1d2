//! The system section: the machine, build and settings each results file records.

use super::*;

pub(super) fn section(out: &mut String, inputs: &Inputs) {
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
                format!(
                    "{} (RAYON_NUM_THREADS={})",
                    s.threads,
                    s.rayon_num_threads_env.as_deref().unwrap_or("unset")
                ),
            ],
            vec![
                "RAM".into(),
                format!(
                    "{:.1} GiB",
                    s.total_memory_bytes as f64 / (1u64 << 30) as f64
                ),
            ],
            vec![
                "OS".into(),
                format!("{} (kernel {}, {})", s.os, s.kernel, s.arch),
            ],
            vec![
                "SIMD compiled in".into(),
                s.compiled_target_features.join(", "),
            ],
            vec![
                "llm-bench".into(),
                format!("{} (git {})", b.llm_bench_version, b.git_commit),
            ],
            vec!["candle".into(), b.candle_version.clone()],
            vec!["RUSTFLAGS".into(), format!("`{}`", b.rustflags)],
            vec!["run at".into(), r.created.clone()],
            vec!["command".into(), format!("`{}`", r.command_line.join(" "))],
        ];
        let mut rows = rows;
        if let Some(settings) = &r.settings {
            rows.push(vec![
                "settings".into(),
                format!(
                    "{} prompts ({}), runs {}, {} new tokens, throughput rounds {}, {} prompts per point, seed {}{}",
                    settings.prompts.len(),
                    settings.prompts_source,
                    settings.runs,
                    settings.max_new_tokens,
                    settings.throughput_rounds,
                    settings.prompts_per_point,
                    settings.seed,
                    if settings.quick { ", quick" } else { "" }
                ),
            ]);
        }
        let _ = write!(out, "\n`{}`\n\n{}", path.display(), table(&["", ""], &rows));
    }
}
