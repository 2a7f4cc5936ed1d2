//! The library's error type. Every variant names what went wrong *and* how to fix it,
//! because these messages are what a user sees at the command line.

use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the library refuses or fails at; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model path that does not exist.
    #[error("model path {path} does not exist: pass an existing .gguf file, a folder with config.json + *.safetensors + tokenizer.json, a hub id like HuggingFaceTB/SmolLM2-135M-Instruct, or synthetic:<preset>")]
    ModelPathMissing {
        /// The path given.
        path: PathBuf,
    },

    /// A file that cannot be read.
    // `cause` is shown in the message, not chained as a source, so that it prints once.
    #[error("cannot read {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },

    /// A model spec llm-bench cannot read.
    #[error("invalid model spec {spec:?}: {reason}")]
    InvalidSpec {
        /// The spec given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A synthetic preset that does not exist.
    #[error("unknown synthetic preset {found:?}; expected one of: {expected}")]
    UnknownPreset {
        /// The name given.
        found: String,
        /// The presets, comma-separated.
        expected: String,
    },

    /// A weight format that does not exist.
    #[error("unknown weight format {found:?}; expected one of: {expected}")]
    UnknownFormat {
        /// The name given.
        found: String,
        /// The formats, comma-separated.
        expected: String,
    },

    /// A file that cannot be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },

    /// A file that is truncated or corrupt.
    #[error(
        "{path} is not a valid {kind} file ({detail}); it may be truncated or corrupt: {hint}"
    )]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// Its kind (`GGUF`, `safetensors`, `tokenizer.json`).
        kind: &'static str,
        /// What is wrong, where.
        detail: String,
        /// What to do about it, which depends on where the file came from.
        hint: String,
    },

    /// A model candle cannot build.
    #[error("cannot build the model from {source_name}: {detail}")]
    Build {
        /// Where the weights came from.
        source_name: String,
        /// candle's message.
        detail: String,
    },

    /// The kernels crate's own (e.g. `LLM_BENCH_KERNELS` naming a level this CPU lacks).
    #[error(transparent)]
    Kernels(llm_bench_kernels::Error),

    /// A field of a file with a wrong value (expected against found).
    #[error("{path}: field `{field}` {problem}")]
    BadField {
        /// The file.
        path: PathBuf,
        /// The field, key or tensor.
        field: String,
        /// What is wrong, expected against found.
        problem: String,
    },

    /// An architecture the chosen engine does not run.
    #[error("unsupported architecture {found:?} in {path}; supported: {supported}")]
    UnsupportedArchitecture {
        /// The file's architecture.
        found: String,
        /// The file.
        path: PathBuf,
        /// The architectures that run, comma-separated.
        supported: String,
    },

    /// A tokenizer with more tokens than the model has embedding rows.
    #[error("the tokenizer has {tokenizer_vocab} tokens but the model's embedding has only {model_vocab} rows ({path}): the tokenizer does not belong to this model; use the tokenizer.json shipped with the weights")]
    VocabMismatch {
        /// Tokens in the tokenizer.
        tokenizer_vocab: usize,
        /// Rows of the embedding.
        model_vocab: usize,
        /// The model.
        path: PathBuf,
    },

    /// NaN or infinite logits: refused rather than sampled.
    #[error("the {engine} engine's logits hold {value} (sequence {sequence}, token id {token}) at {phase}: the weights likely hold NaN or Inf (a scale or a norm of a corrupt or badly converted file), or the arithmetic overflowed; check the model file, or try another --format or --engine")]
    NonFiniteLogits {
        /// The engine.
        engine: String,
        /// "the prefill" or "decode step N".
        phase: String,
        /// The sequence of the batch.
        sequence: usize,
        /// The token id whose logit is not finite.
        token: usize,
        /// The logit.
        value: f32,
    },

    /// An output folder another run is writing.
    #[error("{dir} is being written by another llm-bench run ({holder}): wait for it to finish, or pass another --out")]
    OutputLocked {
        /// The folder.
        dir: PathBuf,
        /// Who holds its lock.
        holder: String,
    },

    /// A chat request for a model whose files carry no chat template.
    #[error("the model's tokenizer ({tokenizer}) has no chat template (GGUF `tokenizer.chat_template`, or `chat_template` in tokenizer_config.json beside tokenizer.json): send a plain prompt to /v1/completions, or use a model file that carries one")]
    NoChatTemplate {
        /// Where the tokenizer came from.
        tokenizer: String,
    },

    /// A chat template that does not render the messages given.
    #[error("the model's chat template failed on these messages: {reason}")]
    ChatTemplate {
        /// What the template engine (or the template's own `raise_exception`) said.
        reason: String,
    },

    /// A prompt of no tokens.
    #[error("the prompt tokenizes to zero tokens: give a non-empty prompt")]
    EmptyPrompt,

    /// A prompt the vocabulary cannot encode.
    #[error("the prompt {preview:?} has no token in the model's vocabulary ({tokenizer}): the vocabulary lacks its characters and has no byte fallback; give a prompt in text the model was trained on")]
    Unencodable {
        /// The prompt's start.
        preview: String,
        /// The tokenizer.
        tokenizer: String,
    },

    /// A prompt and its new tokens longer than the model's context.
    #[error("the prompt has {prompt_tokens} tokens and {new_tokens} new tokens were asked for, but the model's context holds {context_length}: shorten the prompt or lower --max-new-tokens")]
    ContextOverflow {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// New tokens asked for.
        new_tokens: usize,
        /// The model's context.
        context_length: usize,
    },

    /// A sampling strategy llm-bench cannot read.
    #[error("invalid sampling strategy {found:?}: {reason}")]
    InvalidStrategy {
        /// The strategy given.
        found: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A thread-sweep child run that failed.
    #[error("the thread sweep's run on {threads} thread(s) failed: {detail}")]
    Sweep {
        /// Its thread count.
        threads: usize,
        /// What it said.
        detail: String,
    },

    /// A setting out of its range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The flag or variable.
        name: &'static str,
        /// What is wrong, and the range.
        reason: String,
    },

    /// A model that does not fit in the machine's memory.
    #[error("{what} needs about {needed_gib:.1} GiB of memory but this machine has {available_gib:.1} GiB: pick a smaller format (e.g. --format q4_0) or a smaller model")]
    NotEnoughMemory {
        /// What was to be loaded.
        what: String,
        /// GiB it needs.
        needed_gib: f64,
        /// GiB the machine has.
        available_gib: f64,
    },

    /// The Hugging Face hub out of reach.
    #[error("cannot reach the Hugging Face hub for {repo} ({detail}). To work offline, pass a local folder (config.json, *.safetensors, tokenizer.json) with --model DIR or a .gguf file, or put the files in the hub cache at {cache_dir} and set HF_HUB_OFFLINE=1; or set HF_ENDPOINT to a reachable mirror")]
    HubUnreachable {
        /// The repository.
        repo: String,
        /// The hub cache, for working offline.
        cache_dir: PathBuf,
        /// What the client said.
        detail: String,
    },

    /// A file the hub does not have.
    #[error("the hub has no file {file} in {repo}@{revision} (HTTP 404): check the repo id, the revision and that the repo holds safetensors weights")]
    HubFileNotFound {
        /// The repository.
        repo: String,
        /// The revision.
        revision: String,
        /// The file.
        file: String,
    },

    /// A Criterion run that was never saved.
    #[error("no Criterion run named {name:?} under {dir}: save one with `cargo bench -- --save-baseline {name}` (or scripts/bench-baseline {name}), or check --criterion-dir")]
    BaselineMissing {
        /// The run's name.
        name: String,
        /// Where Criterion's runs are.
        dir: PathBuf,
    },

    /// Paired rounds that were never saved.
    #[error("no interleaved rounds named {name}.1, {name}.2, … under {dir}: make them with `scripts/bench-ab REV_A REV_B` (or `cargo bench -- --save-baseline {name}.1` and so on), or check --criterion-dir")]
    RoundsMissing {
        /// The rounds' name.
        name: String,
        /// Where Criterion's runs are.
        dir: PathBuf,
    },

    /// Too few rounds for a paired comparison.
    #[error("{id}: a paired comparison needs at least {needed} rounds with both {baseline} and {against}, found {found}: run scripts/bench-ab with ROUNDS={needed} or more")]
    TooFewRounds {
        /// The benchmark.
        id: String,
        /// The base run.
        baseline: String,
        /// The run under test.
        against: String,
        /// Rounds with both.
        found: usize,
        /// Rounds needed.
        needed: usize,
    },

    /// A file that is not an llm-bench results file.
    #[error("{path} is not an llm-bench results file: {problem}. Pass the results.json that `llm-bench run` or `llm-bench load` wrote")]
    NotResults {
        /// The file.
        path: PathBuf,
        /// Why not.
        problem: String,
    },

    /// A results file of another schema version.
    #[error("{path} uses results schema version {found}, but this llm-bench reads version {expected}: rerun `llm-bench run` (or `load`) with this build, or read the file with the llm-bench version that wrote it")]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: String,
        /// The version this build reads.
        expected: u32,
    },

    /// A results file that does not match its schema.
    #[error("{path}: at {location}: {problem}. The file does not match results schema version 3 (schemas/results-v3.schema.json); was it edited or cut short?")]
    ResultsField {
        /// The file.
        path: PathBuf,
        /// Where (a JSON path).
        location: String,
        /// What is wrong.
        problem: String,
    },

    /// A run a results file does not hold.
    #[error("{path} has no run of {found:?}; it has: {available}")]
    FormatNotInResults {
        /// The file.
        path: PathBuf,
        /// The run asked for.
        found: String,
        /// The runs it holds.
        available: String,
    },

    /// An output folder that cannot be written.
    #[error(
        "cannot write to the output folder {path}: {cause}. Choose a writable folder with --out"
    )]
    OutputNotWritable {
        /// The folder.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },

    /// A prompts file without prompts.
    #[error("the prompts file {path} has no prompts: put one prompt per line, or one JSON object per line with a \"prompt\" field")]
    NoPrompts {
        /// The file.
        path: PathBuf,
    },

    /// An output that could not be rendered (a chart plotters could not draw).
    #[error("cannot render {file}: {detail}")]
    Render {
        /// The output's file name.
        file: String,
        /// What failed.
        detail: String,
    },

    /// The tokenizers crate's error.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// candle's error.
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
