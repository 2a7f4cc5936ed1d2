//! Stock candle: candle-transformers' full-precision Llama, Qwen2 and Qwen3 for f32/bf16/f16, their
//! quantized models for GGML block types. Threads come from rayon's pool (`RAYON_NUM_THREADS`, set by
//! `system::configure_threads`).

mod backend;
mod convert;
mod llama;
mod on_load;
mod quantized;
mod qwen;

use super::{Engine, EngineEntry, EngineInfo, Logits};
use crate::error::{Error, Result};
use crate::family::{Family, ModelConfig, ReadSeek};
use crate::format::WeightFormat;
use crate::source::Weights;
use crate::weights::EngineInput;
use backend::SourceBackend;
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{
    quantized_llama, quantized_qwen2, quantized_qwen3, qwen2 as qwen2_model, qwen3 as qwen3_model,
};

/// The candle engine's registry entry.
pub const ENTRY: EngineEntry = EngineEntry {
    name: "candle",
    loads: super::Loads::Sources,
    about: "stock candle 0.11 (candle-transformers' Llama, Qwen2 and Qwen3, dense or quantized)",
    build: Some(build),
    supports: |planned| {
        planned.refuse_unapplied("the candle engine")?;
        refuse_head_size(planned)?;
        refuse_rope_scaling(planned)?;
        refuse_types(planned)
    },
};

/// candle has no iq4_nl (llama.cpp's fallback in small models' Q3_K_M and Q2_K files).
fn refuse_types(planned: &crate::weights::Planned) -> Result<()> {
    match planned
        .layout()
        .tensors
        .iter()
        .find(|(_, dtype)| dtype.candle().is_none())
    {
        Some((spec, dtype)) => Err(Error::InvalidSetting {
            name: "--engine",
            reason: format!(
                "{} stores {} as {}, which candle does not run: run it with --engine tuned, or --engine llama-cpp (built with --features llama-cpp)",
                planned.resolved.source_name(),
                spec.gguf_name,
                crate::format::ggml_name(*dtype)
            ),
        }),
        None => Ok(()),
    }
}

/// candle-transformers' Llama and Qwen2 take heads of hidden size / heads (only its Qwen3
/// reads the head size): a model of theirs that sets another would run as another model.
fn refuse_head_size(planned: &crate::weights::Planned) -> Result<()> {
    let resolved = &planned.resolved;
    match resolved.config.head_size {
        Some(size) if resolved.family.name != "qwen3" => Err(Error::InvalidSetting {
            name: "--engine",
            reason: format!(
                "{} sets heads of {size} (not hidden size / heads), which candle-transformers' {} model does not compute: it would run a different model. Run it with --engine tuned, or --engine llama-cpp (built with --features llama-cpp)",
                resolved.source_name(),
                resolved.family.name,
            ),
        }),
        _ => Ok(()),
    }
}

/// candle-transformers' quantized Llama computes its rotations from `rope.freq_base` alone:
/// a model with Llama 3.1's RoPE scaling would run as another model.
fn refuse_rope_scaling(planned: &crate::weights::Planned) -> Result<()> {
    if planned.resolved.config.rope_freq_factors.is_none() {
        return Ok(());
    }
    let resolved = &planned.resolved;
    let (origin, key) = match &resolved.weights {
        Weights::Gguf(_) => ("tensor", crate::source::gguf::ROPE_FREQS),
        Weights::Safetensors(_) => ("config.json field", "rope_scaling"),
        Weights::Synthetic(_) => ("the preset's", "rope_scaling"),
    };
    Err(Error::InvalidSetting {
        name: "--engine",
        reason: format!(
            "{} holds Llama 3.1's RoPE scaling ({origin} `{key}`), which the candle engine does not apply: it would run a different model. Run it with --engine tuned, or --engine llama-cpp (built with --features llama-cpp)",
            resolved.source_name(),
        ),
    })
}

