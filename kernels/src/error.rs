//! The kernels' errors (the harness shows them as they read; a `BadField` becomes its own).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `LLM_BENCH_KERNELS` names a level this build or CPU does not run.
    #[error(
        "LLM_BENCH_KERNELS={value:?}: {problem}; this CPU runs {available} (unset it for the best)"
    )]
    KernelLevel {
        value: String,
        problem: String,
        available: String,
    },

    /// A tensor whose shape or storage type the kernels cannot hold (`path` names the tensor).
    #[error("{path}: field `{field}` {problem}")]
    BadField {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
