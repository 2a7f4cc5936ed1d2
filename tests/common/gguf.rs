//! Writing GGUF headers for tests: the real model's header re-encoded (optionally edited),
//! with a map of where each numeric field sits, so tests can damage exactly one field.

use llm_bench::gguf::{Content, Value};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// What a header field holds, for targeted mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    TensorCount,
    MetadataCount,
    StringLength,
    ValueType,
    ArrayLength,
    Scalar,
    DimensionCount,
    Dimension,
    TensorType,
    DataOffset,
}

/// An encoded header: its bytes, and each field's (kind, offset, width in bytes).
pub struct Header {
    pub bytes: Vec<u8>,
    pub fields: Vec<(Field, usize, usize)>,
    pub alignment: usize,
}

struct Writer {
    bytes: Vec<u8>,
    fields: Vec<(Field, usize, usize)>,
}

impl Writer {
    fn put(&mut self, field: Option<Field>, data: &[u8]) {
        if let Some(f) = field {
            self.fields.push((f, self.bytes.len(), data.len()));
        }
        self.bytes.extend_from_slice(data);
    }
    fn u32(&mut self, field: Field, v: u32) {
        self.put(Some(field), &v.to_le_bytes());
    }
    fn u64(&mut self, field: Field, v: u64) {
        self.put(Some(field), &v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u64(Field::StringLength, s.len() as u64);
        self.put(None, s.as_bytes());
    }
    fn value(&mut self, v: &Value) {
        let scalar = |w: &mut Writer, b: &[u8]| w.put(Some(Field::Scalar), b);
        match v {
            Value::U8(x) => scalar(self, &x.to_le_bytes()),
            Value::I8(x) => scalar(self, &x.to_le_bytes()),
            Value::U16(x) => scalar(self, &x.to_le_bytes()),
            Value::I16(x) => scalar(self, &x.to_le_bytes()),
            Value::U32(x) => scalar(self, &x.to_le_bytes()),
            Value::I32(x) => scalar(self, &x.to_le_bytes()),
            Value::U64(x) => scalar(self, &x.to_le_bytes()),
            Value::I64(x) => scalar(self, &x.to_le_bytes()),
            Value::F32(x) => scalar(self, &x.to_le_bytes()),
            Value::F64(x) => scalar(self, &x.to_le_bytes()),
            Value::Bool(x) => scalar(self, &[*x as u8]),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                // An empty array is written as one of strings, as llm-bench's export writes it
                // (merges of a byte-level vocabulary): llama.cpp reads them as strings.
                let element = items.first().map_or(8, type_code);
                self.u32(Field::ValueType, element);
                self.u64(Field::ArrayLength, items.len() as u64);
                for item in items {
                    self.value(item);
                }
            }
        }
    }
}

/// GGUF's code for a value's type.
pub fn type_code(v: &Value) -> u32 {
    v.type_code()
}

fn ggml_code(t: llm_bench::format::GgmlDType) -> u32 {
    t.code()
}

/// Encodes `content` as a GGUF v3 header (keys sorted by name, tensors by data offset), padded to its
/// alignment: append the original tensor data region to get a whole file.
pub fn encode(content: &Content) -> Header {
    let mut w = Writer {
        bytes: b"GGUF".to_vec(),
        fields: vec![],
    };
    w.put(None, &3u32.to_le_bytes());
    w.u64(Field::TensorCount, content.tensor_infos.len() as u64);
    w.u64(Field::MetadataCount, content.metadata.len() as u64);
    let mut keys: Vec<&String> = content.metadata.keys().collect();
    keys.sort();
    for key in keys {
        let value = &content.metadata[key];
        w.string(key);
        w.u32(Field::ValueType, type_code(value));
        w.value(value);
    }
    // Tensors listed in the order of their data, as llama.cpp requires of a file it loads.
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|name| (content.tensor_infos[*name].offset, *name));
    for name in names {
        let info = &content.tensor_infos[name];
        w.string(name);
        let dims = info.shape.dims();
        w.u32(Field::DimensionCount, dims.len() as u32);
        for d in dims.iter().rev() {
            w.u64(Field::Dimension, *d as u64);
        }
        w.u32(Field::TensorType, ggml_code(info.ggml_dtype));
        w.u64(Field::DataOffset, info.offset);
    }
    let alignment = content
        .metadata
        .get("general.alignment")
        .and_then(|v| v.to_u32().ok())
        .filter(|a| a.is_power_of_two())
        .unwrap_or(32) as usize;
    let padded = w.bytes.len().div_ceil(alignment) * alignment;
    w.bytes.resize(padded, 0);
    Header {
        bytes: w.bytes,
        fields: w.fields,
        alignment,
    }
}

