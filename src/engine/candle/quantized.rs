//! candle-transformers' quantized models of each family (`quantized_llama`,
//! `quantized_qwen2`, `quantized_qwen3`: GGML block types read from GGUF content), behind one wrapper.

use super::CandleModel;
use crate::error::Result;
use crate::family::{ModelConfig, ReadSeek};
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};

/// What the wrapper needs of a quantized model: a step after `position` cached tokens
/// returning the last position's `[batch, vocab]` logits, and its cache emptied.
trait Weights: Send {
    fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor>;
    fn clear(&mut self);
}

impl Weights for quantized_llama::ModelWeights {
    fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        self.forward(input, position)
    }
    fn clear(&mut self) {
        self.clear_kv_cache()
    }
}

impl Weights for quantized_qwen2::ModelWeights {
    fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        self.forward(input, position)
    }
    fn clear(&mut self) {
        self.clear_kv_cache()
    }
}

impl Weights for quantized_qwen3::ModelWeights {
    fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        self.forward(input, position)
    }
    fn clear(&mut self) {
        self.clear_kv_cache()
    }
}

struct Quantized<M> {
    model: M,
    position: usize,
    batch: usize,
}

fn boxed<M: Weights + 'static>(model: M) -> Box<dyn CandleModel> {
    Box::new(Quantized {
        model,
        position: 0,
        batch: 0,
    })
}

pub(super) fn build_llama(
    content: Content,
    mut reader: &mut dyn ReadSeek,
    device: &Device,
    _cfg: &ModelConfig,
) -> Result<Box<dyn CandleModel>> {
    Ok(boxed(quantized_llama::ModelWeights::from_gguf(
        content,
        &mut reader,
        device,
    )?))
}

pub(super) fn build_qwen2(
    content: Content,
    mut reader: &mut dyn ReadSeek,
    device: &Device,
    _cfg: &ModelConfig,
) -> Result<Box<dyn CandleModel>> {
    Ok(boxed(quantized_qwen2::ModelWeights::from_gguf(
        content,
        &mut reader,
        device,
    )?))
}

pub(super) fn build_qwen3(
    content: Content,
    mut reader: &mut dyn ReadSeek,
    device: &Device,
    _cfg: &ModelConfig,
) -> Result<Box<dyn CandleModel>> {
    Ok(boxed(quantized_qwen3::ModelWeights::from_gguf(
        content,
        &mut reader,
        device,
    )?))
}

impl<M: Weights> Quantized<M> {
    /// candle-transformers 0.11.1's quantized models fail on a multi-token input with batch > 1
    /// (huggingface/candle#2788): they slice the last position out of `[batch, seq, hidden]`
    /// and hand the non-contiguous slice to the output matmul, *after* every layer has filled
    /// its KV cache. So the first `len - 1` positions go through one batched forward whose only
    /// failure is that final projection, and the last position runs as a batched one-token
    /// step that produces the logits. Same work as one prefill, exact same cache.
    fn forward_batched_prompt(&mut self, input: &Tensor, len: usize) -> Result<Tensor> {
        let head = input.narrow(1, 0, len - 1)?;
        match self.model.step(&head, self.position) {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not contiguous") => {}
            Err(e) => return Err(e.into()),
        }
        self.position += len - 1;
        let last = input.narrow(1, len - 1, 1)?.contiguous()?;
        let logits = self.model.step(&last, self.position)?;
        self.position += 1;
        Ok(logits.to_dtype(DType::F32)?)
    }
}

impl<M: Weights> CandleModel for Quantized<M> {
    fn detail(&self) -> &'static str {
        "quantized"
    }
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (batch, len) = input.dims2()?;
        self.batch = batch;
        if batch > 1 && len > 1 {
            return self.forward_batched_prompt(input, len);
        }
        let logits = self.model.step(input, self.position)?;
        self.position += len;
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
