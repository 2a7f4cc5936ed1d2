//! The benchmark suite: one binary, one module per group family (as candle's own benches).
//! `cargo bench` runs all; `cargo bench -- scaling` runs one family; add
//! `--profile-time 10` for a pprof flamegraph in `target/criterion/<id>/profile/`.

mod benchmarks;

use criterion::{criterion_group, criterion_main};

criterion_group! {
    name = suite;
    config = benchmarks::criterion_config();
    targets = benchmarks::matmul::bench,
              benchmarks::decode::bench,
              benchmarks::prefill::bench,
              benchmarks::generate::bench,
              benchmarks::scaling::bench,
              benchmarks::batch::bench,
              benchmarks::threads::bench,
              benchmarks::formats::bench,
}
criterion_main!(suite);
