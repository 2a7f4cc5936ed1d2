//! The storage formats of the matrices the kernels multiply, by GGUF's type names as the
//! harness spells them. Adding a format: its variant and geometry here, its block type
//! (`blocks`), its entry in the dispatch table (`dispatch::Kernels`) and each level's kernels
//! (`arch`), its [`crate::matrix::Matrix`] variant.

use crate::blocks::{
    Block, BlockIQ4NL, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0,
    BlockQ5_1, BlockQ6K, BlockQ8_0, QK,
};
use crate::{Error, Result};

/// A weight storage format the kernels read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// 32-weight blocks of 8-bit weights and an f16 scale.
    Q8_0,
    /// 32-weight blocks of 4-bit weights (offset 8) and an f16 scale.
    Q4_0,
    /// 32-weight blocks of 4-bit weights, an f16 scale and an f16 offset.
    Q4_1,
    /// 32-weight blocks of 5-bit weights (offset 16) and an f16 scale.
    Q5_0,
    /// 32-weight blocks of 5-bit weights, an f16 scale and an f16 offset.
    Q5_1,
    /// GGUF's q2_K: 256-weight super-blocks of 2-bit weights with 4-bit group scales and mins.
    Q2K,
    /// GGUF's q3_K: 256-weight super-blocks of 3-bit weights with 6-bit group scales.
    Q3K,
    /// GGUF's q4_K: 256-weight super-blocks of 4-bit weights with 6-bit sub-block scales.
    Q4K,
    /// GGUF's q5_K: q4_K with a fifth bit per weight.
    Q5K,
    /// GGUF's q6_K: 256-weight super-blocks of 6-bit weights with 8-bit group scales.
    Q6K,
    /// llama.cpp's iq4_nl: 32-weight blocks of 4-bit indices into a non-linear table.
    IQ4NL,
}

impl Format {
    /// Every format, in the order errors list them.
    pub const ALL: [Format; 14] = [
        Format::F32,
        Format::F16,
        Format::BF16,
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::Q5_0,
        Format::Q5_1,
        Format::Q2K,
        Format::Q3K,
        Format::Q4K,
        Format::Q5K,
        Format::Q6K,
        Format::IQ4NL,
    ];

    /// The harness's name for it (`q4_0`, `q4k`).
    pub fn name(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::F16 => "f16",
            Format::BF16 => "bf16",
            Format::Q8_0 => "q8_0",
            Format::Q4_0 => "q4_0",
            Format::Q4_1 => "q4_1",
            Format::Q5_0 => "q5_0",
            Format::Q5_1 => "q5_1",
            Format::Q2K => "q2k",
            Format::Q3K => "q3k",
            Format::Q4K => "q4k",
            Format::Q5K => "q5k",
            Format::Q6K => "q6k",
            Format::IQ4NL => "iq4_nl",
        }
    }

    /// The format called `name`, if the kernels read it.
    pub fn named(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every format's name, comma-separated (for errors).
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// Whether it stores weights as they are (f32, f16, bf16) rather than in quantized blocks.
    pub fn dense(self) -> bool {
        matches!(self, Format::F32 | Format::F16 | Format::BF16)
    }

    /// Weights per block, and a block's bytes in a GGUF file (dense formats: one weight).
    pub fn geometry(self) -> (usize, usize) {
        match self {
            Format::F32 => (1, 4),
            Format::F16 | Format::BF16 => (1, 2),
            Format::Q8_0 => (QK, BlockQ8_0::BYTES),
            Format::Q4_0 => (QK, BlockQ4_0::BYTES),
            Format::Q4_1 => (QK, BlockQ4_1::BYTES),
            Format::Q5_0 => (QK, BlockQ5_0::BYTES),
            Format::Q5_1 => (QK, BlockQ5_1::BYTES),
            Format::Q2K => (BlockQ2K::WEIGHTS, BlockQ2K::BYTES),
            Format::Q3K => (BlockQ3K::WEIGHTS, BlockQ3K::BYTES),
            Format::Q4K => (BlockQ4K::WEIGHTS, BlockQ4K::BYTES),
            Format::Q5K => (BlockQ5K::WEIGHTS, BlockQ5K::BYTES),
            Format::Q6K => (BlockQ6K::WEIGHTS, BlockQ6K::BYTES),
            Format::IQ4NL => (QK, BlockIQ4NL::BYTES),
        }
    }

    /// Bytes a `rows × cols` matrix takes in a GGUF file; refuses shapes the format cannot
    /// hold (rows not whole blocks) and sizes that overflow (`name` names the tensor).
    pub fn gguf_bytes(self, name: &str, rows: usize, cols: usize) -> Result<usize> {
        let bad = |problem: String| Error::BadField {
            path: name.into(),
            field: "shape".into(),
            problem,
        };
        let (per, block) = self.geometry();
        if rows == 0 || cols == 0 || !cols.is_multiple_of(per) {
            return Err(bad(format!(
                "{rows} rows of {cols} weights: {self} needs a positive row length that is a multiple of {per}"
            )));
        }
        rows.checked_mul(cols / per)
            .and_then(|n| n.checked_mul(block))
            .ok_or_else(|| bad(format!("{rows} x {cols} overflows")))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
