//! Criterion configuration shared by the families. Model set-up lives in `llm_bench::bench`.

pub mod batch;
pub mod decode;
pub mod formats;
pub mod generate;
pub mod matmul;
pub mod prefill;
pub mod scaling;
pub mod threads;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use pprof::criterion::{Output, PProfProfiler};
use std::time::Duration;

pub fn criterion_config() -> Criterion {
    // pprof samples at 100 Hz only under `--profile-time`; otherwise it is inert.
    let criterion =
        Criterion::default().with_profiler(PProfProfiler::new(100, Output::Flamegraph(None)));
    if quick_mode() {
        // With the plotters backend, drawing the plots takes longer than measuring in
        // `--quick` mode (3 of 4.7 minutes here); a quick run gives numbers, a full run plots.
        criterion.without_plots()
    } else {
        criterion
    }
}

fn quick_mode() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// How long one iteration of a family takes, which sets how Criterion samples it.
#[derive(Clone, Copy)]
pub enum Cost {
    /// Micro- to milliseconds (kernels, one decode step): many iterations per sample.
    Small,
    /// Tenths of a second to seconds (prefill, whole generations): one iteration per sample,
    /// 10 samples, so the default `cargo bench` stays within minutes on 2 cores.
    Large,
}

pub fn group<'a>(c: &'a mut Criterion, name: &str, cost: Cost) -> BenchmarkGroup<'a, WallTime> {
    let smoke = llm_bench::bench::session().smoke;
    // Criterion's `--quick` stops once two runs agree or the measurement time is spent; a
    // shorter measurement time keeps `cargo bench -- --quick` within a few minutes on 2 cores.
    let quick = quick_mode();
    let mut group = c.benchmark_group(name);
    if smoke {
        // CI's smoke run (with `--quick`): each benchmark runs a handful of times.
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(1));
        return group;
    }
    match (cost, quick) {
        (Cost::Small, false) => {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
        }
        (Cost::Small, true) => {
            group.measurement_time(Duration::from_millis(250));
        }
        (Cost::Large, false) => {
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(4));
        }
        (Cost::Large, true) => {
            group.measurement_time(Duration::from_millis(1500));
        }
    }
    group
}
