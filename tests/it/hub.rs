//! Hub loading against a loopback stand-in (`HF_ENDPOINT`): real downloads, the cache, a 404,
//! a truncated download, and an unreachable hub.

use crate::common;

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
fn a_truncated_download_is_refused_and_not_cached() {
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
    // The transfer is resumed from where it stopped; when no more bytes come, the short file
    // is refused and never enters the cache (where a later run would trust it).
    assert_fails_with(&out, &["model.safetensors", "stopped at", "HF_HUB_OFFLINE"]);
    let blobs = work.path().join("hf/hub/models--acme--cut/blobs");
    let kept: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let weights_size = std::fs::metadata(model_dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        !kept
            .iter()
            .any(|name| name.to_string_lossy() == format!("e{weights_size}")),
        "the short weights were cached: {kept:?}"
    );
}

#[test]
fn unreachable_hub_says_where_to_put_the_files() {
    let work = tempfile::tempdir().unwrap();
    let (out, _) = fetch_with("http://127.0.0.1:9", work.path());
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

/// A server on 127.0.0.1 that answers every connection with `respond` (for at most 200
/// connections, then it stops by itself).
fn serve_raw(respond: fn(std::net::TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200).flatten() {
            std::thread::spawn(move || respond(stream));
        }
    });
    endpoint
}

fn fetch_with(endpoint: &str, hf_home: &std::path::Path) -> (std::process::Output, f64) {
    let started = std::time::Instant::now();
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
            ("HF_ENDPOINT", endpoint),
            ("HF_HOME", hf_home.to_str().unwrap()),
            ("LLM_BENCH_HUB_TIMEOUT_SECS", "1"),
        ],
    );
    (out, started.elapsed().as_secs_f64())
}

#[test]
fn a_hub_that_never_answers_times_out_with_the_way_to_work_offline() {
    let endpoint = serve_raw(|stream| {
        // Accept, read nothing, answer nothing, hold the connection.
        std::thread::sleep(std::time::Duration::from_secs(60));
        drop(stream);
    });
    let work = tempfile::tempdir().unwrap();
    let (out, seconds) = fetch_with(&endpoint, work.path());
    assert_fails_with(
        &out,
        &[
            "cannot reach the Hugging Face hub",
            "timed out",
            "after 4 attempts",
            "HF_HUB_OFFLINE",
            "--model DIR",
        ],
    );
    // 4 attempts of 1 s plus 1.75 s of backoff; far from forever.
    assert!(seconds < 30.0, "took {seconds:.1} s");
}

#[test]
fn a_hub_that_redirects_forever_stops_after_the_redirect_limit() {
    let endpoint = serve_raw(|mut stream| {
        use std::io::{BufRead, Write};
        let mut line = String::new();
        let _ = std::io::BufReader::new(stream.try_clone().unwrap()).read_line(&mut line);
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    });
    let work = tempfile::tempdir().unwrap();
    let (out, seconds) = fetch_with(&endpoint, work.path());
    assert_fails_with(&out, &["more than 10 redirects", "config.json"]);
    assert!(seconds < 30.0, "took {seconds:.1} s");
}

#[test]
fn a_hub_that_fails_then_recovers_is_retried() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("tiny");
    write_tiny_llama(&model_dir, &tiny_config(257, 256));
    let hub = common::serve_flaky_hub(repo_files("acme/tiny-llama", &model_dir, false), 2);
    let (out, _) = fetch_with(&hub.endpoint, &work.path().join("hf"));
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = hub.requests.lock().unwrap().clone();
    assert!(requests.len() > 2, "{requests:?}");
    assert!(
        requests[..3].iter().all(|r| r.ends_with("config.json")),
        "the failed request was retried: {requests:?}"
    );
}
