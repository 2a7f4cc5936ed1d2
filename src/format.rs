//! Weight formats: the full-precision dtypes and GGML's block types, as the project names
//! them. candle's own types for them appear only in the conversions at the end of this file,
//! for the code that calls candle (the candle engine, and its quantizers where weights are
//! made from f32).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A dense (unquantized) type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit floats.
    F32,
    /// bfloat16.
    BF16,
    /// IEEE half precision.
    F16,
}

impl DType {
    /// Bytes per value.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
        }
    }
}

/// A tensor's storage type, as GGML numbers it in GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlDType {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// 4-bit blocks of 32 with a scale.
    Q4_0,
    /// 4-bit blocks of 32 with a scale and an offset.
    Q4_1,
    /// 5-bit blocks of 32 with a scale.
    Q5_0,
    /// 5-bit blocks of 32 with a scale and an offset.
    Q5_1,
    /// 8-bit blocks of 32 with a scale.
    Q8_0,
    /// 8-bit blocks of 32 with a scale and a sum (activations).
    Q8_1,
    /// 2-bit k-quant super-blocks of 256.
    Q2K,
    /// 3-bit k-quant super-blocks of 256.
    Q3K,
    /// 4-bit k-quant super-blocks of 256.
    Q4K,
    /// 5-bit k-quant super-blocks of 256.
    Q5K,
    /// 6-bit k-quant super-blocks of 256.
    Q6K,
    /// 8-bit k-quant super-blocks of 256 (activations).
    Q8K,
    /// 32-weight blocks of 4-bit indices into a fixed non-linear table, with a scale
    /// (llama.cpp's fallback for q2_K and q3_K rows that do not fill 256 weights).
    IQ4NL,
}

impl GgmlDType {
    /// GGUF's number for the type, as GGML numbers it.
    pub fn code(self) -> u32 {
        match self {
            GgmlDType::F32 => 0,
            GgmlDType::F16 => 1,
            GgmlDType::Q4_0 => 2,
            GgmlDType::Q4_1 => 3,
            GgmlDType::Q5_0 => 6,
            GgmlDType::Q5_1 => 7,
            GgmlDType::Q8_0 => 8,
            GgmlDType::Q8_1 => 9,
            GgmlDType::Q2K => 10,
            GgmlDType::Q3K => 11,
            GgmlDType::Q4K => 12,
            GgmlDType::Q5K => 13,
            GgmlDType::Q6K => 14,
            GgmlDType::Q8K => 15,
            GgmlDType::IQ4NL => 20,
            GgmlDType::BF16 => 30,
        }
    }

    /// The type GGUF's number `code` names, if it is one of these.
    pub fn from_code(code: u32) -> Option<GgmlDType> {
        ALL_GGML.into_iter().find(|t| t.code() == code)
    }

    /// Weights per block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => 1,
            GgmlDType::Q4_0
            | GgmlDType::Q4_1
            | GgmlDType::Q5_0
            | GgmlDType::Q5_1
            | GgmlDType::Q8_0
            | GgmlDType::Q8_1
            | GgmlDType::IQ4NL => 32,
            GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
            | GgmlDType::Q8K => 256,
        }
    }

    /// Bytes per block (ggml's `type_size`).
    pub fn type_size(self) -> usize {
        match self {
            GgmlDType::F32 => 4,
            GgmlDType::F16 | GgmlDType::BF16 => 2,
            GgmlDType::Q4_0 => 18,
            GgmlDType::Q4_1 => 20,
            GgmlDType::Q5_0 => 22,
            GgmlDType::Q5_1 => 24,
            GgmlDType::Q8_0 => 34,
            GgmlDType::Q8_1 => 36,
            GgmlDType::Q2K => 84,
            GgmlDType::Q3K => 110,
            GgmlDType::Q4K => 144,
            GgmlDType::Q5K => 176,
            GgmlDType::Q6K => 210,
            GgmlDType::Q8K => 292,
            GgmlDType::IQ4NL => 18,
        }
    }
}

