//! The inference engines behind every benchmark, on one small engine-neutral trait: token ids
//! in, the last position's logits out as plain `f32` (batch × vocab), plus reset, position and
//! batch size. Engines hold the weights and the KV cache; tokenizing, sampling, timing and
//! statistics live outside them and are shared by all, so two engines on the same prompts see
//! the same token ids, sampling, clock and statistics.
//!
//! Each engine is one file here plus one line in [`ENGINES`].

pub mod candle;
#[cfg(feature = "llama-cpp")]
pub mod llama_cpp;
pub mod tuned;

use crate::error::{Error, Result};
use crate::weights::{EngineInput, Planned};

/// Which engine runs a model (results.json records it as `results::EngineInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineInfo {
    /// The registered name: `candle`, `llama-cpp`.
    pub name: String,
    /// The engine's own version: candle's crate version, llama.cpp's build.
    pub version: String,
    /// Which of the engine's paths runs this model: `dense`, `quantized`, `cpu`.
    pub detail: String,
}

/// The logits of the last position of each sequence, row-major `[batch, vocab]`. Engines keep
/// theirs and lend them out until the next step (a step allocates none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logits {
    /// Vocabulary size: the length of a row.
    pub vocab: usize,
    /// Row-major, one row per sequence.
    pub data: Vec<f32>,
}

impl Logits {
    /// Sequences.
    pub fn batch(&self) -> usize {
        self.data.len().checked_div(self.vocab).unwrap_or(0)
    }
    /// Sequence `sequence`'s logits.
    pub fn row(&self, sequence: usize) -> &[f32] {
        &self.data[sequence * self.vocab..(sequence + 1) * self.vocab]
    }
}

/// One sequence's share of a continuous-batching step: `tokens` appended to what slot
/// `slot`'s cache holds (a prompt or a chunk of one, or the one token a decode step adds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work<'a> {
    /// The sequence's slot, below [`Engine::max_sequences`].
    pub slot: usize,
    /// Its new tokens (at least one).
    pub tokens: &'a [u32],
}

/// A model that turns token ids into logits, one step at a time.
///
/// Two ways to drive it: a benchmark's lockstep batch ([`Engine::prefill`] of copies of one
/// prompt, then [`Engine::decode`] steps), or a server's sequences that come and go
/// ([`Engine::step`] on slots, each at its own position, and [`Engine::release`]). The two
/// share the cache: a caller uses one or the other, and [`Engine::reset`] empties both.
pub trait Engine: Send {
    /// What the engine is and how it was built.
    fn info(&self) -> EngineInfo;

    /// Says how much the next request needs: `batch` sequences of up to `positions` each.
    /// Engines whose KV cache is allocated up front (llama.cpp) size it here, untimed;
    /// engines that grow their cache need nothing.
    fn reserve(&mut self, _batch: usize, _positions: usize) -> Result<()> {
        Ok(())
    }

    /// Runs the prompts (one per sequence, all of one length) from an empty cache.
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<&Logits>;

    /// One decode step: one new token per sequence, after what the cache holds.
    fn decode(&mut self, tokens: &[u32]) -> Result<&Logits>;

    /// Empties the KV cache.
    fn reset(&mut self);

    /// How many positions the KV cache holds.
    fn position(&self) -> usize;

    /// How many sequences the KV cache holds (0 when empty).
    fn batch_size(&self) -> usize;

    /// How many sequences [`Engine::step`] can hold at once: 1 for an engine that runs one
    /// sequence at a time (its default `step` does, through `prefill` and `decode`).
    fn max_sequences(&self) -> usize {
        1
    }

    /// One continuous-batching step: each entry's tokens appended to its slot's cache, at the
    /// slot's own position (a slot starts empty and after [`Engine::release`]). Returns the
    /// logits of each entry's last token, in the entries' order. Slots must be distinct and
    /// below [`Engine::max_sequences`].
    ///
    /// The default runs one sequence at a time on `prefill` and `decode`: slot 0 only, a
    /// prompt in one piece (later tokens one decode step each).
    fn step(&mut self, work: &[Work]) -> Result<&Logits> {
        let [one] = work else {
            return Err(one_sequence(work.len()));
        };
        if one.slot != 0 {
            return Err(one_sequence(one.slot + 1));
        }
        if one.tokens.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if self.position() == 0 {
            return self.prefill(&[one.tokens.to_vec()]);
        }
        let (last, before) = one.tokens.split_last().expect("not empty");
        for &token in before {
            self.decode(&[token])?;
        }
        self.decode(&[*last])
    }

