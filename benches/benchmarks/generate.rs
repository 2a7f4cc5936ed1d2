//! `generate`: a whole request, 64 new tokens (end-of-sequence ignored) from the tutorial's
//! first customer-support prompt, for each strategy: greedy, temperature 0.7, top-k 50,
//! top-p 0.9 (seed 42). Timed: tokenization, prefill, every decode step and every sampling.

use super::{group, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{fixed_request, session, time_generate};
use llm_bench::generate::Strategy;

pub const NEW_TOKENS: usize = 64;

/// The id's parameter: `greedy`, `temperature-0.7`, `top-k-50`, `top-p-0.9`.
pub fn strategy_id(strategy: Strategy) -> String {
    strategy.to_string().replace('=', "-")
}

pub fn bench(c: &mut Criterion) {
    let labels = session().labels();
    let mut group = group(c, "generate", Cost::Large);
    group.throughput(Throughput::Elements(NEW_TOKENS as u64));
    for (slot, label) in labels.iter().enumerate() {
        for strategy in Strategy::STANDARD {
            let request = fixed_request(strategy, NEW_TOKENS);
            group.bench(label, strategy_id(strategy), |b| {
                b.iter_custom(|iters| time_generate(session().model(slot), &request, iters))
            });
        }
    }
    group.finish();
}
