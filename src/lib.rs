//! # llm-bench
//!
//! Measures how fast large language models run on CPUs. The data path:
//!
//! model spec ([`spec`]) → weights source ([`source`]: hub, local folder, GGUF, synthetic) →
//! weight plan ([`weights`]: the type of every tensor, streamed rows) → engine
//! ([`engine::Engine`]: candle, tuned, llama.cpp) → generation trace ([`generate`]) →
//! statistics ([`stats`]) → results ([`results`]) → documents ([`report`], [`compare`], [`gate`])
//! → files ([`output`]: Markdown, JSON, SVG, BMF).
//!
//! The Criterion benches and the `llm-bench` CLI are two front doors onto this library.
//!
//! Modules are in layers; each imports only from its own layer's modules listed before it
//! and from the layers above it in this list (`tests/it/layers.rs` keeps it true, and
//! `docs/architecture.md` explains it):

#![warn(missing_docs)]

// Layer 0: the error type, which imports nothing of the crate.
pub mod error;
// Layer 1, foundations: units, files, statistics, tables, machine facts.
pub mod fs;
pub mod markdown;
pub mod paths;
pub mod stats;
pub mod system;
pub mod units;
// Layer 2, descriptions: formats, model specs, tokenizers, model families.
pub mod family;
pub mod format;
pub mod gguf;
pub mod spec;
pub mod tokenizer;
// Layer 3, files and sources: hub, local folders, GGUF, synthetic twins.
pub mod source;
// Layer 4, weights: the plan and the streaming of rows; GGUF export of a plan.
pub mod export;
pub mod weights;
// Layer 5, engines (the tuned engine's kernels are a crate of their own).
/// The tuned engine's kernels, a crate of their own (`kernels/`) so they build and test for
/// aarch64 without the harness's dependencies.
pub use llm_bench_kernels as kernels;
pub mod engine;
// Layer 6, model: engine choice, loading, the default model.
pub mod defaults;
pub mod model;
// Layer 7, harness: generation, resources, bandwidth, doctor, Criterion set-up, serving's
// scheduler.
pub mod bandwidth;
pub mod bench;
pub mod doctor;
pub mod generate;
pub mod resources;
pub mod scheduler;
// Layer 8, results and outputs.
pub mod compare;
pub mod gate;
pub mod load;
pub mod output;
pub mod report;
pub mod results;
pub mod server;
// Layer 9, the suite of `llm-bench run`, which writes results.
pub mod suite;

pub use error::{Error, Result};
pub use format::WeightFormat;
pub use model::{load, Model, ModelInfo};
pub use spec::ModelSpec;
