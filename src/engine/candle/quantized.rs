//! candle-transformers' quantized models of each family (`quantized_llama`,
//! `quantized_qwen2`, `quantized_qwen3`: GGML block types read from GGUF content), behind one wrapper.

use super::{CandleModel, Stepped};
use crate::error::Result;
use crate::family::{ModelConfig, ReadSeek};
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};

struct Quantized<M> {
    model: M,
    position: usize,
    batch: usize,
}

fn boxed<M: Stepped + 'static>(model: M) -> Box<dyn CandleModel> {
    Box::new(Quantized {
        model,
        position: 0,
        batch: 0,
    })
}

/// `$name`: the quantized model of `$module` read from GGUF content.
macro_rules! quantized_builder {
    ($name:ident, $module:ident) => {
        pub(super) fn $name(
            content: Content,
            mut reader: &mut dyn ReadSeek,
            device: &Device,
            _cfg: &ModelConfig,
        ) -> Result<Box<dyn CandleModel>> {
            Ok(boxed($module::ModelWeights::from_gguf(
                content,
                &mut reader,
                device,
            )?))
        }
    };
}

quantized_builder!(build_llama, quantized_llama);
quantized_builder!(build_qwen2, quantized_qwen2);
quantized_builder!(build_qwen3, quantized_qwen3);

impl<M: Stepped> Quantized<M> {
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

impl<M: Stepped> CandleModel for Quantized<M> {
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
