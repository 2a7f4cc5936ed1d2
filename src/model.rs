//! Loading: a model spec and a format in, a ready engine, its tokenizer and the facts every
//! result must carry (weights real or synthetic, format, parameters, bytes per token) out.

use crate::engine::{Engine, EngineChoice, EngineInfo, Loads};
use crate::error::{Error, Result};
use crate::family::ModelConfig;
use crate::format::WeightFormat;
use crate::source::{ResolvedModel, WeightsKind};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use crate::weights::bytes_read_per_token;
pub use crate::weights::{plan_resolved, run_label, EngineInput, Planned};

/// Resolves `spec` and plans it in `format` (`None`: a GGUF's own types), with every
/// tokenizer the built-in engines bring (llama.cpp's, for vocabularies llm-bench does not
/// rebuild) registered first.
pub fn plan(spec: &ModelSpec, format: Option<WeightFormat>) -> Result<Planned> {
    crate::engine::register_tokenizers();
    crate::weights::plan(spec, format)
}
use std::time::Instant;

/// What a loaded model is: what results and reports say of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// The spec as the user gave it.
    pub spec: String,
    /// Short name for benchmark ids: `smollm2-135m-instruct`.
    pub name: String,
    /// Real or synthetic weights.
    pub weights: WeightsKind,
    /// The format the weights run in; a GGUF in its own types reports its main matmul type.
    pub format: String,
    /// The engine and how it was built.
    pub engine: EngineInfo,
    /// The architecture (`llama`, `qwen2`).
    pub architecture: String,
    /// Its config.
    pub config: ModelConfig,
    /// Parameters.
    pub parameters: u64,
    /// Bytes the weights take in memory as the engine holds them.
    pub weight_bytes: u64,
    /// Bytes of weights one decode step reads: every matrix once, one embedding row.
    pub bytes_read_per_token: u64,
    /// Where its tokenizer came from.
    pub tokenizer: String,
    /// Seconds to load.
    pub load_seconds: f64,
    /// What the loader noticed (fallbacks, metadata it ignores).
    pub notices: Vec<String>,
}

/// A loaded model: an engine, its tokenizer, what it is.
pub struct Model {
    /// The engine.
    pub engine: Box<dyn Engine>,
    /// The tokenizer.
    pub tokenizer: TextTokenizer,
    /// What it is.
    pub info: ModelInfo,
}

impl Model {
    /// The longest sequence it runs.
    pub fn context_length(&self) -> usize {
        self.info.config.max_position_embeddings
    }
    /// `name@format+engine`, the function part of every benchmark id.
    pub fn label(&self) -> String {
        run_label(&self.info.name, &self.info.format, &self.info.engine.name)
    }
}

/// Loads `spec` in `format` (the file's own where `None`) with the engine `LLM_BENCH_ENGINE` or
/// the default picks.
pub fn load(spec: &ModelSpec, format: Option<WeightFormat>) -> Result<Model> {
    plan(spec, format)?.load()
}

impl Planned {
    /// `name@format+engine`, the function part of every benchmark id.
    pub fn label(&self, engine: EngineChoice) -> String {
        run_label(&self.name, &self.format_label, engine.name())
    }

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
            family,
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
                family,
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
                "batch {batch} of {prompt_tokens} prompt + {new_tokens} new tokens needs {} (KV cache, activations and weights) but this machine has {:.1} GiB: lower --batch or the token counts",
                needed.map_or("more than 2^64 bytes".to_string(), |b| format!("about {:.1} GiB", gib(b))),
                gib(available)
            ),
        }),
    }
}
