//! The tuned engine's kernels (issue 11, first part): quantized dot products over GGUF's block
//! layouts and the matrix-vector product of decode, written with `std::arch` intrinsics and
//! chosen once per process from the CPU's features, so one binary runs the best code the
//! machine has without `-C target-cpu=native`.
//!
//! Levels, lowest first: `scalar` (every CPU), `avx2` (x86-64 with AVX2, FMA and F16C).
//! `LLM_BENCH_KERNELS=scalar` forces a lower level than the CPU offers (tests run every level
//! the machine has; a level the CPU lacks is refused, never run).

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod blocks;
pub mod pool;
mod scalar;

use crate::error::{Error, Result};
use blocks::{Block, BlockQ4_0, BlockQ4_1, BlockQ8, BlockQ8_0, QK};
pub use pool::Pool;

/// Lowers the kernel level: `scalar` or `avx2`.
pub const LEVEL_ENV: &str = "LLM_BENCH_KERNELS";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::Scalar, Level::Avx2];

    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
        }
    }

    fn supported(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => avx2::detected(),
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx2 => false,
        }
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        Level::ALL.into_iter().filter(|l| l.supported()).collect()
    }

    /// The best level this CPU runs, or the one `LLM_BENCH_KERNELS` names (which must be one
    /// the CPU runs).
    pub fn chosen() -> Result<Level> {
        match std::env::var(LEVEL_ENV) {
            Ok(name) if !name.trim().is_empty() => Level::named(name.trim()),
            _ => Ok(*Level::available()
                .last()
                .expect("scalar is always available")),
        }
    }

    /// The level called `name`, if this CPU runs it.
    pub fn named(name: &str) -> Result<Level> {
        let bad = |problem: &str| Error::KernelLevel {
            value: name.into(),
            problem: problem.into(),
            available: Level::available()
                .iter()
                .map(|l| l.name())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let level = Level::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| bad("not a kernel level"))?;
        if !level.supported() {
            return Err(bad("this CPU lacks the features that level needs"));
        }
        Ok(level)
    }
}

/// The kernels of one level, as plain function pointers (chosen once; no feature test per call).
#[derive(Clone, Copy)]
pub struct Kernels {
    pub level: Level,
    pub dot_q8_0: fn(&[BlockQ8_0], &[BlockQ8]) -> f32,
    pub dot_q4_0: fn(&[BlockQ4_0], &[BlockQ8]) -> f32,
    pub dot_q4_1: fn(&[BlockQ4_1], &[BlockQ8]) -> f32,
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
}

impl Kernels {
    /// The kernels of `level`; a level this CPU cannot run is refused.
    pub fn for_level(level: Level) -> Result<Kernels> {
        Level::named(level.name())?;
        Ok(match level {
            Level::Scalar => Kernels {
                level,
                dot_q8_0: scalar::dot_q8_0,
                dot_q4_0: scalar::dot_q4_0,
                dot_q4_1: scalar::dot_q4_1,
                dot_f32: scalar::dot_f32,
            },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => Kernels {
                level,
                dot_q8_0: avx2::dot_q8_0,
                dot_q4_0: avx2::dot_q4_0,
                dot_q4_1: avx2::dot_q4_1,
                dot_f32: avx2::dot_f32,
            },
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx2 => unreachable!("refused above: not supported off x86-64"),
        })
    }

    /// The kernels [`Level::chosen`] names.
    pub fn chosen() -> Result<Kernels> {
        Kernels::for_level(Level::chosen()?)
    }
}

/// A block format the kernels multiply by quantized activations.
pub trait QuantBlock: Block {
    fn dot(kernels: &Kernels) -> fn(&[Self], &[BlockQ8]) -> f32;
}

impl QuantBlock for BlockQ8_0 {
    fn dot(k: &Kernels) -> fn(&[Self], &[BlockQ8]) -> f32 {
        k.dot_q8_0
    }
}

impl QuantBlock for BlockQ4_0 {
    fn dot(k: &Kernels) -> fn(&[Self], &[BlockQ8]) -> f32 {
        k.dot_q4_0
    }
}

impl QuantBlock for BlockQ4_1 {
    fn dot(k: &Kernels) -> fn(&[Self], &[BlockQ8]) -> f32 {
        k.dot_q4_1
    }
}

/// A weight matrix in a block format: `rows` rows of `cols` weights, row-major, as GGUF
/// stores a 2-D tensor (`cols` is GGUF's first dimension).
pub struct QMatrix<B> {
    pub rows: usize,
    pub cols: usize,
    pub blocks: Vec<B>,
}

impl<B: QuantBlock> QMatrix<B> {
    /// Reads a matrix from GGUF tensor bytes, checking the shape against the byte count.
    pub fn from_gguf(name: &str, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        let bad = |problem: String| Error::BadField {
            path: name.into(),
            field: "shape".into(),
            problem,
        };
        if cols == 0 || rows == 0 || !cols.is_multiple_of(QK) {
            return Err(bad(format!(
                "{rows} rows of {cols} weights: {} needs a positive row length that is a multiple of {QK}",
                B::NAME
            )));
        }
        let expected = rows
            .checked_mul(cols / QK)
            .and_then(|blocks| blocks.checked_mul(B::BYTES))
            .ok_or_else(|| bad(format!("{rows} x {cols} overflows")))?;
        if bytes.len() != expected {
            return Err(bad(format!(
                "{rows} x {cols} in {} is {expected} bytes, found {}",
                B::NAME,
                bytes.len()
            )));
        }
        let blocks = blocks::read_blocks(bytes).expect("length checked above");
        Ok(Self { rows, cols, blocks })
    }

    /// `y = W x` for activations already quantized to `x` (`cols / 32` blocks). Rows are split
    /// across the pool's threads in contiguous chunks, one per thread; nothing is allocated.
    pub fn gemv(&self, kernels: &Kernels, pool: &mut Pool, x: &[BlockQ8], y: &mut [f32]) {
        let per_row = self.cols / QK;
        assert_eq!(x.len(), per_row, "activation blocks for one row");
        assert_eq!(y.len(), self.rows, "one output per row");
        let dot = B::dot(kernels);
        let chunk = self.rows.div_ceil(pool.threads());
        let out = SharedOut(y.as_mut_ptr());
        pool.run(&|t| {
            let rows = (t * chunk).min(self.rows)..((t + 1) * chunk).min(self.rows);
            // SAFETY: thread t writes only rows t*chunk..(t+1)*chunk of `y`, disjoint from
            // every other thread's, and `y` outlives `run`.
            let y = unsafe { std::slice::from_raw_parts_mut(out.at(rows.start), rows.len()) };
            let weights = &self.blocks[rows.start * per_row..rows.end * per_row];
            for (o, row) in y.iter_mut().zip(weights.chunks_exact(per_row)) {
                *o = dot(row, x);
            }
        });
    }
}

/// An output buffer the pool's threads fill in disjoint parts.
struct SharedOut(*mut f32);

impl SharedOut {
    fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY (for callers): offset is within the buffer.
        self.0.wrapping_add(offset)
    }
}

// SAFETY: each thread writes a disjoint range (see `QMatrix::gemv`).
unsafe impl Sync for SharedOut {}

#[cfg(test)]
mod tests;
