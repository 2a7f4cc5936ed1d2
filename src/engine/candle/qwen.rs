//! candle-transformers' dense Qwen2 and Qwen3 (`qwen2::ModelForCausalLM`,
//! `qwen3::ModelForCausalLM`) behind one wrapper; their quantized models are in `quantized`.

use super::{CandleModel, Stepped};
use crate::error::Result;
use crate::family::ModelConfig;
use candle_core::{DType, Tensor};
use candle_nn::{Activation, VarBuilder};
use candle_transformers::models::{qwen2, qwen3};

fn qwen2_config(cfg: &ModelConfig) -> qwen2::Config {
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

fn qwen3_config(cfg: &ModelConfig) -> qwen3::Config {
    qwen3::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        head_dim: cfg.head_dim(),
        attention_bias: false,
        num_key_value_heads: cfg.num_kv_heads,
        max_position_embeddings: cfg.max_position_embeddings,
        // Sliding windows are refused when the config is read: attention is over everything.
        sliding_window: None,
        max_window_layers: cfg.num_layers,
        tie_word_embeddings: cfg.tie_word_embeddings,
        rope_theta: cfg.rope_theta.into(),
        rms_norm_eps: cfg.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: Activation::Silu,
    }
}

struct Dense<M> {
    model: M,
    position: usize,
    batch: usize,
}

fn boxed<M: Stepped + 'static>(model: M) -> Box<dyn CandleModel> {
    Box::new(Dense {
        model,
        position: 0,
        batch: 0,
    })
}

pub(super) fn build_qwen2(vb: VarBuilder, cfg: &ModelConfig) -> Result<Box<dyn CandleModel>> {
    Ok(boxed(qwen2::ModelForCausalLM::new(&qwen2_config(cfg), vb)?))
}

pub(super) fn build_qwen3(vb: VarBuilder, cfg: &ModelConfig) -> Result<Box<dyn CandleModel>> {
    Ok(boxed(qwen3::ModelForCausalLM::new(&qwen3_config(cfg), vb)?))
}

/// The models return the last position's logits as `[batch, 1, vocab]`.
impl<M: Stepped> CandleModel for Dense<M> {
    fn detail(&self) -> &'static str {
        "dense"
    }
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let logits = self.model.step(input, self.position)?.squeeze(1)?;
        self.position += input.dim(1)?;
        self.batch = input.dim(0)?;
        Ok(logits.to_dtype(DType::F32)?)
    }
    fn reset(&mut self) {
        self.model.clear();
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
