//! Stock candle: candle-transformers' full-precision Llama for f32/bf16/f16, its quantized
//! Llama for GGML block types. Threads come from rayon's pool (`RAYON_NUM_THREADS`, set by
//! `system::configure_threads`).

use super::{Engine, EngineEntry, EngineInfo, Logits};
use crate::error::Result;
use crate::format::WeightFormat;
use crate::model::{EngineInput, SourceBackend};
use crate::source::Weights;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

pub const ENTRY: EngineEntry = EngineEntry {
    name: "candle",
    loads: super::Loads::Sources,
    about: "stock candle 0.11 (candle-transformers' Llama, dense or quantized)",
    build: Some(build),
    supports: |_| Ok(()),
};

/// What an architecture's candle model does; only this engine sees candle's types.
pub trait CandleModel: Send {
    /// `dense` or `quantized`.
    fn detail(&self) -> &'static str;
    /// Feeds `input` (`[batch, seq]` u32 ids) after the cache; returns `[batch, vocab]` f32.
    fn forward(&mut self, input: &Tensor) -> Result<Tensor>;
    fn reset(&mut self);
    fn position(&self) -> usize;
    fn batch_size(&self) -> usize;
}

struct CandleEngine {
    model: Box<dyn CandleModel>,
    /// The last step's logits, lent out until the next.
    logits: Logits,
}

fn build(input: EngineInput) -> Result<Box<dyn Engine>> {
    let EngineInput {
        arch,
        config,
        weights,
        format,
        layout,
        ..
    } = input;
    let model: Box<dyn CandleModel> = match (format, weights) {
        (None, Weights::Gguf(gguf)) => {
            let mut file = gguf.file.into_inner().unwrap_or_else(|p| p.into_inner());
            (arch.build_quantized)(gguf.content, &mut file, &Device::Cpu, &config)?
        }
        (None, _) => unreachable!("`plan` gives every non-GGUF source a format"),
        (Some(WeightFormat::Dense(dtype)), weights) => {
            let specs: Vec<_> = layout.tensors.iter().map(|(s, _)| s.clone()).collect();
            let vb = match &weights {
                // SAFETY: read-only mmap of the user's files, as in `source::local`.
                Weights::Safetensors(st) => unsafe {
                    VarBuilder::from_mmaped_safetensors(&st.files, dtype, &Device::Cpu)?
                },
                other => VarBuilder::from_backend(
                    Box::new(SourceBackend::new(other.as_source(), &specs)),
                    dtype,
                    Device::Cpu,
                ),
            };
            (arch.build_dense)(vb, &config)?
        }
        (Some(WeightFormat::Quantized(_)), weights) => {
            super::quantize::build_engine(arch, &config, weights.as_source(), &layout)?
        }
    };
    Ok(Box::new(CandleEngine {
        model,
        logits: Logits::default(),
    }))
}

fn batch_tensor(prompts: &[Vec<u32>]) -> Result<Tensor> {
    let len = super::prompt_length(prompts)?;
    let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (prompts.len(), len), &Device::Cpu)?)
}

/// `tensor`'s `[batch, vocab]` values into `into`.
fn logits(tensor: Tensor, into: &mut Logits) -> Result<&Logits> {
    let (_, vocab) = tensor.dims2()?;
    *into = Logits {
        vocab,
        data: tensor.flatten_all()?.to_vec1()?,
    };
    Ok(into)
}

impl Engine for CandleEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: ENTRY.name.into(),
            version: env!("LLM_BENCH_CANDLE_VERSION").into(),
            detail: self.model.detail().into(),
        }
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<&Logits> {
        self.model.reset();
        let input = batch_tensor(prompts)?;
        logits(self.model.forward(&input)?, &mut self.logits)
    }

    fn decode(&mut self, tokens: &[u32]) -> Result<&Logits> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(1)?;
        logits(self.model.forward(&input)?, &mut self.logits)
    }

    fn reset(&mut self) {
        self.model.reset();
    }

    fn position(&self) -> usize {
        self.model.position()
    }

    fn batch_size(&self) -> usize {
        self.model.batch_size()
    }
}
