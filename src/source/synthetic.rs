//! Synthetic twins: deterministic random weights in the exact shapes of a real model, for
//! timing where the real weights cannot be had. Speed depends on shapes, not values; every
//! result made from these says `weights: synthetic`.

use super::{ResolvedModel, WeightSource, Weights};
use crate::error::{Error, Result};
use crate::family::{
    llama::LLAMA, qwen2::QWEN2, qwen3::QWEN3, Family, ModelConfig, TensorRole, TensorSpec,
};
use crate::spec::ModelSpec;
use crate::tokenizer::TextTokenizer;
use std::ops::Range;

/// The seed every synthetic model uses, so two runs time identical weights.
pub const SYNTHETIC_SEED: u64 = 0x11B_E5C4;

/// A synthetic twin: a real model's shapes with random weights.
pub struct Preset {
    /// Its name (`smollm2-135m`).
    pub name: &'static str,
    /// The model it copies.
    pub twin_of: &'static str,
    /// Its config.
    pub config: ModelConfig,
    /// Its tokenizer.
    pub tokenizer: PresetTokenizer,
    /// The format a benchmark uses when none is asked for: what people run this model in.
    pub default_format: &'static str,
}

/// The tokenizer a preset uses.
pub enum PresetTokenizer {
    /// One token per byte: the model's real vocabulary is not shipped offline.
    ByteLevel,
    /// A real `tokenizer.json`, fetched by `scripts/fetch-model` into the models folder.
    Fetched(&'static str),
}

/// Every preset's name.
pub const PRESET_NAMES: &[&str] = &[
    "smollm2-135m",
    "tinyllama-1.1b",
    "llama3-8b",
    "llama3.1-8b",
    "llama3.2-1b",
    "llama3.2-3b",
    "qwen2.5-0.5b",
    "qwen2.5-7b",
    "qwen3-0.6b",
    "qwen3-8b",
];

/// Llama 3.1-3.3's RoPE: theta 500,000 and the `llama3` scaling of their `config.json`
/// (`factor` 8 for 3.1 and 3.3, 32 for 3.2), over a context of 131,072.
fn llama31(shapes: ModelConfig, factor: f64) -> ModelConfig {
    const THETA: f32 = 500_000.0;
    let scaling = crate::family::Llama3RopeScaling {
        factor,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192.0,
    };
    ModelConfig {
        rope_theta: THETA,
        max_position_embeddings: 131_072,
        rope_freq_factors: Some(scaling.factors(shapes.head_dim(), THETA.into())),
        ..shapes
    }
}

/// A Llama-family config from its published shapes; rope, context and tying set apart.
fn llama_shapes(
    vocab: usize,
    hidden: usize,
    ffn: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
) -> ModelConfig {
    shapes(&LLAMA, vocab, hidden, ffn, layers, heads, kv_heads)
}

/// Qwen2.5's and Qwen3's configs: theta 1,000,000 and RMSNorm epsilon 1e-6; a context of
/// 32,768 for Qwen2.5, of 40,960 with heads of 128 for Qwen3.
fn qwen(shapes: ModelConfig) -> ModelConfig {
    let qwen3 = shapes.architecture == QWEN3.name;
    ModelConfig {
        rope_theta: 1_000_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: if qwen3 { 40_960 } else { 32_768 },
        head_size: (qwen3 && shapes.head_dim() != 128).then_some(128),
        ..shapes
    }
}

fn shapes(
    family: &'static Family,
    vocab: usize,
    hidden: usize,
    ffn: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
) -> ModelConfig {
    ModelConfig {
        architecture: family.name,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: ffn,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: kv_heads,
        max_position_embeddings: 4096,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_ids: vec![],
        rope_freq_factors: None,
        head_size: None,
    }
}

/// The preset called `name`.
pub fn preset(name: &str) -> Result<Preset> {
    let preset = match name {
        "smollm2-135m" => Preset {
            name: "smollm2-135m",
            twin_of: "HuggingFaceTB/SmolLM2-135M-Instruct",
            config: ModelConfig {
                rope_theta: 100_000.0,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                ..llama_shapes(49152, 576, 1536, 30, 9, 3)
            },
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_1",
        },
        "tinyllama-1.1b" => Preset {
            name: "tinyllama-1.1b",
            twin_of: "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            config: ModelConfig {
                max_position_embeddings: 2048,
                ..llama_shapes(32000, 2048, 5632, 22, 32, 4)
            },
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_0",
        },
        "llama3-8b" => Preset {
            name: "llama3-8b",
            twin_of: "meta-llama/Meta-Llama-3-8B-Instruct",
            config: ModelConfig {
                rope_theta: 500_000.0,
                max_position_embeddings: 8192,
                ..llama_shapes(128256, 4096, 14336, 32, 32, 8)
            },
            tokenizer: PresetTokenizer::Fetched("llama3-tokenizer.json"),
            default_format: "q4_0",
        },
        "llama3.1-8b" => Preset {
            name: "llama3.1-8b",
            twin_of: "meta-llama/Llama-3.1-8B-Instruct",
            config: llama31(llama_shapes(128256, 4096, 14336, 32, 32, 8), 8.0),
            tokenizer: PresetTokenizer::Fetched("llama3-tokenizer.json"),
            default_format: "q4_0",
        },
        "llama3.2-1b" => Preset {
            name: "llama3.2-1b",
            twin_of: "meta-llama/Llama-3.2-1B-Instruct",
            config: ModelConfig {
                tie_word_embeddings: true,
                ..llama31(llama_shapes(128256, 2048, 8192, 16, 32, 8), 32.0)
            },
            tokenizer: PresetTokenizer::Fetched("llama3-tokenizer.json"),
            default_format: "q4_0",
        },
        "llama3.2-3b" => Preset {
            name: "llama3.2-3b",
            twin_of: "meta-llama/Llama-3.2-3B-Instruct",
            config: ModelConfig {
                tie_word_embeddings: true,
                ..llama31(llama_shapes(128256, 3072, 8192, 28, 24, 8), 32.0)
            },
            tokenizer: PresetTokenizer::Fetched("llama3-tokenizer.json"),
            default_format: "q4_0",
        },
        "qwen2.5-0.5b" => Preset {
            name: "qwen2.5-0.5b",
            twin_of: "Qwen/Qwen2.5-0.5B-Instruct",
            config: ModelConfig {
                tie_word_embeddings: true,
                ..qwen(shapes(&QWEN2, 151_936, 896, 4864, 24, 14, 2))
            },
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_0",
        },
        "qwen2.5-7b" => Preset {
            name: "qwen2.5-7b",
            twin_of: "Qwen/Qwen2.5-7B-Instruct",
            config: qwen(shapes(&QWEN2, 152_064, 3584, 18_944, 28, 28, 4)),
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_0",
        },
        "qwen3-0.6b" => Preset {
            name: "qwen3-0.6b",
            twin_of: "Qwen/Qwen3-0.6B",
            config: ModelConfig {
                tie_word_embeddings: true,
                ..qwen(shapes(&QWEN3, 151_936, 1024, 3072, 28, 16, 8))
            },
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_0",
        },
        "qwen3-8b" => Preset {
            name: "qwen3-8b",
            twin_of: "Qwen/Qwen3-8B",
            config: qwen(shapes(&QWEN3, 151_936, 4096, 12_288, 36, 32, 8)),
            tokenizer: PresetTokenizer::ByteLevel,
            default_format: "q4_0",
        },
        other => {
            return Err(Error::UnknownPreset {
                found: other.into(),
                expected: PRESET_NAMES.join(", "),
            })
        }
    };
    Ok(preset)
}

