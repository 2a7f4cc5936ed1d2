//! Set-up shared by the Criterion benches in `benches/`: which model and formats to run, the
//! thread count, the run-context file Criterion does not write, and the timed loops that need
//! a model. Nothing here depends on Criterion; the loops take an iteration count and return
//! the time measured, as `Bencher::iter_custom` wants, so set-up stays outside the timing.
//!
//! Environment: `LLM_BENCH_MODEL` (a model spec; default as for the CLI), `LLM_BENCH_FORMATS`
//! (comma-separated, e.g. `q4_1,q8_0`; default the model's own format), `LLM_BENCH_THREADS`
//! (default all cores), `LLM_BENCH_ENGINES` (comma-separated, e.g. `candle,tuned,llama-cpp`; default
//! candle), `LLM_BENCH_SMOKE=1` (CI: every benchmark as short as Criterion allows, the sized
//! groups at their two smallest sizes).

use crate::engine::EngineChoice;
use crate::error::{Error, Result};
use crate::family::ModelConfig;
use crate::format::WeightFormat;
use crate::generate::{generate, Request, Strategy};
use crate::model::{plan, Model, Planned};
use crate::source::WeightsKind;
use crate::spec::ModelSpec;
use crate::system::{configure_threads, BuildInfo, SystemInfo};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The formats the benches run, comma-separated.
pub const FORMATS_ENV: &str = "LLM_BENCH_FORMATS";
/// The engines the benches run, comma-separated.
pub const ENGINES_ENV: &str = "LLM_BENCH_ENGINES";
/// The threads the benches use.
pub const THREADS_ENV: &str = "LLM_BENCH_THREADS";
/// Set by scripts/bench-smoke: the two smallest sizes, no contention wait.
pub const SMOKE_ENV: &str = "LLM_BENCH_SMOKE";
/// Decode benchmarks let the KV cache grow this many positions past the length they name
/// before refilling it (untimed), so "KV length 512" means 512..=543.
pub const KV_DRIFT: usize = 32;
/// The prompt every generation benchmark starts from: the tutorial's first customer-support prompt.
pub const SUPPORT_PROMPT: &str =
    "I need help tracking my order. It was supposed to arrive yesterday.";

struct Slot {
    planned: Option<Planned>,
    engine: EngineChoice,
    label: String,
    model: Option<Model>,
}

/// One per bench binary: the models (loaded on first use) and the facts of the run.
pub struct BenchSession {
    /// Threads the engines use.
    pub threads: usize,
    engines: Vec<EngineChoice>,
    /// A smoke run (`LLM_BENCH_SMOKE`).
    pub smoke: bool,
    /// The model.
    pub spec: ModelSpec,
    /// Real or synthetic weights.
    pub weights: WeightsKind,
    /// The model's config.
    pub config: ModelConfig,
    /// The model's short name, e.g. `smollm2-135m-instruct`.
    pub name: String,
    slots: Vec<Slot>,
    context: Value,
}

static SESSION: OnceLock<Mutex<BenchSession>> = OnceLock::new();

