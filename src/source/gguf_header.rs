//! A validating reader of a GGUF file's header: magic, metadata and tensor table, into a
//! [`Content`]. candle's own reader trusts a few fields it should not (an alignment
//! of 0 divides by zero; a dimension of 2^63 wraps the element count), so every count,
//! length, dimension, type and offset is checked here against the file before anything is
//! allocated or built, and the message names the key or tensor and the byte offset.

use crate::format::GgmlDType;
use crate::gguf::{Content, TensorInfo, Value};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Caps as in llama.cpp's `gguf.cpp` (and candle's reader).
const MAX_STRING_BYTES: u64 = 1 << 30;
const MAX_ARRAY_ELEMENTS: u64 = 1 << 30;
const MAX_TENSOR_DIMS: u32 = 4;
/// Arrays of arrays are legal but no model needs more than a couple of levels.
const MAX_VALUE_DEPTH: usize = 8;
/// No tensor of any model this harness can hold has more elements (2^48 = 256 T).
const MAX_TENSOR_ELEMENTS: u64 = 1 << 48;
const DEFAULT_ALIGNMENT: u64 = 32;

/// Checks that the tensors' data regions tile the data section as llama.cpp requires: the
/// first at offset 0, each of the others where the one before it (by offset) ends, padded to
/// the alignment; no overlap, no gap. A type or shape relabelled in the header (q4_1 read as
/// q4_0, q6_K as q4_K), offsets set to 0 or swapped between tensors of different sizes all
/// break the tiling, where each tensor alone may still fit inside the file. Run after the
/// shapes are checked against the model, whose message names the expected shape.
pub fn check_layout(content: &Content) -> Result<(), String> {
    let alignment = content
        .metadata
        .get("general.alignment")
        .and_then(|v| v.to_u32().ok())
        .map_or(DEFAULT_ALIGNMENT, u64::from);
    let mut regions: Vec<(u64, u64, &str, GgmlDType)> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| {
            let bytes = tensor_data_bytes(info.ggml_dtype, info.shape.elem_count() as u64)
                .expect("the header reader checked whole blocks");
            (info.offset, bytes, name.as_str(), info.ggml_dtype)
        })
        .collect();
    regions.sort_by(|a, b| (a.0, a.2).cmp(&(b.0, b.2)));
    let mut end = 0u64;
    let mut before: Option<&str> = None;
    for (offset, bytes, name, dtype) in regions {
        let kind = crate::format::ggml_name(dtype);
        if offset != end {
            let fix = "the tensor table does not describe the data (a type or shape relabelled, or an offset edited); llama.cpp refuses such a file too";
            return Err(match before {
                None => format!(
                    "tensor `{name}` ({kind}) is the first in the data section but starts at data offset {offset}, not 0: {fix}"
                ),
                Some(prev) if offset < end => format!(
                    "tensor `{name}` ({kind}, {bytes} bytes at data offset {offset}) overlaps `{prev}`, which ends at {end}: {fix}"
                ),
                Some(prev) => format!(
                    "tensor `{name}` ({kind}) starts at data offset {offset}, but `{prev}` before it ends at {end}, leaving a gap: {fix}"
                ),
            });
        }
        end = (offset + bytes).next_multiple_of(alignment);
        before = Some(name);
    }
    Ok(())
}

/// Bytes a tensor of `elements` takes in `dtype`, or `None` when it does not fill whole blocks.
pub fn tensor_data_bytes(dtype: GgmlDType, elements: u64) -> Option<u64> {
    let block = dtype.block_size() as u64;
    elements
        .is_multiple_of(block)
        .then(|| elements / block * dtype.type_size() as u64)
}

struct Reader<'a, R> {
    inner: &'a mut R,
    position: u64,
    len: u64,
    long_lengths: bool,
}

