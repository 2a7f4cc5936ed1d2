//! # llm-bench
//!
//! Measures how fast large language models run on CPUs. The data path:
//!
//! model spec ([`spec`]) → weights source ([`source`]: hub, local folder, GGUF, synthetic;
//! quantized on load by [`engine::quantize`]) → engine ([`engine::Engine`], built per
//! architecture in [`arch`]) → generation trace ([`generate`]) → statistics and reports.
//!
//! The Criterion benches and the `llm-bench` CLI are two front doors onto this library.

pub mod arch;
pub mod bandwidth;
pub mod bench;
pub mod compare;
pub mod defaults;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod export;
pub mod format;
pub mod fs;
pub mod gate;
pub mod generate;
/// The tuned engine's kernels, a crate of their own (`kernels/`) so they build and test for
/// aarch64 without the harness's dependencies.
pub use llm_bench_kernels as kernels;
pub mod markdown;
pub mod model;
pub mod report;
pub mod resources;
pub mod results;
pub mod source;
pub mod spec;
pub mod stats;
pub mod suite;
pub mod system;
pub mod tokenizer;
pub mod units;

pub use error::{Error, Result};
pub use format::WeightFormat;
pub use model::{load, Model, ModelInfo};
pub use spec::ModelSpec;
