//! llama.cpp as a reference engine, through the `llama-cpp-2` crate (its vendored llama.cpp,
//! built with cmake). CPU only; it loads the same GGUF file candle does, in its own types,
//! and is fed llm-bench's own prompt token ids, so both engines see the same ids, sampling,
//! clock and statistics. Only the forward pass is llama.cpp's.

use super::{Engine, EngineInfo, Logits, Work};
use crate::error::{Error, Result};
use crate::weights::EngineInput;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::OnceLock;

/// llama.cpp's backend is initialised once per process and never torn down.
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor it loads; llm-bench reports what matters itself.
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default().with_logs_enabled(false),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| fail(format!("cannot start llama.cpp: {e}")))
}

fn fail(detail: String) -> Error {
    Error::Build {
        source_name: "llama.cpp".into(),
        detail,
    }
}

/// The file types llama.cpp's quantizer makes that llm-bench names, as `llama-quantize`
/// spells them.
pub const QUANTIZE_TYPES: &[(&str, llama_cpp_sys_2::llama_ftype)] = &[
    ("Q4_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0),
    ("Q4_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1),
    ("Q5_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_0),
    ("Q5_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_1),
    ("Q8_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0),
    ("Q2_K", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q2_K),
    ("Q3_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q3_K_M),
    ("Q4_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M),
    ("Q5_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M),
    ("Q6_K", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K),
    ("IQ4_NL", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_IQ4_NL),
];

/// Requantizes the GGUF file `input` to `output` in the file type `kind` (`Q4_K_M`, ...) with
/// llama.cpp's own quantizer (`llama_model_quantize`, what `llama-quantize
/// --allow-requantize` runs): llama.cpp's choice of type per tensor, and its bytes.
pub fn quantize(input: &std::path::Path, output: &std::path::Path, kind: &str) -> Result<()> {
    let ftype = QUANTIZE_TYPES
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, t)| *t)
        .ok_or_else(|| Error::InvalidSetting {
            name: "type",
            reason: format!(
                "{kind:?} is not one of {}",
                QUANTIZE_TYPES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let path = |p: &std::path::Path| {
        p.to_str()
            .and_then(|s| std::ffi::CString::new(s).ok())
            .ok_or_else(|| fail(format!("{} is not a path llama.cpp can take", p.display())))
    };
    let (from, to) = (path(input)?, path(output)?);
    backend()?;
    // SAFETY: llama.cpp's C API after its backend is up: default parameters, then two
    // NUL-terminated paths and the parameters, all alive for the call.
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ftype;
        params.allow_requantize = true;
        params.nthread = crate::system::configured_threads() as i32;
        llama_cpp_sys_2::llama_model_quantize(from.as_ptr(), to.as_ptr(), &params)
    };
    if status != 0 {
        return Err(fail(format!(
            "llama_model_quantize could not requantize {} to {kind} (status {status})",
            input.display()
        )));
    }
    Ok(())
}

/// The smallest context llama.cpp is given, in positions.
const MIN_CONTEXT: usize = 512;

/// Sequences one context holds for continuous batching ([`Engine::step`]).
const MAX_SEQUENCES: usize = 64;

/// The cells those sequences share at most (llama-server's `-c`, its slots sharing it): the
/// model's context where shorter.
const STEP_CELLS: usize = 16_384;

/// llama.cpp through its C API: a model, a context and a batch.
pub struct LlamaCppEngine {
    // Declared before `model`: fields drop in order, so the context (which points into the
    // model) is freed first.
    context: Option<LlamaContext<'static>>,
    /// Positions × sequences the current context holds, and its sequence count.
    capacity: (usize, usize),
    model: Box<LlamaModel>,
    path: PathBuf,
    threads: usize,
    vocab: usize,
    context_length: usize,
    position: usize,
    batch: usize,
    /// Each slot's position in continuous batching (empty until the first `step`).
    slots: Vec<usize>,
    /// The last step's logits, lent out until the next.
    logits: Logits,
}

// SAFETY: the context and model are only used through `&mut self`, one call at a time; llama.cpp
// contexts may move between threads (they are not tied to the thread that created them).
unsafe impl Send for LlamaCppEngine {}

/// Builds the engine from a planned model.
pub fn build(input: EngineInput) -> Result<Box<dyn Engine>> {
    let path = input
        .source_path
        .clone()
        .ok_or_else(|| fail("llama.cpp loads .gguf files only; this model has no file".into()))?;
    let model = load(&path, &LlamaModelParams::default())?;
    let vocab = usize::try_from(model.n_vocab()).unwrap_or(0);
    if vocab != input.config.vocab_size {
        return Err(fail(format!(
            "llama.cpp reads a vocabulary of {vocab} from {}, llm-bench {}",
            path.display(),
            input.config.vocab_size
        )));
    }
    Ok(Box::new(LlamaCppEngine {
        context: None,
        capacity: (0, 0),
        model: Box::new(model),
        path,
        threads: input.threads.max(1),
        vocab,
        context_length: input.config.max_position_embeddings,
        position: 0,
        batch: 0,
        slots: Vec::new(),
        logits: Logits::default(),
    }))
}

impl LlamaCppEngine {
    /// A context for `batch` sequences of up to `positions` each; the current one is kept when
    /// it is large enough (making one allocates the KV cache, which is not free).
    fn ensure_context(
        &mut self,
        batch: usize,
        positions: usize,
    ) -> Result<&mut LlamaContext<'static>> {
        let positions = positions.clamp(MIN_CONTEXT.min(self.context_length), self.context_length);
        let cells = positions
            .checked_mul(batch)
            .and_then(|c| u32::try_from(c.div_ceil(256) * 256).ok())
            .ok_or_else(|| {
                fail(format!(
                    "{batch} sequences of {positions} positions are too many"
                ))
            })?;
        self.context_of(cells, batch)
    }

    /// A context of at least `cells` cells and `batch` sequences, the current one if it is.
    fn context_of(&mut self, cells: u32, batch: usize) -> Result<&mut LlamaContext<'static>> {
        if self.context.is_none() || self.capacity.0 < cells as usize || self.capacity.1 < batch {
            self.context = None;
            self.slots.clear();
            let threads = i32::try_from(self.threads).unwrap_or(i32::MAX);
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(cells))
                .with_n_batch(cells)
                .with_n_seq_max(batch as u32)
                // Sequences share one pool of cells, as the candle engine's caches do.
                .with_kv_unified(true)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            // SAFETY: the model lives in a Box owned by `self` and outlives the context, which
            // is dropped first (field order, and `self.context = None` above before replacing).
            let model: &'static LlamaModel =
                unsafe { &*(self.model.as_ref() as *const LlamaModel) };
            let context = model.new_context(backend()?, params).map_err(|e| {
                fail(format!(
                    "llama.cpp cannot make a context of {cells} cells: {e}"
                ))
            })?;
            self.context = Some(context);
            self.capacity = (cells as usize, batch);
        }
        Ok(self.context.as_mut().expect("made above"))
    }

    /// Runs `batch` and keeps the logits of the entries marked for output, in order.
    fn run(&mut self, batch: &mut LlamaBatch, outputs: &[i32]) -> Result<()> {
        let vocab = self.vocab;
        let context = self.context.as_mut().expect("ensure_context ran");
        context
            .decode(batch)
            .map_err(|e| fail(format!("llama.cpp decode failed: {e}")))?;
        self.logits.vocab = vocab;
        self.logits.data.clear();
        for &i in outputs {
            self.logits
                .data
                .extend_from_slice(&context.get_logits_ith(i)[..vocab]);
        }
        Ok(())
    }
}

fn token(id: u32) -> Result<LlamaToken> {
    i32::try_from(id)
        .map(LlamaToken)
        .map_err(|_| fail(format!("token id {id} is out of llama.cpp's range")))
}

impl Engine for LlamaCppEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "llama-cpp".into(),
            version: format!("llama-cpp-sys-2 {}", env!("LLM_BENCH_LLAMA_CPP_VERSION")),
            detail: "cpu".into(),
        }
    }

    fn reserve(&mut self, batch: usize, positions: usize) -> Result<()> {
        self.ensure_context(batch.max(1), positions).map(|_| ())
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<&Logits> {
        let len = super::prompt_length(prompts)?;
        // The context `reserve` made when it holds the prompt and a token more; otherwise one
        // with room to decode after the prompt (made here, so timed: callers reserve first).
        let per_sequence = self.capacity.0 / prompts.len();
        let wanted = if self.capacity.1 >= prompts.len() && per_sequence > len {
            per_sequence
        } else {
            len + MIN_CONTEXT
        };
        self.ensure_context(prompts.len(), wanted)?.clear_kv_cache();
        self.slots.fill(0);
        let mut batch = LlamaBatch::new(len * prompts.len(), prompts.len() as i32);
        let mut outputs = Vec::with_capacity(prompts.len());
        for (seq, prompt) in prompts.iter().enumerate() {
            for (pos, &id) in prompt.iter().enumerate() {
                let last = pos + 1 == len;
                batch
                    .add(token(id)?, pos as i32, &[seq as i32], last)
                    .map_err(|e| fail(e.to_string()))?;
                if last {
                    outputs.push(batch.n_tokens() - 1);
                }
            }
        }
        self.run(&mut batch, &outputs)?;
        self.position = len;
        self.batch = prompts.len();
        Ok(&self.logits)
    }

    fn decode(&mut self, tokens: &[u32]) -> Result<&Logits> {
        if self.position == 0 {
            // From an empty cache (the decode benchmark at KV length 0), like candle.
            let positions = (self.capacity.0 / tokens.len().max(1)).max(MIN_CONTEXT);
            self.ensure_context(tokens.len().max(1), positions)?;
            self.batch = tokens.len();
        }
        super::check_decode_batch(tokens.len(), self.batch)?;
        let mut batch = LlamaBatch::new(tokens.len(), tokens.len() as i32);
        for (seq, &id) in tokens.iter().enumerate() {
            batch
                .add(token(id)?, self.position as i32, &[seq as i32], true)
                .map_err(|e| fail(e.to_string()))?;
        }
        let outputs: Vec<i32> = (0..tokens.len() as i32).collect();
        self.run(&mut batch, &outputs)?;
        self.position += 1;
        Ok(&self.logits)
    }

    fn reset(&mut self) {
        if let Some(context) = self.context.as_mut() {
            context.clear_kv_cache();
        }
        self.position = 0;
        self.batch = 0;
        self.slots.fill(0);
    }

    fn max_sequences(&self) -> usize {
        MAX_SEQUENCES
    }

    /// Every entry in one llama.cpp batch, each under its slot's sequence id at the slot's
    /// own position; the logits of each entry's last token.
    fn step(&mut self, work: &[Work]) -> Result<&Logits> {
        super::check_work(work, MAX_SEQUENCES)?;
        if self.slots.len() < MAX_SEQUENCES {
            if self.slots.iter().any(|&p| p > 0) {
                return Err(fail(
                    "a context for continuous batching cannot be made while sequences run in the current one".into(),
                ));
            }
            let cells = self.context_length.clamp(MIN_CONTEXT, STEP_CELLS);
            let cells = u32::try_from(cells.div_ceil(256) * 256).unwrap_or(u32::MAX);
            self.context_of(cells, MAX_SEQUENCES)?;
            self.slots = vec![0; MAX_SEQUENCES];
        }
        let mut total = 0;
        for w in work {
            let start = self.slots[w.slot];
            if start + w.tokens.len() > self.context_length {
                return Err(Error::ContextOverflow {
                    prompt_tokens: start,
                    new_tokens: w.tokens.len(),
                    context_length: self.context_length,
                });
            }
            total += w.tokens.len();
        }
        let mut batch = LlamaBatch::new(total, work.len() as i32);
        let mut outputs = Vec::with_capacity(work.len());
        for w in work {
            let start = self.slots[w.slot];
            for (i, &id) in w.tokens.iter().enumerate() {
                let last = i + 1 == w.tokens.len();
                batch
                    .add(token(id)?, (start + i) as i32, &[w.slot as i32], last)
                    .map_err(|e| fail(e.to_string()))?;
                if last {
                    outputs.push(batch.n_tokens() - 1);
                }
            }
        }
        self.run(&mut batch, &outputs).map_err(|e| {
            fail(format!(
                "{e} (the {} cells continuous batching shares among sequences may be full: fewer sequences, or shorter ones)",
                self.capacity.0
            ))
        })?;
        for w in work {
            self.slots[w.slot] += w.tokens.len();
        }
        Ok(&self.logits)
    }

    fn release(&mut self, slot: usize) {
        if let (Some(context), Some(position)) = (self.context.as_mut(), self.slots.get_mut(slot)) {
            // Removing a whole sequence cannot fail; only ids beyond i32 are refused.
            let _ = context.clear_kv_cache_seq(u32::try_from(slot).ok(), None, None);
            *position = 0;
        }
    }

    fn position(&self) -> usize {
        self.position
    }

    fn batch_size(&self) -> usize {
        self.batch
    }
}

/// llama.cpp's own tokenization of each text by the model at `path` (special tokens parsed,
/// BOS added where the GGUF says so): the independent truth llm-bench's tokenizer is checked
/// against, so both engines are fed the same ids. The vocabulary is read once, and alone, so
/// a vocabulary-only GGUF file will do.
pub fn tokenize(path: &std::path::Path, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
    let vocabulary = Vocabulary::load(path)?;
    Ok(texts.iter().map(|text| vocabulary.ids(text)).collect())
}

/// llama.cpp's tokenizer of one GGUF file (its vocabulary alone loaded), for vocabularies
/// llm-bench does not rebuild: registered by [`register_tokenizer`].
struct Vocabulary(LlamaModel);

impl Vocabulary {
    fn load(path: &std::path::Path) -> Result<Self> {
        Ok(Vocabulary(load(
            path,
            &LlamaModelParams::default().with_vocab_only(true),
        )?))
    }

    fn ids(&self, text: &str) -> Vec<u32> {
        self.0
            .vocab()
            .tokenize(text.as_bytes(), true, true)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect()
    }
}

impl crate::tokenizer::ForeignVocab for Vocabulary {
    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        Ok(self.ids(text))
    }

    fn decode(&self, ids: &[u32]) -> std::result::Result<String, String> {
        if ids.is_empty() {
            return Ok(String::new());
        }
        let tokens = ids
            .iter()
            .map(|&id| {
                i32::try_from(id)
                    .map(LlamaToken)
                    .map_err(|_| format!("token id {id} is out of llama.cpp's range"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let bytes = self.0.vocab().detokenize(&tokens, true, false);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn vocab_size(&self) -> usize {
        usize::try_from(self.0.n_vocab()).unwrap_or(0)
    }
}

/// Makes llama.cpp read the GGUF vocabularies llm-bench cannot rebuild (a pre-tokenizer or
/// tokenizer model it does not know), for every engine.
pub fn register_tokenizer() {
    crate::tokenizer::register_foreign_loader("llama.cpp", |path| {
        let vocab = Vocabulary::load(path).map_err(|e| e.to_string())?;
        Ok(std::sync::Arc::new(vocab))
    });
}

/// What llama.cpp counts in the GGUF file at `path`: parameters, and bytes of weights.
pub fn model_facts(path: &std::path::Path) -> Result<(u64, u64)> {
    let model = load(path, &LlamaModelParams::default())?;
    Ok((model.n_params(), model.size()))
}

/// llama.cpp's model from the GGUF file at `path`; its error names the file.
fn load(path: &std::path::Path, params: &LlamaModelParams) -> Result<LlamaModel> {
    LlamaModel::load_from_file(backend()?, path, params)
        .map_err(|e| fail(format!("llama.cpp cannot load {}: {e}", path.display())))
}

impl std::fmt::Debug for LlamaCppEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LlamaCppEngine({})", self.path.display())
    }
}
