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
use std::ops::Range;

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
    /// Rows are made and quantized in chunks of whole attention heads, so that the RoPE row
    /// permutation stays inside one.
    fn chunk_rows(&self) -> usize {
        (256 / self.head_dim).max(1) * self.head_dim
    }

    /// The bytes of tensor `index` of the plan, exactly [`tensor_bytes`] long.
    pub fn make_tensor(&self, index: usize) -> Result<Vec<u8>> {
        let rows = self.plan.tensors[index].0.rows();
        self.make_rows(index, 0..rows)
    }

    /// The bytes of rows `rows` of tensor `index` (GGUF's row order), which start at a
    /// multiple of [`Self::chunk_rows`].
    fn make_rows(&self, index: usize, rows: Range<usize>) -> Result<Vec<u8>> {
        let (spec, dtype) = &self.plan.tensors[index];
        let cols = spec.cols();
        let chunk_rows = self.chunk_rows();
        debug_assert_eq!(rows.start % chunk_rows, 0);
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
        let starts: Vec<usize> = rows.clone().step_by(chunk_rows).collect();
        let chunk = |start: usize| start..(start + chunk_rows).min(rows.end);
        let chunks: Vec<Vec<u8>> = starts
            .par_iter()
            .map(|&start| quantize(gguf_layout(self.source.rows(spec, chunk(start))?)))
            .collect::<Result<_>>()?;
        Ok(chunks.concat())
    }

    /// Tensor `index`'s bytes as a stream, made a batch of rows at a time (`batch_chunks`
    /// chunks, made in parallel), so a whole tensor is never held beside what the reader
    /// builds from it (the 8B twin's embedding is 282 MiB at q4_0, 2 GiB in f32).
    pub fn stream(&self, index: usize, batch_chunks: usize) -> TensorStream<'_> {
        TensorStream {
            maker: self,
            index,
            rows: self.plan.tensors[index].0.rows(),
            batch: self.chunk_rows() * batch_chunks.max(1),
            next_row: 0,
            bytes: Vec::new(),
            at: 0,
        }
    }
}

/// Chunks a [`TensorStream`] makes at once: enough to keep every core busy generating.
pub const STREAM_CHUNKS: usize = 16;

/// One tensor's bytes made as they are read (see [`TensorMaker::stream`]).
pub struct TensorStream<'a> {
    maker: &'a TensorMaker<'a>,
    index: usize,
    rows: usize,
    batch: usize,
    next_row: usize,
    bytes: Vec<u8>,
    at: usize,
}

impl TensorStream<'_> {
    /// Fills `buf` with the tensor's next bytes; asking past its end is a bug of the caller's.
    pub fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            if self.at == self.bytes.len() {
                assert!(self.next_row < self.rows, "read past the tensor's end");
                let rows = self.next_row..(self.next_row + self.batch).min(self.rows);
                self.bytes = Vec::new(); // free the last batch before making the next
                self.bytes = self.maker.make_rows(self.index, rows.clone())?;
                self.next_row = rows.end;
                self.at = 0;
            }
            let n = buf.len().min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            buf = &mut buf[n..];
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::synthetic::{self, SyntheticWeights};

    /// SmolLM2's rows of 576 do not fill a k-quant block: they take the type llama.cpp's
    /// quantizer gives them (its `llama-quant.cpp` table), its rows of 1536 the k-quant, and
    /// a notice counts them.
    #[test]
    fn rows_short_of_k_quant_blocks_take_llama_cpps_fallback_types() {
        let config = synthetic::preset("smollm2-135m").unwrap().config;
        let specs = (arch::llama::LLAMA.tensors)(&config);
        for (wanted, fallback) in [
            (GgmlDType::Q2K, GgmlDType::Q4_0),
            (GgmlDType::Q3K, GgmlDType::Q4_0),
            (GgmlDType::Q4K, GgmlDType::Q5_0),
            (GgmlDType::Q5K, GgmlDType::Q5_1),
            (GgmlDType::Q6K, GgmlDType::Q8_0),
        ] {
            let planned = plan(specs.clone(), wanted);
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
        assert!(plan(specs, GgmlDType::Q5_0).fallbacks.is_empty());
    }

    /// A tensor streamed a batch of rows at a time, read in pieces that straddle the
    /// batches, gives the bytes made whole: rows of RoPE-permuted heads and plain ones, a last
    /// chunk short of the others, in a block format and in f32.
    #[test]
    fn streamed_tensors_equal_the_tensor_made_whole() {
        let config = synthetic::preset("smollm2-135m").unwrap().config;
        let source = SyntheticWeights {
            preset: "smollm2-135m",
            seed: synthetic::SYNTHETIC_SEED,
        };
        let wanted = ["blk.0.attn_q.weight", "blk.0.ffn_gate.weight"];
        let specs: Vec<TensorSpec> = (arch::llama::LLAMA.tensors)(&config)
            .into_iter()
            .filter(|s| wanted.contains(&s.gguf_name.as_str()))
            .collect();
        assert_eq!(specs.len(), 2);
        for dtype in [GgmlDType::Q4_1, GgmlDType::F32] {
            let plan = QuantPlan {
                tensors: specs.iter().map(|s| (s.clone(), dtype)).collect(),
                fallbacks: vec![],
            };
            let maker = TensorMaker {
                plan: &plan,
                source: &source,
                head_dim: config.head_dim(),
            };
            for (index, spec) in specs.iter().enumerate() {
                let whole = maker.make_tensor(index).unwrap();
                assert_eq!(whole.len() as u64, tensor_bytes(spec, dtype));
                for batch_chunks in [1, 4] {
                    let mut stream = maker.stream(index, batch_chunks);
                    let mut read = vec![0u8; whole.len()];
                    for piece in read.chunks_mut(1000) {
                        stream.read_exact(piece).unwrap();
                    }
                    assert!(
                        read == whole,
                        "{} {dtype:?} by {batch_chunks}",
                        spec.gguf_name
                    );
                }
            }
        }
    }
}