/// The session, set up on first call (threads first, before any tensor work).
pub fn session() -> MutexGuard<'static, BenchSession> {
    SESSION
        .get_or_init(|| match BenchSession::from_env() {
            Ok(session) => Mutex::new(session),
            Err(e) => {
                eprintln!("llm-bench: cannot set up the benchmarks: {e}");
                std::process::exit(2);
            }
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl BenchSession {
    fn from_env() -> Result<Self> {
        let requested_threads = match env_nonempty(THREADS_ENV) {
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| Error::InvalidSetting {
                        name: "LLM_BENCH_THREADS",
                        reason: format!("expected a whole number >= 1, found {v:?}"),
                    })?,
            ),
            None => None,
        };
        let threads = configure_threads(requested_threads);
        let smoke = env_nonempty(SMOKE_ENV).is_some_and(|v| v != "0");
        let (spec, notices) = crate::defaults::choose_spec(None)?;
        let formats: Vec<Option<WeightFormat>> = match env_nonempty(FORMATS_ENV) {
            Some(list) => list
                .split(',')
                .map(|f| f.trim())
                .filter(|f| !f.is_empty())
                .map(|f| {
                    if f == "native" {
                        Ok(None)
                    } else {
                        f.parse().map(Some)
                    }
                })
                .collect::<Result<_>>()?,
            None => vec![None],
        };
        let engines = match env_nonempty(ENGINES_ENV) {
            Some(list) => crate::engine::parse_list(&list)?,
            None => vec![EngineChoice::default()],
        };
        let mut slots = Vec::new();
        for &engine in &engines {
            for &format in &formats {
                let planned = plan(&spec, format)?;
                let label = planned.label(engine);
                if slots.iter().any(|s: &Slot| s.label == label) {
                    continue;
                }
                engine.supports(&planned)?;
                slots.push(Slot {
                    label,
                    engine,
                    planned: Some(planned),
                    model: None,
                });
            }
        }
        let first = slots[0].planned.as_ref().expect("just planned");
        let (weights, config, name) = (
            first.resolved.weights_kind(),
            first.resolved.config.clone(),
            first.name.clone(),
        );
        let system = SystemInfo::collect(threads);
        let labels: Vec<&str> = slots.iter().map(|s| s.label.as_str()).collect();
        eprintln!(
            "llm-bench: model {spec} ({} weights) | formats {} | threads {threads} | CPU {} | SIMD {}{}",
            if weights == WeightsKind::Real { "real" } else { "synthetic" },
            labels.join(", "),
            system.cpu_model,
            system.compiled_target_features.join(","),
            if smoke { " | SMOKE mode" } else { "" }
        );
        for notice in &notices {
            eprintln!("llm-bench: note: {notice}");
        }
        let context = json!({
            "schema": "llm-bench/bench-context/1",
            "model": spec.to_string(),
            "model_name": name,
            "weights": weights,
            "formats": labels,
            "threads": threads,
            "smoke": smoke,
            "config": config,
            "system": system,
            "build": BuildInfo::current(),
            "criterion_version": env!("LLM_BENCH_CRITERION_VERSION"),
            "started_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "command_line": std::env::args().collect::<Vec<_>>(),
            "notices": notices,
            "benchmarks": {},
        });
        let session = Self {
            threads,
            engines,
            smoke,
            spec,
            weights,
            config,
            name,
            slots,
            context,
        };
        session.write_context();
        Ok(session)
    }

    /// The engines this run benchmarks (`LLM_BENCH_ENGINES`, default candle).
    pub fn engines(&self) -> Vec<EngineChoice> {
        self.engines.clone()
    }

    /// `name@format+engine` of each model this run benchmarks.
    pub fn labels(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.label.clone()).collect()
    }

    /// The model of format slot `index`, loaded on first use.
    pub fn model(&mut self, index: usize) -> &mut Model {
        if self.slots[index].model.is_none() {
            let label = self.slots[index].label.clone();
            let planned = self.slots[index]
                .planned
                .take()
                .expect("a slot is planned until loaded");
            let model = planned
                .load_with(self.slots[index].engine)
                .unwrap_or_else(|e| panic!("llm-bench: loading {label} failed: {e}"));
            self.context["models"][&label] = json!({
                "load_seconds": model.info.load_seconds,
                "weight_bytes": model.info.weight_bytes,
                "bytes_read_per_token": model.info.bytes_read_per_token,
                "parameters": model.info.parameters,
                "engine": model.info.engine,
                "notices": model.info.notices,
            });
            self.slots[index].model = Some(model);
            self.write_context();
        }
        self.slots[index].model.as_mut().expect("loaded above")
    }

    /// Plans another format of the same model (for the `formats` family); `None` when it
    /// cannot run here, with the reason printed.
    pub fn plan_format(&self, format: Option<WeightFormat>) -> Option<Planned> {
        match plan(&self.spec, format) {
            Ok(planned) => Some(planned),
            Err(e) => {
                eprintln!(
                    "llm-bench: skipping format {:?}: {e}",
                    format.map(|f| f.name())
                );
                None
            }
        }
    }

    /// Adds facts about one benchmark id (bytes, operations) to the run-context file.
    pub fn record(&mut self, id: &str, facts: Value) {
        self.context["benchmarks"][id] = facts;
        self.write_context();
    }

    fn write_context(&self) {
        let path = criterion_dir().join("llm-bench-context.json");
        if let Err(e) = crate::fs::write_atomically(
            &path,
            &serde_json::to_vec_pretty(&self.context).unwrap_or_default(),
        ) {
            eprintln!("llm-bench: {e}");
        }
    }
}

