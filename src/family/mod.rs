//! Model architectures. Every supported family is the same pre-norm decoder
//! ([`decoder`]: configuration keys, GGUF metadata, tensor names in Hugging Face and GGUF
//! spellings) with a few [`Options`]; a family's file is one [`Family`] value saying which.
//! Adding one means a file like `qwen2.rs`, a row in [`FAMILIES`], and each engine's support
//! for any new option.

pub mod decoder;
pub mod llama;
pub mod qwen2;
pub mod qwen3;

use crate::gguf as gguf_file;
use std::io::{Read, Seek};

/// The shape-defining facts of a model, the same whatever file they came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelConfig {
    /// The family's GGUF name (`llama`, `qwen2`).
    pub architecture: &'static str,
    /// Tokens in the vocabulary (embedding rows).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the feed-forward.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_kv_heads: usize,
    /// The longest context it was trained for.
    pub max_position_embeddings: usize,
    /// RoPE's base frequency.
    pub rope_theta: f32,
    /// RMSNorm's epsilon.
    pub rms_norm_eps: f64,
    /// Whether the output matrix is the embedding.
    pub tie_word_embeddings: bool,
    /// The beginning-of-sequence token, if any.
    pub bos_token_id: Option<u32>,
    /// Every token that ends generation.
    pub eos_token_ids: Vec<u32>,
    /// RoPE scaling as per-frequency divisors (head size / 2 of them): position `p` turns
    /// pair `i` by `p · theta^(-2i/d) / factors[i]`. From a GGUF's `rope_freqs.weight`, or
    /// computed from a `config.json`'s `rope_scaling` ([`Llama3RopeScaling`]); `None`: no
    /// scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_freq_factors: Option<Vec<f32>>,
    /// A head size other than hidden size / heads (Qwen3's 128 on its narrower models), from
    /// `config.json`'s `head_dim` or GGUF's `attention.key_length`; `None`: hidden / heads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_size: Option<usize>,
}

/// Llama 3.1-3.3's RoPE scaling (`rope_scaling.rope_type: llama3` in `config.json`): the
/// frequencies whose wavelength exceeds `original_max_position_embeddings / low_freq_factor`
/// are slowed by `factor`, those shorter than `.. / high_freq_factor` are kept, and those
/// between are blended smoothly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    /// How many times longer the context is than trained.
    pub factor: f64,
    /// Wavelengths longer than the trained context over this are slowed by `factor`.
    pub low_freq_factor: f64,
    /// Wavelengths shorter than the trained context over this are kept; those between are
    /// interpolated.
    pub high_freq_factor: f64,
    /// The context length the model was trained at.
    pub original_max_position_embeddings: f64,
}