pub use crate::paths::models_dir;

/// Random weights, made from a seed on demand.
pub struct SyntheticWeights {
    /// The preset.
    pub preset: &'static str,
    /// The seed.
    pub seed: u64,
}

/// Resolves a `synthetic:` spec.
pub fn resolve_preset(spec: ModelSpec, name: &str) -> Result<ResolvedModel> {
    let preset = preset(name)?;
    let mut notices = vec![format!(
        "synthetic:{} has random weights in the shapes of {}: timings are real, the text is noise",
        preset.name, preset.twin_of
    )];
    let mut tokenizer = match preset.tokenizer {
        PresetTokenizer::ByteLevel => {
            notices.push(format!(
                "synthetic:{} uses a byte-level tokenizer (one token per byte), so prompts are longer in tokens than with the real vocabulary",
                preset.name
            ));
            TextTokenizer::byte_level()
        }
        PresetTokenizer::Fetched(file) => {
            let path = models_dir().join(file);
            if !path.is_file() {
                return Err(Error::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the Llama-3 tokenizer is not fetched yet: run scripts/fetch-model --llama3-tokenizer",
                    ),
                ));
            }
            TextTokenizer::from_file(&path)?
        }
    };
    let mut config = preset.config;
    config.eos_token_ids = tokenizer.eos_token_ids.clone();
    tokenizer.eos_token_ids = config.eos_token_ids.clone();
    Ok(ResolvedModel {
        spec,
        family: crate::family::by_gguf_name(config.architecture)
            .expect("every preset is of a described family"),
        config,
        tokenizer,
        weights: Weights::Synthetic(SyntheticWeights {
            preset: preset.name,
            seed: SYNTHETIC_SEED,
        }),
        notices,
    })
}

