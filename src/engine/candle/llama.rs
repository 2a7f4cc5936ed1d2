//! candle-transformers' dense Llama (`llama::Llama`); its quantized one is in `quantized`.

use super::CandleModel;
use crate::error::Result;
use crate::family::ModelConfig;
use candle_core::Tensor;
use candle_nn::VarBuilder;
use candle_transformers::models::llama;

fn candle_config(cfg: &ModelConfig) -> llama::Config {
    llama::Config {
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        vocab_size: cfg.vocab_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        num_key_value_heads: cfg.num_kv_heads,
        use_flash_attn: false,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        bos_token_id: cfg.bos_token_id,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: cfg.max_position_embeddings,
        tie_word_embeddings: cfg.tie_word_embeddings,
    }
}

struct DenseLlama {
    model: llama::Llama,
    fresh_cache: llama::Cache,
    cache: llama::Cache,
    position: usize,
    batch: usize,
}

pub(super) fn build_dense(vb: VarBuilder, cfg: &ModelConfig) -> Result<Box<dyn CandleModel>> {
    let config = candle_config(cfg);
    let fresh_cache = llama::Cache::new(true, vb.dtype(), &config, vb.device())?;
    let model = llama::Llama::load(vb, &config)?;
    Ok(Box::new(DenseLlama {
        model,
        cache: fresh_cache.clone(),
        fresh_cache,
        position: 0,
        batch: 0,
    }))
}

impl CandleModel for DenseLlama {
    fn detail(&self) -> &'static str {
        "dense"
    }
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let logits = self.model.forward(input, self.position, &mut self.cache)?;
        self.position += input.dim(1)?;
        self.batch = input.dim(0)?;
        Ok(logits)
    }
    fn reset(&mut self) {
        self.cache = self.fresh_cache.clone();
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
