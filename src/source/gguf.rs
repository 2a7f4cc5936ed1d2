//! A `.gguf` file: weights, config and tokenizer all come from the one file.

use super::{gguf_header, ResolvedModel, WeightSource, Weights};
use crate::arch::{self, ReadSeek, TensorSpec};
use crate::error::{Error, Result};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use candle_core::quantized::gguf_file::Content;
use candle_core::Device;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct GgufWeights {
    pub path: PathBuf,
    pub content: Content,
    pub file: Mutex<Box<dyn ReadSeek + Send>>,
    head_dim: usize,
}

/// Reads and checks the header of a GGUF file (see [`gguf_header`]).
pub fn read_content(path: &Path) -> Result<(Content, File)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let content = gguf_header::read(&mut file, file_len).map_err(|e| corrupt(path, e))?;
    Ok((content, file))
}

fn corrupt(path: &Path, detail: String) -> Error {
    Error::corrupt(path, "GGUF", detail)
}

pub fn resolve_file(spec: ModelSpec, path: &Path) -> Result<ResolvedModel> {
    let (content, file) = read_content(path)?;
    resolve_content(spec, path, content, Box::new(file))
}

/// Resolves a GGUF whose header is already read: architecture, config (checked), every
/// tensor the architecture needs (present, with the shape the config implies), tokenizer.
pub fn resolve_content(
    spec: ModelSpec,
    path: &Path,
    content: Content,
    file: Box<dyn ReadSeek + Send>,
) -> Result<ResolvedModel> {
    let bad = |field: &str, problem: String| Error::BadField {
        path: path.into(),
        field: field.into(),
        problem,
    };
    let arch_name = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| bad("general.architecture", "is missing or not a string".into()))?;
    let supported = arch::ARCHITECTURES
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ");
    let arch = arch::by_gguf_name(&arch_name).ok_or_else(|| Error::UnsupportedArchitecture {
        found: arch_name.clone(),
        path: path.into(),
        supported,
    })?;
    let config = (arch.config_from_gguf)(&content)
        .map_err(|problem| bad(&format!("{arch_name}.*"), problem))?;
    config.validate().map_err(|p| {
        let (key, problem) = p.describe(arch.gguf_keys);
        bad(&key, problem)
    })?;
    for spec in (arch.tensors)(&config) {
        let info = content
            .tensor_infos
            .get(&spec.gguf_name)
            .ok_or_else(|| bad(&spec.gguf_name, "tensor is missing".into()))?;
        if info.shape.dims() != spec.shape.as_slice() {
            return Err(bad(
                &spec.gguf_name,
                format!(
                    "tensor has shape {:?} (rows, columns) but the model's metadata implies {:?}",
                    info.shape.dims(),
                    spec.shape
                ),
            ));
        }
    }
    let tokenizer = TextTokenizer::from_gguf(&content, path)?;
    Ok(ResolvedModel {
        spec,
        arch,
        config: config.clone(),
        tokenizer,
        weights: Weights::Gguf(GgufWeights {
            path: path.into(),
            content,
            file: Mutex::new(file),
            head_dim: config.head_dim(),
        }),
        notices: vec![],
    })
}

impl WeightSource for GgufWeights {
    fn rows(&self, spec: &TensorSpec, rows: Range<usize>) -> Result<Vec<f32>> {
        let qtensor = {
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.content
                .tensor(&mut *file, &spec.gguf_name, &Device::Cpu)?
        };
        let tensor = qtensor.dequantize(&Device::Cpu)?;
        let data: Vec<f32> = tensor.flatten_all()?.to_vec1()?;
        let cols = spec.cols();
        let data = match spec.rope_permuted_heads {
            Some(_) => arch::permute_rows_to_hf(&data, cols, self.head_dim),
            None => data,
        };
        Ok(data[rows.start * cols..rows.end * cols].to_vec())
    }
}
