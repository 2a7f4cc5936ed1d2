//! One load level's statistics, defined as vLLM's `bench serve` defines them: TTFT, TPOT
//! (excluding the first token), ITL and E2E percentiles in milliseconds; request and token
//! throughput over the level's wall time; goodput, the requests per second that met every
//! latency target.

use super::request::Outcome;
use crate::stats;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latency targets a request must meet to count in goodput (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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

    /// Whether a request met every target set.
    fn met(&self, o: &Outcome) -> bool {
        let within = |target: Option<f64>, value: Option<f64>| match (target, value) {
            (None, _) => true,
            (Some(t), Some(v)) => v * 1e3 <= t,
            (Some(_), None) => false,
        };
        within(self.ttft_ms, o.ttft)
            && within(self.tpot_ms, o.tpot())
            && within(self.e2e_ms, Some(o.e2e))
    }

    /// Whether any target is set.
    pub fn any(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }
}

/// Mean and percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Spread {
    fn of(seconds: &[f64]) -> Option<Spread> {
        let ms: Vec<f64> = seconds.iter().map(|s| s * 1e3).collect();
        let p = |q| stats::percentile(&ms, q);
        Some(Spread {
            mean: stats::mean(&ms)?,
            p50: p(50.0)?,
            p90: p(90.0)?,
            p95: p(95.0)?,
            p99: p(99.0)?,
        })
    }
}

/// One level of a sweep (a concurrency or a request rate) summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelSummary {
    /// `concurrency` or `rate`.
    pub mode: &'static str,
    /// Concurrent requests, or requests per second (`inf`: all at once).
    pub level: f64,
    /// Requests sent.
    pub requests: usize,
    /// Requests that completed.
    pub completed: usize,
    /// Failed requests by kind (`HTTP 429`, `timeout`, ...).
    pub failures: BTreeMap<String, usize>,
    /// The first failure's message, to show the user.
    pub first_failure: Option<String>,
    /// From the first request sent to the last one done, seconds.
    pub duration_s: f64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Output tokens per second, all completed requests together.
    pub output_throughput: f64,
    /// Prompt and output tokens per second.
    pub total_token_throughput: f64,
    /// Mean prompt tokens per request, as the server counted them.
    pub mean_prompt_tokens: Option<f64>,
    /// Mean output tokens per request.
    pub mean_output_tokens: f64,
    /// Time to first token.
    pub ttft_ms: Option<Spread>,
    /// Time per output token after the first.
    pub tpot_ms: Option<Spread>,
    /// Inter-token latency, every gap of every request.
    pub itl_ms: Option<Spread>,
    /// End to end.
    pub e2e_ms: Option<Spread>,
    /// Completed requests per second that met every target (`None` without targets).
    pub goodput: Option<f64>,
}

