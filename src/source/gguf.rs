//! A `.gguf` file: weights, config and tokenizer all come from the one file.

use super::{ResolvedModel, WeightSource, Weights};
use crate::arch::{self, TensorSpec};
use crate::error::{candle_text, Error, Result};
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
    pub file: Mutex<File>,
    head_dim: usize,
}

pub fn read_content(path: &Path) -> Result<(Content, File)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let content =
        Content::read(&mut file).map_err(|e| Error::corrupt(path, "GGUF", candle_text(&e)))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    for (name, info) in &content.tensor_infos {
        let elements = info.shape.elem_count() as u64;
        let bytes =
            elements / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            return Err(Error::corrupt(
                path,
                "GGUF",
                format!("tensor {name} ends at byte {end} but the file has {file_len} bytes"),
            ));
        }
    }
    Ok((content, file))
}

pub fn resolve_file(spec: ModelSpec, path: &Path) -> Result<ResolvedModel> {
    let (content, file) = read_content(path)?;
    let arch_name = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| Error::BadField {
            path: path.into(),
            field: "general.architecture".into(),
            problem: "is missing".into(),
        })?;
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
    let config = (arch.config_from_gguf)(&content).map_err(|problem| Error::BadField {
        path: path.into(),
        field: format!("{arch_name}.*"),
        problem,
    })?;
    for spec in (arch.tensors)(&config) {
        if !content.tensor_infos.contains_key(&spec.gguf_name) {
            return Err(Error::BadField {
                path: path.into(),
                field: spec.gguf_name,
                problem: "tensor is missing".into(),
            });
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
