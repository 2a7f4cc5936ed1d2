//! Hugging Face hub downloads into the hub's cache layout (`HF_HOME`, shared with
//! `huggingface_hub` and `hf-hub`). Honours `HF_ENDPOINT` (mirror), `HF_TOKEN` and
//! `HF_HUB_OFFLINE`; when every file is already cached no request is made.
//!
//! The HTTP is ours (ureq), not hf-hub's, because a benchmark must never hang on the network:
//! every request has a connect and a read timeout, redirects are followed at most
//! [`MAX_REDIRECTS`] times, connection failures and 5xx answers are retried [`RETRIES`] times
//! with backoff, and a download that ends short is resumed, then refused, never cached.

use super::local::{shard_names, INDEX_FILE as INDEX};
use crate::error::{Error, Result};
use hf_hub::{Cache, Repo, RepoType};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SINGLE: &str = "model.safetensors";
/// Hugging Face's hub (`HF_ENDPOINT` overrides it).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Seconds a connection may take to open, and a read may wait for data.
pub const TIMEOUT_ENV: &str = "LLM_BENCH_HUB_TIMEOUT_SECS";
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const MAX_REDIRECTS: usize = 10;
/// Attempts after the first, for connection errors and 5xx/429 answers.
const RETRIES: u32 = 3;
const BACKOFF_MS: u64 = 250;

