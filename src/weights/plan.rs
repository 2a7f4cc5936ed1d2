//! The weight plan: a model resolved and checked, with the storage type of every tensor
//! decided (the format asked for, a k-quant's fallbacks where rows do not fill its blocks, or
//! a GGUF's own types), before any engine is built.

use crate::error::{Error, Result};
use crate::family::{ModelConfig, TensorRole, TensorSpec};
use crate::format::{ggml_name, WeightFormat};
use crate::format::{DType, GgmlDType};
use crate::source::{self, synthetic, ResolvedModel, Weights, WeightsKind};
use crate::spec::ModelSpec;
use std::collections::HashMap;

/// The GGML type each tensor is stored in.
#[derive(Clone)]
pub struct QuantPlan {
    /// Every tensor with its storage type.
    pub tensors: Vec<(TensorSpec, GgmlDType)>,
    /// Tensors that could not take the wanted type, and why.
    pub fallbacks: Vec<String>,
}

/// Each tensor's storage type when `wanted` is asked for: norms in f32, formats a row cannot
/// hold replaced.
pub fn quant_plan(specs: Vec<TensorSpec>, wanted: GgmlDType) -> QuantPlan {
    let mut fell_back: HashMap<(usize, &'static str), usize> = HashMap::new();
    let tensors: Vec<_> = specs
        .into_iter()
        .map(|spec| {
            let dtype = if spec.role.is_vector() {
                GgmlDType::F32
            } else if spec.cols() % wanted.block_size() == 0 {
                wanted
            } else {
                // Rows that do not fill whole k-quant blocks of 256 take the 32-weight type
                // llama.cpp's quantizer gives them (`llama-quant.cpp`); rows not even of 32, f32.
                let fallback = match fallback_of(wanted) {
                    Some(small) if spec.cols() % small.block_size() == 0 => small,
                    _ => GgmlDType::F32,
                };
                *fell_back
                    .entry((spec.cols(), ggml_name(fallback)))
                    .or_default() += 1;
                fallback
            };
            (spec, dtype)
        })
        .collect();
    let mut fallbacks: Vec<String> = fell_back
        .into_iter()
        .map(|((cols, fallback), count)| {
            format!(
                "{count} tensors have rows of {cols} values, not a multiple of {}'s block of {}: they are stored as {fallback}",
                ggml_name(wanted),
                wanted.block_size()
            )
        })
        .collect();
    fallbacks.sort();
    QuantPlan { tensors, fallbacks }
}

/// The 32-weight type llama.cpp's quantizer stores a k-quant's rows in when they do not fill
/// its 256-weight blocks: q4_0 for q2k and q3k, q5_0 for q4k, q5_1 for q5k, q8_0 for q6k.
fn fallback_of(wanted: GgmlDType) -> Option<GgmlDType> {
    match wanted {
        GgmlDType::Q2K | GgmlDType::Q3K => Some(GgmlDType::Q4_0),
        GgmlDType::Q4K => Some(GgmlDType::Q5_0),
        GgmlDType::Q5K => Some(GgmlDType::Q5_1),
        GgmlDType::Q6K => Some(GgmlDType::Q8_0),
        _ => None,
    }
}

/// Bytes `spec` takes in `dtype`.
pub fn tensor_bytes(spec: &TensorSpec, dtype: GgmlDType) -> u64 {
    (spec.elements() / dtype.block_size() * dtype.type_size()) as u64
}

/// `smollm2-135m-instruct@q4_1+candle`: model, format and engine, so that runs and
/// benchmark baselines of different engines never collide.
pub fn run_label(name: &str, format: &str, engine: &str) -> String {
    format!("{name}@{format}+{engine}")
}

/// A model resolved and checked, with its format decided, before the engine is built: what
/// benchmark ids and reports need, at the cost of reading metadata only.
pub struct Planned {
    /// The resolved model.
    pub resolved: ResolvedModel,
    /// `None`: a GGUF in its own types.
    pub format: Option<WeightFormat>,
    /// What results call the format: `q4_1` for a Q4_1 GGUF run as is.
    pub format_label: String,
    /// What results call the model: `smollm2-135m-instruct`, `synthetic-llama3-8b`.
    pub name: String,
    pub(crate) layout: QuantPlan,
}

impl Planned {
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

    /// What a GGUF file holds that changes the model's arithmetic but that the family's
    /// description does not cover, so an engine computing the model from that description
    /// would run a different one: tensors the family does not declare (Llama 3.1-3.3's
    /// `rope_freqs.weight`, its per-frequency RoPE scaling) and RoPE scaling metadata.
    pub fn unapplied(&self) -> Vec<String> {
        let Weights::Gguf(gguf) = &self.resolved.weights else {
            return vec![];
        };
        if !self.resolved.family.described {
            // Nothing is described, so nothing is left out: engines refuse the whole file.
            return vec![];
        }
        let mut declared: std::collections::HashSet<String> = self
            .resolved
            .family
            .tensors(&self.resolved.config)
            .into_iter()
            .map(|s| s.gguf_name)
            .collect();
        // Read into the config: engines that do not apply it refuse the config instead.
        if self.resolved.config.rope_freq_factors.is_some() {
            declared.insert(crate::source::gguf::ROPE_FREQS.to_string());
        }
        let mut found: Vec<String> = gguf
            .content
            .tensor_infos
            .keys()
            .filter(|name| !declared.contains(*name))
            .map(|name| format!("tensor `{name}`"))
            .collect();
        found.sort();
        let family = self.resolved.family.name;
        let metadata = &gguf.content.metadata;
        // The engines compute heads of the config's size (`key_length`), values as wide and
        // rotated whole: a file that says otherwise (partial rotary, narrower values) is
        // another model to them.
        let head_dim = self.resolved.config.head_dim();
        for key in [
            "attention.key_length",
            "attention.value_length",
            "rope.dimension_count",
        ] {
            let key = format!("{family}.{key}");
            match metadata.get(&key).map(|v| v.to_u32()) {
                Some(Ok(n)) if n as usize == head_dim => {}
                Some(Ok(n)) => found.push(format!(
                    "metadata `{key}` = {n} (the engines use heads of {head_dim})"
                )),
                Some(Err(_)) => found.push(format!("metadata `{key}` of a type other than U32")),
                None => {}
            }
        }
        for key in [
            "attention.sliding_window",
            "attn_logit_softcapping",
            "final_logit_softcapping",
        ] {
            let key = format!("{family}.{key}");
            if let Some(value) = metadata.get(&key) {
                found.push(format!("metadata `{key}` = {value:?}"));
            }
        }
        if let Some(kind) = gguf
            .content
            .metadata
            .get(&format!("{family}.rope.scaling.type"))
            .and_then(|v| v.to_string().ok())
            .filter(|kind| kind.as_str() != "none")
        {
            found.push(format!("metadata `{family}.rope.scaling.type` = {kind:?}"));
        }
        found
    }

    /// Refuses, for an engine that computes the model from the family's description (not from
    /// the file itself), a file holding what [`Self::unapplied`] finds.
    pub fn refuse_unapplied(&self, what: &str) -> Result<()> {
        self.resolved
            .family
            .refuse_foreign(what)
            .map_err(|reason| Error::InvalidSetting {
                name: "--engine",
                reason: format!("{}: {reason}", self.resolved.source_name()),
            })?;
        let found = self.unapplied();
        if found.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidSetting {
            name: "--engine",
            reason: format!(
                "{} holds {}, which changes the model's arithmetic and which {what} does not apply: it would run a different model. Run the file as it is with --engine llama-cpp (built with --features llama-cpp)",
                self.resolved.source_name(),
                found.join(", ")
            ),
        })
    }
}

