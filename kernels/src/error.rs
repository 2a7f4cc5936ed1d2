//! The kernels' errors (the harness shows them as they read; a `BadField` becomes its own).

use std::path::PathBuf;

/// What the kernels refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `LLM_BENCH_KERNELS` names a level this build or CPU does not run.
    #[error(
        "LLM_BENCH_KERNELS={value:?}: {problem}; this CPU runs {available} (unset it for the best)"
    )]
    KernelLevel {
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: String,
        /// The levels this CPU runs, comma-separated.
        available: String,
    },

    /// A tensor whose shape or storage type the kernels cannot hold (`path` names the tensor).
    #[error("{path}: field `{field}` {problem}")]
    BadField {
        /// The tensor.
        path: PathBuf,
        /// The field at fault (`shape`, `type`).
        field: String,
        /// What is wrong, expected against found.
        problem: String,
    },
}

/// The kernels' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