/// What an architecture's candle model does; only this engine sees candle's types.
pub trait CandleModel: Send {
    /// `dense` or `quantized`.
    fn detail(&self) -> &'static str;
    /// Feeds `input` (`[batch, seq]` u32 ids) after the cache; returns `[batch, vocab]` f32.
    fn forward(&mut self, input: &Tensor) -> Result<Tensor>;
    /// Forgets every cached position.
    fn reset(&mut self);
    /// Positions cached.
    fn position(&self) -> usize;
    /// Sequences per step.
    fn batch_size(&self) -> usize;
}

/// A candle-transformers model that keeps its own KV cache: a step after `position` cached
/// tokens returning the last position's logits, and its cache emptied.
trait Stepped: Send {
    fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor>;
    fn clear(&mut self);
}

/// [`Stepped`] by the models' own `forward(input, position)` and `clear_kv_cache()`.
macro_rules! stepped_by_forward {
    ($($model:ty),* $(,)?) => {$(
        impl Stepped for $model {
            fn step(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
                self.forward(input, position)
            }
            fn clear(&mut self) {
                self.clear_kv_cache()
            }
        }
    )*};
}

stepped_by_forward!(
    quantized_llama::ModelWeights,
    quantized_qwen2::ModelWeights,
    quantized_qwen3::ModelWeights,
    qwen2_model::ModelForCausalLM,
    qwen3_model::ModelForCausalLM,
);

/// Builds a family's quantized model from GGUF metadata and a reader over the tensor data.
type QuantizedBuilder =
    fn(Content, &mut dyn ReadSeek, &Device, &ModelConfig) -> Result<Box<dyn CandleModel>>;

/// candle-transformers' models of one family: dense, and quantized.
struct Builders {
    dense: fn(VarBuilder, &ModelConfig) -> Result<Box<dyn CandleModel>>,
    quantized: QuantizedBuilder,
}

/// The candle models of each family this engine runs.
fn builders(family: &Family) -> Result<Builders> {
    match family.name {
        "llama" => Ok(Builders {
            dense: llama::build_dense,
            quantized: quantized::build_llama,
        }),
        "qwen2" => Ok(Builders {
            dense: qwen::build_qwen2,
            quantized: quantized::build_qwen2,
        }),
        "qwen3" => Ok(Builders {
            dense: qwen::build_qwen3,
            quantized: quantized::build_qwen3,
        }),
        other => Err(Error::InvalidSetting {
            name: "--engine",
            reason: format!(
                "candle runs the llama, qwen2 and qwen3 families, not {other}: use --engine llama-cpp"
            ),
        }),
    }
}

struct CandleEngine {
    model: Box<dyn CandleModel>,
    /// The last step's logits, lent out until the next.
    logits: Logits,
}

fn build(input: EngineInput) -> Result<Box<dyn Engine>> {
    let EngineInput {
        family,
        config,
        weights,
        format,
        layout,
        ..
    } = input;
    let build = builders(family)?;
    let model: Box<dyn CandleModel> = match (format, weights) {
        (None, Weights::Gguf(gguf)) => {
            let mut file = gguf.file.into_inner().unwrap_or_else(|p| p.into_inner());
            (build.quantized)(
                convert::content(gguf.content)?,
                &mut file,
                &Device::Cpu,
                &config,
            )?
        }
        (None, _) => unreachable!("`plan` gives every non-GGUF source a format"),
        (Some(WeightFormat::Dense(dtype)), weights) => {
            let specs: Vec<_> = layout.tensors.iter().map(|(s, _)| s.clone()).collect();
            let vb = match &weights {
                // SAFETY: read-only mmap of the user's files, as in `source::local`.
                Weights::Safetensors(st) => unsafe {
                    VarBuilder::from_mmaped_safetensors(&st.files, dtype.into(), &Device::Cpu)?
                },
                other => VarBuilder::from_backend(
                    Box::new(SourceBackend::new(other.as_source(), &specs)),
                    dtype.into(),
                    Device::Cpu,
                ),
            };
            (build.dense)(vb, &config)?
        }
        (Some(WeightFormat::Quantized(_)), weights) => on_load::build(
            family,
            build.quantized,
            &config,
            weights.as_source(),
            &layout,
        )?,
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
