//! The pre-norm decoder every supported family is (Llama, Qwen2, Qwen3): its configuration keys, GGUF
//! metadata and tensor names, read and written for one [`Family`] by its name and
//! [`Options`](super::Options). A family's file holds only what sets it apart.

use super::{Family, ModelConfig, RopeStyle, TensorRole, TensorSpec};
use crate::gguf::{Content, Value};

/// `config.json` keys of the [`ModelConfig`] fields, the same for every family.
pub const HF_KEYS: super::KeyNames = &[
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
    ("rope_freq_factors", "rope_scaling"),
    ("head_size", "head_dim"),
];

/// GGUF keys of the [`ModelConfig`] fields; `{arch}` stands for the family's name.
pub const GGUF_KEYS: super::KeyNames = &[
    ("vocab_size", "token_embd.weight (rows)"),
    ("hidden_size", "{arch}.embedding_length"),
    ("intermediate_size", "{arch}.feed_forward_length"),
    ("num_layers", "{arch}.block_count"),
    ("num_heads", "{arch}.attention.head_count"),
    ("num_kv_heads", "{arch}.attention.head_count_kv"),
    ("max_position_embeddings", "{arch}.context_length"),
    ("rope_theta", "{arch}.rope.freq_base"),
    ("rms_norm_eps", "{arch}.attention.layer_norm_rms_epsilon"),
    ("bos_token_id", "tokenizer.ggml.bos_token_id"),
    ("eos_token_ids", "tokenizer.ggml.eos_token_id"),
    ("rope_freq_factors", "rope_freqs.weight"),
    ("head_size", "{arch}.attention.key_length"),
];

/// `family`'s config from a Hugging Face `config.json`.
pub fn config_from_hf(
    family: &'static Family,
    json: &serde_json::Value,
) -> std::result::Result<ModelConfig, String> {
    let usize_field = |key: &str| -> std::result::Result<usize, String> {
        json.get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| format!("field `{key}` is missing or not a whole number"))
    };
    // An optional field is absent or null (the default applies), or of its type; a value of
    // another type is refused, never replaced by the default.
    let optional = |key: &str| json.get(key).filter(|v| !v.is_null());
    let wrong = |key: &str, v: &serde_json::Value, expected: &str| {
        format!("field `{key}` is {v}; expected {expected}")
    };
    let optional_usize = |key: &str| -> std::result::Result<Option<usize>, String> {
        optional(key)
            .map(|v| {
                v.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| wrong(key, v, "a whole number"))
            })
            .transpose()
    };
    let optional_f64 = |key: &str| -> std::result::Result<Option<f64>, String> {
        optional(key)
            .map(|v| v.as_f64().ok_or_else(|| wrong(key, v, "a number")))
            .transpose()
    };
    let token_id = |key: &str, v: &serde_json::Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| wrong(key, v, "a token id"))
    };
    // Sliding-window attention changes which positions a token sees: not computed.
    if let Some(v) = optional("use_sliding_window").filter(|v| v.as_bool() != Some(false)) {
        return Err(format!(
            "field `use_sliding_window` is {v}: llm-bench's engines attend over the whole \
             context, so they would run a different model; run the GGUF file on --engine llama-cpp"
        ));
    }
    let num_heads = usize_field("num_attention_heads")?;
    let hidden_size = usize_field("hidden_size")?;
    let rope_theta = optional_f64("rope_theta")?.unwrap_or(10_000.0);
    let head_size = set_head_size(optional_usize("head_dim")?, hidden_size, num_heads);
    let head_dim = head_size.unwrap_or(hidden_size / num_heads.max(1));
    let rope_freq_factors = optional("rope_scaling")
        .map(llama3_scaling)
        .transpose()?
        .flatten()
        .map(|scaling| scaling.factors(head_dim, rope_theta));
    let eos_token_ids = match optional("eos_token_id") {
        None => vec![],
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .map(|v| token_id("eos_token_id", v))
            .collect::<std::result::Result<_, _>>()?,
        Some(v) => vec![token_id("eos_token_id", v)?],
    };
    Ok(ModelConfig {
        architecture: family.name,
        vocab_size: usize_field("vocab_size")?,
        hidden_size,
        intermediate_size: usize_field("intermediate_size")?,
        num_layers: usize_field("num_hidden_layers")?,
        num_heads,
        num_kv_heads: optional_usize("num_key_value_heads")?.unwrap_or(num_heads),
        max_position_embeddings: optional_usize("max_position_embeddings")?.unwrap_or(4096),
        rope_theta: rope_theta as f32,
        rms_norm_eps: optional_f64("rms_norm_eps")?.unwrap_or(1e-5),
        tie_word_embeddings: optional("tie_word_embeddings")
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| wrong("tie_word_embeddings", v, "true or false"))
            })
            .transpose()?
            .unwrap_or(false),
        bos_token_id: optional("bos_token_id")
            .map(|v| token_id("bos_token_id", v))
            .transpose()?,
        eos_token_ids,
        rope_freq_factors,
        head_size,
    })
}

