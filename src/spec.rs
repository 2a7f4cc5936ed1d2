//! Model specs: the one place that knows how a user spells a model.
//!
//! - `org/name` or `org/name@revision`: a Hugging Face hub repo
//! - a folder with `config.json`, `*.safetensors` and `tokenizer.json`
//! - a `.gguf` file
//! - `synthetic:<preset>`: a deterministic random-weight twin of a real architecture

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A Hugging Face hub repository.
    Hub {
        /// `org/name`.
        repo: String,
        /// A branch, tag or commit (`main` unless given).
        revision: String,
    },
    /// A local folder: config.json, *.safetensors, tokenizer.json.
    LocalDir(PathBuf),
    /// A `.gguf` file.
    Gguf(PathBuf),
    /// A synthetic twin by preset name.
    Synthetic(String),
}

/// What a synthetic spec starts with.
pub const SYNTHETIC_PREFIX: &str = "synthetic:";

impl ModelSpec {
    /// Reads a spec: a path, a hub id (`org/name[@revision]`) or `synthetic:<preset>`.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::InvalidSpec {
                spec: spec.into(),
                reason: "empty".into(),
            });
        }
        if let Some(preset) = spec.strip_prefix(SYNTHETIC_PREFIX) {
            return Ok(ModelSpec::Synthetic(preset.to_string()));
        }
        let path = Path::new(spec);
        if let Some(kind) = crate::fs::special_file(path) {
            return Err(Error::InvalidSpec {
                spec: spec.into(),
                reason: format!(
                    "{} is {kind}, not a model: pass a .gguf file, a folder with config.json + *.safetensors + tokenizer.json, a hub id like HuggingFaceTB/SmolLM2-135M-Instruct, or synthetic:<preset>",
                    path.display()
                ),
            });
        }
        if spec.to_ascii_lowercase().ends_with(".gguf") {
            return if path.is_file() {
                Ok(ModelSpec::Gguf(path.to_path_buf()))
            } else {
                Err(Error::ModelPathMissing { path: path.into() })
            };
        }
        if path.is_dir() {
            return Ok(ModelSpec::LocalDir(path.to_path_buf()));
        }
        // `models/nothere` is a typo'd path, not the hub repo `models/nothere`, when a folder
        // `models` exists here.
        let first_part_is_a_folder = spec
            .split_once('/')
            .is_some_and(|(first, _)| !first.is_empty() && Path::new(first).is_dir());
        let looks_like_path = first_part_is_a_folder
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.starts_with('~')
            || spec.contains('\\')
            || spec.matches('/').count() != 1;
        if looks_like_path {
            return Err(Error::ModelPathMissing { path: path.into() });
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, revision)) if !revision.is_empty() => (repo, revision),
            Some(_) => {
                return Err(Error::InvalidSpec {
                    spec: spec.into(),
                    reason: "empty revision after '@'".into(),
                })
            }
            None => (spec, "main"),
        };
        let (org, name) = repo.split_once('/').unwrap_or(("", ""));
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(org) || !valid(name) {
            return Err(Error::InvalidSpec {
                spec: spec.into(),
                reason: "a hub id is org/name[@revision] with letters, digits, '-', '_' or '.'"
                    .into(),
            });
        }
        Ok(ModelSpec::Hub {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    /// A short name for benchmark ids and tables: `smollm2-135m-instruct`, `llama3-8b`.
    pub fn short_name(&self) -> String {
        let raw = match self {
            ModelSpec::Hub { repo, .. } => repo.rsplit('/').next().unwrap_or(repo).to_string(),
            ModelSpec::LocalDir(p) => p
                .file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "model".into()),
            // GGUF files name their quantization in the stem (`X.Q4_1`, `Llama-3.1-8B.Q4_K_M`);
            // the format is reported apart. Other dots are the model's (`Llama-3.1`).
            ModelSpec::Gguf(p) => {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "model".into());
                match stem.rsplit_once('.') {
                    Some((name, suffix)) if is_quantization_name(suffix) => name.to_string(),
                    _ => stem,
                }
            }
            ModelSpec::Synthetic(preset) => preset.clone(),
        };
        raw.to_ascii_lowercase()
    }
}

