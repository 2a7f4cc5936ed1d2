//! The Llama family: Llama 2/3, SmolLM, TinyLlama and Mistral-style models without sliding
//! windows: its configuration keys, GGUF metadata and tensor names.

use super::{Family, ModelConfig, TensorRole, TensorSpec};
use candle_core::quantized::gguf_file::{Content, Value};

pub static LLAMA: Family = Family {
    name: "llama",
    hf_model_types: &["llama", "mistral"],
    config_from_hf,
    config_from_gguf,
    hf_keys: &[
        ("vocab_size", "vocab_size"),
        ("hidden_size", "hidden_size"),
        ("intermediate_size", "intermediate_size"),
        ("num_layers", "num_hidden_layers"),
        ("num_heads", "num_attention_heads"),
        ("num_kv_heads", "num_key_value_heads"),
        ("max_position_embeddings", "max_position_embeddings"),
        ("rope_theta", "rope_theta"),
        ("rms_norm_eps", "rms_norm_eps"),
        ("bos_token_id", "bos_token_id"),
        ("eos_token_ids", "eos_token_id"),
    ],
    gguf_keys: &[
        ("vocab_size", "token_embd.weight (rows)"),
        ("hidden_size", "llama.embedding_length"),
        ("intermediate_size", "llama.feed_forward_length"),
        ("num_layers", "llama.block_count"),
        ("num_heads", "llama.attention.head_count"),
        ("num_kv_heads", "llama.attention.head_count_kv"),
        ("max_position_embeddings", "llama.context_length"),
        ("rope_theta", "llama.rope.freq_base"),
        ("rms_norm_eps", "llama.attention.layer_norm_rms_epsilon"),
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_ids", "tokenizer.ggml.eos_token_id"),
    ],
    gguf_metadata,
    tensors,
};

fn config_from_hf(json: &serde_json::Value) -> std::result::Result<ModelConfig, String> {
    let usize_field = |key: &str| -> std::result::Result<usize, String> {
        json.get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| format!("field `{key}` is missing or not a whole number"))
    };
    if json.get("sliding_window").is_some_and(|v| !v.is_null()) {
        // Mistral's sliding window changes attention; candle's Llama does not implement it.
        // Timing-wise it only matters past the window (4096 tokens), so accept and say nothing.
    }
    let num_heads = usize_field("num_attention_heads")?;
    let eos_token_ids = match json.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(|v| vec![v])
            .unwrap_or_default(),
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .filter_map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
            .collect(),
        _ => vec![],
    };
    Ok(ModelConfig {
        architecture: LLAMA.name,
        vocab_size: usize_field("vocab_size")?,
        hidden_size: usize_field("hidden_size")?,
        intermediate_size: usize_field("intermediate_size")?,
        num_layers: usize_field("num_hidden_layers")?,
        num_heads,
        num_kv_heads: usize_field("num_key_value_heads").unwrap_or(num_heads),
        max_position_embeddings: usize_field("max_position_embeddings").unwrap_or(4096),
        rope_theta: json
            .get("rope_theta")
            .and_then(|v| v.as_f64())
            .unwrap_or(10_000.0) as f32,
        rms_norm_eps: json
            .get("rms_norm_eps")
            .and_then(|v| v.as_f64())
            .unwrap_or(1e-5),
        tie_word_embeddings: json
            .get("tie_word_embeddings")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        bos_token_id: json
            .get("bos_token_id")
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok()),
        eos_token_ids,
    })
}

fn config_from_gguf(content: &Content) -> std::result::Result<ModelConfig, String> {
    let md = &content.metadata;
    let get = |key: &str| {
        md.get(key)
            .ok_or_else(|| format!("metadata key `{key}` is missing"))
    };
    let usize_key = |key: &str| -> std::result::Result<usize, String> {
        get(key)?
            .to_u32()
            .map(|v| v as usize)
            .map_err(|e| format!("metadata key `{key}`: {e}"))
    };
    let vocab_size = match content.tensor_infos.get("token_embd.weight") {
        Some(info) => info.shape.dims()[0],
        None => return Err("tensor `token_embd.weight` is missing".into()),
    };
    let num_heads = usize_key("llama.attention.head_count")?;
    Ok(ModelConfig {
        architecture: LLAMA.name,
        vocab_size,
        hidden_size: usize_key("llama.embedding_length")?,
        intermediate_size: usize_key("llama.feed_forward_length")?,
        num_layers: usize_key("llama.block_count")?,
        num_heads,
        num_kv_heads: usize_key("llama.attention.head_count_kv").unwrap_or(num_heads),
        max_position_embeddings: usize_key("llama.context_length").unwrap_or(4096),
        rope_theta: md
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0),
        rms_norm_eps: md
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5) as f64,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
        bos_token_id: md
            .get("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.to_u32().ok()),
        eos_token_ids: md
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
            .into_iter()
            .collect(),
    })
}