/// Downloads (or finds in the cache) config, tokenizer and weights; returns the snapshot folder.
pub fn fetch(repo_id: &str, revision: &str) -> Result<PathBuf> {
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    let cache = Cache::from_env();
    if let Some(dir) = cached_snapshot(&cache, &repo) {
        return Ok(dir);
    }
    let fail = |detail: String| Error::HubUnreachable {
        repo: repo_id.into(),
        cache_dir: cache.path().clone(),
        detail,
    };
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Err(fail(
            "HF_HUB_OFFLINE is set and the files are not all in the cache".into(),
        ));
    }
    let hub = Hub::from_env(&cache, repo.clone()).map_err(&fail)?;
    let get = |file: &str| -> Result<PathBuf> {
        if let Some(path) = cache.repo(repo.clone()).get(file) {
            return Ok(path);
        }
        hub.download(file).map_err(|e| match e {
            Failure::NotFound => Error::HubFileNotFound {
                repo: repo_id.into(),
                revision: revision.into(),
                file: file.into(),
            },
            Failure::Other(detail) => fail(format!("{file}: {detail}")),
            Failure::Local(e) => e,
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

enum Failure {
    /// HTTP 404: the file (or repo, or revision) does not exist.
    NotFound,
    /// The network or the server failed; the text says how.
    Other(String),
    /// Writing the cache failed.
    Local(Error),
}

struct Hub<'a> {
    cache: &'a Cache,
    repo: Repo,
    endpoint: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// What the first answer of the redirect chain says about a file.
struct FileFacts {
    url: String,
    commit: String,
    etag: String,
    size: u64,
}

impl<'a> Hub<'a> {
    fn from_env(cache: &'a Cache, repo: Repo) -> std::result::Result<Self, String> {
        let timeout = match std::env::var(TIMEOUT_ENV) {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| {
                    format!("{TIMEOUT_ENV}={v:?} is not a whole number of seconds above 0")
                })?,
            Err(_) => DEFAULT_TIMEOUT_SECS,
        };
        let agent = ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            .timeout_connect(Duration::from_secs(timeout))
            .timeout_read(Duration::from_secs(timeout))
            .timeout_write(Duration::from_secs(timeout))
            // Redirects are followed by hand, counted, and lose the token off the hub's host.
            .redirects(0)
            .build();
        Ok(Self {
            cache,
            repo,
            endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.into())
                .trim_end_matches('/')
                .to_string(),
            token: std::env::var("HF_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or_else(|| cache.token()),
            agent,
        })
    }

    fn download(&self, file: &str) -> std::result::Result<PathBuf, Failure> {
        let url = format!(
            "{}/{}/resolve/{}/{file}",
            self.endpoint,
            self.repo.url(),
            self.repo.url_revision()
        );
        let facts = self.facts(&url)?;
        let dir = self.cache.path().join(self.repo.folder_name());
        let blob = dir.join("blobs").join(&facts.etag);
        let pointer = dir.join("snapshots").join(&facts.commit).join(file);
        if !blob.is_file() {
            self.fetch_blob(&facts, file, &blob)?;
        }
        link(&blob, &pointer).map_err(|e| Failure::Local(Error::write(&pointer, e)))?;
        self.cache
            .repo(self.repo.clone())
            .create_ref(&facts.commit)
            .map_err(|e| Failure::Local(Error::write(dir.join("refs"), e)))?;
        Ok(pointer)
    }

    /// Probes `bytes=0-0` along the redirect chain: commit and etag come from the hub's own
    /// answer (the first to carry them), the size from the last one's `content-range`.
    fn facts(&self, url: &str) -> std::result::Result<FileFacts, Failure> {
        let mut current = url.to_string();
        let (mut commit, mut etag) = (None, None);
        for _ in 0..=MAX_REDIRECTS {
            let response = self.call(&current, "bytes=0-0")?;
            let header = |name: &str| {
                response
                    .header(name)
                    .map(|v| v.trim_matches('"').to_string())
            };
            commit = commit.or_else(|| header("x-repo-commit"));
            etag = etag.or_else(|| header("x-linked-etag").or_else(|| header("etag")));
            if let Some(next) = redirect_target(&current, &response)? {
                current = next;
                continue;
            }
            let size = header("content-range")
                .and_then(|r| r.rsplit('/').next().and_then(|t| t.parse::<u64>().ok()))
                .ok_or_else(|| {
                    Failure::Other(format!(
                        "the answer from {current} has no content-range size"
                    ))
                })?;
            let (Some(commit), Some(etag)) = (commit, etag) else {
                return Err(Failure::Other(format!(
                    "the answer from {url} lacks the x-repo-commit or etag header: is HF_ENDPOINT a Hugging Face hub?"
                )));
            };
            // Both end up in file names.
            if [&commit, &etag]
                .iter()
                .any(|v| v.is_empty() || v.contains(['/', '\\']) || v.starts_with('.'))
            {
                return Err(Failure::Other(format!(
                    "the hub answered an unusable commit {commit:?} or etag {etag:?}"
                )));
            }
            return Ok(FileFacts {
                url: current,
                commit,
                etag,
                size,
            });
        }
        Err(Failure::Other(format!(
            "more than {MAX_REDIRECTS} redirects from {url}"
        )))
    }

    /// Downloads into `blob.part`, resuming after a cut, and moves it into place only when
    /// it has exactly the announced size.
    fn fetch_blob(
        &self,
        facts: &FileFacts,
        file: &str,
        blob: &Path,
    ) -> std::result::Result<(), Failure> {
        let local = |e: std::io::Error, path: &Path| Failure::Local(Error::write(path, e));
        let part = blob.with_extension("part");
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(|e| local(e, dir))?;
        }
        let mut out = std::fs::File::create(&part).map_err(|e| local(e, &part))?;
        let mut have: u64 = 0;
        let mut attempt = 0;
        while have < facts.size {
            // `call` already retried failed requests; here a transfer that stops early is
            // resumed, as long as each attempt brings bytes or the retries last.
            match self.fetch_from(facts, have, &mut out, &part) {
                Ok(n) if n > 0 => {
                    have += n;
                    attempt = 0;
                }
                Ok(_) if attempt < RETRIES => {
                    backoff(attempt);
                    attempt += 1;
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&part);
                    return Err(Failure::Other(format!(
                        "the download of {file} stopped at {have} of {} bytes",
                        facts.size
                    )));
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
            }
        }
        if have != facts.size {
            let _ = std::fs::remove_file(&part);
            return Err(Failure::Other(format!(
                "{file}: received {have} bytes, but the hub announced {}",
                facts.size
            )));
        }
        out.flush().map_err(|e| local(e, &part))?;
        std::fs::rename(&part, blob).map_err(|e| local(e, blob))
    }

    /// One ranged GET from `from`; the bytes received are appended to `out`.
    fn fetch_from(
        &self,
        facts: &FileFacts,
        from: u64,
        out: &mut std::fs::File,
        part: &Path,
    ) -> std::result::Result<u64, Failure> {
        let mut current = facts.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let response = self.call(&current, &format!("bytes={from}-"))?;
            if let Some(next) = redirect_target(&current, &response)? {
                current = next;
                continue;
            }
            if from > 0 && response.status() != 206 {
                return Err(Failure::Other(format!(
                    "{current} ignored the range request (status {})",
                    response.status()
                )));
            }
            let mut reader = response.into_reader().take(facts.size - from);
            let mut buf = vec![0u8; 1 << 16];
            let mut received = 0u64;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(received),
                    Ok(n) => {
                        out.write_all(&buf[..n])
                            .map_err(|e| Failure::Local(Error::write(part, e)))?;
                        received += n as u64;
                    }
                    // A cut or a stalled read: keep what arrived; the caller resumes.
                    Err(_) => return Ok(received),
                }
            }
        }
        Err(Failure::Other(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            facts.url
        )))
    }

    /// One request, retried with backoff on connection errors, 5xx and 429.
    fn call(&self, url: &str, range: &str) -> std::result::Result<ureq::Response, Failure> {
        let mut attempt = 0;
        loop {
            let mut request = self.agent.get(url).set("Range", range);
            if let Some(token) = self
                .token
                .as_ref()
                .filter(|_| url.starts_with(&self.endpoint))
            {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            let retryable = match request.call() {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(404, _)) => return Err(Failure::NotFound),
                Err(ureq::Error::Status(code @ (401 | 403), _)) => {
                    return Err(Failure::Other(format!(
                        "HTTP {code} from {url}: the repo is gated or private; set HF_TOKEN to a token that may read it"
                    )))
                }
                Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 => {
                    format!("HTTP {code} from {url}")
                }
                Err(ureq::Error::Status(code, _)) => {
                    return Err(Failure::Other(format!("HTTP {code} from {url}")))
                }
                // A name that does not resolve will not resolve a second later either.
                Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::Dns => {
                    return Err(Failure::Other(format!("{url}: {t}")))
                }
                Err(ureq::Error::Transport(t)) => format!("{url}: {t}"),
            };
            if attempt >= RETRIES {
                return Err(Failure::Other(format!(
                    "{retryable} (after {} attempts)",
                    attempt + 1
                )));
            }
            backoff(attempt);
            attempt += 1;
        }
    }
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(BACKOFF_MS << attempt));
}

