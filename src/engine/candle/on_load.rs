//! Quantize on load (the counterpart of PyTorch's `quantize_dynamic`): f32 rows from any
//! weight source are quantized chunk by chunk into GGML blocks and handed to candle's GGUF
//! loader through a reader that produces each tensor's bytes only when the loader asks for
//! it. No GGUF file is written and no whole model is ever held in f32, so an 8B model at
//! q4_0 peaks near its final size.

use super::{CandleModel, QuantizedBuilder};
use crate::error::Result;
use crate::family::{Family, ModelConfig};
use crate::gguf::{Content, TensorInfo};
use crate::source::WeightSource;
use crate::weights::{tensor_bytes, QuantPlan, TensorMaker, TensorStream, STREAM_CHUNKS};
use candle_core::Device;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Builds the quantized engine from `source` by quantizing every tensor to its planned type.
pub(super) fn build(
    family: &Family,
    build_quantized: QuantizedBuilder,
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
        version: 3,
        metadata: family.gguf_metadata(config).into_iter().collect(),
        tensor_infos,
        tensor_data_offset: 0,
    };
    let maker = TensorMaker {
        plan,
        source,
        head_dim: config.head_dim(),
    };
    let mut reader = OnDemandTensors {
        maker: &maker,
        offsets,
        total: offset,
        position: 0,
        current: None,
    };
    build_quantized(
        super::convert::content(content)?,
        &mut reader,
        &Device::Cpu,
        config,
    )
}

/// A `Read + Seek` over the tensor-data section of a GGUF file that does not exist: each
/// tensor's bytes are made as the loader reads them, a batch of rows at a time (the loader
/// holds the tensor; this reader only a batch).
struct OnDemandTensors<'a> {
    maker: &'a TensorMaker<'a>,
    offsets: Vec<u64>,
    total: u64,
    position: u64,
    /// The tensor being read: its index, how many of its bytes were read, its stream.
    current: Option<(usize, u64, TensorStream<'a>)>,
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
        let within = self.position - self.offsets[index];
        let end = self.offsets.get(index + 1).copied().unwrap_or(self.total);
        let (read, stream) = match &mut self.current {
            Some((i, read, stream)) if *i == index && *read == within => (read, stream),
            current => {
                // A tensor read from its start (as loaders do), or from anywhere after it.
                let mut stream = self.maker.stream(index, STREAM_CHUNKS);
                let mut skipped = vec![0u8; within as usize];
                stream
                    .read_exact(&mut skipped)
                    .map_err(std::io::Error::other)?;
                let (_, read, stream) = current.insert((index, within, stream));
                (read, stream)
            }
        };
        let n = buf.len().min((end - self.position) as usize);
        stream
            .read_exact(&mut buf[..n])
            .map_err(std::io::Error::other)?;
        *read += n as u64;
        self.position += n as u64;
        Ok(n)
    }
}
