//! A `.gguf` file: weights, config and tokenizer all come from the one file.

use super::{gguf_header, ResolvedModel, WeightSource, Weights};
use crate::error::{Error, Result};
use crate::family::{self, ReadSeek, TensorSpec};
use crate::format::IQ4NL_VALUES;
use crate::gguf::Content;
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::Device;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A GGUF file's weights.
pub struct GgufWeights {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub content: Content,
    /// The file, shared by the readers of its rows.
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
    crate::paths::corrupt(path, "GGUF", detail)
}

/// The tensor llama.cpp's converter writes for Llama 3.1-3.3's RoPE scaling.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// The per-frequency RoPE divisors of `rope_freqs.weight`, if the file has them (F32, as
/// llama.cpp writes them). Their count is checked with the rest of the config.
fn rope_freq_factors(
    content: &Content,
    file: &mut Box<dyn ReadSeek + Send>,
) -> std::result::Result<Option<Vec<f32>>, String> {
    let Some(info) = content.tensor_infos.get(ROPE_FREQS) else {
        return Ok(None);
    };
    if info.ggml_dtype != crate::format::GgmlDType::F32 {
        return Err(format!(
            "tensor is stored as {}; llama.cpp writes it as f32",
            crate::format::ggml_name(info.ggml_dtype)
        ));
    }
    // No real head has more than a few hundred frequencies; the bound keeps a corrupt shape
    // from allocating.
    let count = info.shape.elem_count();
    if info.shape.rank() != 1 || count > 1 << 16 {
        return Err(format!(
            "tensor has shape {:?}; expected one factor per rotary frequency",
            info.shape.dims()
        ));
    }
    let mut bytes = vec![0u8; count * 4];
    file.seek(SeekFrom::Start(content.tensor_data_offset + info.offset))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| format!("tensor data cannot be read: {e}"))?;
    Ok(Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    ))
}

/// Resolves a `.gguf` file.
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
    // An architecture llm-bench does not describe is read for llama.cpp to run (its
    // engines refuse it by name): its generic keys are llama.cpp's `LLM_KV_*`.
    let family = family::foreign(&arch_name);
    let mut config = family
        .config_from_gguf(&content)
        .map_err(|problem| bad(&format!("{arch_name}.*"), problem))?;
    // The header reader has checked that every tensor's data lies inside the file.
    let mut file = file;
    config.rope_freq_factors =
        rope_freq_factors(&content, &mut file).map_err(|problem| bad(ROPE_FREQS, problem))?;
    config.validate().map_err(|p| {
        let (key, problem) = family.describe_gguf(&p);
        bad(&key, problem)
    })?;
    // A foreign architecture's tensors are llama.cpp's to check.
    for spec in family.tensors(&config) {
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
    gguf_header::check_layout(&content).map_err(|e| corrupt(path, e))?;
    let tokenizer = TextTokenizer::from_gguf(&content, path)?;
    Ok(ResolvedModel {
        spec,
        family,
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
    /// Reads and dequantizes only the blocks of the rows asked for (whole attention heads of
    /// a RoPE-permuted tensor, whose rows are put back in Hugging Face's order), so a tensor
    /// is made a chunk at a time without being held whole in f32.
    fn rows(&self, spec: &TensorSpec, rows: Range<usize>) -> Result<Vec<f32>> {
        let info = self
            .content
            .tensor_infos
            .get(&spec.gguf_name)
            .ok_or_else(|| Error::BadField {
                path: self.path.clone(),
                field: spec.gguf_name.clone(),
                problem: "tensor is missing".into(),
            })?;
        let (dtype, cols) = (info.ggml_dtype, spec.cols());
        let permuted = spec.rope_permuted_heads.is_some();
        let read = match permuted {
            true => {
                let hd = self.head_dim;
                rows.start / hd * hd..(rows.end.div_ceil(hd) * hd).min(spec.rows())
            }
            false => rows.clone(),
        };
        // The header's reader refused rows that are not whole blocks (`gguf_header::read`).
        debug_assert!(cols.is_multiple_of(dtype.block_size()));
        let row_bytes = (cols / dtype.block_size() * dtype.type_size()) as u64;
        let mut bytes = vec![0u8; read.len() * row_bytes as usize];
        {
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let at = self.content.tensor_data_offset + info.offset + read.start as u64 * row_bytes;
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| Error::io(&self.path, e))?;
        }
        let data: Vec<f32> = match dtype.candle() {
            Some(candle) => {
                let qtensor =
                    qtensor_from_ggml(candle, &bytes, vec![read.len(), cols], &Device::Cpu)?;
                qtensor.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?
            }
            // iq4_nl (candle has no such type): an f16 scale, then 16 bytes of indices into
            // llama.cpp's table, weights 0..16 in the low nibbles.
            None => bytes
                .chunks_exact(dtype.type_size())
                .flat_map(|b| {
                    let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                    let value = move |i: u8| d * IQ4NL_VALUES[i as usize] as f32;
                    let qs = &b[2..18];
                    let low: Vec<f32> = qs.iter().map(|q| value(q & 0x0F)).collect();
                    let high: Vec<f32> = qs.iter().map(|q| value(q >> 4)).collect();
                    low.into_iter().chain(high)
                })
                .collect(),
        };
        let data = match permuted {
            true => family::permute_rows_to_hf(&data, cols, self.head_dim),
            false => data,
        };
        let skip = rows.start - read.start;
        Ok(data[skip * cols..(skip + rows.len()) * cols].to_vec())
    }
}
