//! The Qwen2 family: Qwen2 and Qwen2.5. The Llama decoder with biases on the q, k and v
//! projections and GPT-NeoX's RoPE (rows in Hugging Face's order).

use super::{Family, Options, RopeStyle};

/// Qwen2 and Qwen2.5 (`qwen2` in GGUF).
pub static QWEN2: Family = Family {
    name: "qwen2",
    hf_model_types: &["qwen2"],
    options: Options {
        qkv_bias: true,
        qk_norm: false,
        rope: RopeStyle::Neox,
    },
    described: true,
};
