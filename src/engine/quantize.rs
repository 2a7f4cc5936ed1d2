//! Quantize on load (the counterpart of PyTorch's `quantize_dynamic`): f32 rows from any
//! weight source are quantized chunk by chunk into GGML blocks and handed to candle's GGUF
//! loader through a reader that produces each tensor's bytes only when the loader asks for
//! it. No GGUF file is written and no whole model is ever held in f32, so an 8B model at
//! q4_0 peaks near its final size.

use crate::arch::{self, Architecture, ModelConfig, TensorRole, TensorSpec};
use crate::engine::candle::CandleModel;
use crate::error::{Error, Result};
use crate::format::ggml_name;
use crate::source::WeightSource;
use candle_core::quantized::gguf_file::{Content, TensorInfo, VersionedMagic};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// The GGML type each tensor is stored in.
#[derive(Clone)]
pub struct QuantPlan {
    pub tensors: Vec<(TensorSpec, GgmlDType)>,
    /// Tensors that could not take the wanted type, and why.
    pub fallbacks: Vec<String>,
}

pub fn plan(specs: Vec<TensorSpec>, wanted: GgmlDType) -> QuantPlan {
    let mut fell_back: HashMap<(usize, &'static str), usize> = HashMap::new();
    let tensors: Vec<_> = specs
        .into_iter()
        .map(|spec| {
            let dtype = if spec.role == TensorRole::Norm {
                GgmlDType::F32
            } else if spec.cols() % wanted.block_size() == 0 {
                wanted
            } else {
                // As llama.cpp does: rows that do not fill whole k-quant blocks of 256 take q8_0.
                let fallback = if spec.cols() % GgmlDType::Q8_0.block_size() == 0 {
                    GgmlDType::Q8_0
                } else {
                    GgmlDType::F32
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

pub fn tensor_bytes(spec: &TensorSpec, dtype: GgmlDType) -> u64 {
    (spec.elements() / dtype.block_size() * dtype.type_size()) as u64
}

/// Builds the quantized engine from `source` by quantizing every tensor to its planned type.
pub fn build_engine(
    arch: &Architecture,
    config: &ModelConfig,
    source: &dyn WeightSource,
    plan: &QuantPlan,
) -> Result<Box<dyn CandleModel>> {
    let mut offsets = Vec::with_capacity(plan.tensors.len());
    let mut tensor_infos = HashMap::new();
    let mut offset = 0u64;
    for (spec, dtype) in &plan.tensors {
        offsets.push(offset);
        tensor_infos.insert(
            spec.gguf_name.clone(),
            TensorInfo {
                ggml_dtype: *dtype,
                shape: spec.shape.clone().into(),
                offset,
            },
        );
        offset += tensor_bytes(spec, *dtype);
    }
    let content = Content {
        magic: VersionedMagic::GgufV3,
        metadata: (arch.gguf_metadata)(config).into_iter().collect(),
        tensor_infos,
        tensor_data_offset: 0,
    };
    let mut reader = OnDemandTensors {
        maker: TensorMaker {
            plan,
            source,
            head_dim: config.head_dim(),
        },
        offsets,
        total: offset,
        position: 0,
        current: None,
    };
    (arch.build_quantized)(content, &mut reader, &Device::Cpu, config)
}

/// A `Read + Seek` over the tensor-data section of a GGUF file that does not exist: each
/// tensor's bytes are made when the loader seeks to it, and dropped when it moves on.
struct OnDemandTensors<'a> {
    maker: TensorMaker<'a>,
    offsets: Vec<u64>,
    total: u64,
    position: u64,
    current: Option<(usize, Vec<u8>)>,
}

/// Makes each planned tensor's GGUF bytes (its storage type, GGUF's row order) from a weight
/// source: what the quantized engine loads and what `llm-bench export` writes.
pub struct TensorMaker<'a> {
    pub plan: &'a QuantPlan,
    pub source: &'a dyn WeightSource,
    pub head_dim: usize,
}

impl TensorMaker<'_> {
    /// The bytes of tensor `index` of the plan, exactly [`tensor_bytes`] long.
    pub fn make_tensor(&self, index: usize) -> Result<Vec<u8>> {
        let (spec, dtype) = &self.plan.tensors[index];
        let cols = spec.cols();
        // Chunks hold whole attention heads so that the RoPE row permutation stays inside one.
        let chunk_rows = (256 / self.head_dim).max(1) * self.head_dim;
        let gguf_layout = |rows: Vec<f32>| match spec.rope_permuted_heads {
            Some(_) => arch::permute_rows_to_gguf(&rows, cols, self.head_dim),
            None => rows,
        };
        let quantize = |rows: Vec<f32>| -> Result<Vec<u8>> {
            let n = rows.len() / cols;
            match dtype {
                GgmlDType::F32 => Ok(rows.iter().flat_map(|v| v.to_le_bytes()).collect()),
                _ => {
                    let t = Tensor::from_vec(rows, (n, cols), &Device::Cpu)?;
                    Ok(QTensor::quantize(&t, *dtype)?.data()?.into_owned())
                }
            }
        };
        let starts: Vec<usize> = (0..spec.rows()).step_by(chunk_rows).collect();
        let chunks: Vec<Vec<u8>> = if self.source.generates_rows() {
            starts
                .par_iter()
                .map(|&start| {
                    let end = (start + chunk_rows).min(spec.rows());
                    quantize(gguf_layout(self.source.rows(spec, start..end)?))
                })
                .collect::<Result<_>>()?
        } else {
            let all = gguf_layout(self.source.rows(spec, 0..spec.rows())?);
            starts
                .par_iter()
                .map(|&start| {
                    let end = (start + chunk_rows).min(spec.rows());
                    quantize(all[start * cols..end * cols].to_vec())
                })
                .collect::<Result<_>>()?
        };
        Ok(chunks.concat())
    }
}

impl Seek for OnDemandTensors<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.position = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.total.saturating_add_signed(d),
            SeekFrom::Current(d) => self.position.saturating_add_signed(d),
        };
        Ok(self.position)
    }
}

impl Read for OnDemandTensors<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.total || buf.is_empty() {
            return Ok(0);
        }
        let index = self.offsets.partition_point(|&o| o <= self.position) - 1;
        if self.current.as_ref().map(|(i, _)| *i) != Some(index) {
            self.current = None; // free the previous tensor before making the next
            let bytes = self
                .maker
                .make_tensor(index)
                .map_err(|e: Error| std::io::Error::other(e.to_string()))?;
            self.current = Some((index, bytes));
        }
        let (_, bytes) = self.current.as_ref().expect("set just above");
        let within = (self.position - self.offsets[index]) as usize;
        let n = buf.len().min(bytes.len() - within);
        buf[..n].copy_from_slice(&bytes[within..within + n]);
        self.position += n as u64;
        Ok(n)
    }
}