    /// Frees slot `slot`'s cache: the next [`Engine::step`] on it starts a new sequence.
    fn release(&mut self, slot: usize) {
        if slot == 0 && self.max_sequences() == 1 {
            self.reset();
        }
    }

    /// Time the engine's threads have spent waiting for one another since it was built
    /// (at barriers, and idle while one thread worked alone), averaged over its threads;
    /// `None` for an engine that does not count it. The harness reads it before and after
    /// each request.
    fn thread_wait(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The refusal of a step over more sequences than a one-at-a-time engine runs.
fn one_sequence(wanted: usize) -> Error {
    Error::InvalidSetting {
        name: "sequences",
        reason: format!(
            "this engine runs one sequence at a time, but a step asked for {wanted}; the tuned engine batches sequences that come and go (--engine tuned)"
        ),
    }
}

/// Refuses a step whose entries are empty, name a slot twice or one at or beyond `slots`.
pub(crate) fn check_work(work: &[Work], slots: usize) -> Result<()> {
    if work.is_empty() || work.iter().any(|w| w.tokens.is_empty()) {
        return Err(Error::EmptyPrompt);
    }
    for (i, w) in work.iter().enumerate() {
        let reason = if w.slot >= slots {
            format!("slot {} is beyond the engine's {slots} sequences", w.slot)
        } else if work[..i].iter().any(|other| other.slot == w.slot) {
            format!("slot {} appears twice in one step", w.slot)
        } else {
            continue;
        };
        return Err(Error::InvalidSetting {
            name: "sequences",
            reason,
        });
    }
    Ok(())
}

/// The number of tokens every prompt of a batch has: an empty batch or prompt, and prompts of
/// different lengths, are refused (the harness batches copies of one prompt).
pub(crate) fn prompt_length(prompts: &[Vec<u32>]) -> Result<usize> {
    let len = prompts.first().map_or(0, Vec::len);
    if len == 0 {
        return Err(Error::EmptyPrompt);
    }
    if let Some(other) = prompts.iter().find(|p| p.len() != len) {
        return Err(Error::InvalidSetting {
            name: "batch",
            reason: format!(
                "the prompts of one batch must have the same number of tokens ({len} vs {}); the harness batches copies of one prompt",
                other.len()
            ),
        });
    }
    Ok(len)
}

/// Refuses a decode step whose batch is not the prefill's: every sequence of a batch steps
/// together (the harness batches copies of one prompt).
pub(crate) fn check_decode_batch(tokens: usize, prefilled: usize) -> Result<()> {
    if tokens == prefilled {
        return Ok(());
    }
    Err(Error::InvalidSetting {
        name: "batch",
        reason: format!("a decode step of {tokens} sequences after a prefill of {prefilled}"),
    })
}

/// Builds an engine from a planned model; the engine may refuse what it cannot run.
pub type EngineBuilder = fn(EngineInput) -> Result<Box<dyn Engine>>;

/// What an engine builds its model from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loads {
    /// Any weight source, through llm-bench's loaders (`EngineInput::weights`).
    Sources,
    /// A GGUF file it reads itself (`EngineInput::source_path`): other sources, and other
    /// formats than a GGUF's own, are exported to a cached GGUF file first (`crate::export`).
    GgufFile,
}

/// An engine in the registry.
pub struct EngineEntry {
    /// Its `--engine` name.
    pub name: &'static str,
    /// What it loads from.
    pub loads: Loads,
    /// One line for `--help` and errors.
    pub about: &'static str,
    /// `None` where this build lacks the engine: the error then says how to get it.
    pub build: Option<EngineBuilder>,
    /// Refuses, before anything loads, a model or format the engine cannot run.
    pub supports: fn(&Planned) -> Result<()>,
}

/// Every engine llm-bench knows, compiled in or not.
pub static ENGINES: &[EngineEntry] = &[
    candle::ENTRY,
    tuned::ENTRY,
    EngineEntry {
        name: "llama-cpp",
        loads: Loads::GgufFile,
        about: "llama.cpp (vendored by the llama-cpp-2 crate), CPU; other sources and formats through a GGUF export",
        #[cfg(feature = "llama-cpp")]
        build: Some(llama_cpp::build),
        #[cfg(not(feature = "llama-cpp"))]
        build: None,
        // A GGUF file as it is, whatever it holds; anything else through the GGUF export, which
        // writes what the family describes and so must not drop what it does not.
        supports: |planned| match planned.is_gguf_as_stored() {
            true => Ok(()),
            false => planned.refuse_unapplied("llm-bench's GGUF export, which llama-cpp then reads,"),
        },
    },
];

/// The engine the CLI uses when none is given.
pub const DEFAULT_ENGINE: &str = "candle";

/// Registers the tokenizers engines built in bring for vocabularies llm-bench does not
/// rebuild (llama.cpp's, with `--features llama-cpp`).
pub fn register_tokenizers() {
    #[cfg(feature = "llama-cpp")]
    llama_cpp::register_tokenizer();
}

/// An engine chosen by name (`--engine`, `LLM_BENCH_ENGINES`), known to be in this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineChoice(&'static str);

impl EngineChoice {
    /// Its `--engine` name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// Its registry entry.
    pub fn entry(self) -> &'static EngineEntry {
        ENGINES
            .iter()
            .find(|e| e.name == self.0)
            .expect("an EngineChoice names a registered engine")
    }

