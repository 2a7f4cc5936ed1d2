//! Helpers shared by the integration tests: a tiny Llama written as a hub-layout folder, the
//! CLI as a subprocess, and a loopback server that speaks the hub's download protocol.
#![allow(dead_code)]

pub mod gguf;
pub mod sequences;

use llm_bench::source::synthetic::{SyntheticWeights, SYNTHETIC_SEED};
use llm_bench::source::WeightSource;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

/// Held by every test that runs a model on every core (the ignored tests): two at once on 2
/// cores each spin on the other's cores (candle's and llama.cpp's thread pools busy-wait), and
/// took 236 s where one after the other took 147 s. The other tests run beside them.
pub fn one_model_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn tiny_config(vocab: usize, context: usize) -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama", "vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": context, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": false
    })
}

/// Writes config.json, tokenizer.json (byte-level, 257 tokens) and model.safetensors (the
/// synthetic twins' random weights, norms varied), in the family of the config's `model_type`.
pub fn write_tiny_llama(dir: &Path, config: &serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let tokenizer = llm_bench::tokenizer::TextTokenizer::byte_level();
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_json().unwrap()).unwrap();
    let family = llm_bench::family::by_hf_model_type(config["model_type"].as_str().unwrap())
        .expect("a supported model_type");
    let cfg = family.config_from_hf(config).unwrap();
    let source = SyntheticWeights {
        preset: "tiny",
        seed: SYNTHETIC_SEED,
    };
    let tensors: HashMap<String, candle_core::Tensor> = family
        .tensors(&cfg)
        .into_iter()
        .map(|spec| {
            let mut rows = source.rows(&spec, 0..spec.rows()).unwrap();
            if spec.role == llm_bench::family::TensorRole::Norm {
                // Norms of all ones (the twins') would hide a norm applied to the wrong
                // values: each gets its own spread around 1.
                let phase = spec.hf_name.len() as f32;
                for (i, w) in rows.iter_mut().enumerate() {
                    *w = 1.0 + 0.3 * (i as f32 * 0.7 + phase).sin();
                }
            }
            let t = candle_core::Tensor::from_vec(
                rows,
                spec.shape.as_slice(),
                &candle_core::Device::Cpu,
            )
            .unwrap();
            (spec.hf_name, t)
        })
        .collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

pub fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    cmd.args(args).env_remove("LLM_BENCH_MODEL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Asserts a clean failure: non-zero exit, no panic, and every `needle` in the message.
pub fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
}

/// What the fake hub serves for one file.
#[derive(Clone)]
pub enum Served {
    Whole(Vec<u8>),
    /// Announces the full size but sends only the first `n` bytes, then closes.
    Truncated(Vec<u8>, usize),
}

/// A hub stand-in on 127.0.0.1: `GET /{repo}/resolve/{rev}/{file}` with the headers hf-hub
/// reads (`etag`, `x-repo-commit`, `content-range`); anything else is a 404.
pub struct FakeHub {
    pub endpoint: String,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn serve_hub(files: HashMap<String, Served>) -> FakeHub {
    serve_flaky_hub(files, 0)
}

/// [`serve_hub`] whose first `failures` requests get `500 Internal Server Error`.
pub fn serve_flaky_hub(files: HashMap<String, Served>, failures: usize) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut range_start = 0usize;
            let mut probe = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let v = v.trim();
                    probe = v == "0-0";
                    range_start = v
                        .trim_end_matches('-')
                        .split('-')
                        .next()
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0);
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let seen = {
                let mut log = log.lock().unwrap();
                log.push(path.clone());
                log.len()
            };
            if seen <= failures {
                let _ = stream.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let file = path
                .split("/resolve/")
                .nth(1)
                .and_then(|rest| rest.split_once('/'))
                .map(|(_, f)| f.to_string());
            let served = file.as_ref().and_then(|f| {
                files.get(&format!(
                    "{}:{f}",
                    path.split("/resolve/")
                        .next()
                        .unwrap()
                        .trim_start_matches('/')
                ))
            });
            let Some(served) = served else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let (body, sent) = match served {
                Served::Whole(b) => (b.clone(), b.len()),
                Served::Truncated(b, n) => (b.clone(), *n),
            };
            let total = body.len();
            let head = |len: usize, range: String| {
                format!(
                    "HTTP/1.1 206 Partial Content\r\netag: \"e{total}\"\r\nx-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\ncontent-range: {range}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                )
            };
            if probe {
                let _ = stream.write_all(head(1, format!("bytes 0-0/{total}")).as_bytes());
                let _ = stream.write_all(&body[..1.min(total)]);
            } else {
                let end = sent.max(range_start);
                let chunk = &body[range_start.min(end)..end];
                let _ = stream.write_all(
                    head(
                        chunk.len(),
                        format!("bytes {range_start}-{}/{total}", total.saturating_sub(1)),
                    )
                    .as_bytes(),
                );
                let _ = stream.write_all(chunk);
            }
        }
    });
    FakeHub { endpoint, requests }
}

