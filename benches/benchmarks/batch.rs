//! `batch`: one decode step for 1, 2, 4 and 8 sequences at once, each with a 64-token
//! context (refilled, untimed, every `KV_DRIFT` steps). Timed: `Engine::decode`.
//! Throughput = sequences, i.e. tokens produced per step.

use super::{group, sizes, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{session, time_decode};

pub const BATCH_SIZES: &[usize] = &[1, 2, 4, 8];
const CONTEXT: usize = 64;

pub fn bench(c: &mut Criterion) {
    let labels = session().labels();
    let mut group = group(c, "batch", Cost::Small);
    for (slot, label) in labels.iter().enumerate() {
        for &batch in sizes(BATCH_SIZES) {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench(label, batch, |b| {
                b.iter_custom(|iters| time_decode(session().model(slot), CONTEXT, batch, iters))
            });
        }
    }
    group.finish();
}
