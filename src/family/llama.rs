//! The Llama family: Llama 2/3/3.1-3.3, SmolLM, TinyLlama and Mistral-style models without
//! sliding windows. The plain decoder: no biases, RoPE on adjacent pairs of permuted rows.

use super::{Family, Options, RopeStyle};

/// Llama 2/3 and Mistral (`llama` in GGUF).
pub static LLAMA: Family = Family {
    name: "llama",
    hf_model_types: &["llama", "mistral"],
    options: Options {
        qkv_bias: false,
        qk_norm: false,
        rope: RopeStyle::Normal,
    },
    described: true,
};
