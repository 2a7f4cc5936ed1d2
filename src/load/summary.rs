//! One load level's statistics, defined as vLLM's `bench serve` defines them: TTFT, TPOT
//! (excluding the first token), ITL and E2E percentiles in milliseconds; request and token
//! throughput over the level's wall time; goodput, the requests per second that met every
//! latency target. The types are the results file's (`results::endpoint`).

use super::request::Outcome;
use crate::results::{LevelSummary, LoadMode, Slo, Spread};
use crate::stats;
use std::collections::BTreeMap;

/// Whether a request met every target set.
fn met(slo: &Slo, o: &Outcome) -> bool {
    let within = |target: Option<f64>, value: Option<f64>| match (target, value) {
        (None, _) => true,
        (Some(t), Some(v)) => v * 1e3 <= t,
        (Some(_), None) => false,
    };
    within(slo.ttft_ms, o.ttft) && within(slo.tpot_ms, o.tpot()) && within(slo.e2e_ms, Some(o.e2e))
}

/// One of the tokenizer's counts of every request it counted.
fn counted(done: &[&Outcome], pick: fn((usize, usize)) -> usize) -> Vec<f64> {
    done.iter()
        .filter_map(|o| o.counted.map(|c| pick(c) as f64))
        .collect()
}

/// Mean and percentiles of latencies given in seconds, in milliseconds.
fn spread(seconds: &[f64]) -> Option<Spread> {
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

/// Summarises a level's outcomes (`level`: `None` for an infinite rate).
pub fn summarise(
    mode: LoadMode,
    level: Option<f64>,
    outcomes: &[Outcome],
    slo: &Slo,
) -> LevelSummary {
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
        ttft_ms: spread(&all(&|o| o.ttft)),
        tpot_ms: spread(&all(&|o| o.tpot())),
        itl_ms: spread(&itl),
        e2e_ms: spread(&all(&|o| Some(o.e2e))),
        tokenizer_prompt_tokens: stats::mean(&counted(&done, |c| c.0)),
        tokenizer_output_tokens: stats::mean(&counted(&done, |c| c.1)),
        goodput: slo
            .any()
            .then(|| per_second(done.iter().filter(|o| met(slo, o)).count() as f64)),
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
        let s = summarise(LoadMode::Concurrency, Some(2.0), &outcomes, &slo);
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
            summarise(LoadMode::Rate, Some(1.0), &outcomes, &Slo::default()).goodput,
            None
        );
    }
}
