//! What `llm-bench load` measured of one OpenAI-compatible endpoint: the sweep's settings and
//! each level's statistics, defined as vLLM's `bench serve` defines them (TTFT, TPOT excluding
//! the first token, ITL, E2E; throughput over the level's wall time; goodput, the requests per
//! second that met every latency target). Times are milliseconds, rates per second.

// Doc comments here are the versioned schema's descriptions (`llm-bench schema`,
// schemas/results-v3.schema.json): they change with a schema version, not to satisfy a lint.
#![allow(missing_docs)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One endpoint's sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointRun {
    /// The name reports give the endpoint (`--label`; by default the server's address and
    /// the model name).
    pub label: String,
    /// The URL requests went to (`.../v1/completions` or `.../v1/chat/completions`).
    pub url: String,
    /// The model name requests carried.
    pub model: String,
    /// Chat messages rather than prompts.
    pub chat: bool,
    /// "random words" or the dataset file the prompts came from.
    pub prompts_source: String,
    /// Words per random prompt (about a token each); null for a dataset.
    pub input_words: Option<usize>,
    /// Tokens each request asked for (`max_tokens`).
    pub output_tokens: usize,
    /// Whether requests asked the server to ignore end-of-sequence.
    pub ignore_eos: bool,
    /// Requests per level (fewer ran where a level's time ran out).
    pub requests_per_level: usize,
    /// Untimed requests before the first level.
    pub warm_up_requests: usize,
    /// Seed of the prompts and the arrivals.
    pub seed: u64,
    /// The latency targets goodput counts against.
    pub slo: Slo,
    /// The client's own CPU time per streamed token, microseconds (null where the platform
    /// does not report it).
    pub client_cpu_us_per_token: Option<f64>,
    /// One per level, in the order swept; levels still to run are absent (`complete` false).
    pub levels: Vec<LevelSummary>,
}

/// Latency targets a request must meet to count in goodput, milliseconds; null: no target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Slo {
    /// Time to first token.
    pub ttft_ms: Option<f64>,
    /// Time per output token after the first.
    pub tpot_ms: Option<f64>,
    /// The whole request.
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// `ttft=500ms,tpot=50ms,e2e=10s`: each a duration (`ms`, `s`, humantime's units).
    pub fn parse(text: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected name=duration, like ttft=500ms"))?;
            let ms = humantime::parse_duration(value.trim())
                .map_err(|e| format!("{part:?}: {e} (like 500ms or 2s)"))?
                .as_secs_f64()
                * 1e3;
            match name.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2e" | "e2el" => slo.e2e_ms = Some(ms),
                other => {
                    return Err(format!(
                        "unknown target {other:?}: expected ttft, tpot or e2e"
                    ))
                }
            }
        }
        Ok(slo)
    }

    /// Whether any target is set.
    pub fn any(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }

    /// `TTFT ≤ 500 ms, TPOT ≤ 50 ms`, or "none".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("TTFT", self.ttft_ms),
            ("TPOT", self.tpot_ms),
            ("E2E", self.e2e_ms),
        ]
        .iter()
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name} ≤ {ms} ms")))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// How a level sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Closed loop: a fixed number of requests in flight.
    Concurrency,
    /// Open loop: Poisson arrivals at a rate.
    Rate,
}

/// Mean and percentiles of one latency, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spread {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One level of a sweep (a concurrency or a request rate), summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelSummary {
    pub mode: LoadMode,
    /// Requests in flight, or requests per second; null: an infinite rate (all at once).
    pub level: Option<f64>,
    /// Requests sent.
    pub requests: usize,
    /// Requests that completed.
    pub completed: usize,
    /// Failed requests by kind (`HTTP 429`, `timeout`, ...).
    pub failures: BTreeMap<String, usize>,
    /// The first failure's message.
    pub first_failure: Option<String>,
    /// From the first request sent to the last one done, seconds.
    pub duration_s: f64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Output tokens per second, all completed requests together.
    pub output_throughput: f64,
    /// Prompt and output tokens per second.
    pub total_token_throughput: f64,
    /// Mean prompt tokens per request, as the server counted them (null if it did not say).
    pub mean_prompt_tokens: Option<f64>,
    /// Mean output tokens per completed request (the server's usage, else its chunks).
    pub mean_output_tokens: f64,
    /// Mean prompt tokens per completed request as llm-bench's tokenizer of the model counts
    /// them (`--tokenizer`; null without): a check of the server's count.
    pub tokenizer_prompt_tokens: Option<f64>,
    /// Mean output tokens as the tokenizer counts the streamed text (re-encoding may merge a
    /// few tokens differently than generation did).
    pub tokenizer_output_tokens: Option<f64>,
    /// Time to first token.
    pub ttft_ms: Option<Spread>,
    /// Time per output token after the first.
    pub tpot_ms: Option<Spread>,
    /// Inter-token latency, every gap of every request.
    pub itl_ms: Option<Spread>,
    /// End to end.
    pub e2e_ms: Option<Spread>,
    /// Completed requests per second that met every target (null without targets).
    pub goodput: Option<f64>,
}

impl LevelSummary {
    /// `c=4`, `rate 2/s`, `rate inf`.
    pub fn name(&self) -> String {
        match (self.mode, self.level) {
            (LoadMode::Concurrency, Some(c)) => format!("c={c}"),
            (LoadMode::Rate, Some(r)) => format!("rate {r}/s"),
            (_, None) => "rate inf".into(),
        }
    }

    /// Requests per second that count for cost: goodput where targets were set, else every
    /// completed request.
    pub fn served_per_s(&self) -> f64 {
        self.goodput.unwrap_or(self.request_throughput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_units_and_bad_ones_say_why() {
        let slo = Slo::parse("ttft=0.5s,tpot=50ms,e2e=2s").unwrap();
        assert_eq!(
            (slo.ttft_ms, slo.tpot_ms, slo.e2e_ms),
            (Some(500.0), Some(50.0), Some(2000.0))
        );
        assert_eq!(slo.describe(), "TTFT ≤ 500 ms, TPOT ≤ 50 ms, E2E ≤ 2000 ms");
        assert_eq!(Slo::default().describe(), "none");
        assert!(Slo::parse("ttf=1s").unwrap_err().contains("expected ttft"));
        assert!(Slo::parse("ttft").unwrap_err().contains("name=duration"));
        assert!(Slo::parse("ttft=fast").unwrap_err().contains("like 500ms"));
    }
}