impl Llama3RopeScaling {
    /// The per-frequency divisors llama.cpp's converter stores as `rope_freqs.weight`.
    pub fn factors(&self, head_dim: usize, theta: f64) -> Vec<f32> {
        let old_context = self.original_max_position_embeddings;
        let low_freq_wavelen = old_context / self.low_freq_factor;
        let high_freq_wavelen = old_context / self.high_freq_factor;
        (0..head_dim / 2)
            .map(|i| {
                let freq = theta.powf(-2.0 * i as f64 / head_dim as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let divisor = if wavelen < high_freq_wavelen {
                    1.0
                } else if wavelen > low_freq_wavelen {
                    self.factor
                } else {
                    let smooth = (old_context / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                };
                divisor as f32
            })
            .collect()
    }
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_size
            .unwrap_or(self.hidden_size / self.num_heads.max(1))
    }

    /// The width of all query heads together (the hidden size unless the head size is set).
    pub fn q_width(&self) -> usize {
        self.num_heads * self.head_dim()
    }

    /// Refuses a configuration no real model has and the engines cannot run: zero sizes,
    /// heads that do not divide the hidden size, sizes so large they can only come from a
    /// corrupt file (they would exhaust memory or overflow the arithmetic). `field` in the
    /// error is this struct's field; each source maps it to its own key with [`KeyNames`].
    pub fn validate(&self) -> std::result::Result<(), ConfigProblem> {
        let problem = |field: &'static str, problem: String| ConfigProblem { field, problem };
        for (field, value, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH),
            ("num_layers", self.num_layers, MAX_LAYERS),
            ("num_heads", self.num_heads, MAX_HEADS),
            ("num_kv_heads", self.num_kv_heads, MAX_HEADS),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_CONTEXT,
            ),
        ] {
            if value == 0 {
                return Err(problem(field, "is 0; it must be at least 1".into()));
            }
            if value > max {
                return Err(problem(
                    field,
                    format!(
                        "is {value}, above the largest plausible value {max}: is the file corrupt?"
                    ),
                ));
            }
        }
        match self.head_size {
            Some(0) => return Err(problem("head_size", "is 0; it must be at least 1".into())),
            Some(n) if n > MAX_WIDTH => {
                return Err(problem(
                    "head_size",
                    format!(
                    "is {n}, above the largest plausible value {MAX_WIDTH}: is the file corrupt?"
                ),
                ))
            }
            _ => {}
        }
        if self.head_size.is_none() && !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(problem(
                "num_heads",
                format!(
                    "is {}, which does not divide the hidden size {}",
                    self.num_heads, self.hidden_size
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(problem(
                if self.head_size.is_some() {
                    "head_size"
                } else {
                    "num_heads"
                },
                format!(
                    "gives an odd head size {} (hidden size {}, {} heads); rotary embeddings need an even one",
                    self.head_dim(),
                    self.hidden_size,
                    self.num_heads
                ),
            ));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(problem(
                "num_kv_heads",
                format!(
                    "is {}, which does not divide the {} attention heads",
                    self.num_kv_heads, self.num_heads
                ),
            ));
        }
        for (field, id) in self
            .bos_token_id
            .iter()
            .map(|&id| ("bos_token_id", id))
            .chain(self.eos_token_ids.iter().map(|&id| ("eos_token_ids", id)))
        {
            if id as usize >= self.vocab_size {
                return Err(problem(
                    field,
                    format!(
                        "holds token id {id}, outside the vocabulary of {}",
                        self.vocab_size
                    ),
                ));
            }
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(problem(
                "rope_theta",
                format!(
                    "is {}; expected a positive number such as 10000",
                    self.rope_theta
                ),
            ));
        }
        if let Some(factors) = &self.rope_freq_factors {
            if factors.len() != self.head_dim() / 2 {
                return Err(problem(
                    "rope_freq_factors",
                    format!(
                        "holds {} factors; a head size of {} needs {}",
                        factors.len(),
                        self.head_dim(),
                        self.head_dim() / 2
                    ),
                ));
            }
            if let Some((i, x)) = factors
                .iter()
                .enumerate()
                .find(|(_, x)| !(x.is_finite() && **x > 0.0))
            {
                return Err(problem(
                    "rope_freq_factors",
                    format!("holds {x} at index {i}; every factor is a positive number"),
                ));
            }
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return Err(problem(
                "rms_norm_eps",
                format!(
                    "is {}; expected a small positive number such as 1e-5",
                    self.rms_norm_eps
                ),
            ));
        }
        Ok(())
    }
}

/// Bounds far above any released model, far below what overflows or exhausts memory.
const MAX_VOCAB: usize = 1 << 22;
const MAX_WIDTH: usize = 1 << 20;
const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 12;
const MAX_CONTEXT: usize = 1 << 24;

/// What is wrong with a [`ModelConfig`], by field.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// The config field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// How a source spells each [`ModelConfig`] field, so an error names the key in the file;
/// `{arch}` stands for the family's name.
pub type KeyNames = &'static [(&'static str, &'static str)];

impl ConfigProblem {
    /// `field` spelled as the file spells it for family `arch`, then the problem.
    fn describe(&self, keys: KeyNames, arch: &str) -> (String, String) {
        let key = keys
            .iter()
            .find(|(field, _)| *field == self.field)
            .map_or(self.field, |(_, key)| *key);
        (key.replace("{arch}", arch), self.problem.clone())
    }
}

/// What a tensor does, which decides how it is stored and how often it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    /// The token embedding table: one row is read per token.
    Embedding,
    /// A weight matrix multiplied by the activations: read whole for every decode step.
    Matmul,
    /// A norm's scale vector: kept in f32, as llama.cpp does.
    Norm,
    /// A projection's bias vector: kept in f32, as llama.cpp's converter writes it.
    Bias,
}

