//! The library's error type. Every variant names what went wrong *and* how to fix it,
//! because these messages are what a user sees at the command line.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model path {path} does not exist: pass an existing .gguf file, a folder with config.json + *.safetensors + tokenizer.json, a hub id like HuggingFaceTB/SmolLM2-135M-Instruct, or synthetic:<preset>")]
    ModelPathMissing { path: PathBuf },

    // `cause` is shown in the message, not chained as a source, so that it prints once.
    #[error("cannot read {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("invalid model spec {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },

    #[error("unknown synthetic preset {found:?}; expected one of: {expected}")]
    UnknownPreset { found: String, expected: String },

    #[error("unknown weight format {found:?}; expected one of: {expected}")]
    UnknownFormat { found: String, expected: String },

    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error(
        "{path} is not a valid {kind} file ({detail}); it may be truncated or corrupt: {hint}"
    )]
    CorruptFile {
        path: PathBuf,
        kind: &'static str,
        detail: String,
        /// What to do about it, which depends on where the file came from.
        hint: String,
    },

    #[error("cannot build the model from {source_name}: {detail}")]
    Build { source_name: String, detail: String },

    /// The kernels crate's own (e.g. `LLM_BENCH_KERNELS` naming a level this CPU lacks).
    #[error(transparent)]
    Kernels(llm_bench_kernels::Error),

    #[error("{path}: field `{field}` {problem}")]
    BadField {
        path: PathBuf,
        field: String,
        problem: String,
    },

    #[error("unsupported architecture {found:?} in {path}; supported: {supported}")]
    UnsupportedArchitecture {
        found: String,
        path: PathBuf,
        supported: String,
    },

    #[error("the tokenizer has {tokenizer_vocab} tokens but the model's embedding has only {model_vocab} rows ({path}): the tokenizer does not belong to this model; use the tokenizer.json shipped with the weights")]
    VocabMismatch {
        tokenizer_vocab: usize,
        model_vocab: usize,
        path: PathBuf,
    },

    #[error("the {engine} engine's logits hold {value} (sequence {sequence}, token id {token}) at {phase}: the weights likely hold NaN or Inf (a scale or a norm of a corrupt or badly converted file), or the arithmetic overflowed; check the model file, or try another --format or --engine")]
    NonFiniteLogits {
        engine: String,
        /// "the prefill" or "decode step N".
        phase: String,
        sequence: usize,
        token: usize,
        value: f32,
    },

    #[error("{dir} is being written by another llm-bench run ({holder}): wait for it to finish, or pass another --out")]
    OutputLocked { dir: PathBuf, holder: String },

    #[error("the prompt tokenizes to zero tokens: give a non-empty prompt")]
    EmptyPrompt,

    #[error("the prompt {preview:?} has no token in the model's vocabulary ({tokenizer}): the vocabulary lacks its characters and has no byte fallback; give a prompt in text the model was trained on")]
    Unencodable { preview: String, tokenizer: String },

    #[error("the prompt has {prompt_tokens} tokens and {new_tokens} new tokens were asked for, but the model's context holds {context_length}: shorten the prompt or lower --max-new-tokens")]
    ContextOverflow {
        prompt_tokens: usize,
        new_tokens: usize,
        context_length: usize,
    },

    #[error("invalid sampling strategy {found:?}: {reason}")]
    InvalidStrategy { found: String, reason: String },

    #[error("the thread sweep's run on {threads} thread(s) failed: {detail}")]
    Sweep { threads: usize, detail: String },

    #[error("invalid setting {name}: {reason}")]
    InvalidSetting { name: &'static str, reason: String },

    #[error("{what} needs about {needed_gib:.1} GiB of memory but this machine has {available_gib:.1} GiB: pick a smaller format (e.g. --format q4_0) or a smaller model")]
    NotEnoughMemory {
        what: String,
        needed_gib: f64,
        available_gib: f64,
    },

    #[error("cannot reach the Hugging Face hub for {repo} ({detail}). To work offline, pass a local folder (config.json, *.safetensors, tokenizer.json) with --model DIR or a .gguf file, or put the files in the hub cache at {cache_dir} and set HF_HUB_OFFLINE=1; or set HF_ENDPOINT to a reachable mirror")]
    HubUnreachable {
        repo: String,
        cache_dir: PathBuf,
        detail: String,
    },

    #[error("the hub has no file {file} in {repo}@{revision} (HTTP 404): check the repo id, the revision and that the repo holds safetensors weights")]
    HubFileNotFound {
        repo: String,
        revision: String,
        file: String,
    },

    #[error("no Criterion run named {name:?} under {dir}: save one with `cargo bench -- --save-baseline {name}` (or scripts/bench-baseline {name}), or check --criterion-dir")]
    BaselineMissing { name: String, dir: PathBuf },

    #[error("no interleaved rounds named {name}.1, {name}.2, … under {dir}: make them with `scripts/bench-ab REV_A REV_B` (or `cargo bench -- --save-baseline {name}.1` and so on), or check --criterion-dir")]
    RoundsMissing { name: String, dir: PathBuf },

    #[error("{id}: a paired comparison needs at least {needed} rounds with both {baseline} and {against}, found {found}: run scripts/bench-ab with ROUNDS={needed} or more")]
    TooFewRounds {
        id: String,
        baseline: String,
        against: String,
        found: usize,
        needed: usize,
    },

    #[error("{path} is not an llm-bench results file: {problem}. Pass the results.json that `llm-bench run` wrote")]
    NotResults { path: PathBuf, problem: String },

    #[error("{path} uses results schema version {found}, but this llm-bench reads version {expected}: rerun `llm-bench run` with this build, or read the file with the llm-bench version that wrote it")]
    SchemaVersion {
        path: PathBuf,
        found: String,
        expected: u32,
    },

    #[error("{path}: at {location}: {problem}. The file does not match results schema version 2 (schemas/results-v2.schema.json); was it edited or cut short?")]
    ResultsField {
        path: PathBuf,
        location: String,
        problem: String,
    },

    #[error("{path} has no run of {found:?}; it has: {available}")]
    FormatNotInResults {
        path: PathBuf,
        found: String,
        available: String,
    },

    #[error(
        "cannot write to the output folder {path}: {cause}. Choose a writable folder with --out"
    )]
    OutputNotWritable {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("the prompts file {path} has no prompts: put one prompt per line, or one JSON object per line with a \"prompt\" field")]
    NoPrompts { path: PathBuf },

    /// An output that could not be rendered (a chart plotters could not draw).
    #[error("cannot render {file}: {detail}")]
    Render { file: String, detail: String },

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    // Not a `#[source]`: the text is in the message already, and a chained source would
    // print it a second time (`candle: X: X`).
    #[error("candle: {}", candle_text(.0))]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(e)
    }
}

/// A tensor the kernels refuse is a `BadField` like any other (the tuned engine renames it
/// by tensor); the kernels' other errors pass through as they read.
impl From<llm_bench_kernels::Error> for Error {
    fn from(e: llm_bench_kernels::Error) -> Self {
        match e {
            llm_bench_kernels::Error::BadField {
                path,
                field,
                problem,
            } => Error::BadField {
                path,
                field,
                problem,
            },
            other => Error::Kernels(other),
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            cause,
        }
    }
}

/// candle's message without the backtrace it attaches when `RUST_BACKTRACE` is set: users
/// need the reason, not our call stack.
pub(crate) fn candle_text(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_text(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_text(inner))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candle_error_is_printed_once() {
        let err = Error::from(candle_core::Error::Msg("Shape mismatch in matmul".into()));
        // `{:#}` prints anyhow's whole chain, as `main` does.
        let text = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(text.matches("Shape mismatch").count(), 1, "{text}");
    }
}
