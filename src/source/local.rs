//! A folder holding `config.json`, `*.safetensors` (or shards listed by
//! `model.safetensors.index.json`) and `tokenizer.json`: the layout of a hub snapshot.

use super::{ResolvedModel, WeightSource, Weights};
use crate::error::{candle_text, Error, Result};
use crate::family::{self, TensorSpec};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A local folder's safetensors weights.
pub struct SafetensorsWeights {
    /// The folder.
    pub dir: PathBuf,
    /// Its safetensors files.
    pub files: Vec<PathBuf>,
    /// Their tensors, memory-mapped.
    pub tensors: MmapedSafetensors,
}

/// Resolves a local folder.
pub fn resolve_dir(spec: ModelSpec, dir: &Path) -> Result<ResolvedModel> {
    if !dir.is_dir() {
        return Err(Error::ModelPathMissing { path: dir.into() });
    }
    let config_path = dir.join("config.json");
    let json = read_json_file(&config_path)?;
    let model_type = json
        .get("model_type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::BadField {
            path: config_path.clone(),
            field: "model_type".into(),
            problem: format!("is missing; expected one of: {}", family::supported_names()),
        })?;
    let family =
        family::by_hf_model_type(model_type).ok_or_else(|| Error::UnsupportedArchitecture {
            found: model_type.into(),
            path: config_path.clone(),
            supported: family::supported_names(),
        })?;
    let config = family
        .config_from_hf(&json)
        .map_err(|problem| Error::BadField {
            path: config_path.clone(),
            field: "config".into(),
            problem,
        })?;
    config.validate().map_err(|p| {
        let (field, problem) = family.describe_hf(&p);
        Error::BadField {
            path: config_path.clone(),
            field,
            problem,
        }
    })?;
    let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
    let files = safetensors_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; a file changed on disk while the model
    // loads is the user's to avoid, as with every mmap-based loader.
    let tensors = unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| {
        crate::paths::corrupt(
            files.first().cloned().unwrap_or_default(),
            "safetensors",
            candle_text(&e),
        )
    })?;
    let weights = SafetensorsWeights {
        dir: dir.into(),
        files,
        tensors,
    };
    for spec in family.tensors(&config) {
        weights.check(&spec)?;
    }
    Ok(ResolvedModel {
        spec,
        family,
        config,
        tokenizer,
        weights: Weights::Safetensors(weights),
        notices: vec![],
    })
}

fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        let shards: Vec<PathBuf> = shard_names(&index)?.iter().map(|f| dir.join(f)).collect();
        if let Some(missing) = shards.iter().find(|f| !f.is_file()) {
            return Err(Error::io(
                missing,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "shard listed in model.safetensors.index.json is missing",
                ),
            ));
        }
        return Ok(shards);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::io(
            dir.join("model.safetensors"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no *.safetensors weights in the model folder",
            ),
        ));
    }
    Ok(files)
}

pub(crate) const INDEX_FILE: &str = "model.safetensors.index.json";

pub(crate) fn read_json_file(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| crate::paths::corrupt(path, "JSON", e))
}

/// The shard files a `model.safetensors.index.json` lists, sorted, each once.
pub(crate) fn shard_names(index: &Path) -> Result<Vec<String>> {
    let json = read_json_file(index)?;
    let mut names: Vec<String> = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::BadField {
            path: index.into(),
            field: "weight_map".into(),
            problem: "is missing or not an object".into(),
        })?
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

impl SafetensorsWeights {
    fn check(&self, spec: &TensorSpec) -> Result<()> {
        let view = self
            .tensors
            .get(&spec.hf_name)
            .map_err(|_| Error::BadField {
                path: self.dir.clone(),
                field: spec.hf_name.clone(),
                problem:
                    "is missing from the safetensors files: the weights do not match config.json"
                        .into(),
            })?;
        if view.shape() != spec.shape.as_slice() {
            return Err(Error::BadField {
                path: self.dir.clone(),
                field: spec.hf_name.clone(),
                problem: format!(
                    "has shape {:?} but config.json implies {:?}",
                    view.shape(),
                    spec.shape
                ),
            });
        }
        Ok(())
    }
}

impl WeightSource for SafetensorsWeights {
    /// Converts only the rows asked for, from the mapped file's bytes.
    fn rows(&self, spec: &TensorSpec, rows: Range<usize>) -> Result<Vec<f32>> {
        let view = self.tensors.get(&spec.hf_name)?;
        let dtype = DType::try_from(view.dtype())?;
        let row_bytes = spec.cols() * dtype.size_in_bytes();
        let bytes = view
            .data()
            .get(rows.start * row_bytes..rows.end * row_bytes)
            .ok_or_else(|| Error::BadField {
                path: self.dir.clone(),
                field: spec.hf_name.clone(),
                problem: format!(
                    "holds {} bytes, fewer than rows {rows:?} of {:?} in {dtype:?} need",
                    view.data().len(),
                    spec.shape
                ),
            })?;
        let tensor = candle_core::Tensor::from_raw_buffer(
            bytes,
            dtype,
            &[rows.len(), spec.cols()],
            &Device::Cpu,
        )?;
        Ok(tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }
}
