//! The Qwen3 family (dense): the Llama decoder with each query and key head RMS-normed before
//! GPT-NeoX's RoPE, no biases, and heads of 128 whatever the hidden size.

use super::{Family, Options, RopeStyle};

/// Qwen3 (`qwen3` in GGUF).
pub static QWEN3: Family = Family {
    name: "qwen3",
    hf_model_types: &["qwen3"],
    options: Options {
        qkv_bias: false,
        qk_norm: true,
        rope: RopeStyle::Neox,
    },
    described: true,
};