impl WeightSource for SyntheticWeights {
    fn rows(&self, spec: &TensorSpec, rows: Range<usize>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.rows_into(spec, rows, &mut out)?;
        Ok(out)
    }

    fn rows_into(&self, spec: &TensorSpec, rows: Range<usize>, out: &mut Vec<f32>) -> Result<()> {
        let cols = spec.cols();
        if spec.role == TensorRole::Norm {
            *out = vec![1.0; rows.len() * cols];
            return Ok(());
        }
        // Every value is written below: a buffer of the right length is reused as it is.
        if out.len() != rows.len() * cols {
            *out = vec![0.0; rows.len() * cols];
        }
        let tensor_seed = fnv1a(spec.hf_name.as_bytes()) ^ self.seed;
        for (row, values) in rows.zip(out.chunks_exact_mut(cols)) {
            // Each row is SplitMix64's sequence from the row's own state, in a loop kept plain
            // (no iterator to inline) for the test builds' low optimization.
            let mut state = tensor_seed ^ (row as u64).wrapping_mul(GOLDEN_GAMMA);
            let mut i = 0;
            while i < values.len() {
                state = state.wrapping_add(GOLDEN_GAMMA);
                values[i] = uniform_weight(state);
                i += 1;
            }
        }
        Ok(())
    }
}