/// Every GGML type llm-bench reads.
const ALL_GGML: [GgmlDType; 16] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
    GgmlDType::IQ4NL,
];

/// The numeric format the weights are held in while the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// Dense weights, run by candle-transformers' full-precision Llama.
    Dense(DType),
    /// GGML block-quantized weights, run by candle-transformers' quantized Llama.
    Quantized(GgmlDType),
}

/// Every spelling `--format` accepts, in the order the help text lists them.
pub const FORMAT_NAMES: &[&str] = &[
    "f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2k", "q3k", "q4k", "q5k", "q6k",
];

impl WeightFormat {
    /// The `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Dense(DType::F32) => "f32",
            WeightFormat::Dense(DType::BF16) => "bf16",
            WeightFormat::Dense(DType::F16) => "f16",
            WeightFormat::Quantized(q) => ggml_name(q),
        }
    }

    /// Bytes one weight takes, on average, including the block scales.
    pub fn bytes_per_weight(self) -> f64 {
        match self {
            WeightFormat::Dense(d) => d.size_in_bytes() as f64,
            WeightFormat::Quantized(q) => q.type_size() as f64 / q.block_size() as f64,
        }
    }

    /// The GGML type a tensor takes in this format (dense formats map to their own dtype, so
    /// byte counts use one formula for every format).
    pub fn ggml(self) -> GgmlDType {
        match self {
            WeightFormat::Dense(DType::F16) => GgmlDType::F16,
            WeightFormat::Dense(DType::BF16) => GgmlDType::BF16,
            WeightFormat::Dense(DType::F32) => GgmlDType::F32,
            WeightFormat::Quantized(q) => q,
        }
    }
}

/// The name llm-bench gives a GGML type (`q4_0`, `q4k`).
pub fn ggml_name(q: GgmlDType) -> &'static str {
    match q {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2k",
        GgmlDType::Q3K => "q3k",
        GgmlDType::Q4K => "q4k",
        GgmlDType::Q5K => "q5k",
        GgmlDType::Q6K => "q6k",
        GgmlDType::Q8K => "q8k",
        GgmlDType::IQ4NL => "iq4_nl",
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        // Accept llama.cpp's spellings too (Q4_K, q4_k_m is *not* a tensor type and is rejected).
        let normalized = s.trim().to_ascii_lowercase().replace("_k", "k");
        let format = match normalized.as_str() {
            "f32" => WeightFormat::Dense(DType::F32),
            "bf16" => WeightFormat::Dense(DType::BF16),
            "f16" => WeightFormat::Dense(DType::F16),
            "q8_0" => WeightFormat::Quantized(GgmlDType::Q8_0),
            "q4_0" => WeightFormat::Quantized(GgmlDType::Q4_0),
            "q4_1" => WeightFormat::Quantized(GgmlDType::Q4_1),
            "q5_0" => WeightFormat::Quantized(GgmlDType::Q5_0),
            "q5_1" => WeightFormat::Quantized(GgmlDType::Q5_1),
            "q2k" => WeightFormat::Quantized(GgmlDType::Q2K),
            "q3k" => WeightFormat::Quantized(GgmlDType::Q3K),
            "q4k" => WeightFormat::Quantized(GgmlDType::Q4K),
            "q5k" => WeightFormat::Quantized(GgmlDType::Q5K),
            "q6k" => WeightFormat::Quantized(GgmlDType::Q6K),
            _ => {
                return Err(Error::UnknownFormat {
                    found: s.to_string(),
                    expected: FORMAT_NAMES.join(", "),
                })
            }
        };
        Ok(format)
    }
}

impl From<DType> for candle_core::DType {
    fn from(d: DType) -> Self {
        match d {
            DType::F32 => candle_core::DType::F32,
            DType::BF16 => candle_core::DType::BF16,
            DType::F16 => candle_core::DType::F16,
        }
    }
}