/// `Q4_1`, `Q4_K_M`, `IQ2_XS`, `F16`, `BF16`: how GGUF file names end.
fn is_quantization_name(suffix: &str) -> bool {
    let s = suffix.to_ascii_lowercase();
    let digit_after = |prefix: &str| {
        s.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    digit_after("q") || digit_after("iq") || ["f16", "f32", "bf16", "fp16"].contains(&s.as_str())
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Hub { repo, revision } if revision == "main" => write!(f, "{repo}"),
            ModelSpec::Hub { repo, revision } => write!(f, "{repo}@{revision}"),
            ModelSpec::LocalDir(p) | ModelSpec::Gguf(p) => write!(f, "{}", p.display()),
            ModelSpec::Synthetic(preset) => write!(f, "{SYNTHETIC_PREFIX}{preset}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_named_for_what_they_are_not_missing() {
        let err = ModelSpec::parse("/dev/zero").unwrap_err().to_string();
        assert!(
            err.contains("/dev/zero is a character device, not a model"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("model.gguf");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = ModelSpec::parse(fifo.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a FIFO, not a model") && !err.contains("does not exist"),
            "{err}"
        );
    }

    #[test]
    fn hub_ids_with_and_without_revision() {
        assert_eq!(
            ModelSpec::parse("meta-llama/Meta-Llama-3-8B-Instruct").unwrap(),
            ModelSpec::Hub {
                repo: "meta-llama/Meta-Llama-3-8B-Instruct".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("org/name@abc123").unwrap(),
            ModelSpec::Hub {
                repo: "org/name".into(),
                revision: "abc123".into()
            }
        );
    }

    #[test]
    fn synthetic_and_files() {
        assert_eq!(
            ModelSpec::parse("synthetic:llama3-8b").unwrap(),
            ModelSpec::Synthetic("llama3-8b".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join("m.Q4_0.gguf");
        std::fs::write(&gguf, b"x").unwrap();
        let spec = ModelSpec::parse(gguf.to_str().unwrap()).unwrap();
        assert_eq!(spec, ModelSpec::Gguf(gguf));
        assert_eq!(spec.short_name(), "m");
        assert_eq!(
            ModelSpec::parse(dir.path().to_str().unwrap()).unwrap(),
            ModelSpec::LocalDir(dir.path().into())
        );
    }

    #[test]
    fn short_names_keep_the_models_own_dots() {
        let gguf = |name: &str| ModelSpec::Gguf(name.into()).short_name();
        assert_eq!(
            gguf("Llama-3.1-8B-Instruct.Q4_K_M.gguf"),
            "llama-3.1-8b-instruct"
        );
        assert_eq!(
            gguf("Qwen2.5-7B-Instruct-IQ2_XS.gguf"),
            "qwen2.5-7b-instruct-iq2_xs"
        );
        assert_eq!(gguf("qwen2.5-0.5b.bf16.gguf"), "qwen2.5-0.5b");
        assert_eq!(gguf("model.gguf"), "model");
        let hub = ModelSpec::Hub {
            repo: "meta-llama/Llama-3.2-1B-Instruct".into(),
            revision: "main".into(),
        };
        assert_eq!(hub.short_name(), "llama-3.2-1b-instruct");
        assert_eq!(
            ModelSpec::Synthetic("llama3.1-8b".into()).short_name(),
            "llama3.1-8b"
        );
    }

    #[test]
    fn missing_paths_are_reported_as_paths_not_hub_ids() {
        for spec in ["models/nope.gguf", "./nope", "/abs/nope", "a/b/c"] {
            let err = ModelSpec::parse(spec).unwrap_err();
            assert!(
                matches!(err, Error::ModelPathMissing { .. }),
                "{spec}: {err}"
            );
            assert!(err.to_string().contains("does not exist"));
        }
    }

    #[test]
    fn a_missing_path_under_an_existing_folder_is_not_sent_to_the_hub() {
        // `src` exists in the crate's folder, where tests run.
        let err = ModelSpec::parse("src/nothere").unwrap_err();
        assert!(matches!(err, Error::ModelPathMissing { .. }), "{err}");
        assert!(matches!(
            ModelSpec::parse("no-such-org/model"),
            Ok(ModelSpec::Hub { .. })
        ));
    }

    #[test]
    fn malformed_hub_ids_are_rejected() {
        assert!(ModelSpec::parse("org/na me").is_err());
        assert!(ModelSpec::parse("org/name@").is_err());
        assert!(ModelSpec::parse("").is_err());
    }
}
