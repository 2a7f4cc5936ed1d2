//! llm-bench's tuned engine's kernels: quantized dot products over GGUF's block
//! layouts and the matrix-vector product of decode, written with `std::arch` intrinsics and
//! chosen once per process from the CPU's features, so one binary runs the best code the
//! machine has without `-C target-cpu=native`.
//!
//! The crate reads as ggml-cpu's does:
//! - [`level`]: the levels and which this CPU runs; [`format`](mod@format): the storage formats;
//!   [`dispatch`]: one table per level, one entry per format.
//! - [`blocks`] (GGUF's block formats, the 8-bit activation blocks), [`repack`] (rows
//!   interleaved in groups of eight) and [`tiles`] (sixteen tokens' activations for the
//!   integer GEMM micro-kernels).
//! - [`matrix`]: matrices in any format, activations, and the products of a forward pass;
//!   [`ops`]: the element-wise steps between them.
//! - [`runtime`]: the thread pool and the weights' memory.
//! - `arch`: each level's kernels, `generic` (portable), `x86/{avx2, avxvnni, avx512,
//!   avx512vnni}`, `arm/{neon, neondot, i8mm}`, each level's table built from a token only its
//!   detection makes.
//!
//! `LLM_BENCH_KERNELS=scalar` forces a lower level than the CPU offers (tests run every level
//! the machine has; a level the CPU lacks is refused, never run).

#![warn(missing_docs)]

mod arch;
pub mod blocks;
pub mod dispatch;
mod error;
pub mod format;
pub mod level;
pub mod matrix;
pub mod ops;
pub mod repack;
pub mod runtime;
pub mod tiles;

pub use dispatch::Kernels;
pub use error::{Error, Result};
pub use format::Format;
pub use level::{Level, LEVEL_ENV};
pub use matrix::{F32Matrix, QMatrix, QuantBlock};
pub use runtime::arena::{Arena, WeightVec};
pub use runtime::pool::Pool;
pub use runtime::SharedOut;

#[cfg(test)]
mod tests;
