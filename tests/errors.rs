//! Bad input gets a clear message that names the problem and the fix, a non-zero exit, and
//! never a panic.

mod common;

use common::{assert_fails_with, cli, tiny_config, write_tiny_llama};

fn generate(model: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "generate",
        "--model",
        model,
        "--prompt",
        "hello",
        "--max-new-tokens",
        "2",
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

fn default_gguf_bytes() -> Vec<u8> {
    let path = llm_bench::defaults::default_gguf_path();
    std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run scripts/fetch-model", path.display()))
}

#[test]
fn missing_model_path() {
    assert_fails_with(
        &generate("models/does-not-exist.gguf", &[]),
        &["models/does-not-exist.gguf", "does not exist"],
    );
    assert_fails_with(
        &generate("./no/such/folder", &[]),
        &["./no/such/folder", "does not exist"],
    );
}

#[test]
fn unknown_preset_and_format() {
    assert_fails_with(
        &generate("synthetic:gpt-9", &[]),
        &["gpt-9", "smollm2-135m", "llama3-8b"],
    );
    let out = generate("synthetic:smollm2-135m", &["--format", "q9_9"]);
    assert_fails_with(&out, &["q9_9", "q4_0", "f32"]);
}

#[test]
fn truncated_and_corrupt_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = default_gguf_bytes();
    let header_only = dir.path().join("header-only.gguf");
    std::fs::write(&header_only, &bytes[..4096]).unwrap();
    assert_fails_with(
        &generate(header_only.to_str().unwrap(), &[]),
        &["header-only.gguf", "truncated or corrupt"],
    );
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_with(
        &generate(cut.to_str().unwrap(), &[]),
        &["cut.gguf", "truncated or corrupt", "ends at byte"],
    );
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a gguf file at all").unwrap();
    assert_fails_with(
        &generate(garbage.to_str().unwrap(), &[]),
        &["garbage.gguf", "not a valid GGUF"],
    );
}

#[test]
fn corrupt_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 1000]).unwrap();
    assert_fails_with(
        &generate(dir.path().to_str().unwrap(), &[]),
        &["model.safetensors", "truncated or corrupt"],
    );
}

#[test]
fn unsupported_architecture_names_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(257, 256);
    write_tiny_llama(dir.path(), &config);
    config["model_type"] = "gpt_neox".into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert_fails_with(
        &generate(dir.path().to_str().unwrap(), &[]),
        &[
            "unsupported architecture \"gpt_neox\"",
            "config.json",
            "llama",
        ],
    );
}

#[test]
fn tokenizer_larger_than_the_embedding() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(200, 256)); // byte-level tokenizer has 257
    assert_fails_with(
        &generate(dir.path().to_str().unwrap(), &[]),
        &["257 tokens", "200 rows"],
    );
}

#[test]
fn weights_that_do_not_match_config() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let mut config = tiny_config(257, 256);
    config["intermediate_size"] = 96.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert_fails_with(
        &generate(dir.path().to_str().unwrap(), &[]),
        &["mlp.gate_proj.weight", "shape [128, 64]", "[96, 64]"],
    );
}

#[test]
fn empty_prompt_and_context_overflow() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 32));
    let model = dir.path().to_str().unwrap();
    let out = cli(
        &[
            "generate",
            "--model",
            model,
            "--prompt",
            "",
            "--max-new-tokens",
            "2",
        ],
        &[],
    );
    assert_fails_with(&out, &["zero tokens"]);
    let out = cli(
        &[
            "generate",
            "--model",
            model,
            "--prompt",
            "twenty bytes of text",
            "--max-new-tokens",
            "20",
        ],
        &[],
    );
    assert_fails_with(&out, &["20 tokens", "context holds 32", "--max-new-tokens"]);
}

#[test]
fn invalid_sampling_and_batch_settings() {
    for (strategy, rule) in [
        ("temperature=0", "> 0"),
        ("top-p=1.5", "(0, 1]"),
        ("top-p=0", "(0, 1]"),
        ("top-k=0", ">= 1"),
    ] {
        let out = generate("synthetic:smollm2-135m", &["--strategy", strategy]);
        assert_fails_with(&out, &[strategy, rule]);
    }
    let out = generate("synthetic:smollm2-135m", &["--batch", "0"]);
    assert_fails_with(&out, &["--batch", "at least 1"]);
}