/// Bytes the tensors take in memory, each in its storage type.
fn weight_bytes(stored_as: &[(TensorSpec, GgmlDType)]) -> u64 {
    stored_as.iter().map(|(s, d)| tensor_bytes(s, *d)).sum()
}

/// Plans `spec` in `format`: every tensor's type, the memory it needs (checked).
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
    if let (Some(f), false) = (format, resolved.family.described) {
        return Err(Error::InvalidSetting {
            name: "--format",
            reason: format!(
                "{} is a {:?} model, which llm-bench has no description of, so it cannot convert it to {}: run the file in its own types (no --format) with --engine llama-cpp",
                resolved.source_name(),
                resolved.family.name,
                f.name()
            ),
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
            quant_plan(resolved.family.tensors(&resolved.config), q)
        }
        // Norms and biases in f32 whatever the format, as llama.cpp's converter writes them
        // (its CPU backend cannot multiply by an f16 or bf16 norm: a file with one aborts it).
        (Some(dense), _) => QuantPlan {
            tensors: resolved
                .family
                .tensors(&resolved.config)
                .into_iter()
                .map(|s| {
                    let dtype = if s.role.is_vector() {
                        GgmlDType::F32
                    } else {
                        dense.ggml()
                    };
                    (s, dtype)
                })
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
    content: &crate::gguf::Content,
) -> Vec<(TensorSpec, GgmlDType)> {
    if !resolved.family.described {
        return file_tensors(content);
    }
    resolved
        .family
        .tensors(&resolved.config)
        .into_iter()
        .map(|s| {
            let dtype = content.tensor_infos[&s.gguf_name].ggml_dtype;
            (s, dtype)
        })
        .collect()
}

/// A foreign architecture's tensors as its file lists them (by name, so the list is the same
/// every time), each given the role its name and dimensions suggest, for the weight size and
/// the bytes read per token.
fn file_tensors(content: &crate::gguf::Content) -> Vec<(TensorSpec, GgmlDType)> {
    let mut tensors: Vec<_> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| {
            let shape = info.shape.dims().to_vec();
            let role = if name == "token_embd.weight" {
                TensorRole::Embedding
            } else if shape.len() == 1 && name.ends_with(".bias") {
                TensorRole::Bias
            } else if shape.len() == 1 {
                TensorRole::Norm
            } else {
                TensorRole::Matmul
            };
            let spec = TensorSpec {
                hf_name: name.clone(),
                gguf_name: name.clone(),
                shape,
                role,
                rope_permuted_heads: None,
            };
            (spec, info.ggml_dtype)
        })
        .collect();
    tensors.sort_by(|(a, _), (b, _)| a.gguf_name.cmp(&b.gguf_name));
    tensors
}

/// What an engine is built from: the planned model, owned, and the run's thread count.
pub struct EngineInput {
    /// The family.
    pub family: &'static crate::family::Family,
    /// Its config.
    pub config: ModelConfig,
    /// Its weights.
    pub weights: Weights,
    /// `None`: a GGUF in its own types.
    pub format: Option<WeightFormat>,
    /// Every tensor's storage type.
    pub layout: QuantPlan,
    /// Threads the engine uses.
    pub threads: usize,
    /// The file or folder the weights came from (`None` for synthetic weights).
    pub source_path: Option<std::path::PathBuf>,
}

/// The type holding most matrix weights: `q4_1` for a "Q4_1" GGUF whose embedding is q8_0.
fn main_matmul_type(stored_as: &[(TensorSpec, GgmlDType)]) -> String {
    let mut by_type: HashMap<&'static str, usize> = HashMap::new();
    for (spec, dtype) in stored_as
        .iter()
        .filter(|(s, _)| s.role == TensorRole::Matmul)
    {
        *by_type.entry(ggml_name(*dtype)).or_default() += spec.elements();
    }
    by_type
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "mixed".into())
}

