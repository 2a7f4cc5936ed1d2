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
use criterion::{Bencher, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use llm_bench::bench::{criterion_dir, session};
use llm_bench::gate::criterion_files::record_usage;
use llm_bench::resources::Sampler;
use pprof::criterion::{Output, PProfProfiler};
use std::fmt::Display;
use std::time::{Duration, SystemTime};

pub fn criterion_config() -> Criterion {
    // pprof samples at 100 Hz only under `--profile-time`; otherwise it is inert. The output
    // directory is set to the one `criterion_dir` names (Criterion's own default, without its
    // `cargo metadata` call), so the usage notes land beside Criterion's samples.
    let criterion = Criterion::default()
        .output_directory(&criterion_dir())
        .with_profiler(PProfProfiler::new(100, Output::Flamegraph(None)));
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

/// A Criterion group that also records how busy the machine was while each benchmark ran
/// (`llm-bench-usage.json` beside Criterion's `sample.json`, which `llm-bench gate` reads),
/// and says so when other processes competed for the cores.
pub struct Group<'a> {
    inner: BenchmarkGroup<'a, WallTime>,
    name: String,
}

impl Group<'_> {
    pub fn throughput(&mut self, throughput: Throughput) -> &mut Self {
        self.inner.throughput(throughput);
        self
    }

    /// Criterion's `bench_function` for the id `<group>/<function>/<parameter>`.
    pub fn bench(
        &mut self,
        function: impl Display,
        parameter: impl Display,
        mut routine: impl FnMut(&mut Bencher<'_, WallTime>),
    ) -> &mut Self {
        let full_id = format!("{}/{function}/{parameter}", self.name);
        let since = SystemTime::now();
        let sampler = Sampler::cpu_only();
        let mut ran = false;
        self.inner
            .bench_function(BenchmarkId::new(function.to_string(), parameter), |b| {
                ran = true;
                routine(b)
            });
        if ran {
            let smoke = session().smoke;
            let usage = if smoke {
                // Every id's note is written, but not judged: the smoke run's figures mean
                // nothing, and a quarter second of idle wait per id was half its time.
                sampler.finish_judged_over(Duration::ZERO)
            } else {
                let mut usage = sampler.finish();
                usage.judge(session().threads);
                usage
            };
            if let Some(why) = &usage.contention {
                eprintln!("llm-bench: {full_id} was CONTENDED: {why}");
            }
            for run in runs_written() {
                if let Err(e) = record_usage(&criterion_dir(), &full_id, &run, since, &usage) {
                    eprintln!("llm-bench: {e}");
                }
            }
        }
        self
    }

    pub fn finish(self) {
        self.inner.finish();
    }
}

/// The runs this process's Criterion writes: `new`, and the `--save-baseline` name.
fn runs_written() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let saved = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--save-baseline=")
            .map(str::to_string)
            .or_else(|| (a == "--save-baseline").then(|| args.get(i + 1).cloned())?)
    });
    std::iter::once("new".to_string()).chain(saved).collect()
}

/// The sizes a group measures: all of `sizes`, or in CI's smoke run (`LLM_BENCH_SMOKE`) the
/// two smallest, which prove the group runs without building the long caches and outputs of
/// the others.
pub fn sizes(sizes: &'static [usize]) -> &'static [usize] {
    if session().smoke {
        &sizes[..sizes.len().min(2)]
    } else {
        sizes
    }
}

pub fn group<'a>(c: &'a mut Criterion, name: &str, cost: Cost) -> Group<'a> {
    let smoke = session().smoke;
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
        return Group {
            inner: group,
            name: name.into(),
        };
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
    Group {
        inner: group,
        name: name.into(),
    }
}