fn gguf_metadata(cfg: &ModelConfig) -> Vec<(String, Value)> {
    let u32v = |v: usize| Value::U32(v as u32);
    vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.attention.head_count".into(), u32v(cfg.num_heads)),
        (
            "llama.attention.head_count_kv".into(),
            u32v(cfg.num_kv_heads),
        ),
        ("llama.block_count".into(), u32v(cfg.num_layers)),
        ("llama.embedding_length".into(), u32v(cfg.hidden_size)),
        (
            "llama.feed_forward_length".into(),
            u32v(cfg.intermediate_size),
        ),
        (
            "llama.context_length".into(),
            u32v(cfg.max_position_embeddings),
        ),
        ("llama.rope.dimension_count".into(), u32v(cfg.head_dim())),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(cfg.rms_norm_eps as f32),
        ),
        ("llama.rope.freq_base".into(), Value::F32(cfg.rope_theta)),
    ]
}

fn tensors(cfg: &ModelConfig) -> Vec<TensorSpec> {
    let t = |hf: String, gguf: String, shape: Vec<usize>, role, permuted| TensorSpec {
        hf_name: hf,
        gguf_name: gguf,
        shape,
        role,
        rope_permuted_heads: permuted,
    };
    let (h, hd, ffn) = (cfg.hidden_size, cfg.head_dim(), cfg.intermediate_size);
    let mut specs = vec![t(
        "model.embed_tokens.weight".into(),
        "token_embd.weight".into(),
        vec![cfg.vocab_size, h],
        TensorRole::Embedding,
        None,
    )];
    for i in 0..cfg.num_layers {
        let (hf, gg) = (format!("model.layers.{i}"), format!("blk.{i}"));
        let m = TensorRole::Matmul;
        specs.extend([
            t(
                format!("{hf}.self_attn.q_proj.weight"),
                format!("{gg}.attn_q.weight"),
                vec![cfg.num_heads * hd, h],
                m,
                Some(cfg.num_heads),
            ),
            t(
                format!("{hf}.self_attn.k_proj.weight"),
                format!("{gg}.attn_k.weight"),
                vec![cfg.num_kv_heads * hd, h],
                m,
                Some(cfg.num_kv_heads),
            ),
            t(
                format!("{hf}.self_attn.v_proj.weight"),
                format!("{gg}.attn_v.weight"),
                vec![cfg.num_kv_heads * hd, h],
                m,
                None,
            ),
            t(
                format!("{hf}.self_attn.o_proj.weight"),
                format!("{gg}.attn_output.weight"),
                vec![h, cfg.num_heads * hd],
                m,
                None,
            ),
            t(
                format!("{hf}.mlp.gate_proj.weight"),
                format!("{gg}.ffn_gate.weight"),
                vec![ffn, h],
                m,
                None,
            ),
            t(
                format!("{hf}.mlp.up_proj.weight"),
                format!("{gg}.ffn_up.weight"),
                vec![ffn, h],
                m,
                None,
            ),
            t(
                format!("{hf}.mlp.down_proj.weight"),
                format!("{gg}.ffn_down.weight"),
                vec![h, ffn],
                m,
                None,
            ),
            t(
                format!("{hf}.input_layernorm.weight"),
                format!("{gg}.attn_norm.weight"),
                vec![h],
                TensorRole::Norm,
                None,
            ),
            t(
                format!("{hf}.post_attention_layernorm.weight"),
                format!("{gg}.ffn_norm.weight"),
                vec![h],
                TensorRole::Norm,
                None,
            ),
        ]);
    }
    specs.push(t(
        "model.norm.weight".into(),
        "output_norm.weight".into(),
        vec![h],
        TensorRole::Norm,
        None,
    ));
    if !cfg.tie_word_embeddings {
        specs.push(t(
            "lm_head.weight".into(),
            "output.weight".into(),
            vec![cfg.vocab_size, h],
            TensorRole::Matmul,
            None,
        ));
    }
    specs
}
