//! Loading: a model spec and a format in, a ready engine, its tokenizer and the facts every
//! result must carry (weights real or synthetic, format, parameters, bytes per token) out.

use crate::arch::{ModelConfig, TensorRole, TensorSpec};
use crate::engine::quantize::{self, QuantPlan};
use crate::engine::{Engine, EngineChoice, EngineInfo, Loads};
use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::source::{self, synthetic, ResolvedModel, WeightSource, Weights, WeightsKind};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// The spec as the user gave it.
    pub spec: String,
    /// Short name for benchmark ids: `smollm2-135m-instruct`.
    pub name: String,
    pub weights: WeightsKind,
    /// The format the weights run in; a GGUF in its own types reports its main matmul type.
    pub format: String,
    pub engine: EngineInfo,
    pub architecture: String,
    pub config: ModelConfig,
    pub parameters: u64,
    /// Bytes the weights take in memory as the engine holds them.
    pub weight_bytes: u64,
    /// Bytes of weights one decode step reads: every matrix once, one embedding row.
    pub bytes_read_per_token: u64,
    pub tokenizer: String,
    pub load_seconds: f64,
    pub notices: Vec<String>,
}

/// `smollm2-135m-instruct@q4_1+candle`: model, format and engine, so that runs and
/// benchmark baselines of different engines never collide.
pub fn run_label(name: &str, format: &str, engine: &str) -> String {
    format!("{name}@{format}+{engine}")
}

pub struct Model {
    pub engine: Box<dyn Engine>,
    pub tokenizer: TextTokenizer,
    pub info: ModelInfo,
}

impl Model {
    pub fn context_length(&self) -> usize {
        self.info.config.max_position_embeddings
    }
    /// `name@format+engine`, the function part of every benchmark id.
    pub fn label(&self) -> String {
        run_label(&self.info.name, &self.info.format, &self.info.engine.name)
    }
}

/// A model resolved and checked, with its format decided, before the engine is built: what
/// benchmark ids and reports need, at the cost of reading metadata only.
pub struct Planned {
    pub resolved: ResolvedModel,
    /// `None`: a GGUF in its own types.
    pub format: Option<WeightFormat>,
    /// What results call the format: `q4_1` for a Q4_1 GGUF run as is.
    pub format_label: String,
    /// What results call the model: `smollm2-135m-instruct`, `synthetic-llama3-8b`.
    pub name: String,
    layout: QuantPlan,
}

impl Planned {
    /// `name@format+engine`, the function part of every benchmark id.
    pub fn label(&self, engine: EngineChoice) -> String {
        run_label(&self.name, &self.format_label, engine.name())
    }

    /// A GGUF file run in the types it is stored in (no `--format`): engines that read GGUF
    /// files load it as it is; anything else needs an export.
    pub fn is_gguf_as_stored(&self) -> bool {
        matches!(self.resolved.weights, Weights::Gguf(_)) && self.format.is_none()
    }

    /// The storage type of every tensor.
    pub fn layout(&self) -> &QuantPlan {
        &self.layout
    }

    /// Bytes the weights will take in memory in the planned format.
    pub fn weight_bytes(&self) -> u64 {
        weight_bytes(&self.layout.tensors)
    }
}

/// Bytes the tensors take in memory, each in its storage type.
fn weight_bytes(stored_as: &[(TensorSpec, GgmlDType)]) -> u64 {
    stored_as
        .iter()
        .map(|(s, d)| quantize::tensor_bytes(s, *d))
        .sum()
}

pub fn plan(spec: &ModelSpec, format: Option<WeightFormat>) -> Result<Planned> {
    plan_resolved(source::resolve(spec)?, format)
}

/// [`plan`] for a model already resolved (e.g. a GGUF read from memory).
pub fn plan_resolved(resolved: ResolvedModel, format: Option<WeightFormat>) -> Result<Planned> {
    let spec = &resolved.spec.clone();
    let tokenizer_vocab = resolved.tokenizer.vocab_size();
    if tokenizer_vocab > resolved.config.vocab_size {
        return Err(Error::VocabMismatch {
            tokenizer_vocab,
            model_vocab: resolved.config.vocab_size,
            path: resolved
                .source_path()
                .unwrap_or_else(|| spec.to_string().into()),
        });
    }
    let format = match (format, &resolved.weights) {
        (Some(f), _) => Some(f),
        (None, Weights::Gguf(_)) => None, // the file's own types
        (None, Weights::Synthetic(w)) => Some(synthetic::preset(w.preset)?.default_format.parse()?),
        (None, Weights::Safetensors(_)) => Some(WeightFormat::Dense(DType::F32)),
    };
    // The storage type of every tensor, decided once: the memory check, the format label and
    // the engine build all read it.
    let layout: QuantPlan = match (format, &resolved.weights) {
        (Some(WeightFormat::Quantized(q)), _) => {
            quantize::plan((resolved.arch.tensors)(&resolved.config), q)
        }
        (Some(dense), _) => QuantPlan {
            tensors: (resolved.arch.tensors)(&resolved.config)
                .into_iter()
                .map(|s| (s, dense.ggml()))
                .collect(),
            fallbacks: vec![],
        },
        (None, Weights::Gguf(gguf)) => QuantPlan {
            tensors: gguf_types(&resolved, &gguf.content),
            fallbacks: vec![],
        },
        (None, _) => unreachable!("only a GGUF runs without a format"),
    };
    let format_label = match format {
        Some(f) => f.name().to_string(),
        None => main_matmul_type(&layout.tensors),
    };
    check_memory(&layout.tensors, &format!("{spec} in {format_label}"))?;
    let name = match resolved.weights_kind() {
        WeightsKind::Synthetic => format!("synthetic-{}", spec.short_name()),
        WeightsKind::Real => spec.short_name(),
    };
    Ok(Planned {
        resolved,
        format,
        format_label,
        name,
        layout,
    })
}

