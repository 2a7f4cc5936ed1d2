//! `threads`: prefill of 128 tokens and one decode step (128 to 159 positions in the cache) at
//! each thread count of the sweep, like llama-bench's `-t 1,2,4`: `LLM_BENCH_THREADS=1,2,4`,
//! else 1, 2, 4, … up to the logical CPUs. Ids: `threads/<label>/prefill-128/<threads>` and
//! `threads/<label>/decode-128/<threads>`. Timed as the `prefill` and `decode` families;
//! switching the thread count (a new pool or llama.cpp context) is not timed.

use super::{group, Cost};
use criterion::{BenchmarkId, Criterion, Throughput};
use llm_bench::bench::{session, time_decode, time_prefill, KV_DRIFT};

const PROMPT: usize = 128;

pub fn bench(c: &mut Criterion) {
    let (labels, context, sweep, threads) = {
        let s = session();
        (
            s.labels(),
            s.config.max_position_embeddings,
            s.thread_sweep.clone(),
            s.threads,
        )
    };
    if PROMPT + KV_DRIFT >= context {
        return;
    }
    let mut group = group(c, "threads", Cost::Large);
    for (slot, label) in labels.iter().enumerate() {
        for &n in &sweep {
            let set = |n| {
                session()
                    .model(slot)
                    .engine
                    .set_threads(n)
                    .unwrap_or_else(|e| panic!("threads: {label} on {n} threads: {e}"))
            };
            group.throughput(Throughput::Elements(PROMPT as u64));
            group.bench_function(
                BenchmarkId::new(format!("{label}/prefill-{PROMPT}"), n),
                |b| {
                    set(n);
                    b.iter_custom(|iters| time_prefill(session().model(slot), PROMPT, iters))
                },
            );
            group.throughput(Throughput::Elements(1));
            group.bench_function(
                BenchmarkId::new(format!("{label}/decode-{PROMPT}"), n),
                |b| {
                    set(n);
                    b.iter_custom(|iters| time_decode(session().model(slot), PROMPT, 1, iters))
                },
            );
        }
        // The other families run on the session's count.
        session()
            .model(slot)
            .engine
            .set_threads(threads)
            .unwrap_or_else(|e| panic!("threads: {label} back on {threads} threads: {e}"));
    }
    group.finish();
}
