//! Where llm-bench's own files live (fetched models), and the advice a bad file's error gives,
//! which depends on where the file came from.

use crate::error::Error;
use std::path::{Path, PathBuf};

/// Where fetched model files live: `$LLM_BENCH_MODELS_DIR`, else `models/` in the checkout.
pub fn models_dir() -> PathBuf {
    std::env::var_os("LLM_BENCH_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")))
}

/// A file that is not what it claims to be (`kind`: "GGUF", "tokenizer.json", ...), with
/// advice that fits where it came from.
pub(crate) fn corrupt(
    path: impl Into<PathBuf>,
    kind: &'static str,
    detail: impl ToString,
) -> Error {
    let path = path.into();
    Error::CorruptFile {
        hint: corrupt_hint(&path),
        path,
        kind,
        detail: detail.to_string(),
    }
}

/// The fix for a bad file depends on who made it: a fetched model is fetched again, a hub
/// download is downloaded again, anything else is the user's to replace.
fn corrupt_hint(path: &Path) -> String {
    if same_dir_prefix(&models_dir(), path) {
        return "delete it and fetch it again with scripts/fetch-model".into();
    }
    let hub_cache = hf_hub::Cache::from_env().path().clone();
    if same_dir_prefix(&hub_cache, path) {
        return format!(
            "delete it from the hub cache ({}) and run again to download it again",
            hub_cache.display()
        );
    }
    "replace it with a complete copy, or check the program that wrote it".into()
}

/// `path` lies inside `dir` (compared as absolute paths, links resolved where they exist).
fn same_dir_prefix(dir: &Path, path: &Path) -> bool {
    let absolute = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    absolute(path).starts_with(absolute(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_gets_advice_that_fits_where_it_came_from() {
        let fetched = models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
        let hand_made = std::env::temp_dir().join("hand-made.gguf");
        let text = |p: &Path| corrupt(p, "GGUF", "bad").to_string();
        assert!(
            text(&fetched).contains("scripts/fetch-model"),
            "{}",
            text(&fetched)
        );
        assert!(
            !text(&hand_made).contains("fetch-model"),
            "{}",
            text(&hand_made)
        );
        assert!(
            text(&hand_made).contains("replace it"),
            "{}",
            text(&hand_made)
        );
    }
}
