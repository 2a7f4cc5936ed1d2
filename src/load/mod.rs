//! `llm-bench load`: a client for any OpenAI-compatible server (llm-bench serve, llama-server,
//! vLLM, TGI, Ollama) that sweeps closed-loop concurrency or open-loop request rates (Poisson
//! arrivals, seeded), streams every answer, and summarises each level as vLLM's
//! `bench serve` does ([`summary`]).

pub mod prompts;
pub mod request;
pub mod summary;

use crate::error::Result;
use crate::results::{LevelSummary, LoadMode, Slo};
use crate::tokenizer::{ChatMessage, TextTokenizer};
use request::Outcome;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How requests are sent at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// Closed loop: this many requests in flight, each sent when one ends.
    Concurrency(usize),
    /// Open loop: requests arrive as a Poisson process of this rate per second
    /// (`f64::INFINITY`: all at once).
    Rate(f64),
}

impl Level {
    fn mode(self) -> LoadMode {
        match self {
            Level::Concurrency(_) => LoadMode::Concurrency,
            Level::Rate(_) => LoadMode::Rate,
        }
    }

    /// The level as results record it: `None` for an infinite rate (JSON has no infinity).
    fn value(self) -> Option<f64> {
        match self {
            Level::Concurrency(c) => Some(c as f64),
            Level::Rate(r) => r.is_finite().then_some(r),
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Concurrency(c) => write!(f, "concurrency {c}"),
            Level::Rate(r) if r.is_infinite() => write!(f, "rate inf"),
            Level::Rate(r) => write!(f, "rate {r}/s"),
        }
    }
}

/// A load run's settings.
#[derive(Clone)]
pub struct Settings {
    /// The endpoint's URL: `/v1/completions` or `/v1/chat/completions`.
    pub url: String,
    /// The model name requests carry.
    pub model: String,
    /// Chat messages rather than a plain prompt.
    pub chat: bool,
    /// The prompts, used in turn: every request of a run (warm-up included) takes the next,
    /// so none repeats while there are as many as requests (a server's prompt cache would
    /// answer a repeated one from memory).
    pub prompts: Vec<String>,
    /// Tokens each request asks for.
    pub output_tokens: usize,
    /// Ask the server to ignore end-of-sequence (`ignore_eos`, `min_tokens`).
    pub ignore_eos: bool,
    /// Requests per level.
    pub requests: usize,
    /// Longest a level may take: no request is sent after it.
    pub level_time: Duration,
    /// Longest one request may take.
    pub request_timeout: Duration,
    /// Seed of the arrivals.
    pub seed: u64,
    /// Latency targets for goodput.
    pub slo: Slo,
    /// The model's tokenizer, to count each request's tokens as the server's `usage` should.
    pub tokenizer: Option<Arc<TextTokenizer>>,
}

/// A sweep's levels, and the CPU time the client spent counting tokens with the tokenizer
/// (not part of the client's cost of streaming).
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Each level's summary, in the order run.
    pub levels: Vec<LevelSummary>,
    /// CPU spent in the tokenizer.
    pub counting_cpu: Duration,
}

/// Runs `warm_up` untimed requests, then every level in turn; `progress` hears of each
/// request done, and `finished` gets the summaries so far after each level (to save them: an
/// interrupted sweep keeps the levels it finished); an error from it ends the sweep.
/// Returns each level's summary.
pub async fn run(
    settings: &Settings,
    warm_up: usize,
    levels: &[Level],
    progress: &(dyn Fn(&Level, &Outcome) + Sync),
    finished: &mut dyn FnMut(&[LevelSummary]) -> Result<()>,
) -> Result<Sweep> {
    // A connection per request: servers that close kept-alive connections after a few
    // requests (llama-server's HTTP library does) would otherwise race the next request sent
    // on one, and fail it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    for i in 0..warm_up {
        let body = settings.body(i);
        request::send(
            &client,
            &settings.url,
            &body,
            settings.request_timeout,
            Instant::now(),
        )
        .await;
    }
    let mut summaries = Vec::with_capacity(levels.len());
    let mut counting_cpu = Duration::ZERO;
    for (k, level) in levels.iter().enumerate() {
        let first = warm_up + k * settings.requests;
        let mut outcomes = run_level(&client, settings, *level, first, progress).await;
        if let Some(tokenizer) = &settings.tokenizer {
            let before = crate::resources::process_cpu_time();
            settings.count(tokenizer, &mut outcomes);
            if let Some((after, before)) = crate::resources::process_cpu_time().zip(before) {
                counting_cpu += after.saturating_sub(before);
            }
        }
        summaries.push(summary::summarise(
            level.mode(),
            level.value(),
            &outcomes,
            &settings.slo,
        ));
        finished(&summaries)?;
    }
    Ok(Sweep {
        levels: summaries,
        counting_cpu,
    })
}