/// Every matrix once per decode step, one row of the embedding table; with tied embeddings
/// the table is also the output projection and is read whole.
pub(crate) fn bytes_read_per_token(stored_as: &[(TensorSpec, GgmlDType)], tied: bool) -> u64 {
    stored_as
        .iter()
        .map(|(spec, dtype)| {
            let bytes = tensor_bytes(spec, *dtype);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family;
    use crate::source::synthetic;

    /// SmolLM2's rows of 576 do not fill a k-quant block: they take the type llama.cpp's
    /// quantizer gives them (its `llama-quant.cpp` table), its rows of 1536 the k-quant, and
    /// a notice counts them.
    #[test]
    fn rows_short_of_k_quant_blocks_take_llama_cpps_fallback_types() {
        let config = synthetic::preset("smollm2-135m").unwrap().config;
        let specs = family::llama::LLAMA.tensors(&config);
        for (wanted, fallback) in [
            (GgmlDType::Q2K, GgmlDType::Q4_0),
            (GgmlDType::Q3K, GgmlDType::Q4_0),
            (GgmlDType::Q4K, GgmlDType::Q5_0),
            (GgmlDType::Q5K, GgmlDType::Q5_1),
            (GgmlDType::Q6K, GgmlDType::Q8_0),
        ] {
            let planned = quant_plan(specs.clone(), wanted);
            for (spec, dtype) in &planned.tensors {
                let want = match (spec.role, spec.cols()) {
                    (TensorRole::Norm, _) => GgmlDType::F32,
                    (_, 576) => fallback,
                    (_, 1536) => wanted,
                    (_, cols) => panic!("{} has rows of {cols}", spec.gguf_name),
                };
                assert_eq!(*dtype, want, "{} at {}", spec.gguf_name, ggml_name(wanted));
            }
            assert_eq!(planned.fallbacks.len(), 1, "{:?}", planned.fallbacks);
            assert!(
                planned.fallbacks[0].contains("rows of 576")
                    && planned.fallbacks[0]
                        .ends_with(&format!("stored as {}", ggml_name(fallback))),
                "{:?}",
                planned.fallbacks
            );
        }
        // Formats of 32-weight blocks fit every row: nothing falls back.
        assert!(quant_plan(specs, GgmlDType::Q5_0).fallbacks.is_empty());
    }
}
