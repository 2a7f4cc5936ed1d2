//! `tuned`: llm-bench's own engine. A Llama-family forward pass (Qwen2's biases and Qwen3's
//! q/k norms as options) on the project's kernels
//! (`crate::kernels`): weights kept in the GGUF file's own format (the token embedding too:
//! only the rows looked up are dequantized), activations quantized once per product, the
//! kernel level picked once from the CPU's features (`LLM_BENCH_KERNELS` caps it), one
//! persistent thread pool with one barrier per operation. q/k/v run as one operation and
//! gate/up as another; prefill runs the interleaved integer kernels four tokens per pass (f32,
//! f16 and bf16 weights as GEMMs). A GGUF file in its own types is read as it is; any other
//! source or format is quantized on load, its bytes made by the code that writes `llm-bench
//! export`'s files, a batch of rows at a time (no file written, no tensor held whole).

mod attention;
mod forward;
mod load;

use super::{Engine, EngineEntry, EngineInfo, Loads, Logits, Work};
use crate::error::{Error, Result};
use crate::family::{RopeStyle, TensorRole, TensorSpec};
use crate::format::GgmlDType;
use crate::kernels::matrix::{Activations, Matrix};
use crate::kernels::{Format, Kernels, Pool};
use crate::weights::{EngineInput, Planned};
use half::f16;

/// The tuned engine's registry entry.
pub const ENTRY: EngineEntry = EngineEntry {
    name: "tuned",
    loads: Loads::Sources,
    about: "llm-bench's own Rust kernels, picked at run time by CPU features (Llama, Qwen2, Qwen3; every --format)",
    build: Some(build),
    supports,
};

/// The types norms are read in (turned into f32 at load: they are a few KiB).
const NORM_FORMATS: &[&str] = &["f32", "f16", "bf16"];

/// Refuses, before anything loads, what the kernels cannot run.
fn supports(planned: &Planned) -> Result<()> {
    planned.refuse_unapplied("the tuned engine")?;
    check_types(&planned.layout().tensors, &planned.name)
}

/// Refuses a tensor whose storage type the kernels do not read (norms and biases: f32, f16,
/// bf16), naming it, `model` and the types they do.
fn check_types(tensors: &[(TensorSpec, GgmlDType)], model: &str) -> Result<()> {
    for (spec, dtype) in tensors {
        let format = crate::format::ggml_name(*dtype);
        let ok = match spec.role {
            TensorRole::Norm | TensorRole::Bias => NORM_FORMATS.contains(&format),
            _ => Format::named(format).is_some(),
        };
        if !ok {
            return Err(Error::InvalidSetting {
                name: "--format",
                reason: format!(
                    "the tuned engine runs weights in {} (norms in {}), but {} of {} is {format}: pick one of those with --format, or --engine candle",
                    Format::names(),
                    NORM_FORMATS.join(", "),
                    spec.gguf_name,
                    model
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
    /// The q, k and v projections' biases, if the family has them (Qwen2).
    qkv_bias: Option<[Vec<f32>; 3]>,
    /// Each query and key head's RMSNorm weights, if the family has them (Qwen3).
    qk_norm: Option<[Vec<f32>; 2]>,
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
    rope: RopeStyle,
}

impl Dims {
    fn kv(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// All query heads of one token (the hidden size unless the model sets its head size).
    fn q_width(&self) -> usize {
        self.heads * self.head_dim
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

/// One entry of a step: `n` new tokens of slot `slot` after `start` cached positions, in the
/// step's rows from `first` on.
#[derive(Clone, Copy)]
struct Entry {
    slot: usize,
    start: usize,
    n: usize,
    first: usize,
}

/// Where a row of a step belongs: its slot and its position in that slot's sequence.
#[derive(Clone, Copy)]
struct Row {
    slot: usize,
    position: usize,
}

/// The shape of the step being run (kept between steps, so a step allocates none).
#[derive(Default)]
struct StepPlan {
    entries: Vec<Entry>,
    rows: Vec<Row>,
    tokens: Vec<u32>,
}

/// The most sequences a server may keep in the tuned engine at once (each slot's cache grows
/// only as its sequence does).
const MAX_SEQUENCES: usize = 256;

/// llm-bench's own engine: its kernels, weights and KV cache.
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
    steps: StepPlan,
    /// How many positions each slot's cache holds.
    positions: Vec<usize>,
    /// Sequences of the lockstep batch `prefill` started.
    batch: usize,
}

/// Builds the engine from a planned model.
pub fn build(input: EngineInput) -> Result<Box<dyn Engine>> {
    build_with(input, Kernels::chosen()?)
}

/// The engine on the kernels given rather than the ones the CPU and `LLM_BENCH_KERNELS`
/// choose (tests compare levels in one process).
pub fn build_with(input: EngineInput, kernels: Kernels) -> Result<Box<dyn Engine>> {
    Ok(Box::new(TunedEngine::load(input, kernels)?))
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
        super::prompt_length(prompts)?;
        self.reset();
        let work = (prompts.iter().enumerate()).map(|(slot, tokens)| Work { slot, tokens });
        self.forward(work)?;
        self.batch = prompts.len();
        Ok(&self.logits)
    }

    fn decode(&mut self, tokens: &[u32]) -> Result<&Logits> {
        if tokens.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if self.position() > 0 {
            super::check_decode_batch(tokens.len(), self.batch)?;
        }
        // No collected work: a decode step allocates nothing (tests/allocations.rs).
        let work = (tokens.chunks(1).enumerate()).map(|(slot, tokens)| Work { slot, tokens });
        self.forward(work)?;
        self.batch = tokens.len();
        Ok(&self.logits)
    }

    fn reset(&mut self) {
        self.positions.fill(0);
        self.batch = 0;
    }

    fn position(&self) -> usize {
        self.positions.first().copied().unwrap_or(0)
    }

    fn max_sequences(&self) -> usize {
        MAX_SEQUENCES
    }

    fn step(&mut self, work: &[Work]) -> Result<&Logits> {
        super::check_work(work, MAX_SEQUENCES)?;
        self.forward(work.iter().copied())
    }

    fn release(&mut self, slot: usize) {
        if let Some(position) = self.positions.get_mut(slot) {
            *position = 0;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every matrix type a `--format` names runs; a norm in a block type and a matrix in an
    /// activation type (q8_k) are refused, naming the tensor, the model and what runs.
    #[test]
    fn tensors_the_kernels_cannot_read_are_refused_with_what_they_run() {
        let tensor = |name: &str, role| TensorSpec {
            hf_name: name.into(),
            gguf_name: name.into(),
            shape: vec![256, 256],
            role,
            rope_permuted_heads: None,
        };
        let norm = tensor("output_norm.weight", TensorRole::Norm);
        let matrix = tensor("blk.0.ffn_up.weight", TensorRole::Matmul);
        for name in crate::format::FORMAT_NAMES {
            let dtype = name.parse::<crate::WeightFormat>().unwrap().ggml();
            let ok = [(norm.clone(), GgmlDType::F32), (matrix.clone(), dtype)];
            check_types(&ok, "m").unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (spec, dtype) in [(norm, GgmlDType::Q8_0), (matrix, GgmlDType::Q8K)] {
            let name = spec.gguf_name.clone();
            let err = check_types(&[(spec, dtype)], "tiny")
                .unwrap_err()
                .to_string();
            for shown in [
                name.as_str(),
                "tiny",
                "q4_0",
                "q2k",
                "q6k",
                "bf16",
                "--engine candle",
            ] {
                assert!(err.contains(shown), "{shown:?} missing: {err}");
            }
        }
    }
}