impl Settings {
    /// Each completed request's prompt and output tokens by `tokenizer`: the prompt as the
    /// server should have it (through the model's chat template for chat), the output the
    /// streamed text encoded again (where a tokenizer adds a BOS to any text, it is not
    /// counted: the server's count has none).
    fn count(&self, tokenizer: &TextTokenizer, outcomes: &mut [Outcome]) {
        let bos = tokenizer.encode("").map_or(0, |ids| ids.len());
        for o in outcomes.iter_mut().filter(|o| o.failure.is_none()) {
            let prompt = &self.prompts[o.prompt];
            let prompt_ids = if self.chat {
                tokenizer.encode_chat(&[ChatMessage {
                    role: "user".into(),
                    content: prompt.clone(),
                }])
            } else {
                tokenizer.encode(prompt)
            };
            let output_ids = tokenizer.encode(&o.text);
            if let (Ok(p), Ok(t)) = (prompt_ids, output_ids) {
                o.counted = Some((p.len(), t.len().saturating_sub(bos)));
            }
        }
    }

    fn body(&self, i: usize) -> Value {
        let prompt = &self.prompts[i % self.prompts.len()];
        request::body(
            &self.model,
            self.chat,
            prompt,
            self.output_tokens,
            self.ignore_eos,
        )
    }
}

async fn run_level(
    client: &reqwest::Client,
    settings: &Settings,
    level: Level,
    first: usize,
    progress: &(dyn Fn(&Level, &Outcome) + Sync),
) -> Vec<Outcome> {
    let start = Instant::now();
    let deadline = start + settings.level_time;
    let send = |i: usize| {
        let body = settings.body(first + i);
        async move {
            let mut outcome = request::send(
                client,
                &settings.url,
                &body,
                settings.request_timeout,
                start,
            )
            .await;
            outcome.prompt = (first + i) % settings.prompts.len();
            progress(&level, &outcome);
            outcome
        }
    };
    match level {
        Level::Concurrency(c) => {
            let issued = AtomicUsize::new(0);
            let worker = || async {
                let mut mine = Vec::new();
                loop {
                    let i = issued.fetch_add(1, Ordering::SeqCst);
                    if i >= settings.requests || Instant::now() >= deadline {
                        return mine;
                    }
                    mine.push(send(i).await);
                }
            };
            let workers: Vec<_> = (0..c.max(1)).map(|_| worker()).collect();
            futures_util::future::join_all(workers)
                .await
                .into_iter()
                .flatten()
                .collect()
        }
        Level::Rate(rate) => {
            let arrivals = Arc::new(poisson_arrivals(rate, settings.requests, settings.seed));
            let requests = (0..settings.requests).map(|i| {
                let arrivals = arrivals.clone();
                let send = &send;
                async move {
                    let at = start + Duration::from_secs_f64(arrivals[i]);
                    if at >= deadline {
                        return None;
                    }
                    tokio::time::sleep_until(at.into()).await;
                    Some(send(i).await)
                }
            });
            futures_util::future::join_all(requests)
                .await
                .into_iter()
                .flatten()
                .collect()
        }
    }
}

/// When each of `n` requests arrives (seconds from the start) at `rate` per second: a
/// Poisson process, its gaps exponential and drawn from `seed`; all at 0 for an infinite rate.
pub fn poisson_arrivals(rate: f64, n: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    if rate.is_infinite() {
        return vec![0.0; n];
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            if i > 0 {
                let u: f64 = rng.random::<f64>();
                t += -(1.0 - u).ln() / rate;
            }
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exponential gaps of mean 1/rate, the same for the same seed.
    #[test]
    fn arrivals_are_poisson_and_seeded() {
        let a = poisson_arrivals(4.0, 20_001, 7);
        assert_eq!(a, poisson_arrivals(4.0, 20_001, 7));
        assert_ne!(a, poisson_arrivals(4.0, 20_001, 8));
        let mean_gap = a[20_000] / 20_000.0;
        assert!((mean_gap - 0.25).abs() < 0.01, "{mean_gap}");
        assert!(a.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(poisson_arrivals(f64::INFINITY, 3, 1), [0.0; 3]);
    }
}
