//! Writing a planned model as a GGUF file: the architecture's metadata, the tokenizer, and
//! every tensor in its planned type, made by the same code that feeds candle's quantized
//! engine (so a file written here holds exactly the bytes candle runs). `llm-bench export`
//! writes one on request; engines that load GGUF files themselves (llama.cpp) get one from
//! the cache in [`cached_gguf`] when asked for a format or a source that is not a GGUF file.

use crate::error::{Error, Result};
use crate::format::GgmlDType;
use crate::gguf::Value;
use crate::source::Weights;
use crate::weights::Planned;
use crate::weights::{self, TensorMaker};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped whenever the bytes written for the same model and format change, so that cached
/// exports from an older llm-bench are not reused.
const EXPORT_VERSION: u32 = 1;
/// GGUF's default alignment of tensor data (`general.alignment` is not written).
const ALIGNMENT: u64 = 32;

/// What a written file holds.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The file written.
    pub path: PathBuf,
    /// Tensors written.
    pub tensors: usize,
    /// Parameters written.
    pub parameters: u64,
    /// Bytes of tensor data, padding excluded: the planned weight bytes.
    pub weight_bytes: u64,
    /// The file's size.
    pub file_bytes: u64,
}

/// Writes `planned` to `out` as a GGUF file (version 3), atomically: a failure leaves no file.
pub fn write_gguf(planned: &Planned, out: &Path) -> Result<Exported> {
    write(planned, out, true)
}

/// Writes the metadata and tokenizer of `planned` only, without tensors: a vocabulary-only
/// GGUF file, as llama.cpp keeps for its tokenizer tests (`llama_model_params.vocab_only`).
pub fn write_vocab_gguf(planned: &Planned, out: &Path) -> Result<Exported> {
    write(planned, out, false)
}

fn write(planned: &Planned, out: &Path, with_tensors: bool) -> Result<Exported> {
    let resolved = &planned.resolved;
    if with_tensors {
        // The export writes what the family describes: it must not drop what it does not.
        planned.refuse_unapplied("llm-bench's GGUF export")?;
    }
    if with_tensors && planned.is_gguf_as_stored() {
        return Err(Error::InvalidSetting {
            name: "--format",
            reason: format!(
                "{} is a GGUF file already; pass --format (e.g. q4_0, q8_0, f32) to write it in another type",
                resolved.spec
            ),
        });
    }
    let metadata = metadata(planned)?;
    let no_tensors = weights::QuantPlan {
        tensors: vec![],
        fallbacks: vec![],
    };
    let plan = if with_tensors {
        planned.layout()
    } else {
        &no_tensors
    };
    let maker = TensorMaker {
        plan,
        source: resolved.weights.as_source(),
        head_dim: resolved.config.head_dim(),
    };
    let mut offsets = Vec::with_capacity(plan.tensors.len());
    let mut offset = 0u64;
    for (spec, dtype) in &plan.tensors {
        offsets.push(offset);
        offset = (offset + weights::tensor_bytes(spec, *dtype)).next_multiple_of(ALIGNMENT);
    }
    // Llama 3.1's RoPE scaling, as llama.cpp's converter writes it: one f32 divisor per
    // rotary frequency, after the weights.
    let rope_freqs: Option<Vec<u8>> = resolved
        .config
        .rope_freq_factors
        .as_ref()
        .filter(|_| with_tensors)
        .map(|factors| factors.iter().flat_map(|f| f.to_le_bytes()).collect());
    let mut file_bytes = 0u64;
    crate::fs::write_atomically_with(out, |w| {
        let mut g = GgufWriter {
            w,
            written: 0,
            path: out,
        };
        g.bytes(b"GGUF")?;
        g.u32(3)?;
        g.u64((plan.tensors.len() + usize::from(rope_freqs.is_some())) as u64)?;
        g.u64(metadata.len() as u64)?;
        for (key, value) in &metadata {
            g.string(key)?;
            g.u32(value.type_code())?;
            g.value(value)?;
        }
        for ((spec, dtype), offset) in plan.tensors.iter().zip(&offsets) {
            g.string(&spec.gguf_name)?;
            g.u32(spec.shape.len() as u32)?;
            // GGML lists dimensions innermost first.
            for &d in spec.shape.iter().rev() {
                g.u64(d as u64)?;
            }
            g.u32(dtype.code())?;
            g.u64(*offset)?;
        }
        if let Some(bytes) = &rope_freqs {
            g.string(crate::source::gguf::ROPE_FREQS)?;
            g.u32(1)?;
            g.u64(bytes.len() as u64 / 4)?;
            g.u32(GgmlDType::F32.code())?;
            g.u64(offset)?;
        }
        g.pad()?;
        for (index, (spec, dtype)) in plan.tensors.iter().enumerate() {
            let bytes = maker.make_tensor(index)?;
            let expected = weights::tensor_bytes(spec, *dtype);
            if bytes.len() as u64 != expected {
                return Err(Error::Build {
                    source_name: resolved.spec.to_string(),
                    detail: format!(
                        "tensor {} came out as {} bytes, {} expected for {:?} in {}",
                        spec.gguf_name,
                        bytes.len(),
                        expected,
                        spec.shape,
                        crate::format::ggml_name(*dtype)
                    ),
                });
            }
            g.bytes(&bytes)?;
            g.pad()?;
        }
        if let Some(bytes) = &rope_freqs {
            g.bytes(bytes)?;
            g.pad()?;
        }
        file_bytes = g.written;
        Ok(())
    })?;
    Ok(Exported {
        path: out.to_path_buf(),
        tensors: plan.tensors.len(),
        parameters: plan.tensors.iter().map(|(s, _)| s.elements() as u64).sum(),
        weight_bytes: plan
            .tensors
            .iter()
            .map(|(s, d)| weights::tensor_bytes(s, *d))
            .sum(),
        file_bytes,
    })
}