impl TensorRole {
    /// A vector added or multiplied element by element, kept in f32 whatever the format.
    pub fn is_vector(self) -> bool {
        matches!(self, TensorRole::Norm | TensorRole::Bias)
    }
}

/// One weight tensor, named both ways, in Hugging Face layout (`[out, in]` for matrices).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Its name in Hugging Face's safetensors.
    pub hf_name: String,
    /// Its name in GGUF.
    pub gguf_name: String,
    /// Rows and columns (or length).
    pub shape: Vec<usize>,
    /// What it is in the layer.
    pub role: TensorRole,
    /// GGUF stores Llama's q/k projections with rows permuted for interleaved RoPE;
    /// `Some(heads)` marks such a tensor and its head count.
    pub rope_permuted_heads: Option<usize>,
}

impl TensorSpec {
    /// Its elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
    /// Its rows (its length, for a vector).
    pub fn rows(&self) -> usize {
        self.shape[0]
    }
    /// Its columns (1 for a vector).
    pub fn cols(&self) -> usize {
        self.shape.iter().skip(1).product::<usize>().max(1)
    }
}

/// A reader that can also seek (a GGUF file, or one made on demand).
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Everything the library needs to know about one architecture family: its names and which
/// of the decoder's options it uses.
#[derive(Debug)]
pub struct Family {
    /// The canonical name, as GGUF's `general.architecture` spells it (and prefixes its keys).
    pub name: &'static str,
    /// `model_type` values in a Hugging Face `config.json` that this family runs.
    pub hf_model_types: &'static [&'static str],
    /// Its options.
    pub options: Options,
    /// `false` for an architecture llm-bench has no description of ([`foreign`]): read
    /// from a GGUF file for llama.cpp to run as it is; llm-bench's engines and export refuse it.
    pub described: bool,
}

/// What sets a family's arithmetic apart from the plain Llama decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The q, k and v projections add biases (Qwen2, Qwen2.5).
    pub qkv_bias: bool,
    /// Each query and key head is RMS-normed (its own weights per layer) before RoPE (Qwen3).
    pub qk_norm: bool,
    /// How it rotates q and k.
    pub rope: RopeStyle,
}

/// Which values of a head RoPE turns together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i + 1)`: llama.cpp's normal RoPE, on q/k rows its converter
    /// permuted from Hugging Face's order (Llama).
    Normal,
    /// The halves' pairs `(i, i + d/2)`: GPT-NeoX's RoPE, rows as Hugging Face keeps them
    /// (Qwen2, Qwen3).
    Neox,
}

impl Family {
    /// The config from a Hugging Face `config.json`.
    pub fn config_from_hf(
        &'static self,
        json: &serde_json::Value,
    ) -> std::result::Result<ModelConfig, String> {
        decoder::config_from_hf(self, json)
    }

    /// The config from GGUF metadata.
    pub fn config_from_gguf(
        &'static self,
        content: &gguf_file::Content,
    ) -> std::result::Result<ModelConfig, String> {
        decoder::config_from_gguf(self, content)
    }

    /// The GGUF metadata llama.cpp reads for `cfg`.
    pub fn gguf_metadata(&self, cfg: &ModelConfig) -> Vec<(String, gguf_file::Value)> {
        decoder::gguf_metadata(self, cfg)
    }

    /// Every tensor of the model of `cfg`, named both ways (none for a [`foreign`] one: its
    /// file's tensors are the only list).
    pub fn tensors(&self, cfg: &ModelConfig) -> Vec<TensorSpec> {
        if !self.described {
            return vec![];
        }
        decoder::tensors(self, cfg)
    }

    /// Refuses a [`foreign`] architecture for `what`, which computes only described ones.
    pub fn refuse_foreign(&self, what: &str) -> std::result::Result<(), String> {
        if self.described {
            return Ok(());
        }
        Err(format!(
            "{what} computes the {} architectures, not {:?}: run the file with --engine llama-cpp (built with --features llama-cpp), which runs every architecture its llama.cpp knows",
            described_names(),
            self.name
        ))
    }

