//! Quantize on load (the counterpart of PyTorch's `quantize_dynamic`): f32 rows from any
//! weight source are quantized chunk by chunk into GGML blocks and handed to candle's GGUF
//! loader through a reader that produces each tensor's bytes only when the loader asks for
//! it. No GGUF file is written and no whole model is ever held in f32, so an 8B model at
//! q4_0 peaks near its final size.

use super::{CandleModel, QuantizedBuilder};
use crate::error::{Error, Result};
use crate::family::{Family, ModelConfig};
use crate::gguf::{Content, TensorInfo};
use crate::source::WeightSource;
use crate::weights::{tensor_bytes, QuantPlan, TensorMaker};
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
    build_quantized(
        super::convert::content(content)?,
        &mut reader,
        &Device::Cpu,
        config,
    )
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
