//! `scaling`: greedy generation of 32, 64, 128 and 256 new tokens from the same prompt.
//! Timed: the whole request. Throughput = generated tokens, so the line chart shows how
//! tokens/s holds up as the KV cache grows.

use super::{group, sizes, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{fixed_request, session, time_generate};
use llm_bench::generate::Strategy;

pub const OUTPUT_LENGTHS: &[usize] = &[32, 64, 128, 256];

pub fn bench(c: &mut Criterion) {
    let labels = session().labels();
    let mut group = group(c, "scaling", Cost::Large);
    for (slot, label) in labels.iter().enumerate() {
        for &tokens in sizes(OUTPUT_LENGTHS) {
            let request = fixed_request(Strategy::Greedy, tokens);
            group.throughput(Throughput::Elements(tokens as u64));
            group.bench(label, tokens, |b| {
                b.iter_custom(|iters| time_generate(session().model(slot), &request, iters))
            });
        }
    }
    group.finish();
}
