//! candle-transformers' dense Qwen2 (`qwen2::ModelForCausalLM`); its quantized one is in
//! `quantized`.

use super::CandleModel;
use crate::error::Result;
use crate::family::ModelConfig;
use candle_core::{DType, Tensor};
use candle_nn::Activation;
use candle_nn::VarBuilder;
use candle_transformers::models::qwen2;

fn candle_config(cfg: &ModelConfig) -> qwen2::Config {
    qwen2::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        num_key_value_heads: cfg.num_kv_heads,
        max_position_embeddings: cfg.max_position_embeddings,
        // Sliding windows are refused when the config is read: attention is over everything.
        sliding_window: cfg.max_position_embeddings,
        max_window_layers: cfg.num_layers,
        tie_word_embeddings: cfg.tie_word_embeddings,
        rope_theta: cfg.rope_theta.into(),
        rms_norm_eps: cfg.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: Activation::Silu,
    }
}

struct DenseQwen2 {
    model: qwen2::ModelForCausalLM,
    position: usize,
    batch: usize,
}

pub(super) fn build_dense(vb: VarBuilder, cfg: &ModelConfig) -> Result<Box<dyn CandleModel>> {
    let model = qwen2::ModelForCausalLM::new(&candle_config(cfg), vb)?;
    Ok(Box::new(DenseQwen2 {
        model,
        position: 0,
        batch: 0,
    }))
}

impl CandleModel for DenseQwen2 {
    fn detail(&self) -> &'static str {
        "dense"
    }
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        // `[batch, 1, vocab]`: the last position's logits.
        let logits = self.model.forward(input, self.position)?.squeeze(1)?;
        self.position += input.dim(1)?;
        self.batch = input.dim(0)?;
        Ok(logits.to_dtype(DType::F32)?)
    }
    fn reset(&mut self) {
        self.model.clear_kv_cache();
        self.position = 0;
        self.batch = 0;
    }
    fn position(&self) -> usize {
        self.position
    }
    fn batch_size(&self) -> usize {
        self.batch
    }
}