/// The architecture's keys, the tokenizer's, and where the weights came from. A GGUF source
/// keeps its own tokenizer entries verbatim, so llama.cpp tokenizes the export as the original.
fn metadata(planned: &Planned) -> Result<Vec<(String, Value)>> {
    let resolved = &planned.resolved;
    let config = &resolved.config;
    let mut md = resolved.family.gguf_metadata(config);
    md.push((
        format!("{}.vocab_size", resolved.family.name),
        Value::U32(config.vocab_size as u32),
    ));
    md.push(("general.name".into(), Value::String(planned.name.clone())));
    md.push(("general.quantization_version".into(), Value::U32(2)));
    md.push((
        "llm_bench.source".into(),
        Value::String(resolved.spec.to_string()),
    ));
    md.push((
        "llm_bench.weights".into(),
        Value::String(
            match resolved.weights_kind() {
                crate::source::WeightsKind::Real => "real",
                crate::source::WeightsKind::Synthetic => "synthetic",
            }
            .into(),
        ),
    ));
    match &resolved.weights {
        Weights::Gguf(gguf) => {
            let mut keys: Vec<&String> = gguf
                .content
                .metadata
                .keys()
                .filter(|k| k.starts_with("tokenizer."))
                .collect();
            keys.sort();
            md.extend(
                keys.into_iter()
                    .map(|k| (k.clone(), gguf.content.metadata[k].clone())),
            );
        }
        _ => {
            let tokenizer = &resolved.tokenizer;
            // llama.cpp's name for Llama 3's pre-tokenizer; others take the GPT-2 default.
            let pre = if tokenizer.has_token("<|begin_of_text|>") {
                "llama-bpe"
            } else {
                "default"
            };
            md.extend(tokenizer.gguf_metadata(config.vocab_size, pre)?);
        }
    }
    Ok(md)
}

/// Where exports made for engines are kept: `$LLM_BENCH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/llm-bench`, else `~/.cache/llm-bench`; the files are in `gguf/`.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("LLM_BENCH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("llm-bench")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/llm-bench")))
        .unwrap_or_else(|| std::env::temp_dir().join("llm-bench"))
}

/// The GGUF file of `planned` in the cache, written first when missing. The name carries a
/// hash of everything the bytes depend on (source files' sizes and times, spec, format, each
/// tensor's type, tokenizer, this exporter's version), so a changed source is exported again.
pub fn cached_gguf(planned: &Planned) -> Result<(PathBuf, bool)> {
    let path = cache_dir().join("gguf").join(format!(
        "{}@{}-{:016x}.gguf",
        planned.name,
        planned.format_label,
        cache_key(planned)?
    ));
    if path.is_file() {
        return Ok((path, true));
    }
    write_gguf(planned, &path)?;
    Ok((path, false))
}

fn cache_key(planned: &Planned) -> Result<u64> {
    use std::hash::{Hash, Hasher};
    let resolved = &planned.resolved;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    EXPORT_VERSION.hash(&mut h);
    resolved.spec.to_string().hash(&mut h);
    planned.format_label.hash(&mut h);
    // Each tensor's type, so a changed plan (e.g. another fallback for rows short of a
    // k-quant block) is exported again rather than read from a file of other types.
    for (spec, dtype) in &planned.layout().tensors {
        spec.gguf_name.hash(&mut h);
        crate::format::ggml_name(*dtype).hash(&mut h);
    }
    format!("{:?}", resolved.config).hash(&mut h);
    resolved.tokenizer.to_json()?.hash(&mut h);
    if let Some(path) = resolved.source_path() {
        let mut files = vec![path.clone()];
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))?;
            files = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
        }
        for file in files {
            let meta = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
            file.hash(&mut h);
            meta.len().hash(&mut h);
            meta.modified().ok().hash(&mut h);
        }
    }
    Ok(h.finish())
}

struct GgufWriter<'a> {
    w: &'a mut dyn Write,
    written: u64,
    path: &'a Path,
}

impl GgufWriter<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(|e| Error::write(self.path, e))?;
        self.written += b.len() as u64;
        Ok(())
    }
    fn u32(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn string(&mut self, s: &str) -> Result<()> {
        self.u64(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }
    fn pad(&mut self) -> Result<()> {
        let padding = self.written.next_multiple_of(ALIGNMENT) - self.written;
        self.bytes(&[0u8; ALIGNMENT as usize][..padding as usize])
    }
    fn value(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::U8(x) => self.bytes(&x.to_le_bytes()),
            Value::I8(x) => self.bytes(&x.to_le_bytes()),
            Value::U16(x) => self.bytes(&x.to_le_bytes()),
            Value::I16(x) => self.bytes(&x.to_le_bytes()),
            Value::U32(x) => self.bytes(&x.to_le_bytes()),
            Value::I32(x) => self.bytes(&x.to_le_bytes()),
            Value::U64(x) => self.bytes(&x.to_le_bytes()),
            Value::I64(x) => self.bytes(&x.to_le_bytes()),
            Value::F32(x) => self.bytes(&x.to_le_bytes()),
            Value::F64(x) => self.bytes(&x.to_le_bytes()),
            Value::Bool(x) => self.bytes(&[*x as u8]),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                // An empty array is written as one of strings (merges of a byte-level vocabulary).
                self.u32(items.first().map_or(8, Value::type_code))?;
                self.u64(items.len() as u64)?;
                items.iter().try_for_each(|item| self.value(item))
            }
        }
    }
}