/// SplitMix64's increment.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's output for `state` mapped to a uniform value in (-0.035, 0.035): standard
/// deviation 0.02, the usual initialisation scale, so activations stay finite through every
/// layer.
#[inline(always)]
fn uniform_weight(state: u64) -> f32 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
    (unit * 2.0 - 1.0) * 0.035
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_tensor_list_counts_parameters_of_smollm2() {
        let cfg = preset("smollm2-135m").unwrap().config;
        let params: usize = LLAMA.tensors(&cfg).iter().map(TensorSpec::elements).sum();
        // SmolLM2-135M has 134,515,008 parameters (tied embeddings).
        assert_eq!(params, 134_515_008);
    }

    /// SmolLM2's twin and its first matrix.
    fn smollm2_matrix() -> (SyntheticWeights, TensorSpec) {
        let weights = SyntheticWeights {
            preset: "smollm2-135m",
            seed: SYNTHETIC_SEED,
        };
        let cfg = preset("smollm2-135m").unwrap().config;
        let spec = LLAMA
            .tensors(&cfg)
            .into_iter()
            .find(|t| t.role == TensorRole::Matmul)
            .unwrap();
        (weights, spec)
    }

    #[test]
    fn rows_are_deterministic_and_independent_of_chunking() {
        let (weights, spec) = smollm2_matrix();
        let whole = weights.rows(&spec, 0..8).unwrap();
        let mut pieces = weights.rows(&spec, 0..3).unwrap();
        pieces.extend(weights.rows(&spec, 3..8).unwrap());
        assert_eq!(whole, pieces);
        let mean = whole.iter().sum::<f32>() / whole.len() as f32;
        let std =
            (whole.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / whole.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.002 && (std - 0.0202).abs() < 0.001,
            "mean {mean} std {std}"
        );
    }

    /// The weights are each row's SplitMix64 sequence (Vigna's reference, stepped one output
    /// at a time) mapped to (-0.035, 0.035): a twin's weights do not change with how they are
    /// computed, so its figures stay comparable across versions. Kept into a reused buffer,
    /// they are the same again.
    #[test]
    fn rows_are_each_rows_splitmix64_sequence() {
        let (weights, spec) = smollm2_matrix();
        let mut reused = vec![7.0; 3];
        weights.rows_into(&spec, 5..7, &mut reused).unwrap();
        let cols = spec.cols();
        let mut expected = Vec::new();
        for row in 5..7u64 {
            let mut x = fnv1a(spec.hf_name.as_bytes())
                ^ SYNTHETIC_SEED
                ^ row.wrapping_mul(0x9E3779B97F4A7C15);
            for _ in 0..cols {
                x = x.wrapping_add(0x9E3779B97F4A7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
                z ^= z >> 31;
                expected.push(((z >> 40) as f64 / 16_777_216.0 * 2.0 - 1.0) as f32 * 0.035);
            }
        }
        assert_eq!(reused, expected);
        assert_eq!(weights.rows(&spec, 5..7).unwrap(), expected);
    }

    #[test]
    fn llama3_8b_preset_has_the_published_shapes() {
        let cfg = preset("llama3-8b").unwrap().config;
        assert_eq!(
            (
                cfg.vocab_size,
                cfg.hidden_size,
                cfg.num_layers,
                cfg.num_heads,
                cfg.num_kv_heads,
                cfg.intermediate_size
            ),
            (128256, 4096, 32, 32, 8, 14336)
        );
        assert_eq!(cfg.rope_theta, 500_000.0);
    }

    #[test]
    fn llama3_x_twins_have_the_published_parameter_counts_and_rope_scaling() {
        // The parameter counts Hugging Face lists for each model (safetensors, no RoPE
        // factors), and each config.json's rope_scaling factor.
        for (name, parameters, head_dim, factor) in [
            ("llama3.1-8b", 8_030_261_248usize, 128, 8.0),
            ("llama3.2-1b", 1_235_814_400, 64, 32.0),
            ("llama3.2-3b", 3_212_749_824, 128, 32.0),
        ] {
            let cfg = preset(name).unwrap().config;
            let params: usize = LLAMA.tensors(&cfg).iter().map(TensorSpec::elements).sum();
            assert_eq!(params, parameters, "{name}");
            assert!(cfg.validate().is_ok(), "{name}");
            let factors = cfg.rope_freq_factors.as_ref().unwrap();
            assert_eq!(
                (factors.len(), cfg.head_dim()),
                (head_dim / 2, head_dim),
                "{name}"
            );
            assert_eq!(
                (factors[0], factors[head_dim / 2 - 1]),
                (1.0, factor),
                "{name}"
            );
            assert_eq!(
                (cfg.rope_theta, cfg.max_position_embeddings),
                (500_000.0, 131_072)
            );
        }
    }

    #[test]
    fn qwen_twins_have_the_published_parameter_counts() {
        // Hugging Face's counts (Qwen2.5's q/k/v biases included); the small ones tie their
        // embeddings.
        for (name, family, parameters, head_dim) in [
            ("qwen2.5-0.5b", "qwen2", 494_032_768usize, 64),
            ("qwen2.5-7b", "qwen2", 7_615_616_512, 128),
            // Qwen3: q/k norms, no biases, heads of 128 (0.6B: 16 of them on a hidden 1024).
            ("qwen3-0.6b", "qwen3", 596_049_920, 128),
            ("qwen3-8b", "qwen3", 8_190_735_360, 128),
        ] {
            let spec = ModelSpec::parse(&format!("synthetic:{name}")).unwrap();
            let p = resolve_preset(spec, name).unwrap();
            assert_eq!(
                (p.family.name, p.config.architecture),
                (family, family),
                "{name}"
            );
            assert_eq!(p.config.head_dim(), head_dim, "{name}");
            let params: usize = p
                .family
                .tensors(&p.config)
                .iter()
                .map(TensorSpec::elements)
                .sum();
            assert_eq!(params, parameters, "{name}");
            assert!(p.config.validate().is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = preset("gpt5").err().unwrap().to_string();
        assert!(err.contains("gpt5") && err.contains("llama3-8b"), "{err}");
    }
}
