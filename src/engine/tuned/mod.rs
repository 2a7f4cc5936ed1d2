//! `tuned`: llm-bench's own engine. A Llama forward pass on the project's kernels
//! (`crate::kernels`): weights kept in the GGUF file's own format (the token embedding too:
//! only the rows looked up are dequantized), activations quantized once per product, the
//! kernel level picked once from the CPU's features (`LLM_BENCH_KERNELS` caps it), one
//! persistent thread pool with one barrier per operation. q/k/v run as one operation and
//! gate/up as another; prefill runs the interleaved integer kernels four tokens per pass (f32,
//! f16 and bf16 weights as GEMMs). A GGUF file in its own types is read as it is; any other
//! source or format is quantized on load, its bytes made by the code that writes `llm-bench
//! export`'s files, a batch of rows at a time (no file written, no tensor held whole).

use super::{Engine, EngineEntry, EngineInfo, Loads, Logits};
use crate::error::{Error, Result};
use crate::family::{ReadSeek, TensorRole, TensorSpec};
use crate::kernels::matrix::{self, multiply, Activations, Input, Matrix, Product, RmsNorm, Then};
use crate::kernels::{ops, Arena, Kernels, Pool, SharedOut};
use crate::source::Weights;
use crate::weights::{self, TensorMaker, TensorStream};
use crate::weights::{EngineInput, Planned};
use candle_core::quantized::gguf_file::Content;
use half::f16;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const ENTRY: EngineEntry = EngineEntry {
    name: "tuned",
    loads: Loads::Sources,
    about: "llm-bench's own Rust kernels, picked at run time by CPU features (Llama; f32, f16, bf16, q8_0, q4_0, q4_1)",
    build: Some(build),
    supports,
};

/// The types norms are read in (turned into f32 at load: they are a few KiB).
const NORM_FORMATS: &[&str] = &["f32", "f16", "bf16"];