/// A head size given by the file, kept only where it is not hidden size / heads (so a Llama
/// whose `config.json` spells out `head_dim` reads as one that does not).
fn set_head_size(given: Option<usize>, hidden: usize, heads: usize) -> Option<usize> {
    given.filter(|&n| heads == 0 || !hidden.is_multiple_of(heads) || n != hidden / heads)
}

/// A `config.json`'s `rope_scaling`: Llama 3.1's `llama3` type, `None` for `default`; any
/// other type (linear, dynamic, yarn, longrope) changes the model in a way llm-bench does not
/// compute, and is refused rather than ignored.
fn llama3_scaling(
    scaling: &serde_json::Value,
) -> std::result::Result<Option<super::Llama3RopeScaling>, String> {
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(|v| v.as_str());
    match kind {
        Some("default") => return Ok(None),
        Some("llama3") => {}
        _ => {
            return Err(format!(
                "field `rope_scaling` is {scaling}: llm-bench applies only Llama 3.1's \
                 `rope_type: llama3`, so it would run a different model; run the GGUF file \
                 on --engine llama-cpp"
            ))
        }
    }
    let number = |key: &str, default: f64| -> std::result::Result<f64, String> {
        match scaling.get(key).filter(|v| !v.is_null()) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    format!("field `rope_scaling.{key}` is {v}; expected a positive number")
                }),
        }
    };
    // The defaults are the converter's (llama.cpp's convert_hf_to_gguf.py).
    let scaling = super::Llama3RopeScaling {
        factor: number("factor", 8.0)?,
        low_freq_factor: number("low_freq_factor", 1.0)?,
        high_freq_factor: number("high_freq_factor", 4.0)?,
        original_max_position_embeddings: number("original_max_position_embeddings", 8192.0)?,
    };
    if scaling.high_freq_factor <= scaling.low_freq_factor {
        return Err(format!(
            "field `rope_scaling.high_freq_factor` is {}, not above low_freq_factor {}",
            scaling.high_freq_factor, scaling.low_freq_factor
        ));
    }
    Ok(Some(scaling))
}