impl<R: Read + Seek> Reader<'_, R> {
    fn bytes(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<Vec<u8>, String> {
        let remaining = self.len - self.position;
        if n > remaining {
            return Err(format!(
                "{} needs {n} bytes at byte {} but only {remaining} remain",
                what(),
                self.position
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format!("{} at byte {}: {e}", what(), self.position))?;
        self.position += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], String> {
        let bytes = self.bytes(N as u64, what)?;
        Ok(bytes.try_into().expect("N bytes read"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count or length: u32 in GGUF v1, u64 after.
    fn length(&mut self, what: &dyn Fn() -> String) -> Result<u64, String> {
        if self.long_lengths {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, String> {
        let len = self.length(what)?;
        if len > MAX_STRING_BYTES {
            return Err(format!(
                "{} has a length of {len} bytes (the limit is {MAX_STRING_BYTES})",
                what()
            ));
        }
        let mut bytes = self.bytes(len, what)?;
        // Writers sometimes include a trailing NUL; GGUF strings are not NUL-terminated.
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn value(
        &mut self,
        type_code: u32,
        depth: usize,
        what: &dyn Fn() -> String,
    ) -> Result<Value, String> {
        Ok(match type_code {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(self.array::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(format!(
                        "{} is a bool of value {b} (expected 0 or 1)",
                        what()
                    ))
                }
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_VALUE_DEPTH {
                    return Err(format!(
                        "{} nests arrays deeper than {MAX_VALUE_DEPTH}",
                        what()
                    ));
                }
                let element_type = self.u32(what)?;
                let count = self.length(what)?;
                let min_size = min_value_size(element_type, self.long_lengths)
                    .ok_or_else(|| format!("{} has unknown element type {element_type}", what()))?;
                let remaining = self.len - self.position;
                if count > MAX_ARRAY_ELEMENTS || count.saturating_mul(min_size) > remaining {
                    return Err(format!(
                        "{} declares {count} elements, more than the {remaining} bytes left in the file can hold",
                        what()
                    ));
                }
                let mut values = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    values.push(self.value(element_type, depth + 1, what)?);
                }
                Value::Array(values)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(format!("{} has unknown value type {other}", what())),
        })
    }
}

/// The fewest bytes one value of a type takes on disk.
fn min_value_size(type_code: u32, long_lengths: bool) -> Option<u64> {
    let length = if long_lengths { 8 } else { 4 };
    Some(match type_code {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => length,
        9 => 4 + length,
        _ => return None,
    })
}

/// Reads and checks the header of the GGUF file behind `reader` (its length: `file_len`).
/// The error is a sentence naming the field or tensor at fault.
pub fn read<R: Read + Seek>(reader: &mut R, file_len: u64) -> Result<Content, String> {
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot seek: {e}"))?;
    let mut r = Reader {
        inner: reader,
        position: 0,
        len: file_len,
        long_lengths: true,
    };
    let magic = r.array::<4>(&|| "the magic number".into())?;
    if &magic != b"GGUF" {
        return Err(format!(
            "it does not start with the GGUF magic (found {:?})",
            String::from_utf8_lossy(&magic)
        ));
    }
    let version = r.u32(&|| "the version".into())?;
    if !(1..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (1, 2 or 3)"
        ));
    }
    r.long_lengths = version > 1;
    let tensor_count = r.length(&|| "the tensor count".into())?;
    let kv_count = r.length(&|| "the metadata count".into())?;
    let remaining = file_len - r.position;
    // Each entry takes at least a length-prefixed name and a type: refuse counts the file
    // cannot hold before looping over them.
    if tensor_count.saturating_mul(24) > remaining || kv_count.saturating_mul(13) > remaining {
        return Err(format!(
            "the header declares {tensor_count} tensors and {kv_count} metadata entries, more than its {file_len} bytes can hold"
        ));
    }
    let mut metadata = HashMap::new();
    for index in 0..kv_count {
        let key = r.string(&|| format!("the key of metadata entry {index}"))?;
        let what = || format!("metadata `{key}`");
        let type_code = r.u32(&what)?;
        let value = r.value(type_code, 0, &what)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata `{key}` appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        // GGUF stores it as a U32; another type is refused, not cast (2^32 + 32 is not 32).
        Some(v) => match v.to_u32() {
            Ok(a) if a > 0 && a.is_power_of_two() => a as u64,
            _ => {
                return Err(format!(
                    "metadata `general.alignment` is {v:?}; expected a U32 power of two such as 32"
                ))
            }
        },
    };
    let mut names = std::collections::HashSet::with_capacity(tensor_count as usize);
    let mut infos: Vec<(String, TensorInfo, u64)> = Vec::with_capacity(tensor_count as usize);
    for index in 0..tensor_count {
        let name = r.string(&|| format!("the name of tensor {index}"))?;
        let what = || format!("tensor `{name}`");
        let dims = r.u32(&what)?;
        if dims == 0 || dims > MAX_TENSOR_DIMS {
            return Err(format!(
                "tensor `{name}` has {dims} dimensions (expected 1 to {MAX_TENSOR_DIMS})"
            ));
        }
        let mut shape = Vec::with_capacity(dims as usize);
        let mut elements: u64 = 1;
        for _ in 0..dims {
            let dim = r.length(&what)?;
            elements = elements
                .checked_mul(dim)
                .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
                .ok_or_else(|| {
                    format!("tensor `{name}` has a dimension of {dim}: too many elements")
                })?;
            if dim == 0 {
                return Err(format!("tensor `{name}` has a dimension of 0"));
            }
            shape.push(dim as usize);
        }
        let type_code = r.u32(&what)?;
        let dtype = GgmlDType::from_code(type_code).ok_or_else(|| {
            format!("tensor `{name}` has GGML type {type_code}, which this build cannot load")
        })?;
        // Blocks run along the first (fastest) dimension, as in ggml.
        let bytes = tensor_data_bytes(dtype, shape[0] as u64)
            .and_then(|row| row.checked_mul(elements / shape[0] as u64))
            .ok_or_else(|| {
                format!(
                    "tensor `{name}` has rows of {} elements, not a whole number of {}-element {} blocks",
                    shape[0],
                    dtype.block_size(),
                    crate::format::ggml_name(dtype)
                )
            })?;
        let offset = r.u64(&what)?;
        if !offset.is_multiple_of(alignment) {
            return Err(format!(
                "tensor `{name}` starts at data offset {offset}, not a multiple of the alignment {alignment}"
            ));
        }
        if !names.insert(name.clone()) {
            return Err(format!("tensor `{name}` appears twice"));
        }
        // GGUF lists dimensions fastest first; shapes here are row-major.
        shape.reverse();
        infos.push((
            name,
            TensorInfo {
                ggml_dtype: dtype,
                shape: shape.into(),
                offset,
            },
            bytes,
        ));
    }
    let tensor_data_offset = r.position.div_ceil(alignment) * alignment;
    for (name, info, bytes) in &infos {
        let end = tensor_data_offset
            .checked_add(info.offset)
            .and_then(|start| start.checked_add(*bytes));
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(format!(
                    "tensor `{name}` ({bytes} bytes at data offset {}) ends past the end of the file ({file_len} bytes)",
                    info.offset
                ))
            }
        }
    }
    Ok(Content {
        version,
        metadata,
        tensor_infos: infos
            .into_iter()
            .map(|(name, info, _)| (name, info))
            .collect(),
        tensor_data_offset,
    })
}
