//! `llm-bench export`: a GGUF file that holds the model candle runs, byte for byte, with its
//! tokenizer; read back through llm-bench's own GGUF reader and run.

use crate::common;

use common::{assert_fails_with, cli, stderr, tiny_config, write_tiny_llama};
use llm_bench::ModelSpec;
use std::path::Path;

fn export(spec: &str, format: &str, out: &Path) {
    let out = cli(
        &["export", spec, out.to_str().unwrap(), "--format", format],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("wrote") && said.contains(format), "{said}");
}

fn prefill_logits(spec: &ModelSpec, format: Option<&str>, text: &str) -> (Vec<u32>, Vec<f32>) {
    let mut model = llm_bench::load(spec, format.map(|f| f.parse().unwrap())).unwrap();
    let ids = model.tokenizer.encode(text).unwrap();
    let logits = model.engine.prefill(std::slice::from_ref(&ids)).unwrap();
    (ids, logits.data.clone())
}

/// The export is made by the code that feeds candle's quantized engine: reading it back must
/// give bit-identical logits, the same tensor table, and the file's own tokenizer entries.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn the_real_model_exported_at_q8_0_holds_exactly_what_candle_runs_in_memory() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let original = llm_bench::defaults::default_gguf_path();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smollm2-q8_0.gguf");
    export(original.to_str().unwrap(), "q8_0", &file);

    let in_memory = llm_bench::model::plan(
        &ModelSpec::Gguf(original.clone()),
        Some("q8_0".parse().unwrap()),
    )
    .unwrap();
    let exported = llm_bench::model::plan(&ModelSpec::Gguf(file.clone()), None).unwrap();
    assert_eq!(exported.format_label, "q8_0");
    assert_eq!(
        exported.resolved.weights_kind(),
        llm_bench::source::WeightsKind::Real
    );
    assert_eq!(exported.layout().tensors, in_memory.layout().tensors);
    assert_eq!(exported.weight_bytes(), in_memory.weight_bytes());
    // Tokenizer entries are copied verbatim.
    let tokenizer_entries = |path: &Path| {
        let mut f = std::fs::File::open(path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        let mut keys: Vec<(String, String)> = content
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("tokenizer."))
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect();
        keys.sort();
        keys
    };
    let theirs = tokenizer_entries(&original);
    assert!(theirs.len() >= 5, "{theirs:?}");
    assert_eq!(tokenizer_entries(&file), theirs);

    let text = "The capital of France is";
    let (ids_a, a) = prefill_logits(&ModelSpec::Gguf(original), Some("q8_0"), text);
    let (ids_b, b) = prefill_logits(&ModelSpec::Gguf(file), None, text);
    assert_eq!(ids_a, ids_b);
    assert_eq!(
        a, b,
        "the exported q8_0 file runs differently from q8_0 made in memory"
    );
}

/// A safetensors folder (Hugging Face layout, halves RoPE) exported at f32: the GGUF's
/// interleaved Q/K rows must give the same logits through candle's GGUF path, and the tokenizer
/// written from tokenizer.json must tokenize as the folder's.
#[test]
fn a_safetensors_folder_exported_at_f32_runs_like_the_folder() {
    llm_bench::system::configure_threads(None);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tiny");
    write_tiny_llama(&folder, &tiny_config(300, 128));
    let file = dir.path().join("tiny-f32.gguf");
    export(folder.to_str().unwrap(), "f32", &file);

    let text = "hello world, hello GGUF";
    let (ids_a, a) = prefill_logits(&ModelSpec::LocalDir(folder), Some("f32"), text);
    let (ids_b, b) = prefill_logits(&ModelSpec::Gguf(file.clone()), None, text);
    assert_eq!(ids_a, ids_b);
    assert_eq!(a.len(), 300);
    let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt();
    assert!(
        diff / norm < 1e-4,
        "logits differ by {} relative",
        diff / norm
    );
    // 257 tokens in the tokenizer, 300 rows in the model: the rest are unused padding tokens.
    let planned = llm_bench::model::plan(&ModelSpec::Gguf(file), None).unwrap();
    assert_eq!(planned.resolved.config.vocab_size, 300);
    assert_eq!(planned.resolved.tokenizer.vocab_size(), 300);
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn export_refuses_what_it_cannot_write_and_leaves_no_file() {
    let _alone = common::one_model_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let gguf = llm_bench::defaults::default_gguf_path();
    let gguf = gguf.to_str().unwrap();
    let txt = dir.path().join("model.txt");
    let out = cli(
        &["export", "synthetic:smollm2-135m", txt.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["must end in .gguf"]);
    let same = dir.path().join("same.gguf");
    let out = cli(&["export", gguf, same.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["GGUF file already", "--format"]);
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let under_file = blocked.join("x.gguf");
    let out = cli(
        &[
            "export",
            "synthetic:smollm2-135m",
            under_file.to_str().unwrap(),
            "--format",
            "q4_0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["cannot write"]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "debris left behind"
    );
}

/// SIGINT or SIGTERM in the middle of an export leaves neither the file nor its temporary,
/// and the process still ends by that signal.
#[test]
fn an_export_interrupted_by_a_signal_leaves_nothing_behind() {
    use std::os::unix::process::ExitStatusExt;
    for signal in ["INT", "TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("twin.gguf");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"))
            .args(["export", "synthetic:smollm2-135m", "--format", "f32"])
            .arg(&target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the export is writing its temporary file (540 MB of f32 take seconds).
        let started = std::time::Instant::now();
        let writing = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(".tmp"))
        };
        while !writing() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the export ended before it was interrupted"
            );
            assert!(
                started.elapsed().as_secs() < 120,
                "no temporary file appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let killed = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        let expected = if signal == "INT" { 2 } else { 15 };
        assert_eq!(status.signal(), Some(expected), "{status:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
