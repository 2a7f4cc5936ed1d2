//! Where weights come from: the hub, a local folder of safetensors, a GGUF file, or a
//! synthetic twin. Resolving a spec yields the architecture, its config, the tokenizer and a
//! handle on the weights; the engine is built from those in `crate::model`.

pub mod gguf;
pub mod gguf_header;
pub mod hub;
pub mod local;
pub mod synthetic;

use crate::error::Result;
use crate::family::{Family, ModelConfig, TensorSpec};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use std::ops::Range;
use std::path::PathBuf;

/// Real trained weights, or a random-weight twin of the same shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsKind {
    /// Trained weights.
    Real,
    /// Random weights of a real model's shapes.
    Synthetic,
}

/// Where the weights come from.
pub enum Weights {
    /// A local folder's safetensors.
    Safetensors(local::SafetensorsWeights),
    /// A GGUF file.
    Gguf(gguf::GgufWeights),
    /// A synthetic twin.
    Synthetic(synthetic::SyntheticWeights),
}

/// A model spec resolved: its family, config, tokenizer and weights.
pub struct ResolvedModel {
    /// The spec.
    pub spec: ModelSpec,
    /// Its family.
    pub family: &'static Family,
    /// Its config.
    pub config: ModelConfig,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
    /// Its weights.
    pub weights: Weights,
    /// Lines the user should read (fallbacks taken, stand-ins used).
    pub notices: Vec<String>,
}

impl ResolvedModel {
    /// Real or synthetic weights: a twin, or a GGUF file `llm-bench export` wrote from one
    /// (its `llm_bench.weights` key, which llama.cpp's quantizer carries over to the files it
    /// makes from it).
    pub fn weights_kind(&self) -> WeightsKind {
        match &self.weights {
            Weights::Synthetic(_) => WeightsKind::Synthetic,
            Weights::Gguf(g) => match g.content.metadata.get("llm_bench.weights") {
                Some(crate::gguf::Value::String(kind)) if kind == "synthetic" => {
                    WeightsKind::Synthetic
                }
                _ => WeightsKind::Real,
            },
            Weights::Safetensors(_) => WeightsKind::Real,
        }
    }

    /// The file or folder the model came from, else its spec (`synthetic:...`), for messages.
    pub fn source_name(&self) -> String {
        self.source_path()
            .map_or_else(|| self.spec.to_string(), |p| p.display().to_string())
    }

    /// The file or folder the weights come from, if any.
    pub fn source_path(&self) -> Option<PathBuf> {
        match &self.weights {
            Weights::Safetensors(w) => w.dir.clone().into(),
            Weights::Gguf(w) => w.path.clone().into(),
            Weights::Synthetic(_) => None,
        }
    }
}

/// Tensors in Hugging Face naming and layout, as f32, whatever file holds them.
pub trait WeightSource: Send + Sync {
    /// Rows `rows` of the tensor, row-major. Made from those rows alone (a file's bytes for
    /// them, generated values), so a tensor can be made a chunk at a time.
    fn rows(&self, spec: &TensorSpec, rows: Range<usize>) -> Result<Vec<f32>>;

    /// [`Self::rows`] into `out`, in place of what it held: a source that makes its values
    /// writes them into `out`'s allocation, so a buffer kept from chunk to chunk is reused.
    fn rows_into(&self, spec: &TensorSpec, rows: Range<usize>, out: &mut Vec<f32>) -> Result<()> {
        *out = self.rows(spec, rows)?;
        Ok(())
    }
}

impl Weights {
    /// The weights as rows to read.
    pub fn as_source(&self) -> &dyn WeightSource {
        match self {
            Weights::Safetensors(w) => w,
            Weights::Gguf(w) => w,
            Weights::Synthetic(w) => w,
        }
    }
}

/// Resolves `spec`: the hub's files fetched, headers checked, config read.
pub fn resolve(spec: &ModelSpec) -> Result<ResolvedModel> {
    match spec {
        ModelSpec::Hub { repo, revision } => {
            let dir = hub::fetch(repo, revision)?;
            local::resolve_dir(spec.clone(), &dir)
        }
        ModelSpec::LocalDir(dir) => local::resolve_dir(spec.clone(), dir),
        ModelSpec::Gguf(path) => gguf::resolve_file(spec.clone(), path),
        ModelSpec::Synthetic(preset) => synthetic::resolve_preset(spec.clone(), preset),
    }
}