    /// `problem`'s field spelled as a `config.json` spells it, then the problem.
    pub fn describe_hf(&self, problem: &ConfigProblem) -> (String, String) {
        problem.describe(decoder::HF_KEYS, self.name)
    }

    /// `problem`'s field spelled as GGUF metadata spells it for this family, then the problem.
    pub fn describe_gguf(&self, problem: &ConfigProblem) -> (String, String) {
        problem.describe(decoder::GGUF_KEYS, self.name)
    }
}

/// A metadata value of the wrong GGUF type, named: the key, the type found, the type expected.
pub(crate) fn wrong_gguf_type(key: &str, value: &gguf_file::Value, expected: &str) -> String {
    use gguf_file::Value as V;
    let found = match value {
        V::U8(_) => "U8",
        V::I8(_) => "I8",
        V::U16(_) => "U16",
        V::I16(_) => "I16",
        V::U32(_) => "U32",
        V::I32(_) => "I32",
        V::U64(_) => "U64",
        V::I64(_) => "I64",
        V::F32(_) => "F32",
        V::F64(_) => "F64",
        V::Bool(_) => "BOOL",
        V::String(_) => "STRING",
        V::Array(_) => "ARRAY",
    };
    format!("metadata key `{key}` is of type {found} ({value:?}); GGUF stores it as {expected}: the file was written wrongly or edited")
}

/// Every family llm-bench describes.
pub static FAMILIES: &[&Family] = &[&llama::LLAMA, &qwen2::QWEN2, &qwen3::QWEN3];

/// The architectures llm-bench describes, as GGUF names them.
pub fn described_names() -> String {
    FAMILIES
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family of GGUF architecture `name`: a described one, else a [`Family`] that only
/// names it (`described: false`), made once per name for the life of the process, so
/// llama.cpp can run any architecture it knows and a typo is answered by llama.cpp itself.
pub fn foreign(name: &str) -> &'static Family {
    static MADE: std::sync::Mutex<Vec<&'static Family>> = std::sync::Mutex::new(Vec::new());
    if let Some(family) = by_gguf_name(name) {
        return family;
    }
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(family) = made.iter().find(|f| f.name == name) {
        return family;
    }
    let family: &'static Family = Box::leak(Box::new(Family {
        name: Box::leak(name.to_string().into_boxed_str()),
        hf_model_types: &[],
        options: llama::LLAMA.options,
        described: false,
    }));
    made.push(family);
    family
}

/// The families' names, comma-separated.
pub fn supported_names() -> String {
    FAMILIES
        .iter()
        .flat_map(|a| a.hf_model_types.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family of a Hugging Face `model_type`.
pub fn by_hf_model_type(model_type: &str) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|a| a.hf_model_types.contains(&model_type))
}

/// The family of a GGUF `general.architecture`.
pub fn by_gguf_name(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().copied().find(|a| a.name == name)
}

/// GGUF keeps Llama's q/k rows permuted so that RoPE rotates adjacent pairs (llama.cpp's
/// `convert_hf_to_gguf.py`): within each head, row `i * half + j` moves to `2 * j + i`.
/// `rows` must hold whole heads; `out` gets them in GGUF's order, in place of what it held.
pub fn permute_rows_to_gguf(rows: &[f32], cols: usize, head_dim: usize, out: &mut Vec<f32>) {
    permute_head_rows(rows, cols, head_dim, true, out)
}

/// The inverse of [`permute_rows_to_gguf`].
pub fn permute_rows_to_hf(rows: &[f32], cols: usize, head_dim: usize) -> Vec<f32> {
    let mut out = Vec::new();
    permute_head_rows(rows, cols, head_dim, false, &mut out);
    out
}

