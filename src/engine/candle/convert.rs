//! The project's GGUF types as candle's, for candle's quantized loaders: the one place
//! candle's `gguf_file` types are made.

use crate::error::{Error, Result};
use crate::gguf::{Content, Value};
use candle_core::quantized::gguf_file;

/// `content` as candle's header type (the engine's `supports` refuses the types candle does
/// not have before anything loads: `refuse_types`).
pub(super) fn content(content: Content) -> Result<gguf_file::Content> {
    let mut tensor_infos = std::collections::HashMap::new();
    for (name, info) in content.tensor_infos {
        let ggml_dtype = info.ggml_dtype.candle().ok_or_else(|| Error::Build {
            source_name: "candle".into(),
            detail: format!(
                "{name} is stored as {}, which candle does not have: run the file with --engine tuned, or --engine llama-cpp (built with --features llama-cpp)",
                crate::format::ggml_name(info.ggml_dtype)
            ),
        })?;
        let info = gguf_file::TensorInfo {
            ggml_dtype,
            shape: info.shape.dims().to_vec().into(),
            offset: info.offset,
        };
        tensor_infos.insert(name, info);
    }
    Ok(gguf_file::Content {
        magic: match content.version {
            1 => gguf_file::VersionedMagic::GgufV1,
            2 => gguf_file::VersionedMagic::GgufV2,
            _ => gguf_file::VersionedMagic::GgufV3,
        },
        metadata: content
            .metadata
            .into_iter()
            .map(|(key, v)| (key, value(v)))
            .collect(),
        tensor_infos,
        tensor_data_offset: content.tensor_data_offset,
    })
}

fn value(v: Value) -> gguf_file::Value {
    use gguf_file::Value as C;
    match v {
        Value::U8(x) => C::U8(x),
        Value::I8(x) => C::I8(x),
        Value::U16(x) => C::U16(x),
        Value::I16(x) => C::I16(x),
        Value::U32(x) => C::U32(x),
        Value::I32(x) => C::I32(x),
        Value::U64(x) => C::U64(x),
        Value::I64(x) => C::I64(x),
        Value::F32(x) => C::F32(x),
        Value::F64(x) => C::F64(x),
        Value::Bool(x) => C::Bool(x),
        Value::String(x) => C::String(x),
        Value::Array(items) => C::Array(items.into_iter().map(value).collect()),
    }
}
