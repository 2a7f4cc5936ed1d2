//! Loading: every tensor read in its planned type, a GGUF file's blocks as they are or any
//! other source's bytes made a batch of rows at a time, and built into the kernels' matrices.

use super::{Buffers, Dims, Layer, StepPlan, TunedEngine, NORM_FORMATS};
use crate::engine::Logits;
use crate::error::{Error, Result};
use crate::family::{ReadSeek, TensorSpec};
use crate::gguf::Content;
use crate::kernels::matrix::Matrix;
use crate::kernels::{ops, Arena, Format, Kernels, Pool};
use crate::source::Weights;
use crate::weights::{self, EngineInput, TensorMaker, TensorStream};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A tensor as the engine holds it.
enum Loaded {
    Matrix(Matrix),
    Vector(Vec<f32>),
}

impl TunedEngine {
    pub(super) fn load(input: EngineInput, kernels: Kernels) -> Result<TunedEngine> {
        let mut tensors = read_tensors(&input, &kernels)?;
        let config = &input.config;
        let mut take = |name: String| tensors.remove(&name).expect("every declared tensor read");
        let matrix = |loaded: Loaded| match loaded {
            Loaded::Matrix(m) => m,
            Loaded::Vector(_) => unreachable!("matrices are read as matrices"),
        };
        let vector = |loaded: Loaded| match loaded {
            Loaded::Vector(v) => v,
            Loaded::Matrix(_) => unreachable!("norms are read as vectors"),
        };
        let layers = (0..config.num_layers)
            .map(|i| {
                let mut t = |name: &str| take(format!("blk.{i}.{name}"));
                Layer {
                    qkv_bias: input.family.options.qkv_bias.then(|| {
                        ["attn_q", "attn_k", "attn_v"].map(|n| vector(t(&format!("{n}.bias"))))
                    }),
                    qk_norm: input.family.options.qk_norm.then(|| {
                        ["attn_q_norm", "attn_k_norm"].map(|n| vector(t(&format!("{n}.weight"))))
                    }),
                    attn_norm: vector(t("attn_norm.weight")),
                    q: matrix(t("attn_q.weight")),
                    k: matrix(t("attn_k.weight")),
                    v: matrix(t("attn_v.weight")),
                    o: matrix(t("attn_output.weight")),
                    ffn_norm: vector(t("ffn_norm.weight")),
                    gate: matrix(t("ffn_gate.weight")),
                    up: matrix(t("ffn_up.weight")),
                    down: matrix(t("ffn_down.weight")),
                }
            })
            .collect();
        let embedding = matrix(take("token_embd.weight".into()));
        let norm = vector(take("output_norm.weight".into()));
        let output = (!config.tie_word_embeddings).then(|| matrix(take("output.weight".into())));
        let dims = Dims {
            hidden: config.hidden_size,
            heads: config.num_heads,
            kv_heads: config.num_kv_heads,
            head_dim: config.head_dim(),
            intermediate: config.intermediate_size,
            vocab: config.vocab_size,
            context: config.max_position_embeddings,
            eps: config.rms_norm_eps as f32,
            rope: input.family.options.rope,
        };
        Ok(TunedEngine {
            kernels,
            pool: Pool::new(input.threads),
            inv_freq: scaled_inv_freq(
                ops::rope_inv_freq(dims.head_dim, config.rope_theta),
                config.rope_freq_factors.as_deref(),
            ),
            dims,
            embedding,
            layers,
            norm,
            output,
            caches: Vec::new(),
            buffers: Buffers::default(),
            logits: Logits::default(),
            steps: StepPlan::default(),
            positions: Vec::new(),
            batch: 0,
        })
    }
}

/// Where each tensor's GGUF bytes come from.
enum Tensors<'a> {
    /// A GGUF file in its own types.
    File {
        path: &'a Path,
        content: &'a Content,
        file: &'a mut dyn ReadSeek,
    },
    /// Any weight source in the planned types, made as they are read by the code that writes
    /// `llm-bench export`'s files (so the same bytes, with no file written).
    Made {
        source: String,
        maker: TensorMaker<'a>,
    },
}

/// One tensor's bytes, read in order.
enum TensorReader<'a> {
    File(&'a Path, &'a mut dyn ReadSeek),
    Made(TensorStream<'a>),
}

impl TensorReader<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        match self {
            TensorReader::File(path, file) => file.read_exact(buf).map_err(|e| Error::io(*path, e)),
            TensorReader::Made(stream) => stream.read_exact(buf),
        }
    }
}