fn gguf_types(
    resolved: &ResolvedModel,
    content: &candle_core::quantized::gguf_file::Content,
) -> Vec<(TensorSpec, GgmlDType)> {
    (resolved.arch.tensors)(&resolved.config)
        .into_iter()
        .map(|s| {
            let dtype = content.tensor_infos[&s.gguf_name].ggml_dtype;
            (s, dtype)
        })
        .collect()
}

pub fn load(spec: &ModelSpec, format: Option<WeightFormat>) -> Result<Model> {
    plan(spec, format)?.load()
}

/// What an engine is built from: the planned model, owned, and the run's thread count.
pub struct EngineInput {
    pub arch: &'static crate::arch::Architecture,
    pub config: ModelConfig,
    pub weights: Weights,
    /// `None`: a GGUF in its own types.
    pub format: Option<WeightFormat>,
    pub layout: QuantPlan,
    pub threads: usize,
    /// The file or folder the weights came from (`None` for synthetic weights).
    pub source_path: Option<std::path::PathBuf>,
}

impl Planned {
    /// Builds the model with stock candle.
    pub fn load(self) -> Result<Model> {
        self.load_with(EngineChoice::default())
    }

    /// Builds the model with `engine`, on the thread count `system::configure_threads` set.
    pub fn load_with(self, engine: EngineChoice) -> Result<Model> {
        let started = Instant::now();
        let weight_bytes = self.weight_bytes();
        let spec = self.resolved.spec.clone();
        let mut source_path = self.resolved.source_path();
        // Engines that read GGUF files themselves run other sources and formats from an export.
        let mut export_notice = None;
        if engine.entry().loads == Loads::GgufFile && !self.is_gguf_as_stored() {
            let exporting = Instant::now();
            let (path, reused) = crate::export::cached_gguf(&self)?;
            export_notice = Some(format!(
                "{} reads GGUF files: it runs {} in {} as llm-bench exported it to {} ({})",
                engine.name(),
                self.resolved.spec,
                self.format_label,
                path.display(),
                if reused {
                    "reused from the cache".to_string()
                } else {
                    format!("written in {:.1} s", exporting.elapsed().as_secs_f64())
                }
            ));
            source_path = Some(path);
        }
        let source_name = source_path
            .as_ref()
            .map_or_else(|| spec.to_string(), |p| p.display().to_string());
        // Engines' own errors (candle's, llama.cpp's) name no file: say which model failed.
        let in_source = |e: Error| match e {
            Error::Candle(c) => Error::Build {
                source_name: source_name.clone(),
                detail: crate::error::candle_text(&c),
            },
            other => other,
        };
        let weights_kind = self.resolved.weights_kind();
        let ResolvedModel {
            arch,
            config,
            tokenizer,
            weights,
            mut notices,
            ..
        } = self.resolved;
        let stored_as = self.layout.tensors.clone();
        let parameters = stored_as.iter().map(|(s, _)| s.elements() as u64).sum();
        if self.format.is_some() {
            notices.extend(self.layout.fallbacks.iter().cloned());
        }
        notices.extend(export_notice);
        let engine = engine
            .build(EngineInput {
                arch,
                config: config.clone(),
                weights,
                format: self.format,
                layout: self.layout,
                threads: crate::system::configured_threads(),
                source_path,
            })
            .map_err(in_source)?;
        let engine_info = engine.info();
        let info = ModelInfo {
            spec: spec.to_string(),
            name: self.name,
            weights: weights_kind,
            format: self.format_label,
            engine: engine_info,
            architecture: config.architecture.to_string(),
            parameters,
            weight_bytes,
            bytes_read_per_token: bytes_read_per_token(&stored_as, config.tie_word_embeddings),
            tokenizer: tokenizer.origin.clone(),
            load_seconds: started.elapsed().as_secs_f64(),
            notices,
            config,
        };
        Ok(Model {
            engine,
            tokenizer,
            info,
        })
    }
}

/// The type holding most matrix weights: `q4_1` for a "Q4_1" GGUF whose embedding is q8_0.
fn main_matmul_type(stored_as: &[(TensorSpec, GgmlDType)]) -> String {
    let mut by_type: HashMap<&'static str, usize> = HashMap::new();
    for (spec, dtype) in stored_as
        .iter()
        .filter(|(s, _)| s.role == TensorRole::Matmul)
    {
        *by_type.entry(crate::format::ggml_name(*dtype)).or_default() += spec.elements();
    }
    by_type
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "mixed".into())
}

