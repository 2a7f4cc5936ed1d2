//! The machine's sustained memory read bandwidth, for the decode roofline: a decode step
//! reads every weight once, so `bandwidth / bytes read per token` bounds decode tokens/s.
//!
//! Measured like STREAM's read kernels: sum a buffer far larger than any cache with the run's
//! thread count, several passes, keep the best. The figure is cached per machine and thread
//! count in the output folder, so repeated runs do not pay for it again.

use crate::error::{Error, Result};
use crate::system::SystemInfo;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The cache file of the bandwidth probe, in the models folder.
pub const CACHE_FILE: &str = "memory-bandwidth.json";
/// 512 MiB: 16x the largest L3 of the CPUs this runs on, so the caches cannot hold it.
const BUFFER_BYTES: usize = 512 << 20;
const PASSES: usize = 5;
const ALLOCATIONS: usize = 3;
const CHUNK_BYTES: usize = 1 << 20;

/// A memory-read bandwidth measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// The median of `per_allocation_bytes_per_s`.
    pub read_bytes_per_s: f64,
    /// Best-of-passes figure of each freshly allocated buffer.
    pub per_allocation_bytes_per_s: Vec<f64>,
    /// Threads that read.
    pub threads: usize,
    /// Bytes of the buffer read.
    pub buffer_bytes: u64,
    /// Passes over it.
    pub passes: usize,
    /// Which machine it was measured on: the cache is used only on the same one.
    pub machine: Machine,
    /// When it was measured (Unix seconds).
    pub measured_unix: u64,
    /// True when taken from the cache file rather than measured in this run.
    #[serde(default)]
    pub from_cache: bool,
    /// Why the figure may be low (other processes busy while it was measured); such a
    /// figure is reported but never cached.
    #[serde(default)]
    pub contention: Option<String>,
}

impl Bandwidth {
    /// Each buffer's figure in GB/s: "32.5, 32.9, 33.2".
    pub fn per_buffer_gb_per_s(&self) -> String {
        gb_per_s_list(&self.per_allocation_bytes_per_s)
    }
}

/// Figures in bytes/s as GB/s, one decimal, comma-separated: "32.5, 32.9, 33.2".
pub fn gb_per_s_list(bytes_per_s: &[f64]) -> String {
    bytes_per_s
        .iter()
        .map(|b| format!("{:.1}", b / 1e9))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Bandwidth {
    /// A figure no measurement gives (0, negative, or a median that is not the buffers'
    /// median) comes from an edited file, and would put the roofline at 0 or below.
    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(bad) = self
            .per_allocation_bytes_per_s
            .iter()
            .find(|b| !(b.is_finite() && **b > 0.0))
        {
            return Err((
                "per_allocation_bytes_per_s",
                format!("holds {bad}; every figure must be above 0"),
            ));
        }
        let median = crate::stats::median(&self.per_allocation_bytes_per_s);
        // JSON's decimal text need not give back the last bit of a float: compare to 1 ppm.
        let agrees = median.is_some_and(|m| (m - self.read_bytes_per_s).abs() <= m * 1e-6);
        if !(self.read_bytes_per_s > 0.0 && agrees) {
            return Err((
                "read_bytes_per_s",
                format!(
                    "is {}, but it must be the median of per_allocation_bytes_per_s ({})",
                    self.read_bytes_per_s,
                    median.map_or("none".into(), |m| m.to_string())
                ),
            ));
        }
        Ok(())
    }
}

/// The machine a measurement belongs to: a cached one is reused only on the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub host_name: String,
    /// CPU model.
    pub cpu_model: String,
    /// Logical CPUs.
    pub logical_cores: usize,
    /// Total memory.
    pub total_memory_bytes: u64,
}

impl Machine {
    /// The machine of `system`.
    pub fn of(system: &SystemInfo) -> Self {
        Self {
            host_name: sysinfo::System::host_name().unwrap_or_default(),
            cpu_model: system.cpu_model.clone(),
            logical_cores: system.logical_cores,
            total_memory_bytes: system.total_memory_bytes,
        }
    }
}

