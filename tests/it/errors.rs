//! Bad input gets a clear message that names the problem and the fix, a non-zero exit, and
//! never a panic.

use crate::common;

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
#[ignore = "needs models/: run scripts/fetch-model"]
fn truncated_and_corrupt_gguf() {
    let _alone = common::one_model_run_at_a_time();
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
        &[
            "cut.gguf",
            "truncated or corrupt",
            "ends past the end of the file",
        ],
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

// ---- Hardening: one regression test per class of bad input that used to panic, hang or
// ---- run silently wrong. Each must fail with exit 2, no panic, and a message naming the
// ---- file and the field.

use common::gguf::write_edited;
use llm_bench::gguf::Value;

fn assert_exit_2(out: &std::process::Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(out));
    assert_fails_with(out, needles);
}

/// The real GGUF with one metadata key set to `value`, run through `generate`: exit 2, with
/// the file's name and every `needle` in the message.
fn assert_gguf_key_refused(key: &str, value: Value, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.gguf");
    write_edited(&path, |c| {
        c.metadata.insert(key.into(), value);
    });
    let out = generate(path.to_str().unwrap(), &[]);
    let mut all = vec!["edited.gguf"];
    all.extend_from_slice(needles);
    assert_exit_2(&out, &all);
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn gguf_metadata_that_breaks_the_arithmetic_is_refused_by_key() {
    let _alone = common::one_model_run_at_a_time();
    for (key, value, needles) in [
        (
            "llama.attention.head_count",
            Value::U32(0),
            &["llama.attention.head_count", "is 0"][..],
        ),
        (
            "llama.attention.head_count",
            Value::U32(7),
            &["llama.attention.head_count", "does not divide"][..],
        ),
        (
            "llama.block_count",
            Value::U32(u32::MAX),
            &["llama.block_count", "4294967295", "corrupt"][..],
        ),
        (
            "llama.block_count",
            Value::U32(0),
            &["llama.block_count", "is 0"][..],
        ),
        (
            "llama.feed_forward_length",
            Value::U32(0),
            &["llama.feed_forward_length", "is 0"][..],
        ),
        (
            "general.alignment",
            Value::U32(0),
            &["general.alignment", "power of two"][..],
        ),
        (
            "llama.rope.freq_base",
            Value::F32(f32::NAN),
            &["llama.rope.freq_base", "positive number"][..],
        ),
    ] {
        assert_gguf_key_refused(key, value, needles);
    }
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn gguf_tensors_whose_shape_or_extent_is_wrong_are_named() {
    let _alone = common::one_model_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // A dimension of 2^63 used to wrap the element count and panic in the first forward.
    let huge = dir.path().join("huge.gguf");
    write_edited(&huge, |c| {
        let info = c.tensor_infos.get_mut("blk.0.ffn_up.weight").unwrap();
        info.shape = vec![1usize << 63, 576].into();
    });
    assert_exit_2(
        &generate(huge.to_str().unwrap(), &[]),
        &["huge.gguf", "blk.0.ffn_up.weight", "too many elements"],
    );
    // A shape that fits the file but not the config.
    let wrong = dir.path().join("wrong.gguf");
    write_edited(&wrong, |c| {
        let info = c.tensor_infos.get_mut("blk.3.attn_v.weight").unwrap();
        info.shape = vec![64, 576].into();
    });
    assert_exit_2(
        &generate(wrong.to_str().unwrap(), &[]),
        &[
            "wrong.gguf",
            "blk.3.attn_v.weight",
            "[64, 576]",
            "[192, 576]",
        ],
    );
    // Data that lies past the end of the file.
    let past = dir.path().join("past.gguf");
    write_edited(&past, |c| {
        c.tensor_infos.get_mut("output_norm.weight").unwrap().offset = 1 << 40;
    });
    assert_exit_2(
        &generate(past.to_str().unwrap(), &[]),
        &[
            "past.gguf",
            "output_norm.weight",
            "past the end of the file",
        ],
    );
    // A hand-made file gets no advice to run scripts/fetch-model.
    let out = generate(past.to_str().unwrap(), &[]);
    let err = common::stderr(&out);
    assert!(
        !err.contains("fetch-model") && err.contains("replace it"),
        "{err}"
    );
}

#[test]
fn config_json_that_breaks_the_arithmetic_is_refused_by_key() {
    for (key, value, needle) in [
        ("num_attention_heads", 0, "is 0"),
        ("num_hidden_layers", 0, "is 0"),
        ("num_hidden_layers", 1_000_000_000, "corrupt"),
        ("intermediate_size", 0, "is 0"),
        ("num_key_value_heads", 3, "does not divide"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_llama(dir.path(), &tiny_config(257, 256));
        let mut config = tiny_config(257, 256);
        config[key] = value.into();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let out = generate(dir.path().to_str().unwrap(), &[]);
        assert_exit_2(&out, &["config.json", key, needle]);
    }
}

#[test]
fn numbers_near_the_top_of_their_range_are_errors_not_overflows() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let model = dir.path().to_str().unwrap();
    let out = cli(
        &[
            "generate",
            "--model",
            model,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "18446744073709551615",
        ],
        &[],
    );
    assert_exit_2(&out, &["18446744073709551615", "context holds 256"]);
    let out = cli(
        &[
            "generate",
            "--model",
            model,
            "--prompt",
            "hi",
            "--batch",
            "100000000000",
        ],
        &[],
    );
    assert_exit_2(&out, &["--batch", "GiB", "lower --batch"]);
    let out_dir = dir.path().join("out");
    let out = cli(
        &[
            "run",
            "--model",
            model,
            "--max-new-tokens",
            "18446744073709551615",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_exit_2(&out, &["context"]);
    assert!(
        !out_dir.exists(),
        "run wrote an output folder before failing"
    );
}

#[test]
fn more_threads_than_cpus_are_capped_with_a_warning_and_recorded() {
    let out = cli(
        &[
            "generate",
            "--model",
            "synthetic:smollm2-135m",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "2",
            "--threads",
            "1000",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let cores = std::thread::available_parallelism().unwrap().get();
    let err = common::stderr(&out);
    assert!(
        err.contains("1000 threads") && err.contains(&format!("using {cores}")),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["threads"], cores);
}

#[test]
fn a_missing_path_under_an_existing_folder_is_not_sent_to_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("models")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    let out = cmd
        .current_dir(dir.path())
        .args(["generate", "--model", "models/nothere", "--prompt", "hi"])
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("LLM_BENCH_MODEL")
        .output()
        .unwrap();
    assert_exit_2(&out, &["models/nothere", "does not exist"]);
    assert!(
        !common::stderr(&out).contains("cannot reach"),
        "{}",
        common::stderr(&out)
    );
}

fn generate_to(stdout: std::process::Stdio, json: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    cmd.args([
        "generate",
        "--model",
        "synthetic:smollm2-135m",
        "--prompt",
        "hello",
        "--max-new-tokens",
        "16",
        "--min-new-tokens",
        "16",
    ])
    .env_remove("LLM_BENCH_MODEL")
    .stdout(stdout)
    .stderr(std::process::Stdio::piped());
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_and_a_full_one_is_an_error() {
    // A pipe whose reader is gone: `llm-bench generate ... | head -c 1`.
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = generate_to(writer.into(), json);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(0), "json {json}: {err}");
        assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = generate_to(full.into(), true);
    assert_exit_2(&out, &["cannot write to standard output", "No space left"]);
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn gguf_metadata_of_the_wrong_type_is_refused_not_defaulted() {
    let _alone = common::one_model_run_at_a_time();
    for (key, value, needles) in [
        (
            "llama.rope.freq_base",
            Value::F64(500_000.0),
            &["llama.rope.freq_base", "type F64", "F32"][..],
        ),
        (
            "llama.rope.freq_base",
            Value::U32(10_000),
            &["llama.rope.freq_base", "type U32", "F32"][..],
        ),
        (
            "llama.rope.freq_base",
            Value::String("10000".into()),
            &["llama.rope.freq_base", "type STRING", "F32"][..],
        ),
        (
            "llama.context_length",
            Value::U64(8192),
            &["llama.context_length", "type U64", "U32"][..],
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::String("1e-5".into()),
            &[
                "llama.attention.layer_norm_rms_epsilon",
                "type STRING",
                "F32",
            ][..],
        ),
        (
            "general.alignment",
            Value::U64((1 << 32) + 32),
            &["general.alignment", "U32 power of two"][..],
        ),
    ] {
        assert_gguf_key_refused(key, value, needles);
    }
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn gguf_tensor_tables_that_do_not_describe_the_data_are_refused() {
    let _alone = common::one_model_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, edit: &dyn Fn(&mut llm_bench::gguf::Content)| {
        let path = dir.path().join(name);
        write_edited(&path, |c| edit(c));
        generate(path.to_str().unwrap(), &[])
    };
    // Every q4_1 tensor relabelled q4_0: each still fits in the file, but 18-byte blocks
    // where 20-byte ones are stored leave gaps between the tensors.
    let out = run("relabelled.gguf", &|c| {
        for info in c.tensor_infos.values_mut() {
            if info.ggml_dtype == llm_bench::format::GgmlDType::Q4_1 {
                info.ggml_dtype = llm_bench::format::GgmlDType::Q4_0;
            }
        }
    });
    assert_exit_2(
        &out,
        &[
            "relabelled.gguf",
            "leaving a gap",
            "does not describe the data",
        ],
    );
    // Every offset 0: the tensors overlap.
    let out = run("zeros.gguf", &|c| {
        for info in c.tensor_infos.values_mut() {
            info.offset = 0;
        }
    });
    assert_exit_2(
        &out,
        &["zeros.gguf", "overlaps", "does not describe the data"],
    );
    // Two tensors of different sizes trade offsets.
    let out = run("swapped.gguf", &|c| {
        let a = c.tensor_infos["blk.0.attn_q.weight"].offset;
        let b = c.tensor_infos["blk.0.ffn_up.weight"].offset;
        c.tensor_infos
            .get_mut("blk.0.attn_q.weight")
            .unwrap()
            .offset = b;
        c.tensor_infos
            .get_mut("blk.0.ffn_up.weight")
            .unwrap()
            .offset = a;
    });
    assert_exit_2(&out, &["swapped.gguf", "does not describe the data"]);
}

#[test]
fn config_json_fields_of_the_wrong_type_are_refused_not_defaulted() {
    for (key, value, needles) in [
        (
            "rope_theta",
            serde_json::json!("abc"),
            &["rope_theta", "\"abc\"", "a number"][..],
        ),
        (
            "rms_norm_eps",
            serde_json::json!("x"),
            &["rms_norm_eps", "a number"][..],
        ),
        (
            "max_position_embeddings",
            serde_json::json!("256"),
            &["max_position_embeddings", "\"256\"", "a whole number"][..],
        ),
        (
            "tie_word_embeddings",
            serde_json::json!("yes"),
            &["tie_word_embeddings", "true or false"][..],
        ),
        (
            "eos_token_id",
            serde_json::json!(["2", 3]),
            &["eos_token_id", "a token id"][..],
        ),
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
            &[
                "rope_scaling",
                "yarn",
                "only Llama 3.1's",
                "--engine llama-cpp",
            ][..],
        ),
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 1.0}),
            &["rope_scaling.high_freq_factor", "not above low_freq_factor"][..],
        ),
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "llama3", "factor": "8"}),
            &["rope_scaling.factor", "\"8\"", "a positive number"][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_llama(dir.path(), &tiny_config(257, 256));
        let mut config = tiny_config(257, 256);
        config[key] = value;
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let out = generate(dir.path().to_str().unwrap(), &[]);
        let mut all = vec!["config.json"];
        all.extend_from_slice(needles);
        assert_exit_2(&out, &all);
    }
    // Null is "not given": the default applies, as before.
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(257, 256);
    config["rope_scaling"] = serde_json::Value::Null;
    config["bos_token_id"] = serde_json::Value::Null;
    write_tiny_llama(dir.path(), &config);
    let out = generate(dir.path().to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn nan_weights_stop_the_request_instead_of_emitting_token_zero() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let file = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).unwrap();
    let norm = &tensors["model.norm.weight"];
    let nan = (norm.ones_like().unwrap() * f64::NAN).unwrap();
    tensors.insert("model.norm.weight".into(), nan);
    candle_core::safetensors::save(&tensors, &file).unwrap();
    for engine in ["candle", "tuned"] {
        let out = generate(dir.path().to_str().unwrap(), &["--engine", engine]);
        assert_exit_2(&out, &[engine, "the prefill", "NaN", "weights"]);
    }
    // Sampling too: not candle's "A weight is negative, too large or not a valid number".
    let out = generate(
        dir.path().to_str().unwrap(),
        &["--strategy", "temperature=0.7"],
    );
    assert_exit_2(&out, &["the prefill", "NaN", "weights"]);
    // run stops the format too, and its results hold no NaN.
    let out_dir = dir.path().join("results");
    let out = cli(
        &[
            "run",
            "--model",
            dir.path().to_str().unwrap(),
            "--quick",
            "--phases",
            "latency",
            "--no-bandwidth",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    let error = results["runs"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("logits hold NaN"), "{results}");
}

#[test]
fn a_single_generated_token_reports_decode_as_not_measured() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let model = dir.path().to_str().unwrap();
    let args = [
        "generate",
        "--model",
        model,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "1",
    ];
    let out = cli(&args, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decode n/a"), "{text}");
    assert!(!text.contains("decode 0.0"), "{text}");
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = cli(&json_args, &[]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(value["decode_tokens_per_s"].is_null(), "{value}");
}

#[test]
fn a_second_run_into_a_held_output_folder_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(&dir.path().join("model"), &tiny_config(257, 256));
    let out = dir.path().join("results");
    std::fs::create_dir_all(&out).unwrap();
    let held = llm_bench::fs::lock_output_dir(&out).unwrap();
    let model = dir.path().join("model");
    let args = [
        "run",
        "--model",
        model.to_str().unwrap(),
        "--quick",
        "--phases",
        "latency",
        "--no-bandwidth",
        "--out",
        out.to_str().unwrap(),
    ];
    let refused = cli(&args, &[]);
    assert_exit_2(
        &refused,
        &[
            "results",
            "another llm-bench run",
            &format!("pid {}", std::process::id()),
        ],
    );
    assert!(!out.join("results.json").exists());
    drop(held);
    let ran = cli(&args, &[]);
    assert!(ran.status.success(), "{}", common::stderr(&ran));
    assert!(out.join("results.json").is_file());
}

#[test]
fn what_the_engines_do_not_apply_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    // Llama 3.1's per-frequency RoPE factors, as a tensor after the others.
    let rope_freqs =
        common::gguf::tiny_llama_gguf_with(dir.path(), "rope-freqs", common::gguf::add_rope_freqs);
    let scaled = common::gguf::tiny_llama_gguf_with(dir.path(), "scaled", |content, _| {
        content.metadata.insert(
            "llama.rope.scaling.type".into(),
            Value::String("linear".into()),
        );
    });
    let plain = common::gguf::tiny_llama_gguf_with(dir.path(), "plain", |_, _| {});
    // The tuned engine applies Llama 3.1's factors (tests/it/llama_cpp.rs checks how); candle's
    // quantized Llama cannot.
    let out = generate(rope_freqs.to_str().unwrap(), &["--engine", "candle"]);
    assert_exit_2(
        &out,
        &[
            "rope-freqs.gguf",
            "tensor `rope_freqs.weight`",
            "the candle engine does not apply",
            "--engine tuned",
            "--engine llama-cpp",
        ],
    );
    let out = generate(rope_freqs.to_str().unwrap(), &["--engine", "tuned"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Another tensor inside a block that the family does not describe is refused by both.
    let stray = common::gguf::tiny_llama_gguf_with(dir.path(), "stray", |content, data| {
        common::gguf::add_rope_freqs(content, data);
        let info = content.tensor_infos.remove("rope_freqs.weight").unwrap();
        content
            .tensor_infos
            .insert("blk.0.attn_sinks.weight".into(), info);
    });
    for engine in ["candle", "tuned"] {
        let out = generate(stray.to_str().unwrap(), &["--engine", engine]);
        assert_exit_2(
            &out,
            &[
                "stray.gguf",
                "tensor `blk.0.attn_sinks.weight`",
                &format!("the {engine} engine does not apply"),
                "--engine llama-cpp",
            ],
        );
        let out = generate(scaled.to_str().unwrap(), &["--engine", engine]);
        assert_exit_2(
            &out,
            &["scaled.gguf", "llama.rope.scaling.type", "\"linear\""],
        );
        let out = generate(plain.to_str().unwrap(), &["--engine", engine]);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    // Metadata that changes the arithmetic: values or rotations narrower than the heads,
    // sliding windows, soft-capping.
    for (name, key, value, needle) in [
        (
            "value-length",
            "llama.attention.value_length",
            Value::U32(32),
            "= 32 (the engines use heads of 16)",
        ),
        (
            "rope-dims",
            "llama.rope.dimension_count",
            Value::U32(8),
            "= 8 (the engines use heads of 16)",
        ),
        (
            "window",
            "llama.attention.sliding_window",
            Value::U32(4096),
            "llama.attention.sliding_window",
        ),
        (
            "softcap",
            "llama.final_logit_softcapping",
            Value::F32(30.0),
            "llama.final_logit_softcapping",
        ),
    ] {
        let path = common::gguf::tiny_llama_gguf_with(dir.path(), name, |content, _| {
            content.metadata.insert(key.into(), value);
        });
        for engine in ["candle", "tuned"] {
            let out = generate(path.to_str().unwrap(), &["--engine", engine]);
            assert_exit_2(
                &out,
                &[&format!("{name}.gguf"), key, needle, "--engine llama-cpp"],
            );
        }
    }
    // A head size (`key_length`) the tensors do not have is a corrupt file to every engine.
    let path = common::gguf::tiny_llama_gguf_with(dir.path(), "key-length", |content, _| {
        content
            .metadata
            .insert("llama.attention.key_length".into(), Value::U32(32));
    });
    let out = generate(path.to_str().unwrap(), &["--engine", "tuned"]);
    assert_exit_2(
        &out,
        &[
            "key-length.gguf",
            "blk.0.attn_q.weight",
            "[64, 64]",
            "[128, 64]",
        ],
    );
    // The export would drop the tensor: refused too, and no file is left.
    let target = dir.path().join("re-exported.gguf");
    let out = cli(
        &[
            "export",
            stray.to_str().unwrap(),
            "--format",
            "q8_0",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_exit_2(&out, &["blk.0.attn_sinks.weight", "GGUF export"]);
    assert!(!target.exists());
}

/// A split llm-bench does not rebuild is never replaced by another: with the llama.cpp
/// engine built in, llama.cpp's own tokenizer reads it (for every engine, and results say
/// so); without it, it is refused by name.
#[test]
fn a_pre_tokenizer_llm_bench_cannot_rebuild_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let other_split =
        common::gguf::tiny_llama_gguf_with(dir.path(), "falcon-split", |content, _| {
            content
                .metadata
                .insert("tokenizer.ggml.pre".into(), Value::String("falcon".into()));
        });
    for engine in ["candle", "tuned"] {
        let out = generate(
            other_split.to_str().unwrap(),
            &["--engine", engine, "--json"],
        );
        if cfg!(feature = "llama-cpp") {
            assert!(out.status.success(), "{}", common::stderr(&out));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["tokenizer"], "llama.cpp:gpt2/falcon", "{report}");
            #[cfg(feature = "llama-cpp")]
            assert_eq!(
                common::ids(&report["prompt_tokens"]),
                llm_bench::engine::llama_cpp::tokenize(&other_split, &["hello"]).unwrap()[0]
            );
        } else {
            assert_exit_2(
                &out,
                &[
                    "falcon-split.gguf",
                    "tokenizer.ggml.pre",
                    "\"falcon\"",
                    "cannot rebuild",
                    "llama-bpe",
                    "--features llama-cpp",
                ],
            );
        }
    }
    // Tokenizer keys of the wrong GGUF type are refused, not replaced by defaults.
    for (key, value, found, expected) in [
        ("tokenizer.ggml.pre", Value::U32(7), "U32", "STRING"),
        ("tokenizer.ggml.eos_token_id", Value::I32(256), "I32", "U32"),
        ("tokenizer.ggml.add_bos_token", Value::U8(1), "U8", "BOOL"),
    ] {
        let name = key.replace('.', "-");
        let path = common::gguf::tiny_llama_gguf_with(dir.path(), &name, |content, _| {
            content.metadata.insert(key.into(), value);
        });
        let out = generate(path.to_str().unwrap(), &["--engine", "tuned"]);
        assert_exit_2(
            &out,
            &[
                &format!("{name}.gguf"),
                key,
                &format!("of type {found}"),
                &format!("as {expected}"),
            ],
        );
    }
}

#[test]
fn prompts_the_vocabulary_cannot_spell_or_the_weights_cannot_embed_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // A byte-level vocabulary without the two bytes of "é" (0xC3 0xA9, spelled "Ã" and "©").
    let no_e_acute = common::gguf::tiny_llama_gguf_with(dir.path(), "no-e-acute", |content, _| {
        let Some(Value::Array(tokens)) = content.metadata.get_mut("tokenizer.ggml.tokens") else {
            panic!("the export writes its vocabulary");
        };
        for (i, token) in tokens.iter_mut().enumerate() {
            if matches!(token, Value::String(t) if t == "Ã" || t == "©") {
                *token = Value::String(format!("<gone-{i}>"));
            }
        }
    });
    let out = cli(
        &[
            "generate",
            "--model",
            no_e_acute.to_str().unwrap(),
            "--prompt",
            "éé",
            "--max-new-tokens",
            "2",
        ],
        &[],
    );
    assert_exit_2(
        &out,
        &[
            "\"éé\"",
            "no token in the model's vocabulary",
            "byte fallback",
        ],
    );
    // A tokenizer of 257 tokens beside weights with an embedding of 100 rows: "h" would be
    // id 104, past the embedding (candle said "index-select invalid index").
    let small = dir.path().join("small-embedding");
    write_tiny_llama(&small, &tiny_config(100, 256));
    for engine in ["candle", "tuned"] {
        let out = generate(small.to_str().unwrap(), &["--engine", engine]);
        assert_exit_2(
            &out,
            &[
                "257 tokens",
                "only 100 rows",
                "does not belong to this model",
            ],
        );
    }
}

#[test]
fn a_huge_control_token_builds_the_tokenizer_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    // The end-of-text token (id 256, a control token) replaced by 100 KB of text.
    let huge = common::gguf::tiny_llama_gguf_with(dir.path(), "huge-control", |content, _| {
        let Some(Value::Array(tokens)) = content.metadata.get_mut("tokenizer.ggml.tokens") else {
            panic!("the export writes its vocabulary");
        };
        tokens[256] = Value::String("<|".to_string() + &"x".repeat(100_000) + "|>");
        let types = (0..257)
            .map(|i| Value::I32(if i == 256 { 3 } else { 1 }))
            .collect();
        content
            .metadata
            .insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    });
    let started = std::time::Instant::now();
    let out = generate(huge.to_str().unwrap(), &["--engine", "tuned"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn counts_no_run_could_finish_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 256));
    let model = dir.path().to_str().unwrap();
    for (flag, value) in [
        ("--prompts-per-point", "18446744073709551615"),
        ("--runs", "100000000"),
        ("--throughput-rounds", "18446744073709551615"),
    ] {
        let out_dir = dir.path().join("results");
        let out = cli(
            &[
                "run",
                "--model",
                model,
                flag,
                value,
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[],
        );
        assert_exit_2(&out, &[flag, "requests", "at most 100000"]);
        assert!(!out_dir.exists(), "{flag}: an output folder was made");
    }
}