/// Every matrix once per decode step, one row of the embedding table; with tied embeddings
/// the table is also the output projection and is read whole.
fn bytes_read_per_token(stored_as: &[(TensorSpec, GgmlDType)], tied: bool) -> u64 {
    stored_as
        .iter()
        .map(|(spec, dtype)| {
            let bytes = quantize::tensor_bytes(spec, *dtype);
            match spec.role {
                TensorRole::Embedding if tied => bytes + bytes / spec.rows() as u64,
                TensorRole::Embedding => bytes / spec.rows() as u64,
                _ => bytes,
            }
        })
        .sum()
}

fn check_memory(stored_as: &[(TensorSpec, GgmlDType)], what: &str) -> Result<()> {
    let weights = weight_bytes(stored_as);
    // candle's quantized Llama also keeps the embedding table dequantized to f32.
    let embedding_f32: u64 = stored_as
        .iter()
        .filter(|(s, _)| s.role == TensorRole::Embedding)
        .map(|(s, _)| s.elements() as u64 * 4)
        .sum();
    let needed = weights + embedding_f32;
    let available = crate::system::total_memory_bytes();
    if available > 0 && needed as f64 > available as f64 * 0.9 {
        return Err(Error::NotEnoughMemory {
            what: what.to_string(),
            needed_gib: needed as f64 / (1u64 << 30) as f64,
            available_gib: available as f64 / (1u64 << 30) as f64,
        });
    }
    Ok(())
}

/// Memory one request needs beside the weights, from the shapes alone: the KV cache (f32 keys
/// and values for every layer and position), the attention scores of the prefill, and the
/// logits. `None` when the numbers overflow, which no machine could hold anyway.
pub fn request_memory_bytes(
    config: &ModelConfig,
    batch: usize,
    prompt_tokens: usize,
    new_tokens: usize,
) -> Option<u64> {
    let n = |x: usize| x as u64;
    let positions = n(prompt_tokens).checked_add(n(new_tokens))?;
    let per_position = n(config.num_layers)
        .checked_mul(2)?
        .checked_mul(n(config.num_kv_heads))?
        .checked_mul(n(config.head_dim()))?
        .checked_mul(4)?;
    let kv_cache = per_position.checked_mul(positions)?;
    let scores = n(config.num_heads)
        .checked_mul(n(prompt_tokens))?
        .checked_mul(positions)?
        .checked_mul(4)?;
    let activations = n(prompt_tokens)
        .checked_mul(n(config.intermediate_size.max(config.hidden_size)))?
        .checked_mul(4 * 4)?;
    let logits = n(config.vocab_size).checked_mul(4)?;
    kv_cache
        .checked_add(scores)?
        .checked_add(activations)?
        .checked_add(logits)?
        .checked_mul(n(batch))
}

/// Refuses a request whose KV cache and activations, with the weights, would not fit in
/// this machine's memory: a huge `--batch` is an error in a second, not a swap storm.
pub fn check_request_memory(
    config: &ModelConfig,
    weight_bytes: u64,
    batch: usize,
    prompt_tokens: usize,
    new_tokens: usize,
) -> Result<()> {
    let available = crate::system::total_memory_bytes();
    let needed = request_memory_bytes(config, batch, prompt_tokens, new_tokens)
        .and_then(|b| b.checked_add(weight_bytes));
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match needed {
        Some(needed) if available == 0 || (needed as f64) <= available as f64 * 0.9 => Ok(()),
        _ => Err(Error::InvalidSetting {
            name: "--batch",
            reason: format!(
                "batch {batch} of {prompt_tokens} prompt + {new_tokens} new tokens needs about {} GiB (KV cache, activations and weights) but this machine has {:.1} GiB: lower --batch or the token counts",
                needed.map_or("more than 2^64 bytes".to_string(), |b| format!("{:.1}", gib(b))),
                gib(available)
            ),
        }),
    }
}

/// Serves candle's `VarBuilder` from any weight source (synthetic, or a GGUF dequantized),
/// refusing names and shapes the architecture does not declare.
pub(crate) struct SourceBackend<'a> {
    source: &'a dyn WeightSource,
    specs: HashMap<String, TensorSpec>,
}

impl<'a> SourceBackend<'a> {
    pub(crate) fn new(source: &'a dyn WeightSource, specs: &[TensorSpec]) -> Self {
        let specs = specs
            .iter()
            .map(|s| (s.hf_name.clone(), s.clone()))
            .collect();
        Self { source, specs }
    }
}

impl SimpleBackend for SourceBackend<'_> {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "tensor {name} has shape {:?}, the model expects {shape:?}",
                tensor.shape()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let spec = self
            .specs
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("the weights have no tensor {name}")))?;
        let rows = self
            .source
            .rows(spec, 0..spec.rows())
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Tensor::from_vec(rows, spec.shape.as_slice(), dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.specs.contains_key(name)
    }
}
