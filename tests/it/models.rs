//! Loading paths end to end: the default chain, synthetic twins, batches, formats.

use crate::common;

use common::{cli, stderr, tiny_config, write_tiny_llama};
use llm_bench::generate::{generate, Request, Strategy};
use llm_bench::source::WeightsKind;
use llm_bench::ModelSpec;

fn request(prompt: &str, tokens: usize, batch: usize) -> Request {
    Request {
        prompt: prompt.into(),
        max_new_tokens: tokens,
        min_new_tokens: tokens,
        strategy: Strategy::Greedy,
        seed: 7,
        batch,
    }
}

#[test]
fn default_model_falls_back_to_the_synthetic_twin_and_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let out = cli(
        &[
            "generate",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "2",
            "--json",
        ],
        &[
            ("LLM_BENCH_MODELS_DIR", empty.path().to_str().unwrap()),
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HF_HOME", empty.path().to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["weights"], "synthetic");
    assert_eq!(json["model"], "synthetic:smollm2-135m");
    let err = stderr(&out);
    assert!(
        err.contains("no default model found") && err.contains("scripts/fetch-model"),
        "{err}"
    );
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn batched_greedy_sequences_match_the_single_sequence() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let path = llm_bench::defaults::default_gguf_path();
    let mut model = llm_bench::load(&ModelSpec::Gguf(path), None).unwrap();
    let single = generate(
        &mut model,
        &request("The capital of France is", 6, 1),
        |_, _| {},
    )
    .unwrap();
    let batch = generate(
        &mut model,
        &request("The capital of France is", 6, 3),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(batch.output_tokens.len(), 3);
    for seq in &batch.output_tokens {
        assert_eq!(seq, &single.output_tokens[0]);
    }
    assert!(batch.decode_tokens_per_s() > batch.decode_tokens_per_s_per_sequence());
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn seeded_sampling_is_reproducible_and_seeds_differ() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let path = llm_bench::defaults::default_gguf_path();
    let mut model = llm_bench::load(&ModelSpec::Gguf(path), None).unwrap();
    let mut sampled = |seed: u64| {
        let mut r = request("Write a short poem about the sea.", 12, 1);
        r.strategy = Strategy::Temperature { temperature: 1.5 };
        r.seed = seed;
        generate(&mut model, &r, |_, _| {}).unwrap().output_tokens[0].clone()
    };
    let (a, b, c) = (sampled(1), sampled(1), sampled(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn local_folder_runs_dense_and_quantized_from_the_same_safetensors() {
    llm_bench::system::configure_threads(None);
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 128));
    let spec = ModelSpec::LocalDir(dir.path().into());
    for (format, engine) in [
        ("f32", "dense"),
        ("bf16", "dense"),
        ("q8_0", "quantized"),
        ("q4_0", "quantized"),
    ] {
        let mut model = llm_bench::load(&spec, Some(format.parse().unwrap())).unwrap();
        assert_eq!(
            (
                model.info.engine.name.as_str(),
                model.info.engine.detail.as_str()
            ),
            ("candle", engine)
        );
        assert_eq!(model.info.weights, WeightsKind::Real);
        let trace = generate(&mut model, &request("abc", 4, 1), |_, _| {}).unwrap();
        assert_eq!(trace.output_tokens[0].len(), 4, "{format}");
    }
}

/// Quantize-on-load keeps the same model: the tiny model's greedy tokens at q8_0 match f32.
#[test]
fn quantized_on_load_tracks_the_dense_model() {
    llm_bench::system::configure_threads(None);
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 128));
    let spec = ModelSpec::LocalDir(dir.path().into());
    let mut logits = vec![];
    for format in ["f32", "q8_0"] {
        let mut model = llm_bench::load(&spec, Some(format.parse().unwrap())).unwrap();
        let ids = model.tokenizer.encode("hello world").unwrap();
        let l = model.engine.prefill(&[ids]).unwrap();
        logits.push(l.data.clone());
    }
    let (a, b) = (&logits[0], &logits[1]);
    let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt();
    assert!(
        diff / norm < 0.05,
        "q8_0 logits differ from f32 by {:.3} relative",
        diff / norm
    );
}

/// Sources read the rows asked for alone (GGUF: their blocks, dequantized; safetensors: their
/// bytes) and give what the whole tensor, loaded by candle, holds in those rows: RoPE-permuted
/// rows back in Hugging Face's order (ranges that start and end inside a head too), the
/// embedding, a norm.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn sources_read_any_rows_as_the_whole_tensor_holds_them() {
    let _alone = common::one_model_run_at_a_time();
    use candle_core::Device;
    use llm_bench::source::{resolve, Weights};
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(257, 128));
    let gguf = llm_bench::defaults::default_gguf_path();
    assert!(gguf.is_file(), "run scripts/fetch-model first");
    for spec in [
        ModelSpec::Gguf(gguf),
        ModelSpec::LocalDir(dir.path().into()),
    ] {
        let resolved = resolve(&spec).unwrap();
        let head_dim = resolved.config.head_dim();
        let tensors = resolved.family.tensors(&resolved.config);
        let source = resolved.weights.as_source();
        for name in ["attn_q", "attn_k", "token_embd", "ffn_down", "attn_norm"] {
            let t = tensors
                .iter()
                .find(|t| {
                    t.gguf_name.starts_with(name) || t.gguf_name == format!("blk.0.{name}.weight")
                })
                .unwrap();
            let cols = t.cols();
            let whole: Vec<f32> = match &resolved.weights {
                Weights::Gguf(w) => {
                    // candle's own reader, independent of llm-bench's.
                    let mut file = std::fs::File::open(&w.path).unwrap();
                    let content =
                        candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
                    let q = content
                        .tensor(&mut file, &t.gguf_name, &Device::Cpu)
                        .unwrap();
                    let data = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
                    let data = data.to_vec1().unwrap();
                    match t.rope_permuted_heads {
                        Some(_) => llm_bench::family::permute_rows_to_hf(&data, cols, head_dim),
                        None => data,
                    }
                }
                Weights::Safetensors(w) => {
                    let tensor = w.tensors.load(&t.hf_name, &Device::Cpu).unwrap();
                    let tensor = tensor.to_dtype(candle_core::DType::F32).unwrap();
                    tensor.flatten_all().unwrap().to_vec1().unwrap()
                }
                Weights::Synthetic(_) => unreachable!(),
            };
            let rows = t.rows();
            let ranges = [0..rows, 0..1, rows / 3..rows - rows / 4, rows - 1..rows];
            let ranges = ranges
                .into_iter()
                .chain((head_dim < rows).then(|| head_dim / 2 + 1..head_dim + 3));
            for range in ranges {
                let got = source.rows(t, range.clone()).unwrap();
                assert!(
                    got == whole[range.start * cols..range.end * cols],
                    "{spec}: {} rows {range:?}",
                    t.gguf_name
                );
            }
        }
    }
}
