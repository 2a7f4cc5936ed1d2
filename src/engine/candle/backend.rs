//! candle's `VarBuilder` served from any weight source.

use crate::family::TensorSpec;
use crate::source::WeightSource;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use std::collections::HashMap;

/// Serves candle's `VarBuilder` from any weight source (synthetic, or a GGUF dequantized),
/// refusing names and shapes the architecture does not declare.
pub(crate) struct SourceBackend<'a> {
    source: &'a dyn WeightSource,
    specs: HashMap<String, TensorSpec>,
}

impl<'a> SourceBackend<'a> {
    pub(crate) fn new(source: &'a dyn WeightSource, specs: &[TensorSpec]) -> Self {
        let specs = specs
            .iter()
            .map(|s| (s.hf_name.clone(), s.clone()))
            .collect();
        Self { source, specs }
    }
}

impl SimpleBackend for SourceBackend<'_> {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "tensor {name} has shape {:?}, the model expects {shape:?}",
                tensor.shape()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let spec = self
            .specs
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("the weights have no tensor {name}")))?;
        let rows = self
            .source
            .rows(spec, 0..spec.rows())
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Tensor::from_vec(rows, spec.shape.as_slice(), dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.specs.contains_key(name)
    }
}