impl Tensors<'_> {
    /// What errors name: the file, or the source the bytes are made from.
    fn origin(&self) -> PathBuf {
        match self {
            Tensors::File { path, .. } => path.to_path_buf(),
            Tensors::Made { source, .. } => source.into(),
        }
    }

    /// A reader at the first byte of tensor `index` of the plan, `spec`. A file's tensors were
    /// checked when it was resolved (present, of the shape the config implies, rows of whole
    /// blocks inside the file: `source::gguf`), and the plan holds their types.
    fn open(&mut self, index: usize, spec: &TensorSpec) -> Result<TensorReader<'_>> {
        match self {
            Tensors::File {
                path,
                content,
                file,
            } => {
                let info =
                    content
                        .tensor_infos
                        .get(&spec.gguf_name)
                        .ok_or_else(|| Error::BadField {
                            path: path.to_path_buf(),
                            field: spec.gguf_name.clone(),
                            problem: "tensor is missing".into(),
                        })?;
                file.seek(SeekFrom::Start(content.tensor_data_offset + info.offset))
                    .map_err(|e| Error::io(*path, e))?;
                Ok(TensorReader::File(path, &mut **file))
            }
            Tensors::Made { maker, .. } => Ok(TensorReader::Made(
                maker.stream(index, weights::STREAM_CHUNKS),
            )),
        }
    }
}

/// Reads every tensor the architecture declares, in its storage type: from the GGUF file
/// when the model is one in its own types, else made from the weight source in the planned
/// types (quantized on load: a safetensors folder, a synthetic twin, a GGUF in another
/// format). Each matrix is built as its bytes arrive, 64 rows at a time.
fn read_tensors(input: &EngineInput, kernels: &Kernels) -> Result<HashMap<String, Loaded>> {
    let mut file_lock;
    let mut tensors = match (&input.weights, input.format) {
        (Weights::Gguf(gguf), None) => {
            file_lock = gguf.file.lock().unwrap_or_else(|p| p.into_inner());
            Tensors::File {
                path: &gguf.path,
                content: &gguf.content,
                file: &mut **file_lock,
            }
        }
        (weights, _) => Tensors::Made {
            source: match &input.source_path {
                Some(path) => path.display().to_string(),
                None => format!("{} weights", input.config.architecture),
            },
            maker: TensorMaker {
                plan: &input.layout,
                source: weights.as_source(),
                head_dim: input.config.head_dim(),
            },
        },
    };
    let origin = tensors.origin();
    // The model's matrices one after another in memory the kernel can back with huge pages.
    let mut arena = Arena::default();
    let mut out = HashMap::new();
    for (index, (spec, dtype)) in input.layout.tensors.iter().enumerate() {
        let name = &spec.gguf_name;
        let bad = |problem: String| Error::BadField {
            path: origin.clone(),
            field: name.clone(),
            problem,
        };
        let mut reader = tensors.open(index, spec)?;
        let format = crate::format::ggml_name(*dtype);
        // Read in chunks as the matrix is built: a tensor's bytes are never held whole beside
        // its converted copy (the 8B twin's embedding alone is 282 MiB).
        let mut fill = |buf: &mut [u8]| reader.fill(buf);
        // The shape checks' errors name the tensor as the engine's other errors do.
        let stored = Format::named(format).ok_or_else(|| {
            bad(format!(
                "type is {format}; the tuned kernels read {}",
                Format::names()
            ))
        })?;
        let mut read = |rows: usize, cols: usize, fill: &mut dyn FnMut(&mut [u8]) -> Result<()>| {
            Matrix::read(name, stored, rows, cols, kernels, &mut arena, fill).map_err(|e| match e {
                Error::BadField { problem, field, .. } => bad(format!("{field} {problem}")),
                other => other,
            })
        };
        let loaded = match spec.role {
            role if role.is_vector() && NORM_FORMATS.contains(&format) => {
                // One row, read and widened to f32 as matrices in these formats are.
                let mut norm = vec![0f32; spec.elements()];
                read(1, norm.len(), &mut fill)?.row_into(0, &mut norm);
                Loaded::Vector(norm)
            }
            role if role.is_vector() => {
                return Err(bad(format!(
                    "is {format}; the tuned engine reads norms and biases in f32, f16 or bf16"
                )))
            }
            _ => Loaded::Matrix(read(spec.rows(), spec.cols(), &mut fill)?),
        };
        out.insert(name.clone(), loaded);
    }
    Ok(out)
}

/// RoPE's frequencies divided by the model's per-frequency scaling factors, if it has them
/// (Llama 3.1-3.3), as llama.cpp's `ggml_rope_ext` divides them.
fn scaled_inv_freq(inv_freq: Vec<f32>, factors: Option<&[f32]>) -> Vec<f32> {
    match factors {
        None => inv_freq,
        Some(factors) => inv_freq.iter().zip(factors).map(|(f, d)| f / d).collect(),
    }
}
