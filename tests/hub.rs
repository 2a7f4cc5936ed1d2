//! Hub loading against a loopback stand-in (`HF_ENDPOINT`): real downloads, the cache, a 404,
//! a truncated download, and an unreachable hub.

mod common;

use common::{assert_fails_with, cli, serve_hub, stderr, tiny_config, write_tiny_llama, Served};
use std::collections::HashMap;

fn repo_files(
    repo: &str,
    dir: &std::path::Path,
    truncate_weights: bool,
) -> HashMap<String, Served> {
    let mut files = HashMap::new();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let served = if truncate_weights && name == "model.safetensors" {
            let keep = bytes.len() / 2;
            Served::Truncated(bytes, keep)
        } else {
            Served::Whole(bytes)
        };
        files.insert(format!("{repo}:{name}"), served);
    }
    files
}

#[test]
fn downloads_from_the_hub_then_runs_from_the_cache_offline() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("tiny");
    write_tiny_llama(&model_dir, &tiny_config(257, 256));
    let hub = serve_hub(repo_files("acme/tiny-llama", &model_dir, false));
    let hf_home = work.path().join("hf-home");
    let hf_home = hf_home.to_str().unwrap();
    let args = [
        "generate",
        "--model",
        "acme/tiny-llama",
        "--prompt",
        "hello",
        "--max-new-tokens",
        "3",
        "--min-new-tokens",
        "3",
        "--json",
    ];

    let out = cli(
        &args,
        &[("HF_ENDPOINT", &hub.endpoint), ("HF_HOME", hf_home)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["output_tokens"].as_array().unwrap().len(), 3);
    assert_eq!(json["weights"], "real");
    assert_eq!(json["format"], "f32");
    let requests = hub.requests.lock().unwrap().clone();
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
        "model.safetensors",
    ] {
        assert!(
            requests.iter().any(|r| r.ends_with(file)),
            "{file} not requested: {requests:?}"
        );
    }

    // Second run: every file is cached, so a dead endpoint must not matter.
    let out = cli(
        &args,
        &[("HF_ENDPOINT", "http://127.0.0.1:9"), ("HF_HOME", hf_home)],
    );
    assert!(out.status.success(), "cache not used: {}", stderr(&out));
}

#[test]
fn missing_repo_is_a_404_with_the_file_named() {
    let work = tempfile::tempdir().unwrap();
    let hub = serve_hub(HashMap::new());
    let out = cli(
        &[
            "generate",
            "--model",
            "acme/absent@v1",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ],
        &[
            ("HF_ENDPOINT", &hub.endpoint),
            ("HF_HOME", work.path().to_str().unwrap()),
        ],
    );
    assert_fails_with(&out, &["no file config.json", "acme/absent@v1", "404"]);
}

#[test]
fn truncated_download_is_reported_as_a_corrupt_file() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("tiny");
    write_tiny_llama(&model_dir, &tiny_config(257, 256));
    let hub = serve_hub(repo_files("acme/cut", &model_dir, true));
    let out = cli(
        &[
            "generate",
            "--model",
            "acme/cut",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ],
        &[
            ("HF_ENDPOINT", &hub.endpoint),
            ("HF_HOME", work.path().join("hf").to_str().unwrap()),
        ],
    );
    assert_fails_with(&out, &["model.safetensors"]);
    let err = stderr(&out);
    // hf-hub moves the short file into its cache; the loader must catch it and say so.
    assert!(
        err.contains("truncated or corrupt") && err.contains("delete it"),
        "{err}"
    );
}

#[test]
fn unreachable_hub_says_where_to_put_the_files() {
    let work = tempfile::tempdir().unwrap();
    let out = cli(
        &[
            "generate",
            "--model",
            "acme/tiny-llama",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ],
        &[
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HF_HOME", work.path().to_str().unwrap()),
        ],
    );
    assert_fails_with(
        &out,
        &[
            "cannot reach the Hugging Face hub",
            "acme/tiny-llama",
            "--model DIR",
            work.path().to_str().unwrap(),
        ],
    );
}
