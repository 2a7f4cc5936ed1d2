//! The serving-under-load section: each endpoint `llm-bench load` swept, level by level
//! (throughput against latency), goodput against request rate, and what 1,000 queries cost
//! at the best level within the latency targets.

use super::*;
use crate::results::{EndpointRun, LevelSummary, Spread};

/// An endpoint sweep with the name the report gives it (`#2` where two files share a label).
pub struct EndpointEntry<'a> {
    /// Its name in the report.
    pub label: String,
    /// The sweep.
    pub run: &'a EndpointRun,
}

impl Inputs {
    /// Every endpoint sweep of every file.
    pub fn endpoints(&self) -> Vec<EndpointEntry<'_>> {
        let all: Vec<(usize, &EndpointRun)> = (self.files.iter().enumerate())
            .flat_map(|(i, (_, r))| r.endpoints.iter().map(move |e| (i, e)))
            .collect();
        all.iter()
            .map(|&(file, run)| {
                let repeated = all.iter().filter(|(_, e)| e.label == run.label).count() > 1;
                EndpointEntry {
                    label: if repeated {
                        format!("{} #{}", run.label, file + 1)
                    } else {
                        run.label.clone()
                    },
                    run,
                }
            })
            .collect()
    }
}

/// The levels of a sweep as a table, one row each (what `llm-bench load` prints, and the
/// report's per-endpoint table); `cost` adds the cost of 1,000 queries at that price.
pub fn level_table(levels: &[LevelSummary], goodput: bool, cost: Option<f64>) -> String {
    let ms = |s: &Option<Spread>, pick: fn(&Spread) -> f64| {
        s.as_ref().map_or("-".into(), |s| format!("{:.1}", pick(s)))
    };
    let mut headers = vec![
        "level",
        "done",
        "failed",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "ITL p50",
        "ITL p99",
        "E2E p50",
        "E2E p99",
    ];
    if goodput {
        headers.push("goodput");
    }
    if cost.is_some() {
        headers.push("USD per 1K queries");
    }
    let rows: Vec<Vec<String>> = levels
        .iter()
        .map(|s| {
            let mut row = vec![
                s.name(),
                s.completed.to_string(),
                (s.requests - s.completed).to_string(),
                format!("{:.2}", s.request_throughput),
                format!("{:.1}", s.output_throughput),
                ms(&s.ttft_ms, |s| s.p50),
                ms(&s.ttft_ms, |s| s.p99),
                ms(&s.tpot_ms, |s| s.p50),
                ms(&s.tpot_ms, |s| s.p99),
                ms(&s.itl_ms, |s| s.p50),
                ms(&s.itl_ms, |s| s.p99),
                ms(&s.e2e_ms, |s| s.p50),
                ms(&s.e2e_ms, |s| s.p99),
            ];
            if goodput {
                row.push(format!("{:.2}", s.goodput.unwrap_or(0.0)));
            }
            if let Some(price) = cost {
                row.push(
                    cost_per_1k_queries(s.served_per_s(), price)
                        .map_or("-".into(), |c| format!("{c:.4}")),
                );
            }
            row
        })
        .collect();
    table(&headers, &rows)
}

/// The level that serves the most requests per second within the targets (every completed
/// request where there are none).
pub fn best_level(levels: &[LevelSummary]) -> Option<&LevelSummary> {
    levels
        .iter()
        .filter(|l| l.served_per_s() > 0.0)
        .max_by(|a, b| a.served_per_s().total_cmp(&b.served_per_s()))
}