/// The absolute URL a 3xx answer points to, `None` for any other answer.
fn redirect_target(
    current: &str,
    response: &ureq::Response,
) -> std::result::Result<Option<String>, Failure> {
    if !(300..400).contains(&response.status()) {
        return Ok(None);
    }
    let location = response.header("location").ok_or_else(|| {
        Failure::Other(format!(
            "{current} answered {} without a location",
            response.status()
        ))
    })?;
    let base = url::Url::parse(current)
        .map_err(|e| Failure::Other(format!("{current} is not a URL: {e}")))?;
    let next = base.join(location).map_err(|e| {
        Failure::Other(format!(
            "{current} redirects to a bad location {location:?}: {e}"
        ))
    })?;
    Ok(Some(next.to_string()))
}

/// The cache's snapshot entry for a blob: a relative symlink as the hub's own tools make it,
/// or a copy where links are not allowed.
fn link(blob: &Path, pointer: &Path) -> std::io::Result<()> {
    if let Some(dir) = pointer.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if pointer.is_file() {
        return Ok(());
    }
    let _ = std::fs::remove_file(pointer);
    #[cfg(unix)]
    {
        let depth = pointer
            .strip_prefix(
                blob.parent()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new("")),
            )
            .map(|rest| rest.components().count() - 1)
            .unwrap_or(0);
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob.file_name().unwrap_or_default());
        if std::os::unix::fs::symlink(&target, pointer).is_ok() && pointer.is_file() {
            return Ok(());
        }
        let _ = std::fs::remove_file(pointer);
    }
    std::fs::copy(blob, pointer).map(|_| ())
}
