//! Weight formats: the full-precision dtypes and every GGML block type candle can run.

use crate::error::{Error, Result};
use candle_core::quantized::GgmlDType;
use candle_core::DType;
use std::fmt;
use std::str::FromStr;

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
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Dense(DType::F32) => "f32",
            WeightFormat::Dense(DType::BF16) => "bf16",
            WeightFormat::Dense(DType::F16) => "f16",
            WeightFormat::Dense(_) => "dense",
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
            WeightFormat::Dense(_) => GgmlDType::F32,
            WeightFormat::Quantized(q) => q,
        }
    }
}

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
        #[allow(unreachable_patterns)]
        _ => "other",
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

    #[test]
    fn q4_0_costs_four_and_a_half_bits_per_weight() {
        let q4 = "q4_0".parse::<WeightFormat>().unwrap();
        assert!((q4.bytes_per_weight() * 8.0 - 4.5).abs() < 1e-9);
    }
}
