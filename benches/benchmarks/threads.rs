//! `threads`: prefill of 128 tokens and one decode step (128 to 159 positions in the cache) on
//! the run's thread count, which the id's parameter names, so runs at different counts sit
//! side by side in Criterion's report: `threads/<label>/prefill-128-t<threads>` and
//! `threads/<label>/decode-128-t<threads>`. candle sizes its thread pools once per process, so a
//! sweep is one process per count: `scripts/bench-threads 1,2,4` (like llama-bench's `-t`).

use super::{group, Cost};
use criterion::{Criterion, Throughput};
use llm_bench::bench::{session, time_decode, time_prefill, KV_DRIFT};

const PROMPT: usize = 128;

pub fn bench(c: &mut Criterion) {
    let (labels, context, threads) = {
        let s = session();
        (s.labels(), s.config.max_position_embeddings, s.threads)
    };
    if PROMPT + KV_DRIFT >= context {
        return;
    }
    let mut group = group(c, "threads", Cost::Large);
    for (slot, label) in labels.iter().enumerate() {
        group.throughput(Throughput::Elements(PROMPT as u64));
        group.bench(label, format!("prefill-{PROMPT}-t{threads}"), |b| {
            b.iter_custom(|iters| time_prefill(session().model(slot), PROMPT, iters))
        });
        group.throughput(Throughput::Elements(1));
        group.bench(label, format!("decode-{PROMPT}-t{threads}"), |b| {
            b.iter_custom(|iters| time_decode(session().model(slot), PROMPT, 1, iters))
        });
    }
    group.finish();
}