impl LevelSummary {
    /// Summarises a level's outcomes.
    pub fn of(mode: &'static str, level: f64, outcomes: &[Outcome], slo: &Slo) -> Self {
        let done: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_none()).collect();
        let mut failures = BTreeMap::new();
        for failure in outcomes.iter().filter_map(|o| o.failure.as_ref()) {
            *failures.entry(failure.to_string()).or_insert(0) += 1;
        }
        let begin = outcomes
            .iter()
            .map(|o| o.sent)
            .fold(f64::INFINITY, f64::min);
        let end = outcomes.iter().map(|o| o.sent + o.e2e).fold(0.0, f64::max);
        let duration = if outcomes.is_empty() {
            0.0
        } else {
            (end - begin).max(1e-9)
        };
        let per_second = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
        let output: usize = done.iter().map(|o| o.output_tokens).sum();
        let prompts: Vec<f64> = done
            .iter()
            .filter_map(|o| o.prompt_tokens)
            .map(|n| n as f64)
            .collect();
        let all = |f: &dyn Fn(&Outcome) -> Option<f64>| -> Vec<f64> {
            done.iter().filter_map(|o| f(o)).collect()
        };
        let itl: Vec<f64> = done.iter().flat_map(|o| o.itl.iter().copied()).collect();
        LevelSummary {
            mode,
            level,
            requests: outcomes.len(),
            completed: done.len(),
            failures,
            first_failure: outcomes.iter().find_map(|o| o.detail.clone()),
            duration_s: duration,
            request_throughput: per_second(done.len() as f64),
            output_throughput: per_second(output as f64),
            total_token_throughput: per_second(output as f64 + prompts.iter().sum::<f64>()),
            mean_prompt_tokens: stats::mean(&prompts),
            mean_output_tokens: if done.is_empty() {
                0.0
            } else {
                output as f64 / done.len() as f64
            },
            ttft_ms: Spread::of(&all(&|o| o.ttft)),
            tpot_ms: Spread::of(&all(&|o| o.tpot())),
            itl_ms: Spread::of(&itl),
            e2e_ms: Spread::of(&all(&|o| Some(o.e2e))),
            goodput: slo
                .any()
                .then(|| per_second(done.iter().filter(|o| slo.met(o)).count() as f64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::Failure;
    use super::*;

    fn outcome(sent: f64, ttft: f64, e2e: f64, tokens: usize) -> Outcome {
        Outcome {
            sent,
            ttft: Some(ttft),
            itl: vec![(e2e - ttft) / (tokens - 1) as f64; tokens - 1],
            e2e,
            output_tokens: tokens,
            prompt_tokens: Some(10),
            ..Outcome::default()
        }
    }

    /// Throughput over the level's wall time; goodput counts only requests within every
    /// target; failures are counted by kind and left out of the latencies.
    #[test]
    fn levels_are_summarised_as_vllm_defines_them() {
        let mut failed = outcome(0.0, 0.1, 0.2, 2);
        failed.failure = Some(Failure::Status(429));
        failed.detail = Some("queue full".into());
        let outcomes = [
            outcome(0.0, 0.1, 1.1, 11), // TPOT 100 ms
            outcome(0.0, 0.6, 2.0, 8),  // TTFT 600 ms, TPOT 200 ms
            failed,
        ];
        let slo = Slo::parse("ttft=500ms, tpot=150ms").unwrap();
        let s = LevelSummary::of("concurrency", 2.0, &outcomes, &slo);
        assert_eq!((s.requests, s.completed), (3, 2));
        assert_eq!(s.failures["HTTP 429"], 1);
        assert_eq!(s.first_failure.as_deref(), Some("queue full"));
        assert!((s.duration_s - 2.0).abs() < 1e-12);
        assert!((s.output_throughput - 19.0 / 2.0).abs() < 1e-9);
        assert!((s.total_token_throughput - 39.0 / 2.0).abs() < 1e-9);
        assert!(
            (s.goodput.unwrap() - 0.5).abs() < 1e-12,
            "one good request in 2 s"
        );
        let tpot = s.tpot_ms.unwrap();
        assert!((tpot.mean - 150.0).abs() < 1e-9 && (tpot.p50 - 150.0).abs() < 1e-9);
        assert_eq!(
            LevelSummary::of("rate", 1.0, &outcomes, &Slo::default()).goodput,
            None
        );
    }

    #[test]
    fn targets_parse_with_units_and_bad_ones_say_why() {
        let slo = Slo::parse("ttft=0.5s,tpot=50ms,e2e=2s").unwrap();
        assert_eq!(
            (slo.ttft_ms, slo.tpot_ms, slo.e2e_ms),
            (Some(500.0), Some(50.0), Some(2000.0))
        );
        assert!(Slo::parse("ttf=1s").unwrap_err().contains("expected ttft"));
        assert!(Slo::parse("ttft").unwrap_err().contains("name=duration"));
        assert!(Slo::parse("ttft=fast").unwrap_err().contains("like 500ms"));
    }
}