/// A file made of a header and a shared data region, read without copying the data.
pub struct VirtualFile {
    pub head: Vec<u8>,
    pub tail: Arc<Vec<u8>>,
    /// Total length; shorter than head + tail for a truncated file.
    pub len: u64,
    pos: u64,
}

impl VirtualFile {
    pub fn new(head: Vec<u8>, tail: Arc<Vec<u8>>, len: u64) -> Self {
        Self {
            head,
            tail,
            len,
            pos: 0,
        }
    }
}

impl Read for VirtualFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let pos = self.pos as usize;
        let head_len = self.head.len();
        let available = (self.len - self.pos) as usize;
        let n = if pos < head_len {
            let n = buf.len().min(head_len - pos).min(available);
            buf[..n].copy_from_slice(&self.head[pos..pos + n]);
            n
        } else {
            let at = pos - head_len;
            let n = buf
                .len()
                .min(self.tail.len().saturating_sub(at))
                .min(available);
            buf[..n].copy_from_slice(&self.tail[at..at + n]);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for VirtualFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// The real GGUF's header (parsed) and its tensor data region.
pub fn real_model() -> (Content, Arc<Vec<u8>>) {
    let path = llm_bench::defaults::default_gguf_path();
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run scripts/fetch-model", path.display()));
    let content =
        llm_bench::source::gguf_header::read(&mut std::io::Cursor::new(&bytes), bytes.len() as u64)
            .expect("the real model's header reads");
    let data = bytes[content.tensor_data_offset as usize..].to_vec();
    (content, Arc::new(data))
}

/// The real model with `edit` applied to its header, written to `path`.
pub fn write_edited(path: &std::path::Path, edit: impl FnOnce(&mut Content)) {
    let (mut content, data) = real_model();
    edit(&mut content);
    let header = encode(&content);
    let mut bytes = header.bytes;
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

/// A model exported to GGUF by llm-bench in `format`, then edited (`edit` gets the header and
/// the tensor data), written as `dir/name.gguf`.
pub fn exported_gguf_with(
    dir: &std::path::Path,
    name: &str,
    spec: llm_bench::ModelSpec,
    format: &str,
    edit: impl FnOnce(&mut Content, &mut Vec<u8>),
) -> std::path::PathBuf {
    let exported = dir.join(format!("{name}-as-exported.gguf"));
    let planned = llm_bench::model::plan(&spec, Some(format.parse().unwrap())).unwrap();
    llm_bench::export::write_gguf(&planned, &exported).unwrap();
    let bytes = std::fs::read(&exported).unwrap();
    let mut content =
        llm_bench::source::gguf_header::read(&mut std::io::Cursor::new(&bytes), bytes.len() as u64)
            .unwrap();
    let mut data = bytes[content.tensor_data_offset as usize..].to_vec();
    edit(&mut content, &mut data);
    let mut file = encode(&content).bytes;
    file.extend_from_slice(&data);
    let path = dir.join(format!("{name}.gguf"));
    std::fs::write(&path, file).unwrap();
    path
}

/// A tiny Llama (hidden 64, 4 heads) through [`exported_gguf_with`] in f32.
pub fn tiny_llama_gguf_with(
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut Content, &mut Vec<u8>),
) -> std::path::PathBuf {
    let folder = dir.join(format!("{name}-model"));
    super::write_tiny_llama(&folder, &super::tiny_config(257, 256));
    exported_gguf_with(
        dir,
        name,
        llm_bench::ModelSpec::LocalDir(folder),
        "f32",
        edit,
    )
}

/// What a Llama 3.1 file carries and the family does not describe: its per-frequency RoPE
/// factors (`rope_freqs.weight`, head size / 2 of them), appended after the other tensors.
pub fn add_rope_freqs(content: &mut Content, data: &mut Vec<u8>) {
    let key = |k: &str| content.metadata[k].to_u32().unwrap() as usize;
    let half = key("llama.embedding_length") / key("llama.attention.head_count") / 2;
    let offset = (data.len() as u64).next_multiple_of(32);
    data.resize(offset as usize, 0);
    data.extend((0..half).flat_map(|i| (1.0f32 + i as f32).to_le_bytes()));
    content.tensor_infos.insert(
        "rope_freqs.weight".into(),
        llm_bench::gguf::TensorInfo {
            ggml_dtype: llm_bench::format::GgmlDType::F32,
            shape: vec![half].into(),
            offset,
        },
    );
}
