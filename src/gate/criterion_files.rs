//! Reading Criterion's saved runs: `<dir>/<id>/<run>/{benchmark,sample}.json`, where `<run>`
//! is `new`, `base` or a name given to `--save-baseline`; and beside them the machine's
//! load while the benchmark ran (`llm-bench-usage.json`, written by llm-bench's benches).

use crate::error::{Error, Result};
use crate::resources::Usage;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file beside Criterion's `sample.json` that says how busy the machine was.
pub const USAGE_FILE: &str = "llm-bench-usage.json";

/// The most samples one benchmark's run may hold (Criterion's default is 100): the gate's
/// bootstrap draws every sample 2,000 times, so this bounds its time at a few seconds.
pub const MAX_SAMPLES: usize = 100_000;

/// The longest per-iteration time a sample may give, in nanoseconds (about 11.6 days): no
/// benchmark iteration takes longer, and the statistics stay finite below it.
pub const MAX_ITERATION_NS: f64 = 1e15;

/// What a benchmark declared it processes per iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Throughput {
    /// Bytes (shown in binary units).
    Bytes(u64),
    /// Bytes (shown in decimal units).
    BytesDecimal(u64),
    /// Elements: tokens, multiply-adds.
    Elements(u64),
}

impl Throughput {
    /// How many.
    pub fn amount(self) -> u64 {
        match self {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => n,
        }
    }
    /// The rate's unit.
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::Bytes(_) | Throughput::BytesDecimal(_) => "B/s",
            Throughput::Elements(_) => "elem/s",
        }
    }
}

/// One benchmark of a saved Criterion run.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Its id.
    pub id: String,
    /// One time per sample: the sample's total time divided by its iteration count.
    pub per_iteration_ns: Vec<f64>,
    /// What it declared it processes.
    pub throughput: Option<Throughput>,
    /// The machine's load while it was measured, where llm-bench's benches recorded it.
    pub usage: Option<Usage>,
}

impl Measurement {
    /// Why this measurement may be distorted by other processes, if it was recorded.
    pub fn contention(&self) -> Option<&str> {
        self.usage.as_ref()?.contention.as_deref()
    }
}

#[derive(Deserialize)]
struct BenchmarkFile {
    full_id: String,
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
struct SampleFile {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// Every benchmark that has a run named `run` under `dir`, by id.
pub fn read_run(dir: &Path, run: &str) -> Result<BTreeMap<String, Measurement>> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no Criterion output here: run `cargo bench` first, or pass --criterion-dir",
            ),
        ));
    }
    let mut found = BTreeMap::new();
    for run_dir in run_dirs(dir, run) {
        let benchmark: BenchmarkFile = read_json(&run_dir.join("benchmark.json"))?;
        let sample: SampleFile = read_json(&run_dir.join("sample.json"))?;
        let bad_sample = |detail: String| {
            crate::paths::corrupt(run_dir.join("sample.json"), "Criterion sample", detail)
        };
        let per_iteration_ns = per_iteration(&sample).map_err(bad_sample)?;
        // A usage file is a note beside the measurement: one that cannot be read, or is older
        // than the samples (a later run without llm-bench's benches replaced them), is absent.
        let usage = fresh_beside(&run_dir.join(USAGE_FILE), &run_dir.join("sample.json"))
            .then(|| read_json::<Usage>(&run_dir.join(USAGE_FILE)).ok())
            .flatten();
        let measurement = Measurement {
            id: benchmark.full_id.clone(),
            per_iteration_ns,
            throughput: benchmark.throughput,
            usage,
        };
        if let Some(first) = found.insert(benchmark.full_id.clone(), (run_dir.clone(), measurement))
        {
            return Err(crate::paths::corrupt(
                run_dir.join("benchmark.json"),
                "Criterion benchmark",
                format!(
                    "full_id \"{}\" is also the id of {}: two folders hold one benchmark's \
                     run \"{run}\"; remove the stale one (or run `cargo bench` into a clean \
                     target/criterion)",
                    benchmark.full_id,
                    first.0.display()
                ),
            ));
        }
    }
    let found: BTreeMap<String, Measurement> =
        found.into_iter().map(|(id, (_, m))| (id, m)).collect();
    if found.is_empty() {
        return Err(Error::BaselineMissing {
            name: run.into(),
            dir: dir.into(),
        });
    }
    Ok(found)
}

