//! Checks against independent truth: llama.cpp's token ids for the same GGUF file and
//! prompts (fixtures/reference, made by scripts/reference/make-fixtures.py).

use crate::common;

use common::{fixture, ids};
use llm_bench::generate::{generate, Request, Strategy};
use llm_bench::{ModelSpec, WeightFormat};
use serde_json::Value;

fn default_gguf() -> ModelSpec {
    let path = llm_bench::defaults::default_gguf_path();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model first (scripts/test does)",
        path.display()
    );
    ModelSpec::Gguf(path)
}

fn greedy(model: &mut llm_bench::Model, prompt: &str, tokens: usize) -> (Vec<u32>, Vec<u32>) {
    let request = Request {
        prompt: prompt.into(),
        max_new_tokens: tokens,
        min_new_tokens: 0,
        strategy: Strategy::Greedy,
        seed: 0,
        batch: 1,
    };
    let trace = generate(model, &request, |_, _| {}).unwrap();
    (trace.prompt_tokens, trace.output_tokens[0].clone())
}

fn agreeing_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn greedy_output_matches_llama_cpp_where_it_agreed() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let mut model = llm_bench::load(&default_gguf(), None).unwrap();
    let cases = fixture("smollm2-greedy.json");
    let mut long_agreements = 0;
    for case in cases["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let reference = ids(&case["output_tokens"]);
        let agreed = case["candle_agrees_for"].as_u64().unwrap() as usize;
        let (prompt_ids, output) = greedy(&mut model, prompt, reference.len());
        assert_eq!(
            prompt_ids,
            ids(&case["prompt_tokens"]),
            "prompt ids for {prompt:?}"
        );
        let now = agreeing_prefix(&output, &reference);
        assert!(
            now >= agreed,
            "{prompt:?}: agrees with llama.cpp for {now} tokens, fixture recorded {agreed}\nours   {output:?}\nllama  {reference:?}"
        );
        if now >= 16 {
            long_agreements += 1;
        }
    }
    assert!(
        long_agreements >= 3,
        "only {long_agreements} prompts agree for 16+ tokens"
    );
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn gguf_tokenizer_encodes_like_llama_cpp() {
    let _alone = common::one_model_run_at_a_time();
    let spec = default_gguf();
    let ModelSpec::Gguf(path) = &spec else {
        unreachable!()
    };
    let (content, _) = llm_bench::source::gguf::read_content(path).unwrap();
    let tokenizer = llm_bench::tokenizer::TextTokenizer::from_gguf(&content, path).unwrap();
    let cases = fixture("smollm2-tokenizer.json");
    let mut mismatches = vec![];
    for case in cases["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected = ids(&case["ids"]);
        let got = tokenizer.encode(text).unwrap();
        if got != expected {
            mismatches.push(format!(
                "{text:?}\n  llama.cpp {expected:?}\n  ours      {got:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(cases["cases"].as_array().unwrap().len() >= 10);
}

/// The dense f32 path un-permutes GGUF's q/k rows for candle's rotate-half RoPE; if that
/// were wrong the text would be garbage from the first token.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn dense_f32_from_gguf_agrees_with_llama_cpp() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let f32: WeightFormat = "f32".parse().unwrap();
    let mut model = llm_bench::load(&default_gguf(), Some(f32)).unwrap();
    assert_eq!(model.info.engine.detail, "dense");
    let case = &fixture("smollm2-greedy.json")["cases"][0];
    let reference = ids(&case["output_tokens"]);
    let (_, output) = greedy(&mut model, case["prompt"].as_str().unwrap(), 8);
    assert!(
        agreeing_prefix(&output, &reference) >= 4,
        "ours {output:?} llama.cpp {reference:?}"
    );
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn requantized_q8_0_still_answers_paris() {
    let _alone = common::one_model_run_at_a_time();
    llm_bench::system::configure_threads(None);
    let mut model = llm_bench::load(&default_gguf(), Some("q8_0".parse().unwrap())).unwrap();
    let (_, output) = greedy(&mut model, "The capital of France is", 4);
    let text = model.tokenizer.decode(&output).unwrap();
    assert!(text.contains("Paris"), "{text:?}");
    assert_eq!(model.info.format, "q8_0");
}

#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn cli_generate_json_answers_paris() {
    let _alone = common::one_model_run_at_a_time();
    let spec = default_gguf();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args([
            "generate",
            "--model",
            &spec.to_string(),
            "--prompt",
            "The capital of France is",
            "--max-new-tokens",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["text"].as_str().unwrap().contains("Paris"), "{json}");
    assert_eq!(json["weights"], "real");
    assert_eq!(json["format"], "q4_1");
    assert_eq!(json["output_tokens"].as_array().unwrap().len(), 8);
    assert_eq!(json["itl_ms"].as_array().unwrap().len(), 7);
    for key in [
        "ttft_ms",
        "e2e_ms",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "threads",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key} in {json}");
    }
    assert!(json["e2e_ms"].as_f64() > json["ttft_ms"].as_f64());
}