pub(super) fn section(out: &mut String, inputs: &Inputs, charts: &[&str], price: f64) {
    let endpoints = inputs.endpoints();
    if endpoints.is_empty() {
        return;
    }
    out.push_str(
        "\n## Serving under load\n\nEach endpoint as `llm-bench load` swept it: latencies in ms, TPOT \
         excluding the first token; req/s, output tokens/s and goodput (requests per second within \
         every latency target) over each level's wall time. Cost per 1K queries = price ÷ (goodput \
         × 3600) × 1000 (completed requests where no target was set), the server kept at that level.\n",
    );
    let mut best_rows = Vec::new();
    for e in &endpoints {
        let run = e.run;
        let _ = writeln!(
            out,
            "\n### {}\n\n`{}`, model `{}`, {} prompts{}, {} output tokens{}, {} requests per level; \
             targets: {}{}.\n",
            e.label,
            run.url,
            run.model,
            run.prompts_source,
            run.input_words
                .map_or(String::new(), |w| format!(" of {w} words")),
            run.output_tokens,
            if run.ignore_eos { " (EOS ignored)" } else { "" },
            run.requests_per_level,
            run.slo.describe(),
            run.client_cpu_us_per_token.map_or(String::new(), |us| format!(
                "; the client spent {us:.1} µs of CPU per streamed token"
            )),
        );
        out.push_str(&level_table(&run.levels, run.slo.any(), Some(price)));
        if let Some(best) = best_level(&run.levels) {
            best_rows.push(vec![
                e.label.clone(),
                best.name(),
                format!("{:.2}", best.served_per_s()),
                format!("{:.1}", best.output_throughput),
                run.slo.describe(),
                cost_per_1k_queries(best.served_per_s(), price)
                    .map_or("-".into(), |c| format!("{c:.4}")),
            ]);
        }
    }
    let _ = writeln!(
        out,
        "\nThe best level of each endpoint, at {price} USD per instance-hour:\n"
    );
    out.push_str(&table(
        &[
            "endpoint",
            "level",
            "req/s within targets",
            "out tok/s",
            "targets",
            "USD per 1K queries",
        ],
        &best_rows,
    ));
    embed(
        out,
        charts,
        charts::LOAD_LATENCY,
        "TPOT p50 against output tokens/s, a point per level",
    );
    embed(
        out,
        charts,
        charts::LOAD_GOODPUT,
        "goodput against request rate",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LoadMode;

    fn level(c: f64, req_s: f64, goodput: Option<f64>) -> LevelSummary {
        LevelSummary {
            mode: LoadMode::Concurrency,
            level: Some(c),
            requests: 8,
            completed: 8,
            failures: Default::default(),
            first_failure: None,
            duration_s: 8.0 / req_s,
            request_throughput: req_s,
            output_throughput: req_s * 100.0,
            total_token_throughput: req_s * 200.0,
            mean_prompt_tokens: Some(100.0),
            mean_output_tokens: 100.0,
            ttft_ms: None,
            tpot_ms: None,
            itl_ms: None,
            e2e_ms: None,
            tokenizer_prompt_tokens: None,
            tokenizer_output_tokens: None,
            goodput,
        }
    }

    /// The best level is the one serving most within the targets, not the fastest overall;
    /// its cost is the tutorial's formula over goodput.
    #[test]
    fn cost_is_taken_at_the_best_level_within_targets() {
        let levels = [
            level(1.0, 1.0, Some(1.0)),
            level(4.0, 3.0, Some(2.5)),
            level(8.0, 4.0, Some(0.5)),
        ];
        let best = best_level(&levels).unwrap();
        assert_eq!(best.name(), "c=4");
        let text = level_table(&levels, true, Some(0.36));
        // 2.5 requests/s is 9,000 an hour: 0.36 USD buys them, 0.04 USD per 1K.
        assert!(text.contains("| c=4 | 8 | 0 | 3.00 | 300.0 |"), "{text}");
        assert!(text.contains("| 2.50 | 0.0400 |"), "{text}");
        // Without targets every completed request counts.
        let plain = [level(1.0, 1.0, None), level(2.0, 1.5, None)];
        assert_eq!(best_level(&plain).unwrap().name(), "c=2");
        assert_eq!(best_level(&[level(1.0, 1.0, Some(0.0))]), None);
    }
}