/// Where Criterion writes: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "target".into());
    target.join("criterion")
}

/// Exactly `len` prompt tokens: the customer-support prompts, repeated as needed.
pub fn prompt_of_length(model: &Model, len: usize) -> Vec<u32> {
    let text = include_str!("../fixtures/prompts/customer-support.txt").replace('\n', " ");
    let ids = model
        .tokenizer
        .encode(&text)
        .expect("the shipped prompts tokenize");
    ids.iter().copied().cycle().take(len).collect()
}

/// Times `iters` prefills of `len` tokens from an empty cache.
pub fn time_prefill(model: &mut Model, len: usize, iters: u64) -> Duration {
    let prompt = vec![prompt_of_length(model, len)];
    model.engine.reserve(1, len).expect("room for the prompt");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let logits = model.engine.prefill(&prompt).expect("prefill");
        std::hint::black_box(logits);
        total += start.elapsed();
    }
    total
}

/// Times `iters` single decode steps of `batch` sequences with `kv_len` to
/// `kv_len + KV_DRIFT - 1` positions in the cache. Filling the cache is not timed, and a
/// cache already in that range (from the previous call) is kept: Criterion calls this once
/// per sample, and refilling a 1024-token cache each time would cost seconds of wall time.
pub fn time_decode(model: &mut Model, kv_len: usize, batch: usize, iters: u64) -> Duration {
    let fill = vec![prompt_of_length(model, kv_len.max(1)); batch];
    model
        .engine
        .reserve(batch, kv_len + KV_DRIFT + 1)
        .expect("room for the KV cache");
    let usable = |model: &Model| {
        let (position, cached_batch) = (model.engine.position(), model.engine.batch_size());
        (kv_len..kv_len + KV_DRIFT).contains(&position) && (cached_batch == batch || position == 0)
    };
    let refill = |model: &mut Model| {
        if kv_len == 0 {
            model.engine.reset();
        } else {
            model.engine.prefill(&fill).expect("filling the KV cache");
        }
    };
    let tokens = vec![fill[0][0]; batch];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if !usable(model) {
            refill(model);
        }
        let start = Instant::now();
        let logits = model.engine.decode(&tokens).expect("decode step");
        std::hint::black_box(logits);
        total += start.elapsed();
    }
    total
}

/// A fixed-length generation request: `tokens` new tokens, end-of-sequence ignored.
pub fn fixed_request(strategy: Strategy, tokens: usize) -> Request {
    Request {
        prompt: SUPPORT_PROMPT.into(),
        max_new_tokens: tokens,
        min_new_tokens: tokens,
        strategy,
        seed: 42,
        batch: 1,
    }
}

/// Times `iters` whole generations (tokenize, prefill, every decode step and sample).
pub fn time_generate(model: &mut Model, request: &Request, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let trace = generate(model, request, |_, _| {}).expect("generation");
        total += start.elapsed();
        debug_assert_eq!(trace.output_tokens[0].len(), request.max_new_tokens);
    }
    total
}
