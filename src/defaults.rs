//! The default model, used when no `--model` / `LLM_BENCH_MODEL` is given: the fetched
//! SmolLM2 GGUF, else the hub's SmolLM2, else its synthetic twin. A fresh clone therefore
//! runs without any set-up step, and says which weights it used.

use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::model::Model;
use crate::source::synthetic::models_dir;
use crate::spec::ModelSpec;
use std::path::PathBuf;

/// The model the CLI and the benches use when none is given.
pub const MODEL_ENV: &str = "LLM_BENCH_MODEL";
/// The default GGUF file in the models folder.
pub const DEFAULT_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The default model's hub repository.
pub const DEFAULT_HUB_REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";
/// What runs when neither file nor hub is at hand.
pub const FALLBACK_SYNTHETIC: &str = "synthetic:smollm2-135m";

/// Where the default GGUF file lives.
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

/// The chosen spec, or the first of the default chain that can be used: the fetched GGUF,
/// the hub's SmolLM2 (downloaded or cached), its synthetic twin. Notices explain a fallback.
pub fn choose_spec(argument: Option<&str>) -> Result<(ModelSpec, Vec<String>)> {
    if let Some(spec) = chosen_spec(argument)? {
        return Ok((spec, vec![]));
    }
    let gguf = default_gguf_path();
    if gguf.is_file() {
        return Ok((ModelSpec::Gguf(gguf), vec![]));
    }
    let hub = ModelSpec::parse(DEFAULT_HUB_REPO)?;
    match crate::source::resolve(&hub) {
        Ok(_) => Ok((hub, vec![])),
        Err(err @ (Error::HubUnreachable { .. } | Error::HubFileNotFound { .. })) => {
            let notice = format!(
                "no default model found: {} is missing and the hub could not be used ({}); running {FALLBACK_SYNTHETIC} instead. Run scripts/fetch-model for the real model.",
                gguf.display(),
                first_line(&err.to_string())
            );
            Ok((ModelSpec::parse(FALLBACK_SYNTHETIC)?, vec![notice]))
        }
        Err(other) => Err(other),
    }
}

/// Loads the chosen model, or the first usable one of the default chain.
pub fn load_chosen_or_default(
    argument: Option<&str>,
    format: Option<WeightFormat>,
    engine: EngineChoice,
) -> Result<Model> {
    let (spec, notices) = choose_spec(argument)?;
    let planned = crate::model::plan(&spec, format)?;
    engine.supports(&planned)?;
    let mut model = planned.load_with(engine)?;
    model.info.notices.splice(0..0, notices);
    Ok(model)
}

fn first_line(s: &str) -> &str {
    s.split(". ").next().unwrap_or(s)
}
