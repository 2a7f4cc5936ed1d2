//! Reading Criterion's saved runs: `<dir>/<id>/<run>/{benchmark,sample}.json`, where `<run>`
//! is `new`, `base` or a name given to `--save-baseline`.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Throughput {
    Bytes(u64),
    BytesDecimal(u64),
    Elements(u64),
}

impl Throughput {
    pub fn amount(self) -> u64 {
        match self {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => n,
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::Bytes(_) | Throughput::BytesDecimal(_) => "B/s",
            Throughput::Elements(_) => "elem/s",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Measurement {
    pub id: String,
    /// One time per sample: the sample's total time divided by its iteration count.
    pub per_iteration_ns: Vec<f64>,
    pub throughput: Option<Throughput>,
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
            Error::corrupt(run_dir.join("sample.json"), "Criterion sample", detail)
        };
        if sample.iters.len() != sample.times.len() || sample.iters.is_empty() {
            return Err(bad_sample(format!(
                "{} iteration counts for {} times",
                sample.iters.len(),
                sample.times.len()
            )));
        }
        // A time of 0 or below, or not finite, would give a change of inf or NaN, or count
        // as an improvement: no real measurement looks like that.
        let positive = |x: &f64| x.is_finite() && *x > 0.0;
        if let Some(i) = sample.iters.iter().position(|n| !positive(n)) {
            return Err(bad_sample(format!(
                "iters[{i}] is {}; iteration counts must be positive",
                sample.iters[i]
            )));
        }
        if let Some(i) = sample.times.iter().position(|t| !positive(t)) {
            return Err(bad_sample(format!(
                "times[{i}] is {} ns; sample times must be positive",
                sample.times[i]
            )));
        }
        let per_iteration_ns = sample
            .times
            .iter()
            .zip(&sample.iters)
            .map(|(t, n)| t / n)
            .collect();
        found.insert(
            benchmark.full_id.clone(),
            Measurement {
                id: benchmark.full_id,
                per_iteration_ns,
                throughput: benchmark.throughput,
            },
        );
    }
    if found.is_empty() {
        return Err(Error::BaselineMissing {
            name: run.into(),
            dir: dir.into(),
        });
    }
    Ok(found)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::corrupt(path, "Criterion JSON", e))
}

/// Folders named `run` that hold a `benchmark.json`, below `dir` (ids are 1 to 3 levels deep).
fn run_dirs(dir: &Path, run: &str) -> Vec<PathBuf> {
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
            if depth > 0 && entry.file_name() == run && path.join("benchmark.json").is_file() {
                out.push(path);
            } else if depth < 4 && entry.file_name() != "report" {
                stack.push((path, depth + 1));
            }
        }
    }
    out.sort();
    out
}
