//! Facts about the machine and the build that every result carries, and the thread set-up
//! that must happen before the first tensor operation.

use serde::Serialize;

/// The environment variable candle and rayon read for their thread count.
pub const THREADS_ENV: &str = "RAYON_NUM_THREADS";

/// Fixes the thread count for candle's kernels and rayon's pool; call before any tensor work.
///
/// With `RAYON_NUM_THREADS` unset, candle asks for the core count on every kernel call and
/// that re-reads /proc/cpuinfo (3-27% slower decode here), so the harness always sets it.
/// Priority: the explicit request, then an existing valid `RAYON_NUM_THREADS`, then all cores.
///
/// More threads than logical CPUs is capped, with a warning on stderr: candle's pool
/// busy-waits, so oversubscription makes it crawl (1,000 threads on 2 cores ran for minutes),
/// and a huge count would exhaust memory creating threads. The count used is returned, and
/// every result records it.
pub fn configure_threads(requested: Option<usize>) -> usize {
    let from_env = std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    let cores = logical_cpus();
    let wanted = requested.filter(|&n| n > 0).or(from_env).unwrap_or(cores);
    let (threads, warning) = cap_threads(wanted, cores);
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    // Edition 2021: `set_var` is safe; this runs before the harness starts any thread.
    std::env::set_var(THREADS_ENV, threads.to_string());
    // rayon reads the variable when its global pool starts; starting it now pins the count
    // even if the pool would otherwise have been started by an earlier library call.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    threads
}

/// The thread count `configure_threads` set (`RAYON_NUM_THREADS`), else all cores.
pub fn configured_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(logical_cpus)
}

/// The logical CPUs this process may run on (1 when unknown).
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A thread sweep's default counts, as llama-bench users pick them: 1, 2, 4, … below the
/// logical CPUs, and the CPUs themselves (1, 2 on 2 CPUs; 1, 2, 4, 6 on 6).
pub fn default_thread_sweep() -> Vec<usize> {
    sweep_up_to(logical_cpus())
}

fn sweep_up_to(cores: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n < cores)
        .collect();
    counts.push(cores.max(1));
    counts
}

/// The counts of `--threads 1,2,4`: each capped at the logical CPUs (with the warning of
/// [`cap_threads`]), duplicates dropped, in the order given.
pub fn cap_thread_list(wanted: &[usize], cores: usize) -> (Vec<usize>, Vec<String>) {
    let mut counts = Vec::new();
    let mut warnings = Vec::new();
    for &n in wanted {
        let (used, warning) = cap_threads(n, cores);
        warnings.extend(warning);
        if !counts.contains(&used) {
            counts.push(used);
        }
    }
    (counts, warnings)
}

/// `wanted` threads, at most `cores`; the warning says what was asked and what is used.
pub fn cap_threads(wanted: usize, cores: usize) -> (usize, Option<String>) {
    if wanted <= cores {
        return (wanted, None);
    }
    (
        cores,
        Some(format!(
            "{wanted} threads asked for but this machine has {cores} logical CPUs; using {cores} (more threads than CPUs makes the kernels' busy-waiting pool crawl)"
        )),
    )
}

/// The machine a run ran on.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SystemInfo {
    /// CPU model.
    pub cpu_model: String,
    /// Physical cores, where Linux says.
    pub physical_cores: Option<usize>,
    /// Logical CPUs.
    pub logical_cores: usize,
    /// Total memory.
    pub total_memory_bytes: u64,
    /// Operating system.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// SIMD features compiled into this binary (what the kernels can actually use).
    pub compiled_target_features: Vec<String>,
    /// Threads the run used.
    pub threads: usize,
    /// `RAYON_NUM_THREADS`, if set.
    pub rayon_num_threads_env: Option<String>,
}

impl SystemInfo {
    /// Reads the machine's facts for a run on `threads` threads.
    pub fn collect(threads: usize) -> Self {
        let mut sys = sysinfo::System::new();
        sys.refresh_cpu_all();
        sys.refresh_memory();
        let cpu_model = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu_model,
            physical_cores: sysinfo::System::physical_core_count(),
            logical_cores: sys.cpus().len(),
            total_memory_bytes: sys.total_memory(),
            os: sysinfo::System::long_os_version().unwrap_or_else(|| std::env::consts::OS.into()),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            arch: std::env::consts::ARCH.into(),
            compiled_target_features: compiled_target_features(),
            threads,
            rayon_num_threads_env: std::env::var(THREADS_ENV).ok(),
        }
    }
}

/// Total memory in bytes.
pub fn total_memory_bytes() -> u64 {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    sys.total_memory()
}

/// The SIMD extensions this binary was compiled to use. A build without
/// `-C target-cpu=native` shows only the baseline (e.g. sse2) and runs ~2.7x slower.
pub fn compiled_target_features() -> Vec<String> {
    let mut features = Vec::new();
    macro_rules! check {
        ($($f:literal),*) => { $( if cfg!(target_feature = $f) { features.push($f.to_string()); } )* };
    }
    check!(
        "sse2",
        "sse4.1",
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512vnni",
        "avx512bf16",
        "avxvnni",
        "neon",
        "sve",
        "dotprod",
        "i8mm",
        "fp16"
    );
    features
}

/// The process's peak resident memory so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What this binary was built from and with.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct BuildInfo {
    /// llm-bench's version.
    pub llm_bench_version: String,
    /// candle's version.
    pub candle_version: String,
    /// The commit it was built from.
    pub git_commit: String,
    /// RUSTFLAGS of the build.
    pub rustflags: String,
    /// Target features compiled in.
    pub target_features: Vec<String>,
}

impl BuildInfo {
    /// This build's facts.
    pub fn current() -> Self {
        Self {
            llm_bench_version: env!("CARGO_PKG_VERSION").into(),
            candle_version: env!("LLM_BENCH_CANDLE_VERSION").into(),
            git_commit: env!("LLM_BENCH_GIT_COMMIT").into(),
            rustflags: env!("LLM_BENCH_RUSTFLAGS").into(),
            target_features: compiled_target_features(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_sweeps_double_up_to_the_cpus_and_lists_are_capped() {
        assert_eq!(super::sweep_up_to(1), [1]);
        assert_eq!(super::sweep_up_to(2), [1, 2]);
        assert_eq!(super::sweep_up_to(6), [1, 2, 4, 6]);
        assert_eq!(super::sweep_up_to(16), [1, 2, 4, 8, 16]);
        let (counts, warnings) = super::cap_thread_list(&[1, 2, 4, 8], 2);
        assert_eq!(counts, [1, 2]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("4 threads"), "{warnings:?}");
    }

    #[test]
    fn thread_counts_above_the_cpus_are_capped_with_a_warning() {
        assert_eq!(super::cap_threads(2, 2), (2, None));
        assert_eq!(super::cap_threads(1, 8), (1, None));
        let (used, warning) = super::cap_threads(1000, 2);
        assert_eq!(used, 2);
        let warning = warning.unwrap();
        assert!(
            warning.contains("1000 threads") && warning.contains("using 2"),
            "{warning}"
        );
    }
}
