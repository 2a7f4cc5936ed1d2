//! `prefill`: a prompt of 16 to 512 tokens from an empty cache, up to the first token's
//! logits. Timed: `Engine::prefill` (cache reset, forward pass). Throughput = prompt tokens,
//! so Criterion prints prefill tokens/s; the times are the time-to-first-token curve less
//! tokenization and sampling.

use super::{group, sizes, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{session, time_prefill};

pub const PROMPT_LENGTHS: &[usize] = &[16, 64, 128, 256, 512];

pub fn bench(c: &mut Criterion) {
    let (labels, context) = {
        let s = session();
        (s.labels(), s.config.max_position_embeddings)
    };
    let mut group = group(c, "prefill", Cost::Large);
    for (slot, label) in labels.iter().enumerate() {
        for &len in sizes(PROMPT_LENGTHS).iter().filter(|&&len| len < context) {
            group.throughput(Throughput::Elements(len as u64));
            group.bench(label, len, |b| {
                b.iter_custom(|iters| time_prefill(session().model(slot), len, iters))
            });
        }
    }
    group.finish();
}
