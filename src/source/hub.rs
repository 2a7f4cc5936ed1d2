//! Hugging Face hub downloads with `hf-hub`. Honours `HF_HOME` (cache), `HF_ENDPOINT`
//! (mirror) and `HF_TOKEN`; when every file is already in the cache no request is made.

use super::local::{shard_names, INDEX_FILE as INDEX};
use crate::error::{Error, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::api::sync::ApiError;
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

const SINGLE: &str = "model.safetensors";

/// Downloads (or finds in the cache) config, tokenizer and weights; returns the snapshot folder.
pub fn fetch(repo_id: &str, revision: &str) -> Result<PathBuf> {
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    let cache = Cache::from_env();
    if let Some(dir) = cached_snapshot(&cache, &repo) {
        return Ok(dir);
    }
    let token = std::env::var("HF_TOKEN").ok().or_else(|| cache.token());
    let api = ApiBuilder::from_env()
        .with_token(token)
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .build()
        .map_err(|e| unreachable_error(repo_id, &cache, e))?;
    let api_repo = api.repo(repo.clone());
    let get = |file: &str| -> Result<PathBuf> {
        api_repo.get(file).map_err(|e| match &e {
            ApiError::RequestError(inner) if matches!(**inner, ureq::Error::Status(404, _)) => {
                Error::HubFileNotFound {
                    repo: repo_id.into(),
                    revision: revision.into(),
                    file: file.into(),
                }
            }
            _ => unreachable_error(repo_id, &cache, e),
        })
    };
    let config = get("config.json")?;
    get("tokenizer.json")?;
    match get(INDEX) {
        Ok(index) => {
            for shard in shard_names(&index)? {
                get(&shard)?;
            }
        }
        Err(Error::HubFileNotFound { .. }) => {
            get(SINGLE)?;
        }
        Err(e) => return Err(e),
    }
    Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn unreachable_error(repo_id: &str, cache: &Cache, e: ApiError) -> Error {
    Error::HubUnreachable {
        repo: repo_id.into(),
        cache_dir: cache.path().clone(),
        detail: e.to_string(),
    }
}

/// The snapshot folder when config, tokenizer and every weight file are already cached.
fn cached_snapshot(cache: &Cache, repo: &Repo) -> Option<PathBuf> {
    let cached = cache.repo(repo.clone());
    let config = cached.get("config.json")?;
    cached.get("tokenizer.json")?;
    let weights_ready = match cached.get(INDEX) {
        Some(index) => shard_names(&index)
            .ok()?
            .iter()
            .all(|shard| cached.get(shard).is_some()),
        None => cached.get(SINGLE).is_some(),
    };
    weights_ready
        .then(|| config.parent().map(Path::to_path_buf))
        .flatten()
}
