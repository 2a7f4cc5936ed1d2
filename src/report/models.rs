//! The models section: what each run loaded (model, weights, format, engine, parameters, memory).

use super::*;

pub(super) fn section(out: &mut String, entries: &[Entry]) {
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