/// The cached figure for this machine and thread count, else a fresh measurement (cached).
pub fn measure_or_cached(dir: &Path, system: &SystemInfo) -> Result<Bandwidth> {
    let machine = Machine::of(system);
    let path = dir.join(CACHE_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(cached) = serde_json::from_slice::<Bandwidth>(&bytes) {
            if cached.machine == machine && cached.threads == system.threads {
                cached.check().map_err(|(field, problem)| Error::BadField {
                    path: path.clone(),
                    field: field.into(),
                    problem: format!(
                        "{problem}; delete {} to measure the bandwidth again",
                        path.display()
                    ),
                })?;
                return Ok(Bandwidth {
                    from_cache: true,
                    ..cached
                });
            }
        }
    }
    // Each allocation lands in different physical memory, and on this VM that alone moved
    // the figure between ~30 and ~50 GB/s; the median of a few allocations is the figure.
    let (per_allocation, mut usage) = crate::resources::measure(|| {
        (0..ALLOCATIONS)
            .map(|_| measure_read_bandwidth(BUFFER_BYTES, PASSES))
            .collect::<Vec<f64>>()
    });
    usage.judge(system.threads);
    let measured = Bandwidth {
        read_bytes_per_s: crate::stats::median(&per_allocation).unwrap_or(0.0),
        per_allocation_bytes_per_s: per_allocation,
        threads: system.threads,
        buffer_bytes: BUFFER_BYTES as u64,
        passes: PASSES,
        machine,
        measured_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        from_cache: false,
        contention: usage.contention,
    };
    // A figure measured beside another busy process would be reused by every later run.
    if measured.contention.is_none() {
        let json = serde_json::to_vec_pretty(&measured).expect("plain data serializes");
        crate::fs::write_atomically(&path, &json)?;
    }
    Ok(measured)
}

/// Best-of-`passes` read bandwidth over a `buffer_bytes` buffer, with rayon's thread pool
/// (which `system::configure_threads` sized for the run).
pub fn measure_read_bandwidth(buffer_bytes: usize, passes: usize) -> f64 {
    let words = buffer_bytes / std::mem::size_of::<u64>();
    // Written, not just allocated, so every page is real memory before timing.
    let buffer: Vec<u64> = (0..words as u64).collect();
    // Many small chunks, not one per thread: work stealing keeps every thread busy to the
    // end even when one is descheduled for a moment (one chunk per thread halved the figure
    // on this 2-core VM in about half the runs).
    let chunk = (CHUNK_BYTES / std::mem::size_of::<u64>()).min(words).max(1);
    let mut best = 0.0f64;
    for _ in 0..passes.max(1) {
        let start = Instant::now();
        let sum: u64 = buffer
            .par_chunks(chunk)
            .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
            .reduce(|| 0, u64::wrapping_add);
        let seconds = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        if seconds > 0.0 {
            best = best.max(buffer_bytes as f64 / seconds);
        }
    }
    best
}

/// Where decode sits against the memory-bandwidth roofline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Weight and cache bytes read per generated token.
    pub bytes_read_per_token: u64,
    /// Measured read bandwidth.
    pub read_bytes_per_s: f64,
    /// The decode speed if every step only had to stream the weights at full bandwidth.
    pub limit_tokens_per_s: f64,
    /// Measured decode rate.
    pub decode_tokens_per_s: f64,
    /// `bytes_read_per_token x decode_tokens_per_s / bandwidth`: 1.0 = at the limit.
    pub fraction_of_limit: f64,
}

impl Roofline {
    /// A roofline point: the rate the bandwidth allows beside the measured one.
    pub fn new(bytes_read_per_token: u64, read_bytes_per_s: f64, decode_tokens_per_s: f64) -> Self {
        let per_token = bytes_read_per_token.max(1) as f64;
        Self {
            bytes_read_per_token,
            read_bytes_per_s,
            limit_tokens_per_s: read_bytes_per_s / per_token,
            decode_tokens_per_s,
            fraction_of_limit: if read_bytes_per_s > 0.0 {
                per_token * decode_tokens_per_s / read_bytes_per_s
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roofline_against_hand_computed_values() {
        // 100 MB per token at 10 GB/s: at most 100 tokens/s; 25 tokens/s is a quarter of it.
        let r = Roofline::new(100_000_000, 10e9, 25.0);
        assert!((r.limit_tokens_per_s - 100.0).abs() < 1e-9);
        assert!((r.fraction_of_limit - 0.25).abs() < 1e-12);
    }

    #[test]
    fn cached_figures_read_back_to_the_same_bits() {
        // A figure measured here (34127713599.000206 B/s) that came back one ulp off before
        // serde_json's `float_roundtrip` parsing was turned on.
        let measured = f64::from_bits(0x421f_c8ae_54fc_0036);
        let json = serde_json::to_string(&measured).unwrap();
        let back: f64 = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_bits(), measured.to_bits(), "{json}");
    }

    #[test]
    fn bandwidth_is_measured_once_then_read_from_the_cache() {
        let _alone = crate::resources::MEMORY_HUNGRY_TESTS
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let system = SystemInfo::collect(rayon::current_num_threads());
        let first = measure_or_cached(dir.path(), &system).unwrap();
        assert!(!first.from_cache);
        // Any machine that runs this moves well over 100 MB/s and under 10 TB/s.
        assert!(
            (1e8..1e13).contains(&first.read_bytes_per_s),
            "{}",
            first.read_bytes_per_s
        );
        let second = measure_or_cached(dir.path(), &system).unwrap();
        assert!(second.from_cache);
        assert_eq!(second.read_bytes_per_s, first.read_bytes_per_s);
        // Another thread count is another measurement.
        let other = SystemInfo {
            threads: system.threads + 1,
            ..system
        };
        assert!(!measure_or_cached(dir.path(), &other).unwrap().from_cache);
    }
}