    /// Whether this engine can run `planned`; the error says why not and what would.
    pub fn supports(self, planned: &Planned) -> Result<()> {
        (self.entry().supports)(planned)
    }

    /// Builds it from a planned model.
    pub fn build(self, input: EngineInput) -> Result<Box<dyn Engine>> {
        (self
            .entry()
            .build
            .expect("checked when the choice was made"))(input)
    }
}

impl Default for EngineChoice {
    fn default() -> Self {
        EngineChoice(DEFAULT_ENGINE)
    }
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for EngineChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim();
        let names = || {
            ENGINES
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let entry = ENGINES
            .iter()
            .find(|e| {
                e.name == name || e.name.replace('-', "") == name.replace(['-', '.', '_'], "")
            })
            .ok_or_else(|| Error::InvalidSetting {
                name: "--engine",
                reason: format!("unknown engine {name:?}; expected one of: {}", names()),
            })?;
        match entry.build {
            Some(_) => Ok(EngineChoice(entry.name)),
            None => Err(Error::InvalidSetting {
                name: "--engine",
                reason: format!(
                    "this llm-bench was built without the {} engine; rebuild with `--features {}` (cargo build --release --features {0}; it needs cmake, clang and libclang-dev)",
                    entry.name, entry.name
                ),
            }),
        }
    }
}

/// A comma-separated list of engines (`LLM_BENCH_ENGINES=candle,llama-cpp`).
pub fn parse_list(list: &str) -> Result<Vec<EngineChoice>> {
    let mut out: Vec<EngineChoice> = Vec::new();
    for name in list.split(',').filter(|s| !s.trim().is_empty()) {
        let choice: EngineChoice = name.parse()?;
        if !out.contains(&choice) {
            out.push(choice);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_by_name_and_unknown_ones_list_the_choices() {
        assert_eq!("candle".parse::<EngineChoice>().unwrap().name(), "candle");
        let err = "vllm".parse::<EngineChoice>().unwrap_err().to_string();
        assert!(err.contains("candle") && err.contains("llama-cpp"), "{err}");
        match "llama.cpp".parse::<EngineChoice>() {
            Ok(choice) => assert_eq!(choice.name(), "llama-cpp"),
            Err(e) => assert!(e.to_string().contains("--features llama-cpp"), "{e}"),
        }
        assert_eq!(parse_list("candle,candle").unwrap().len(), 1);
    }

    #[test]
    fn logits_rows_are_vocab_wide() {
        let l = Logits {
            vocab: 3,
            data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        };
        assert_eq!(l.batch(), 2);
        assert_eq!(l.row(1), &[3.0, 4.0, 5.0]);
    }
}
