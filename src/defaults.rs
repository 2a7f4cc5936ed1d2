//! The default model, used when no `--model` / `LLM_BENCH_MODEL` is given: the fetched
//! SmolLM2 GGUF, else the hub's SmolLM2, else its synthetic twin. A fresh clone therefore
//! runs without any set-up step, and says which weights it used.

use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::model::{load, Model};
use crate::source::synthetic::models_dir;
use crate::spec::ModelSpec;
use std::path::PathBuf;

pub const MODEL_ENV: &str = "LLM_BENCH_MODEL";
pub const DEFAULT_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_HUB_REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";
pub const FALLBACK_SYNTHETIC: &str = "synthetic:smollm2-135m";

pub fn default_gguf_path() -> PathBuf {
    models_dir().join(DEFAULT_GGUF)
}

/// The spec the user chose: the argument, else `LLM_BENCH_MODEL`; `None` means "the default".
pub fn chosen_spec(argument: Option<&str>) -> Result<Option<ModelSpec>> {
    let env = std::env::var(MODEL_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty());
    argument
        .map(str::to_string)
        .or(env)
        .map(|s| ModelSpec::parse(&s))
        .transpose()
}

/// Loads the chosen model, or walks the default chain. Notices explain any fallback taken.
pub fn load_chosen_or_default(
    argument: Option<&str>,
    format: Option<WeightFormat>,
) -> Result<Model> {
    if let Some(spec) = chosen_spec(argument)? {
        return load(&spec, format);
    }
    let gguf = default_gguf_path();
    if gguf.is_file() {
        return load(&ModelSpec::Gguf(gguf), format);
    }
    let hub = ModelSpec::parse(DEFAULT_HUB_REPO)?;
    match load(&hub, format) {
        Ok(model) => Ok(model),
        Err(err @ (Error::HubUnreachable { .. } | Error::HubFileNotFound { .. })) => {
            let mut model = load(&ModelSpec::parse(FALLBACK_SYNTHETIC)?, format)?;
            model.info.notices.insert(
                0,
                format!(
                    "no default model found: {} is missing and the hub could not be used ({}); running {FALLBACK_SYNTHETIC} instead. Run scripts/fetch-model for the real model.",
                    gguf.display(),
                    first_line(&err.to_string())
                ),
            );
            Ok(model)
        }
        Err(other) => Err(other),
    }
}

fn first_line(s: &str) -> &str {
    s.split(". ").next().unwrap_or(s)
}
