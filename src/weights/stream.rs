//! Each planned tensor's GGUF bytes made from a weight source (its storage type, GGUF's row
//! order), whole or as a stream of row batches: what the engines that quantize on load read
//! and what `llm-bench export` writes. No whole model is ever held in f32.

use super::plan::QuantPlan;
use super::tensor_bytes;
use crate::error::{Error, Result};
use crate::family;
use crate::format::GgmlDType;
use crate::source::WeightSource;
use candle_core::quantized::{GgmlDType as CandleDType, QuantizedType};
use rayon::prelude::*;
use std::ops::Range;

/// Makes each planned tensor's GGUF bytes (its storage type, GGUF's row order) from a weight
/// source: what the quantized engine loads and what `llm-bench export` writes.
pub struct TensorMaker<'a> {
    /// The plan.
    pub plan: &'a QuantPlan,
    /// Where the rows come from.
    pub source: &'a dyn WeightSource,
    /// Head width (RoPE permutation of q and k rows).
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
        let mut bytes = Vec::new();
        self.make_rows(index, 0..rows, &mut bytes)?;
        Ok(bytes)
    }

    /// The bytes of rows `rows` of tensor `index` (GGUF's row order), which start at a
    /// multiple of [`Self::chunk_rows`], into `out` in place of what it held. Chunks are made
    /// in parallel, each thread in buffers it keeps from one chunk to the next, straight into
    /// their place in `out`.
    fn make_rows(&self, index: usize, rows: Range<usize>, out: &mut Vec<u8>) -> Result<()> {
        let (spec, dtype) = &self.plan.tensors[index];
        let chunk_rows = self.chunk_rows();
        debug_assert_eq!(rows.start % chunk_rows, 0);
        let candle = match dtype {
            GgmlDType::F32 => None,
            _ => Some(dtype.candle().ok_or_else(|| Error::InvalidSetting {
                name: "--format",
                reason: format!(
                    "{} is stored as {}, which llm-bench does not quantize to: run the file as it is",
                    spec.gguf_name,
                    crate::format::ggml_name(*dtype)
                ),
            })?),
        };
        let row_bytes = (tensor_bytes(spec, *dtype) / spec.rows() as u64) as usize;
        // Every byte is written below: only a longer buffer than last time is zeroed.
        out.truncate(rows.len() * row_bytes);
        out.resize(rows.len() * row_bytes, 0);
        let chunks = rows.len().div_ceil(chunk_rows);
        out.par_chunks_mut(chunk_rows * row_bytes)
            .enumerate()
            .with_min_len(chunks.div_ceil(rayon::current_num_threads()))
            .try_for_each_init(Scratch::default, |scratch, (i, dst)| {
                let start = rows.start + i * chunk_rows;
                let chunk = start..(start + chunk_rows).min(rows.end);
                let Scratch {
                    rows: made,
                    permuted,
                    blocks,
                } = scratch;
                self.source.rows_into(spec, chunk, made)?;
                let values = match spec.rope_permuted_heads {
                    Some(_) => {
                        family::permute_rows_to_gguf(made, spec.cols(), self.head_dim, permuted);
                        permuted
                    }
                    None => made,
                };
                quantize(candle, values, blocks, dst);
                Ok(())
            })
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

/// The buffers one thread makes chunks in: the rows, the rows permuted, the blocks.
#[derive(Default)]
struct Scratch {
    rows: Vec<f32>,
    permuted: Vec<f32>,
    blocks: Option<Box<dyn QuantizedType>>,
}

/// `values` stored as `dtype` (candle's; f32 where none) into `dst`, which holds exactly
/// their bytes, in `blocks` kept from one call to the next.
fn quantize(
    dtype: Option<CandleDType>,
    values: &[f32],
    blocks: &mut Option<Box<dyn QuantizedType>>,
    dst: &mut [u8],
) {
    let Some(dtype) = dtype else {
        for (bytes, value) in dst.chunks_exact_mut(4).zip(values) {
            bytes.copy_from_slice(&value.to_le_bytes());
        }
        return;
    };
    let blocks = match blocks {
        Some(b) if b.dtype() == dtype && b.storage_size_in_bytes() == dst.len() => b,
        slot => slot.insert(dtype.cpu_zeros(values.len())),
    };
    blocks.from_float(values);
    // SAFETY: candle's CPU blocks are plain data (integers and floats, no padding),
    // `storage_size_in_bytes` of them from `as_ptr`, as candle's own `QTensor::data` reads.
    let bytes =
        unsafe { std::slice::from_raw_parts(blocks.as_ptr(), blocks.storage_size_in_bytes()) };
    dst.copy_from_slice(bytes);
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
                self.maker
                    .make_rows(self.index, rows.clone(), &mut self.bytes)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::TensorSpec;
    use crate::source::synthetic::{self, SyntheticWeights};
    use crate::weights::tensor_bytes;

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
        let specs: Vec<TensorSpec> = family::llama::LLAMA
            .tensors(&config)
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