/// Refuses, before anything loads, what the kernels cannot run.
fn supports(planned: &Planned) -> Result<()> {
    let family = planned.resolved.family.name;
    if family != "llama" {
        return Err(Error::InvalidSetting {
            name: "--engine",
            reason: format!("tuned runs the llama architecture, not {family}: use --engine candle"),
        });
    }
    for (spec, dtype) in &planned.layout().tensors {
        let format = crate::format::ggml_name(*dtype);
        let ok = match spec.role {
            TensorRole::Norm => NORM_FORMATS.contains(&format),
            _ => matrix::FORMATS.contains(&format),
        };
        if !ok {
            return Err(Error::InvalidSetting {
                name: "--format",
                reason: format!(
                    "the tuned engine runs weights in {} (norms in {}), but {} of {} is {format}: pick one of those with --format, or --engine candle",
                    matrix::FORMATS.join(", "),
                    NORM_FORMATS.join(", "),
                    spec.gguf_name,
                    planned.name
                ),
            });
        }
    }
    Ok(())
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Matrix,
    k: Matrix,
    v: Matrix,
    o: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

/// The sizes a step works with.
#[derive(Clone, Copy)]
struct Dims {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    vocab: usize,
    context: usize,
    eps: f32,
}

impl Dims {
    fn kv(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// One sequence's keys and values, per layer: `positions × kv` each, in f16 as llama.cpp
/// keeps them (half the memory and bandwidth of f32).
#[derive(Default)]
struct SequenceCache {
    keys: Vec<Vec<f16>>,
    values: Vec<Vec<f16>>,
}

/// Buffers a step works in, kept between steps (they grow to the largest request, then no
/// step allocates).
#[derive(Default)]
struct Buffers {
    x: Vec<f32>,
    /// Each sequence's last token, whose logits are wanted.
    last: Vec<f32>,
    q: Vec<f32>,
    /// The queries rounded to f16 for attention.
    q16: Vec<f16>,
    k: Vec<f32>,
    v: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    turns: Vec<(f32, f32)>,
    scores: Vec<f32>,
    acts: Activations,
}

pub struct TunedEngine {
    kernels: Kernels,
    pool: Pool,
    dims: Dims,
    embedding: Matrix,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: tied to the embedding.
    output: Option<Matrix>,
    inv_freq: Vec<f32>,
    caches: Vec<SequenceCache>,
    buffers: Buffers,
    /// The last step's logits (written in place, lent out until the next step).
    logits: Logits,
    position: usize,
    batch: usize,
}

/// A tensor as the engine holds it.
enum Loaded {
    Matrix(Matrix),
    Vector(Vec<f32>),
}

pub fn build(input: EngineInput) -> Result<Box<dyn Engine>> {
    build_with(input, Kernels::chosen()?)
}

/// The engine on the kernels given rather than the ones the CPU and `LLM_BENCH_KERNELS`
/// choose (tests compare levels in one process).
pub fn build_with(input: EngineInput, kernels: Kernels) -> Result<Box<dyn Engine>> {
    Ok(Box::new(TunedEngine::load(input, kernels)?))
}

impl TunedEngine {
    fn load(input: EngineInput, kernels: Kernels) -> Result<TunedEngine> {
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
                let mut t = |name: &str| take(format!("blk.{i}.{name}.weight"));
                Layer {
                    attn_norm: vector(t("attn_norm")),
                    q: matrix(t("attn_q")),
                    k: matrix(t("attn_k")),
                    v: matrix(t("attn_v")),
                    o: matrix(t("attn_output")),
                    ffn_norm: vector(t("ffn_norm")),
                    gate: matrix(t("ffn_gate")),
                    up: matrix(t("ffn_up")),
                    down: matrix(t("ffn_down")),
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
        };
        Ok(TunedEngine {
            kernels,
            pool: Pool::new(input.threads),
            inv_freq: ops::rope_inv_freq(dims.head_dim, config.rope_theta),
            dims,
            embedding,
            layers,
            norm,
            output,
            caches: Vec::new(),
            buffers: Buffers::default(),
            logits: Logits::default(),
            position: 0,
            batch: 0,
        })
    }

    /// Room for `batch` sequences of `positions` each, so steps do not grow the cache (nor
    /// attention's scores, a row of `positions` per thread).
    fn grow_caches(&mut self, batch: usize, positions: usize) {
        let (layers, kv) = (self.layers.len(), self.dims.kv());
        let scores = &mut self.buffers.scores;
        scores.reserve((self.pool.threads() * positions).saturating_sub(scores.len()));
        self.caches
            .resize_with(batch.max(self.caches.len()), || SequenceCache {
                keys: vec![Vec::new(); layers],
                values: vec![Vec::new(); layers],
            });
        for cache in &mut self.caches[..batch] {
            for buffer in cache.keys.iter_mut().chain(cache.values.iter_mut()) {
                buffer.reserve((positions * kv).saturating_sub(buffer.len()));
            }
        }
    }

    /// Runs `n` new tokens of each of `tokens.len() / n` sequences (sequence-major) after the
    /// cache; returns the logits of each sequence's last token.
    fn forward(&mut self, tokens: &[u32], n: usize) -> Result<&Logits> {
        let d = self.dims;
        let start = self.position;
        if start + n > d.context {
            return Err(Error::ContextOverflow {
                prompt_tokens: start,
                new_tokens: n,
                context_length: d.context,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= d.vocab) {
            return Err(Error::InvalidSetting {
                name: "token id",
                reason: format!("{bad} is outside the vocabulary of {}", d.vocab),
            });
        }
        let batch = tokens.len() / n;
        // Prompts of many tokens run their products as GEMMs (decided per sequence, so a
        // batch of prompts computes each as that prompt alone would).
        let gemm = n >= GEMM_MIN_TOKENS;
        self.grow_caches(batch, start + n);
        let all = tokens.len();
        let (h, kv, half) = (d.hidden, d.kv(), d.head_dim / 2);
        let Self {
            kernels,
            pool,
            embedding,
            layers,
            norm,
            output,
            inv_freq,
            caches,
            buffers: b,
            logits,
            ..
        } = self;
        let k = &*kernels;
        for (buffer, len) in [
            (&mut b.x, all * h),
            (&mut b.q, all * h),
            (&mut b.k, all * kv),
            (&mut b.v, all * kv),
            (&mut b.attended, all * h),
            (&mut b.projected, all * h),
            (&mut b.gate, all * d.intermediate),
            (&mut b.up, all * d.intermediate),
        ] {
            buffer.resize(len, 0.0);
        }
        b.turns.resize(n * half, (0.0, 0.0));
        for (i, turns) in b.turns.chunks_exact_mut(half).enumerate() {
            ops::rope_turns(start + i, inv_freq, turns);
        }
        for (&id, x) in tokens.iter().zip(b.x.chunks_exact_mut(h)) {
            embedding.row_into(id as usize, x);
        }
        let rms = |weight| Some(RmsNorm { weight, eps: d.eps });
        for (l, layer) in layers.iter().enumerate() {
            // Attention.
            feed(
                pool,
                &mut b.acts,
                &b.x,
                all,
                rms(&layer.attn_norm),
                &[&layer.q, &layer.k, &layer.v],
                gemm,
            );
            multiply(
                pool,
                k,
                &mut b.acts,
                &mut [
                    Product {
                        matrix: &layer.q,
                        out: &mut b.q,
                    },
                    Product {
                        matrix: &layer.k,
                        out: &mut b.k,
                    },
                    Product {
                        matrix: &layer.v,
                        out: &mut b.v,
                    },
                ],
                Then::Nothing,
            );
            // Row t is token t % n of its sequence.
            for (t, (q, key)) in
                b.q.chunks_exact_mut(h)
                    .zip(b.k.chunks_exact_mut(kv))
                    .enumerate()
            {
                let turns = &b.turns[(t % n) * half..(t % n + 1) * half];
                ops::rope(q, turns);
                ops::rope(key, turns);
            }
            for (s, cache) in caches[..batch].iter_mut().enumerate() {
                let rows = s * n * kv..(s + 1) * n * kv;
                cache.keys[l].truncate(start * kv);
                cache.keys[l].extend(b.k[rows.clone()].iter().map(|&v| f16::from_f32(v)));
                cache.values[l].truncate(start * kv);
                cache.values[l].extend(b.v[rows].iter().map(|&v| f16::from_f32(v)));
            }
            b.q16.clear();
            b.q16.extend(b.q.iter().map(|&v| f16::from_f32(v)));
            attention(
                pool,
                k,
                &d,
                caches,
                l,
                (start, n, batch),
                &b.q16,
                &mut b.attended,
                &mut b.scores,
            );
            feed(pool, &mut b.acts, &b.attended, all, None, &[&layer.o], gemm);
            multiply(
                pool,
                k,
                &mut b.acts,
                &mut [Product {
                    matrix: &layer.o,
                    out: &mut b.projected,
                }],
                Then::Nothing,
            );
            add(&mut b.x, &b.projected);
            // Feed-forward.
            feed(
                pool,
                &mut b.acts,
                &b.x,
                all,
                rms(&layer.ffn_norm),
                &[&layer.gate, &layer.up],
                gemm,
            );
            multiply(
                pool,
                k,
                &mut b.acts,
                &mut [
                    Product {
                        matrix: &layer.gate,
                        out: &mut b.gate,
                    },
                    Product {
                        matrix: &layer.up,
                        out: &mut b.up,
                    },
                ],
                Then::SiluMul,
            );
            feed(pool, &mut b.acts, &b.gate, all, None, &[&layer.down], gemm);
            multiply(
                pool,
                k,
                &mut b.acts,
                &mut [Product {
                    matrix: &layer.down,
                    out: &mut b.projected,
                }],
                Then::Nothing,
            );
            add(&mut b.x, &b.projected);
        }
        // The logits of each sequence's last token only.
        b.last.clear();
        for s in 0..batch {
            let last = (s * n + n - 1) * h;
            b.last.extend_from_slice(&b.x[last..last + h]);
        }
        let output = output.as_ref().unwrap_or(embedding);
        feed(
            pool,
            &mut b.acts,
            &b.last,
            batch,
            rms(norm),
            &[output],
            false,
        );
        logits.vocab = d.vocab;
        logits.data.resize(batch * d.vocab, 0.0);
        multiply(
            pool,
            k,
            &mut b.acts,
            &mut [Product {
                matrix: output,
                out: &mut logits.data,
            }],
            Then::Nothing,
        );
        self.position = start + n;
        self.batch = batch;
        Ok(&self.logits)
    }
}

/// Prompt length from which f32, f16 and bf16 products (and block-format ones whose rows do not
/// come in groups of eight) run as GEMMs; below it, one dot product per row and token.
/// Interleaved block formats take their four-token kernels either way. At a 26-token prompt
/// the GEMM path prefilled f32 at 374 tokens/s against the dot path's 245 (2026-11-30); the
/// threshold itself is not tuned further.
const GEMM_MIN_TOKENS: usize = 8;

/// Hands `x` (`tokens` rows), normed first when `norm` is given, to the next products with
/// `matrices`, on the chosen path: quantized when any of them is in a block format.
fn feed(
    pool: &mut Pool,
    acts: &mut Activations,
    x: &[f32],
    tokens: usize,
    norm: Option<RmsNorm>,
    matrices: &[&Matrix],
    gemm: bool,
) {
    let input = Input {
        norm,
        quantize: matrices.iter().any(|m| m.quantized()),
        gemm,
    };
    acts.set(pool, x, tokens, x.len() / tokens, input);
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Causal attention of every query head of every new token over its sequence's cache, the
/// (sequence, token, head) items dealt round-robin to the threads so that a prefill's long
/// and short rows are shared evenly. `(start, n, batch)`: cached positions before the new
/// tokens, new tokens per sequence, sequences.
#[allow(clippy::too_many_arguments)]
fn attention(
    pool: &mut Pool,
    k: &Kernels,
    d: &Dims,
    caches: &[SequenceCache],
    layer: usize,
    (start, n, batch): (usize, usize, usize),
    q: &[f16],
    out: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let (hd, h, kv) = (d.head_dim, d.hidden, d.kv());
    let group = d.heads / d.kv_heads;
    let most = start + n;
    let threads = pool.threads();
    scores.resize(threads * most, 0.0);
    let (out, scratch) = (SharedOut(out.as_mut_ptr()), SharedOut(scores.as_mut_ptr()));
    let items = batch * n * d.heads;
    pool.run(&|thread| {
        // SAFETY: each thread has its own `most` scores.
        let scores = unsafe { std::slice::from_raw_parts_mut(scratch.at(thread * most), most) };
        for item in (thread..items).step_by(threads) {
            let (s, i, head) = (item / (n * d.heads), item / d.heads % n, item % d.heads);
            let (t, g) = (s * n + i, head / group);
            let cache = (&caches[s].keys[layer], &caches[s].values[layer]);
            let at = t * h + head * hd;
            // SAFETY: item (t, head) alone writes these head_dim outputs.
            let o = unsafe { std::slice::from_raw_parts_mut(out.at(at), hd) };
            (k.attend)(
                &q[at..at + hd],
                &cache.0[g * hd..],
                &cache.1[g * hd..],
                kv,
                start + i + 1,
                scores,
                o,
            );
        }
    });
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
        let mut read = |rows: usize, cols: usize, fill: &mut dyn FnMut(&mut [u8]) -> Result<()>| {
            Matrix::read(name, format, rows, cols, kernels, &mut arena, fill).map_err(|e| match e {
                Error::BadField { problem, field, .. } => bad(format!("{field} {problem}")),
                other => other,
            })
        };
        let loaded = match spec.role {
            TensorRole::Norm if NORM_FORMATS.contains(&format) => {
                // One row, read and widened to f32 as matrices in these formats are.
                let mut norm = vec![0f32; spec.elements()];
                read(1, norm.len(), &mut fill)?.row_into(0, &mut norm);
                Loaded::Vector(norm)
            }
            TensorRole::Norm => {
                return Err(bad(format!(
                    "is {format}; the tuned engine reads norms in f32, f16 or bf16"
                )))
            }
            _ => Loaded::Matrix(read(spec.rows(), spec.cols(), &mut fill)?),
        };
        out.insert(name.clone(), loaded);
    }
    Ok(out)
}

impl Engine for TunedEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: ENTRY.name.into(),
            version: format!("llm-bench {}", env!("CARGO_PKG_VERSION")),
            // The kernel level every result records.
            detail: self.kernels.level.name().into(),
        }
    }

    fn reserve(&mut self, batch: usize, positions: usize) -> Result<()> {
        self.grow_caches(batch.max(1), positions.min(self.dims.context));
        Ok(())
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<&Logits> {
        let len = super::prompt_length(prompts)?;
        self.reset();
        let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
        self.forward(&flat, len)
    }

    fn decode(&mut self, tokens: &[u32]) -> Result<&Logits> {
        if tokens.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if self.position > 0 && self.batch != tokens.len() {
            return Err(Error::InvalidSetting {
                name: "batch",
                reason: format!(
                    "a decode step of {} sequences after a prefill of {}",
                    tokens.len(),
                    self.batch
                ),
            });
        }
        self.forward(tokens, 1)
    }

    fn reset(&mut self) {
        self.position = 0;
        self.batch = 0;
    }

    fn position(&self) -> usize {
        self.position
    }

    fn thread_wait(&self) -> Option<std::time::Duration> {
        Some(self.pool.stats().per_thread_wait())
    }

    fn batch_size(&self) -> usize {
        self.batch
    }
}

impl std::fmt::Debug for TunedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TunedEngine({} layers, {})",
            self.layers.len(),
            self.kernels.level.name()
        )
    }
}
