//! candle-transformers' Llama: `llama::Llama` for the dense formats, `quantized_llama::
//! ModelWeights` for GGML block types.

use super::CandleModel;
use crate::error::Result;
use crate::family::{ModelConfig, ReadSeek};
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, quantized_llama};

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

struct QuantizedLlama {
    model: quantized_llama::ModelWeights,
    position: usize,
    batch: usize,
}

pub(super) fn build_quantized(
    content: Content,
    reader: &mut dyn ReadSeek,
    device: &Device,
    _cfg: &ModelConfig,
) -> Result<Box<dyn CandleModel>> {
    let mut reader = reader;
    let model = quantized_llama::ModelWeights::from_gguf(content, &mut reader, device)?;
    Ok(Box::new(QuantizedLlama {
        model,
        position: 0,
        batch: 0,
    }))
}

impl QuantizedLlama {
    /// candle-transformers 0.11.1's quantized Llama fails on a multi-token input with batch > 1
    /// (huggingface/candle#2788): it slices the last position out of `[batch, seq, hidden]`
    /// and hands the non-contiguous slice to the output matmul, *after* every layer has filled
    /// its KV cache. So the first `len - 1` positions go through one batched forward whose only
    /// failure is that final projection, and the last position runs as a batched one-token
    /// step that produces the logits. Same work as one prefill, exact same cache.
    fn forward_batched_prompt(&mut self, input: &Tensor, len: usize) -> Result<Tensor> {
        let head = input.narrow(1, 0, len - 1)?;
        match self.model.forward(&head, self.position) {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not contiguous") => {}
            Err(e) => return Err(e.into()),
        }
        self.position += len - 1;
        let last = input.narrow(1, len - 1, 1)?.contiguous()?;
        let logits = self.model.forward(&last, self.position)?;
        self.position += 1;
        Ok(logits.to_dtype(DType::F32)?)
    }
}

impl CandleModel for QuantizedLlama {
    fn detail(&self) -> &'static str {
        "quantized"
    }
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (batch, len) = input.dims2()?;
        self.batch = batch;
        if batch > 1 && len > 1 {
            return self.forward_batched_prompt(input, len);
        }
        let logits = self.model.forward(input, self.position)?;
        self.position += len;
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