impl GgmlDType {
    /// candle's name for the type, for candle's quantizers and loaders; `None` for the types
    /// candle does not have (iq4_nl).
    pub fn candle(self) -> Option<candle_core::quantized::GgmlDType> {
        use candle_core::quantized::GgmlDType as C;
        Some(match self {
            GgmlDType::F32 => C::F32,
            GgmlDType::F16 => C::F16,
            GgmlDType::BF16 => C::BF16,
            GgmlDType::Q4_0 => C::Q4_0,
            GgmlDType::Q4_1 => C::Q4_1,
            GgmlDType::Q5_0 => C::Q5_0,
            GgmlDType::Q5_1 => C::Q5_1,
            GgmlDType::Q8_0 => C::Q8_0,
            GgmlDType::Q8_1 => C::Q8_1,
            GgmlDType::Q2K => C::Q2K,
            GgmlDType::Q3K => C::Q3K,
            GgmlDType::Q4K => C::Q4K,
            GgmlDType::Q5K => C::Q5K,
            GgmlDType::Q6K => C::Q6K,
            GgmlDType::Q8K => C::Q8K,
            GgmlDType::IQ4NL => return None,
        })
    }
}

/// llama.cpp's `kvalues_iq4nl`: the values iq4_nl's 4-bit indices stand for (the kernels'
/// `blocks::IQ4NL_VALUES`, which the kernels multiply by; a test keeps the two equal).
pub const IQ4NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_parses_back_to_itself() {
        for name in FORMAT_NAMES {
            let format: WeightFormat = name.parse().unwrap();
            assert_eq!(format.name(), *name);
        }
    }

    #[test]
    fn llama_cpp_spellings_are_accepted() {
        assert_eq!("Q4_K".parse::<WeightFormat>().unwrap().name(), "q4k");
        assert_eq!("Q8_0".parse::<WeightFormat>().unwrap().name(), "q8_0");
    }

    #[test]
    fn unknown_format_names_the_accepted_ones() {
        let err = "q4_k_m".parse::<WeightFormat>().unwrap_err().to_string();
        assert!(err.contains("q4_k_m") && err.contains("q4_0"), "{err}");
    }

    /// Each type's number, block and block bytes are candle's (an independent copy of
    /// ggml's table), and every number maps back to its type.
    #[test]
    fn ggml_types_match_candles_table() {
        for t in ALL_GGML.into_iter().filter(|&t| t != GgmlDType::IQ4NL) {
            let c = t.candle().unwrap();
            assert_eq!(t.block_size(), c.block_size(), "{t:?}");
            assert_eq!(t.type_size(), c.type_size(), "{t:?}");
            assert_eq!(GgmlDType::from_code(t.code()), Some(t));
        }
        assert_eq!(GgmlDType::from_code(4), None, "q4_2 was removed from ggml");
        // ggml.h's numbers for the types llm-bench writes most.
        assert_eq!(GgmlDType::Q4_0.code(), 2);
        assert_eq!(GgmlDType::Q8_0.code(), 8);
        assert_eq!(GgmlDType::Q4K.code(), 12);
        assert_eq!(GgmlDType::BF16.code(), 30);
        assert_eq!(GgmlDType::IQ4NL.code(), 20);
        assert_eq!(GgmlDType::from_code(20), Some(GgmlDType::IQ4NL));
    }

    #[test]
    fn the_iq4_nl_table_is_the_kernels_one() {
        assert_eq!(IQ4NL_VALUES, llm_bench_kernels::blocks::IQ4NL_VALUES);
    }

    #[test]
    fn q4_0_costs_four_and_a_half_bits_per_weight() {
        let q4 = "q4_0".parse::<WeightFormat>().unwrap();
        assert!((q4.bytes_per_weight() * 8.0 - 4.5).abs() < 1e-9);
    }
}
