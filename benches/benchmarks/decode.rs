//! `decode`: one decode step (one new token) with 0, 128, 512 and 1024 positions already in
//! the KV cache. Timed: `Engine::decode` only; filling the cache is not timed. The cache grows
//! while measuring and is refilled after `KV_DRIFT` steps, so "512" means 512 to 543.

use super::{group, sizes, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{session, time_decode, KV_DRIFT};

pub const KV_LENGTHS: &[usize] = &[0, 128, 512, 1024];

pub fn bench(c: &mut Criterion) {
    let (labels, context) = {
        let s = session();
        (s.labels(), s.config.max_position_embeddings)
    };
    let mut group = group(c, "decode", Cost::Small);
    group.throughput(Throughput::Elements(1));
    for (slot, label) in labels.iter().enumerate() {
        for &kv in sizes(KV_LENGTHS)
            .iter()
            .filter(|&&kv| kv + KV_DRIFT < context)
        {
            group.bench(label, kv, |b| {
                b.iter_custom(|iters| time_decode(session().model(slot), kv, 1, iters))
            });
        }
    }
    group.finish();
}
