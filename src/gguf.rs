//! GGUF's data model, as the project speaks it: metadata values, the tensor table and a
//! header's content. `source::gguf_header` reads it (checked), `export` writes it, the
//! families and the tokenizer read their keys from it; only the candle engine converts it to
//! candle's types.

use crate::format::GgmlDType;
use std::collections::HashMap;

/// A metadata value, by GGUF's value types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 6.
    F32(f32),
    /// Type 12.
    F64(f64),
    /// Type 7.
    Bool(bool),
    /// Type 8.
    String(String),
    /// Type 9: values of one type.
    Array(Vec<Value>),
}

/// What a value was expected to be and what it is.
fn not_a(expected: &str, found: &Value) -> String {
    format!("expected {expected}, found {found:?}")
}

impl Value {
    /// A U32 (no other integer type is cast).
    pub fn to_u32(&self) -> Result<u32, String> {
        match self {
            Value::U32(v) => Ok(*v),
            other => Err(not_a("a U32", other)),
        }
    }

    /// An F32.
    pub fn to_f32(&self) -> Result<f32, String> {
        match self {
            Value::F32(v) => Ok(*v),
            other => Err(not_a("an F32", other)),
        }
    }

    /// A string.
    pub fn to_string(&self) -> Result<&String, String> {
        match self {
            Value::String(v) => Ok(v),
            other => Err(not_a("a string", other)),
        }
    }

    /// An array.
    pub fn to_vec(&self) -> Result<&Vec<Value>, String> {
        match self {
            Value::Array(v) => Ok(v),
            other => Err(not_a("an array", other)),
        }
    }

    /// GGUF's code for the value's type.
    pub fn type_code(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
}

/// A tensor's dimensions, row-major (GGUF lists them fastest first: reversed on reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// How many dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The product of the dimensions.
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Its storage type.
    pub ggml_dtype: GgmlDType,
    /// Its shape, row-major.
    pub shape: Shape,
    /// Where its data starts, from the start of the data section.
    pub offset: u64,
}

/// A GGUF file's header: its version, metadata and tensor table, and where the data starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// GGUF version 1, 2 or 3.
    pub version: u32,
    /// Metadata by key.
    pub metadata: HashMap<String, Value>,
    /// The tensor table by name.
    pub tensor_infos: HashMap<String, TensorInfo>,
    /// The data section's byte offset in the file.
    pub tensor_data_offset: u64,
}