/// `family`'s config from GGUF metadata (its keys prefixed by the family's name).
pub fn config_from_gguf(
    family: &'static Family,
    content: &Content,
) -> std::result::Result<ModelConfig, String> {
    let md = &content.metadata;
    let arch = |key: &str| format!("{}.{key}", family.name);
    let get = |key: &str| {
        md.get(key)
            .ok_or_else(|| format!("metadata key `{key}` is missing"))
    };
    let usize_key = |key: &str| -> std::result::Result<usize, String> {
        let v = get(key)?;
        v.to_u32()
            .map(|v| v as usize)
            .map_err(|_| super::wrong_gguf_type(key, v, "U32"))
    };
    // An optional key is absent (the default applies) or of the type GGUF gives it; a value
    // of another type is refused as llama.cpp refuses it, never replaced by the default.
    let optional_u32 = |key: &str| -> std::result::Result<Option<u32>, String> {
        md.get(key)
            .map(|v| {
                v.to_u32()
                    .map_err(|_| super::wrong_gguf_type(key, v, "U32"))
            })
            .transpose()
    };
    let optional_f32 = |key: &str| -> std::result::Result<Option<f32>, String> {
        md.get(key)
            .map(|v| {
                v.to_f32()
                    .map_err(|_| super::wrong_gguf_type(key, v, "F32"))
            })
            .transpose()
    };
    let vocab_size = match content.tensor_infos.get("token_embd.weight") {
        Some(info) => info.shape.dims()[0],
        None => return Err("tensor `token_embd.weight` is missing".into()),
    };
    let num_heads = usize_key(&arch("attention.head_count"))?;
    let hidden_size = usize_key(&arch("embedding_length"))?;
    let key_length = optional_u32(&arch("attention.key_length"))?.map(|n| n as usize);
    Ok(ModelConfig {
        architecture: family.name,
        vocab_size,
        hidden_size,
        intermediate_size: usize_key(&arch("feed_forward_length"))?,
        num_layers: usize_key(&arch("block_count"))?,
        num_heads,
        num_kv_heads: optional_u32(&arch("attention.head_count_kv"))?
            .map_or(num_heads, |v| v as usize),
        max_position_embeddings: optional_u32(&arch("context_length"))?
            .map_or(4096, |v| v as usize),
        rope_theta: optional_f32(&arch("rope.freq_base"))?.unwrap_or(10_000.0),
        rms_norm_eps: optional_f32(&arch("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5)
            as f64,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
        bos_token_id: optional_u32("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: optional_u32("tokenizer.ggml.eos_token_id")?
            .into_iter()
            .collect(),
        // Read from the tensor data by the GGUF source.
        rope_freq_factors: None,
        head_size: set_head_size(key_length, hidden_size, num_heads),
    })
}

/// The GGUF metadata llama.cpp reads for `family`'s config.
pub fn gguf_metadata(family: &Family, cfg: &ModelConfig) -> Vec<(String, Value)> {
    let u32v = |v: usize| Value::U32(v as u32);
    let arch = |key: &str| format!("{}.{key}", family.name);
    vec![
        (
            "general.architecture".into(),
            Value::String(family.name.into()),
        ),
        (arch("attention.head_count"), u32v(cfg.num_heads)),
        (arch("attention.head_count_kv"), u32v(cfg.num_kv_heads)),
        (arch("block_count"), u32v(cfg.num_layers)),
        (arch("embedding_length"), u32v(cfg.hidden_size)),
        (arch("feed_forward_length"), u32v(cfg.intermediate_size)),
        (arch("context_length"), u32v(cfg.max_position_embeddings)),
        (arch("rope.dimension_count"), u32v(cfg.head_dim())),
        (arch("attention.key_length"), u32v(cfg.head_dim())),
        (arch("attention.value_length"), u32v(cfg.head_dim())),
        (
            arch("attention.layer_norm_rms_epsilon"),
            Value::F32(cfg.rms_norm_eps as f32),
        ),
        (arch("rope.freq_base"), Value::F32(cfg.rope_theta)),
    ]
}

/// Every tensor of `family`'s model of `cfg`, named both ways.
pub fn tensors(family: &Family, cfg: &ModelConfig) -> Vec<TensorSpec> {
    let t = |hf: String, gguf: String, shape: Vec<usize>, role, permuted| TensorSpec {
        hf_name: hf,
        gguf_name: gguf,
        shape,
        role,
        rope_permuted_heads: permuted,
    };
    let (h, hd, ffn) = (cfg.hidden_size, cfg.head_dim(), cfg.intermediate_size);
    // Only llama's converter permutes q/k rows (for its adjacent-pair RoPE); NEOX-style
    // families keep Hugging Face's order.
    let permuted = |heads: usize| (family.options.rope == RopeStyle::Normal).then_some(heads);
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
                permuted(cfg.num_heads),
            ),
            t(
                format!("{hf}.self_attn.k_proj.weight"),
                format!("{gg}.attn_k.weight"),
                vec![cfg.num_kv_heads * hd, h],
                m,
                permuted(cfg.num_kv_heads),
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
        if family.options.qk_norm {
            for (proj, gguf) in [("q_norm", "attn_q_norm"), ("k_norm", "attn_k_norm")] {
                specs.push(t(
                    format!("{hf}.self_attn.{proj}.weight"),
                    format!("{gg}.{gguf}.weight"),
                    vec![hd],
                    TensorRole::Norm,
                    None,
                ));
            }
        }
        if family.options.qkv_bias {
            for (proj, gguf, width) in [
                ("q_proj", "attn_q", cfg.num_heads * hd),
                ("k_proj", "attn_k", cfg.num_kv_heads * hd),
                ("v_proj", "attn_v", cfg.num_kv_heads * hd),
            ] {
                specs.push(t(
                    format!("{hf}.self_attn.{proj}.bias"),
                    format!("{gg}.{gguf}.bias"),
                    vec![width],
                    TensorRole::Bias,
                    None,
                ));
            }
        }
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