/// A file of `fixtures/reference/` (llama.cpp's outputs for the default GGUF), parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reference")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The fixture `name`'s cases (`smollm2-greedy.json` or `smollm2-greedy-vendored.json`): each
/// prompt's token ids and llama.cpp's greedy ids after it.
pub fn fixture_cases(name: &str) -> Vec<(Vec<u32>, Vec<u32>)> {
    fixture(name)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| (ids(&case["prompt_tokens"]), ids(&case["output_tokens"])))
        .collect()
}

/// `model`'s logits at every position of every case, teacher-forced: prefill the prompt, then
/// decode the case's ids one by one (one row per position, case by case).
pub fn forced_logits(
    model: &mut llm_bench::Model,
    cases: &[(Vec<u32>, Vec<u32>)],
) -> Vec<Vec<f32>> {
    let mut rows = vec![];
    for (prompt, output) in cases {
        let mut logits = model
            .engine
            .prefill(std::slice::from_ref(prompt))
            .unwrap()
            .data
            .clone();
        for &want in output {
            rows.push(std::mem::replace(
                &mut logits,
                model.engine.decode(&[want]).unwrap().data.clone(),
            ));
        }
    }
    rows
}

/// As [`forced_logits`] on the fixture `name`'s cases.
pub fn teacher_forced_logits(model: &mut llm_bench::Model, name: &str) -> Vec<Vec<f32>> {
    forced_logits(model, &fixture_cases(name))
}

/// Over `rows` (teacher-forced on `cases`, as [`forced_logits`] returns them): how often the
/// case's id is the row's top token, of how many positions, and the largest gap between a
/// row's top logit and the case's id's, with its (case, position).
pub fn agreement(
    rows: &[Vec<f32>],
    cases: &[(Vec<u32>, Vec<u32>)],
) -> (usize, usize, f32, (usize, usize)) {
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    let (mut top, mut all, mut worst, mut at) = (0, 0, 0f32, (0, 0));
    let mut rows = rows.iter();
    for (c, (_, output)) in cases.iter().enumerate() {
        for (i, &want) in output.iter().enumerate() {
            let row = rows.next().expect("a row per position");
            let gap = row[argmax(row)] - row[want as usize];
            top += usize::from(gap == 0.0);
            all += 1;
            if gap > worst {
                (worst, at) = (gap, (c, i));
            }
        }
    }
    (top, all, worst, at)
}

/// Teacher-forced on llama.cpp's greedy ids in the fixture `name`: how often llama.cpp's token
/// was `model`'s top token, of how many positions, and the largest gap between `model`'s top
/// logit and llama.cpp's token's, with where it was.
pub fn teacher_forced(model: &mut llm_bench::Model, name: &str) -> (usize, usize, f32, String) {
    let cases = fixture_cases(name);
    let (top, all, worst, (c, i)) = agreement(&forced_logits(model, &cases), &cases);
    let prompt = fixture(name)["cases"][c]["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    (top, all, worst, format!("{prompt:?} position {i}"))
}