fn permute_head_rows(
    rows: &[f32],
    cols: usize,
    head_dim: usize,
    to_gguf: bool,
    out: &mut Vec<f32>,
) {
    let half = head_dim / 2;
    out.clear();
    out.resize(rows.len(), 0.0);
    for (head_in, head_out) in rows
        .chunks(head_dim * cols)
        .zip(out.chunks_mut(head_dim * cols))
    {
        for i in 0..2 {
            for j in 0..half {
                let (hf_row, gguf_row) = (i * half + j, 2 * j + i);
                let (from, to) = if to_gguf {
                    (hf_row, gguf_row)
                } else {
                    (gguf_row, hf_row)
                };
                head_out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&head_in[from * cols..(from + 1) * cols]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_permutation_matches_llama_cpp_and_inverts() {
        // One head of dim 4, one column: HF rows [a0 a1 b0 b1] become [a0 b0 a1 b1].
        let hf = [10.0, 11.0, 20.0, 21.0, 30.0, 31.0, 40.0, 41.0];
        let mut gguf = Vec::new();
        permute_rows_to_gguf(&hf, 1, 4, &mut gguf);
        assert_eq!(gguf, vec![10.0, 20.0, 11.0, 21.0, 30.0, 40.0, 31.0, 41.0]);
        assert_eq!(permute_rows_to_hf(&gguf, 1, 4), hf.to_vec());
    }

    /// Hugging Face's `_compute_llama3_parameters`, in f64: it rescales the inverse
    /// frequencies themselves; llama.cpp stores their ratio to the unscaled ones.
    fn hf_llama3_inv_freq(s: &Llama3RopeScaling, head_dim: usize, theta: f64) -> Vec<(f64, f64)> {
        let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
        let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
        (0..head_dim)
            .step_by(2)
            .map(|i| {
                let inv_freq = 1.0 / theta.powf(i as f64 / head_dim as f64);
                let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
                let slowed = if wavelen > low_wavelen {
                    inv_freq / s.factor
                } else {
                    inv_freq
                };
                let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                let scaled = if medium {
                    (1.0 - smooth) * slowed / s.factor + smooth * slowed
                } else {
                    slowed
                };
                (inv_freq, scaled)
            })
            .collect()
    }

    #[test]
    fn llama3_rope_factors_match_hugging_faces_scaled_frequencies() {
        // Llama 3.1 8B (factor 8) and Llama 3.2 1B/3B (factor 32), head size 128, theta 5e5.
        for factor in [8.0, 32.0] {
            let s = Llama3RopeScaling {
                factor,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192.0,
            };
            let ours = s.factors(128, 500_000.0);
            let theirs = hf_llama3_inv_freq(&s, 128, 500_000.0);
            assert_eq!(ours.len(), 64);
            let mut blended = 0;
            for (i, (&d, (inv_freq, scaled))) in ours.iter().zip(&theirs).enumerate() {
                let want = inv_freq / scaled;
                assert!(
                    ((d as f64) - want).abs() <= 1e-6 * want,
                    "{factor}: factor {i}: {d} vs {want}"
                );
                blended += usize::from(d > 1.0 && (d as f64) < factor);
            }
            // High frequencies kept, low ones slowed by the factor, a few blended between.
            assert_eq!(ours[0], 1.0);
            assert_eq!(ours[63], factor as f32);
            assert!(blended > 0, "{ours:?}");
        }
    }

    #[test]
    fn qwen2_configs_read_as_the_decoder_with_biases_and_neox_rope() {
        let mut json = serde_json::json!({
            "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "use_sliding_window": false,
            "sliding_window": 32768
        });
        let family = by_hf_model_type("qwen2").unwrap();
        let cfg = family.config_from_hf(&json).unwrap();
        assert_eq!((cfg.architecture, cfg.head_dim()), ("qwen2", 64));
        let specs = family.tensors(&cfg);
        let q = specs
            .iter()
            .find(|s| s.gguf_name == "blk.0.attn_q.weight")
            .unwrap();
        assert_eq!(
            q.rope_permuted_heads, None,
            "NEOX rows keep Hugging Face's order"
        );
        let bias = specs
            .iter()
            .find(|s| s.gguf_name == "blk.0.attn_k.bias")
            .unwrap();
        assert_eq!(
            (bias.shape.as_slice(), bias.role),
            (&[128][..], TensorRole::Bias)
        );
        assert_eq!(
            family.gguf_metadata(&cfg)[0].1.to_string().unwrap(),
            "qwen2",
            "general.architecture"
        );
        json["use_sliding_window"] = true.into();
        let err = family.config_from_hf(&json).unwrap_err();
        assert!(err.contains("use_sliding_window"), "{err}");
    }
}