/// Each sample's time per iteration, or what is wrong with the sample file.
fn per_iteration(sample: &SampleFile) -> std::result::Result<Vec<f64>, String> {
    if sample.iters.len() != sample.times.len() || sample.iters.is_empty() {
        return Err(format!(
            "{} iteration counts for {} times",
            sample.iters.len(),
            sample.times.len()
        ));
    }
    if sample.times.len() > MAX_SAMPLES {
        return Err(format!(
            "{} samples; the gate reads at most {MAX_SAMPLES} per benchmark (Criterion's \
             default is 100): lower the group's sample_size",
            sample.times.len()
        ));
    }
    // A time of 0 or below, or not finite, would give a change of inf or NaN, or count as an
    // improvement; a fractional iteration count is no count at all. No real measurement looks
    // like that.
    let whole = |n: &f64| n.is_finite() && *n >= 1.0 && n.fract() == 0.0;
    if let Some(i) = sample.iters.iter().position(|n| !whole(n)) {
        return Err(format!(
            "iters[{i}] is {:?}; iteration counts must be positive whole numbers",
            sample.iters[i]
        ));
    }
    let positive = |x: &f64| x.is_finite() && *x > 0.0;
    if let Some(i) = sample.times.iter().position(|t| !positive(t)) {
        return Err(format!(
            "times[{i}] is {:?} ns; sample times must be positive",
            sample.times[i]
        ));
    }
    let per_iteration: Vec<f64> = sample
        .times
        .iter()
        .zip(&sample.iters)
        .map(|(t, n)| t / n)
        .collect();
    if let Some(i) = per_iteration.iter().position(|t| *t > MAX_ITERATION_NS) {
        return Err(format!(
            "times[{i}] / iters[{i}] is {:e} ns per iteration, above {MAX_ITERATION_NS:e} ns \
             (11.6 days): not a measurement",
            per_iteration[i]
        ));
    }
    Ok(per_iteration)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| crate::paths::corrupt(path, "Criterion JSON", e))
}

/// Writes `usage` beside benchmark `full_id`'s run `run` under `dir`, if Criterion wrote that
/// run's `sample.json` at or after `since` (a benchmark that a filter skipped, or `--test` and
/// `--profile-time` runs, which save no samples, get nothing). Returns whether it wrote.
pub fn record_usage(
    dir: &Path,
    full_id: &str,
    run: &str,
    since: SystemTime,
    usage: &Usage,
) -> Result<bool> {
    for run_dir in run_dirs(dir, run) {
        let Ok(benchmark) = read_json::<BenchmarkFile>(&run_dir.join("benchmark.json")) else {
            continue;
        };
        if benchmark.full_id != full_id {
            continue;
        }
        if modified(&run_dir.join("sample.json")).is_none_or(|t| t < since) {
            return Ok(false);
        }
        let text = serde_json::to_vec_pretty(usage)
            .map_err(|e| crate::paths::corrupt(run_dir.join(USAGE_FILE), "usage", e))?;
        crate::fs::write_atomically(&run_dir.join(USAGE_FILE), &text)?;
        return Ok(true);
    }
    Ok(false)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `note` exists and was written no earlier than `data`.
fn fresh_beside(note: &Path, data: &Path) -> bool {
    matches!((modified(note), modified(data)), (Some(n), Some(d)) if n >= d)
}

/// The rounds of an interleaved comparison: runs saved as `<name>.1`, `<name>.2`, …, by round.
pub fn read_rounds(dir: &Path, name: &str) -> Result<BTreeMap<u32, BTreeMap<String, Measurement>>> {
    let mut rounds = BTreeMap::new();
    for run in run_names(dir) {
        let Some(suffix) = run.strip_prefix(name).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let Ok(k) = suffix.parse::<u32>() else {
            continue;
        };
        // `a.01` and `a.+1` parse as round 1 too: taking them as rounds would merge runs.
        if k.to_string() != suffix {
            return Err(crate::paths::corrupt(
                dir,
                "Criterion output",
                format!(
                    "a run is saved as \"{run}\", which reads as round {k} but is not how \
                     rounds are named ({name}.{k}): rename or remove it, so that no two runs \
                     claim one round"
                ),
            ));
        }
        rounds.insert(k, read_run(dir, &run)?);
    }
    if rounds.is_empty() {
        return Err(Error::RoundsMissing {
            name: name.into(),
            dir: dir.into(),
        });
    }
    Ok(rounds)
}

/// Every name of a run saved under `dir` (`new`, `base`, baselines), sorted.
pub fn run_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = all_run_dirs(dir)
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn all_run_dirs(dir: &Path) -> Vec<PathBuf> {
    walk(dir, &|_| true)
}

/// Folders named `run` that hold a `benchmark.json`, below `dir` (ids are 1 to 3 levels deep).
fn run_dirs(dir: &Path, run: &str) -> Vec<PathBuf> {
    walk(dir, &|name| name == run)
}

fn walk(dir: &Path, wanted: &dyn Fn(&std::ffi::OsStr) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((current, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if depth > 0 && wanted(&entry.file_name()) && path.join("benchmark.json").is_file() {
                out.push(path);
            } else if depth < 4 && entry.file_name() != "report" {
                stack.push((path, depth + 1));
            }
        }
    }
    out.sort();
    out
}
