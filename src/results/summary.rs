//! Distribution summaries of per-request measurements.

// Doc comments here are the versioned schema's descriptions (`llm-bench schema`,
// schemas/results-v3.schema.json): they change with a schema version, not to satisfy a lint.
#![allow(missing_docs)]

use super::schema::RequestRecord;
use crate::stats::{mean, percentile, std_dev};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Mean, spread and tail of one measurement over requests (percentiles interpolate linearly
/// between closest ranks, as numpy's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation; absent for a single value.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Summary {
    /// `None` for no values (e.g. the inter-token latency of one-token outputs).
    pub fn of(values: &[f64]) -> Option<Self> {
        let at = |p| percentile(values, p);
        Some(Self {
            n: values.len(),
            mean: mean(values)?,
            std: std_dev(values),
            min: at(0.0)?,
            max: at(100.0)?,
            p50: at(50.0)?,
            p90: at(90.0)?,
            p95: at(95.0)?,
            p99: at(99.0)?,
        })
    }
}

/// Everything a report needs about a set of requests run back to back with one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupSummary {
    pub requests: usize,
    /// From the first request's start to the last one's end.
    pub wall_seconds: f64,
    pub queries_per_s: f64,
    /// Over all sequences of all requests.
    pub generated_tokens: usize,
    pub generated_tokens_per_s: f64,
    pub ttft_ms: Summary,
    /// Every gap between consecutive tokens, pooled over requests.
    pub itl_ms: Option<Summary>,
    /// Time per output token: each request's mean inter-token latency.
    pub tpot_ms: Option<Summary>,
    pub e2e_ms: Summary,
    pub prefill_tokens_per_s: Summary,
    pub decode_tokens_per_s: Option<Summary>,
    /// The share of the requests' time the engine's threads spent waiting for one another:
    /// their `thread_wait_ms` summed over their `e2e_ms` summed. Absent when the engine
    /// does not count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_wait_share: Option<f64>,
}

impl GroupSummary {
    /// `None` when no request ran.
    pub fn of(requests: &[RequestRecord], wall_seconds: f64) -> Option<Self> {
        let column =
            |f: &dyn Fn(&RequestRecord) -> f64| -> Vec<f64> { requests.iter().map(f).collect() };
        let pooled_itl: Vec<f64> = requests
            .iter()
            .flat_map(|r| r.itl_ms.iter().copied())
            .collect();
        let tpot: Vec<f64> = requests.iter().filter_map(|r| mean(&r.itl_ms)).collect();
        let decode: Vec<f64> = requests
            .iter()
            .filter(|r| !r.itl_ms.is_empty())
            .map(|r| r.decode_tokens_per_s)
            .collect();
        let generated_tokens = requests.iter().map(|r| r.generated_tokens).sum();
        let rate = |count: f64| {
            if wall_seconds > 0.0 {
                count / wall_seconds
            } else {
                0.0
            }
        };
        Some(Self {
            requests: requests.len(),
            wall_seconds,
            queries_per_s: rate(requests.len() as f64),
            generated_tokens,
            generated_tokens_per_s: rate(generated_tokens as f64),
            ttft_ms: Summary::of(&column(&|r| r.ttft_ms))?,
            itl_ms: Summary::of(&pooled_itl),
            tpot_ms: Summary::of(&tpot),
            e2e_ms: Summary::of(&column(&|r| r.e2e_ms))?,
            prefill_tokens_per_s: Summary::of(&column(&|r| r.prefill_tokens_per_s))?,
            decode_tokens_per_s: Summary::of(&decode),
            thread_wait_share: thread_wait_share(requests),
        })
    }
}

/// `Σ thread_wait_ms / Σ e2e_ms` over the requests, when every one of them counted it.
fn thread_wait_share(requests: &[RequestRecord]) -> Option<f64> {
    let waited: Option<f64> = requests.iter().map(|r| r.thread_wait_ms).sum();
    let time: f64 = requests.iter().map(|r| r.e2e_ms).sum();
    waited.filter(|_| time > 0.0).map(|w| w / time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ttft: f64, itl: &[f64]) -> RequestRecord {
        RequestRecord {
            prompt_index: 0,
            prompt_tokens: 10,
            generated_tokens: itl.len() + 1,
            batch: 1,
            tokenize_ms: 1.0,
            prefill_ms: ttft - 1.0,
            ttft_ms: ttft,
            itl_ms: itl.to_vec(),
            e2e_ms: ttft + itl.iter().sum::<f64>(),
            prefill_tokens_per_s: 10.0 / ((ttft - 1.0) / 1000.0),
            decode_tokens_per_s: itl.len() as f64 / (itl.iter().sum::<f64>() / 1000.0),
            thread_wait_ms: None,
        }
    }

    #[test]
    fn thread_wait_share_is_the_waiting_over_the_requests_time() {
        let mut requests = [request(100.0, &[10.0, 20.0]), request(300.0, &[30.0])];
        // No engine count: no share.
        assert_eq!(
            GroupSummary::of(&requests, 1.0).unwrap().thread_wait_share,
            None
        );
        // 13 + 33 ms waited of 130 + 330 ms: 10%.
        requests[0].thread_wait_ms = Some(13.0);
        requests[1].thread_wait_ms = Some(33.0);
        let share = GroupSummary::of(&requests, 1.0)
            .unwrap()
            .thread_wait_share
            .unwrap();
        assert!((share - 0.1).abs() < 1e-12, "{share}");
        // One request without a count leaves the share out rather than understating it.
        requests[1].thread_wait_ms = None;
        assert_eq!(
            GroupSummary::of(&requests, 1.0).unwrap().thread_wait_share,
            None
        );
    }

    #[test]
    fn summary_against_hand_computed_values() {
        // 1..=10: mean 5.5, sample variance 82.5/9, p90 rank 8.1 -> 9.1, p99 rank 8.91 -> 9.91.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&values).unwrap();
        assert_eq!(
            (s.n, s.mean, s.min, s.max, s.p50),
            (10, 5.5, 1.0, 10.0, 5.5)
        );
        assert!((s.std.unwrap() - (82.5f64 / 9.0).sqrt()).abs() < 1e-12);
        assert!((s.p90 - 9.1).abs() < 1e-12);
        assert!((s.p95 - 9.55).abs() < 1e-12);
        assert!((s.p99 - 9.91).abs() < 1e-12);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[4.0]).unwrap().std, None);
    }

    #[test]
    fn group_pools_itl_and_counts_queries_over_the_wall_time() {
        let requests = [
            request(100.0, &[10.0, 20.0]),
            request(300.0, &[30.0, 40.0, 50.0]),
        ];
        let g = GroupSummary::of(&requests, 2.0).unwrap();
        assert_eq!(g.requests, 2);
        assert_eq!(g.queries_per_s, 1.0);
        assert_eq!(g.generated_tokens, 7);
        assert_eq!(g.generated_tokens_per_s, 3.5);
        assert_eq!(g.ttft_ms.mean, 200.0);
        let itl = g.itl_ms.unwrap();
        assert_eq!((itl.n, itl.mean, itl.p50), (5, 30.0, 30.0));
        // Per-request means 15 and 40.
        assert_eq!(g.tpot_ms.unwrap().mean, 27.5);
        // 2 tokens in 30 ms, 3 in 120 ms.
        let decode = g.decode_tokens_per_s.unwrap();
        assert!((decode.min - 25.0).abs() < 1e-9 && (decode.max - 2000.0 / 30.0).abs() < 1e-9);
        assert_eq!(GroupSummary::of(&[], 1.0), None);
    }
}
