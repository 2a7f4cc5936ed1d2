//! What a phase of work costs the machine: a sampler thread reads the process's resident
//! memory every 50 ms, and CPU time is taken from the kernel's cumulative counters at the
//! start and end of the phase (exact, where 50 ms samples of 10 ms clock ticks would not be).
//!
//! Linux only (`/proc`); elsewhere the figures are `None` and the run still completes.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the sampler reads memory and CPU time.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// Resource use over one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Seconds measured.
    pub wall_seconds: f64,
    /// RSS samples taken (one at the start, one every 50 ms, one at the end).
    pub samples: usize,
    /// The highest resident memory seen.
    pub peak_rss_bytes: Option<u64>,
    /// The mean resident memory.
    pub mean_rss_bytes: Option<u64>,
    /// This process's CPU time over wall time, as `top` shows it: 100 = one core busy.
    pub process_cpu_percent: Option<f64>,
    /// How busy each logical CPU was over the phase (all processes), 0-100.
    pub per_core_busy_percent: Vec<f64>,
    /// CPU other processes (and the hypervisor's steal) took over the phase: all cores' busy
    /// time less this process's, in percent of one core (absent from older files). Over at
    /// least [`JUDGED_WINDOW`] from the phase's start: a shorter phase is followed by an idle wait.
    #[serde(default)]
    pub other_cpu_percent: Option<f64>,
    /// Time the hypervisor gave this VM's CPUs to others, in percent of one core (over the same
    /// window as `other_cpu_percent`).
    #[serde(default)]
    pub steal_percent: Option<f64>,
    /// Why the phase's timings may be distorted (see [`contention`]), or `None` when the
    /// machine was quiet enough.
    #[serde(default)]
    pub contention: Option<String>,
}

/// Others may use the cores a run left free; beyond that, this much of one core taken from the
/// run's own cores (or stolen by the hypervisor) marks the phase as contended.
pub const CONTENTION_PERCENT: f64 = 25.0;

/// The contention rule: a phase that asked for `threads` of `cores` logical CPUs is contended
/// when other processes used more than the `cores - threads` CPUs it left free plus 25% of
/// one core, or when the hypervisor stole more than 25% of one core. Returns why, or `None`.
pub fn contention(
    other_cpu_percent: f64,
    steal_percent: f64,
    threads: usize,
    cores: usize,
) -> Option<String> {
    let free = 100.0 * cores.saturating_sub(threads) as f64;
    if other_cpu_percent > free + CONTENTION_PERCENT {
        return Some(format!(
            "other processes used {:.0}% of a core while this run used {threads} of {cores} CPUs",
            other_cpu_percent
        ));
    }
    if steal_percent > CONTENTION_PERCENT {
        return Some(format!(
            "the hypervisor stole {steal_percent:.0}% of a core from this VM"
        ));
    }
    None
}

impl Usage {
    /// Applies [`contention`] for a phase that ran on `threads` threads.
    pub fn judge(&mut self, threads: usize) {
        let cores = self.per_core_busy_percent.len();
        self.contention = match (self.other_cpu_percent, cores) {
            (Some(others), cores) if cores > 0 => {
                contention(others, self.steal_percent.unwrap_or(0.0), threads, cores)
            }
            _ => None,
        };
    }
}

/// A running sampler; `finish` stops it and summarises.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    /// The RSS sampling thread; `None` when only CPU use is wanted.
    thread: Option<JoinHandle<Vec<u64>>>,
    started: Instant,
    process_cpu_start: Option<Duration>,
    cores_start: Vec<CoreTicks>,
}

impl Sampler {
    /// Starts sampling.
    pub fn start() -> Self {
        Self::new(true)
    }

    /// CPU use only (the process's and every core's), with no sampling thread: for timings as
    /// short as one decode step, where a thread waking every 50 ms would be part of the noise.
    pub fn cpu_only() -> Self {
        Self::new(false)
    }

    fn new(memory: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = memory.then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut rss = Vec::new();
                loop {
                    rss.extend(current_rss_bytes());
                    if stop.load(Ordering::Relaxed) {
                        return rss;
                    }
                    std::thread::park_timeout(SAMPLE_INTERVAL);
                }
            })
        });
        Self {
            stop,
            thread,
            started: Instant::now(),
            process_cpu_start: process_cpu_time(),
            cores_start: core_ticks(),
        }
    }

    /// Stops sampling and returns what it saw.
    pub fn finish(self) -> Usage {
        self.finish_judged_over(JUDGED_WINDOW)
    }

    /// As [`Sampler::finish`], with others' CPU use judged over at least `min_window`
    /// (`finish` uses [`JUDGED_WINDOW`]). `Duration::ZERO` judges the phase alone, however
    /// short, with no idle wait: for runs whose timings mean nothing (the benchmark smoke
    /// run), where the waits would be most of the time.
    pub fn finish_judged_over(self, min_window: Duration) -> Usage {
        let wall = self.started.elapsed();
        let process_cpu_end = process_cpu_time();
        let cores_end = core_ticks();
        self.stop.store(true, Ordering::Relaxed);
        // The thread only reads /proc; if it panicked, the phase still has its CPU figures.
        let rss = self.thread.map_or(vec![], |thread| {
            thread.thread().unpark();
            thread.join().unwrap_or_default()
        });
        let process_cpu_percent = match (self.process_cpu_start, process_cpu_end) {
            (Some(a), Some(b)) if wall > Duration::ZERO => {
                Some(100.0 * (b.saturating_sub(a)).as_secs_f64() / wall.as_secs_f64())
            }
            _ => None,
        };
        let per_core_busy_percent: Vec<f64> = if self.cores_start.len() == cores_end.len() {
            self.cores_start
                .iter()
                .zip(&cores_end)
                .map(|(a, b)| a.busy_percent_until(b))
                .collect()
        } else {
            vec![]
        };
        // Others' share is judged over at least `min_window`: a shorter phase is followed by
        // an idle wait, so that 10 ms ticks can tell a busy neighbour from this phase's work.
        let (others, steal) = if wall < min_window {
            std::thread::sleep(min_window - wall);
            let window = self.started.elapsed();
            let ours = self.process_cpu_start.zip(process_cpu_time());
            others_and_steal(&self.cores_start, &core_ticks(), ours, window)
        } else {
            let ours = self.process_cpu_start.zip(process_cpu_end);
            others_and_steal(&self.cores_start, &cores_end, ours, wall)
        };
        Usage {
            wall_seconds: wall.as_secs_f64(),
            samples: rss.len(),
            peak_rss_bytes: rss.iter().copied().max(),
            mean_rss_bytes: (!rss.is_empty())
                .then(|| (rss.iter().map(|&b| b as u128).sum::<u128>() / rss.len() as u128) as u64),
            process_cpu_percent,
            per_core_busy_percent,
            other_cpu_percent: others,
            steal_percent: steal,
            contention: None,
        }
    }
}

/// The shortest window over which other processes' CPU use is judged. `/proc/stat` counts each
/// core's time in 10 ms ticks, so over the 18 ms of a tiny model's latency phase a core reads
/// 0% or 100% busy and a busy neighbour could not be told from the phase itself (seen in CI:
/// a run beside two busy loops read as quiet). Over 250 ms two cores' counts are within 8% of
/// a core, well inside the 25% rule.
pub const JUDGED_WINDOW: Duration = Duration::from_millis(250);

/// Other processes' CPU use and the hypervisor's steal, in percent of one core, over `window`
/// between two readings of every core's ticks, given this process's CPU time at both ends
/// (`ours`). `None` when the readings cannot be compared.
fn others_and_steal(
    start: &[CoreTicks],
    end: &[CoreTicks],
    ours: Option<(Duration, Duration)>,
    window: Duration,
) -> (Option<f64>, Option<f64>) {
    if start.len() != end.len() || end.is_empty() || window.is_zero() {
        return (None, None);
    }
    let busy: f64 = start
        .iter()
        .zip(end)
        .map(|(a, b)| a.busy_percent_until(b))
        .sum();
    let steal: f64 = start
        .iter()
        .zip(end)
        .map(|(a, b)| a.steal_percent_until(b))
        .sum();
    let others = ours.map(|(a, b)| {
        let ours = 100.0 * b.saturating_sub(a).as_secs_f64() / window.as_secs_f64();
        (busy - ours).max(0.0)
    });
    (others, Some(steal))
}

/// Runs `work` under a sampler.
pub fn measure<T>(work: impl FnOnce() -> T) -> (T, Usage) {
    let sampler = Sampler::start();
    let out = work();
    (out, sampler.finish())
}

/// Hands memory the process has freed back to the OS, as far as glibc can: it keeps freed
/// heap pages for reuse. It cannot give back everything: measured here, after q4_1's batch-8
/// phase about 280 MiB stayed resident into q8_0's load, which is why a run records the RSS
/// before loading and reports the RSS each model adds rather than comparing raw peaks.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How busy the machine was over a short window, from `/proc`.
#[derive(Debug, Clone)]
pub struct Busy {
    /// CPU other processes used, in percent of one core.
    pub others_percent: f64,
    /// Time the hypervisor took, in percent of one core.
    pub steal_percent: f64,
    /// The three biggest other users: name, percent of one core.
    pub top: Vec<(String, f64)>,
}

impl Busy {
    /// The biggest users as text: `yes 98%, sshd 2%` (empty when none used 1% or more).
    pub fn busiest(&self) -> String {
        self.top
            .iter()
            .map(|(name, percent)| format!("{name} {percent:.0}%"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Samples the machine for `window` (before a run, or for `llm-bench doctor`).
pub fn busy_before_run(window: Duration) -> Option<Busy> {
    let per_process = || -> Vec<(u32, String, u64)> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != std::process::id())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (head, after) = stat.rsplit_once(')')?;
                let name = head.split_once('(')?.1.to_string();
                let fields: Vec<&str> = after.split_whitespace().collect();
                let ticks =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some((pid, name, ticks))
            })
            .collect()
    };
    let (cores_start, before) = (core_ticks(), per_process());
    let ours_start = process_cpu_time()?;
    std::thread::sleep(window);
    let (cores_end, after) = (core_ticks(), per_process());
    let ours = Some((ours_start, process_cpu_time()?));
    let (Some(others), Some(steal)) = others_and_steal(&cores_start, &cores_end, ours, window)
    else {
        return None;
    };
    let mut top: Vec<(String, f64)> = after
        .iter()
        .filter_map(|(pid, name, ticks)| {
            let (_, _, was) = before.iter().find(|(p, _, _)| p == pid)?;
            let percent = 100.0 * ticks.saturating_sub(*was) as f64
                / CLOCK_TICKS_PER_SECOND
                / window.as_secs_f64();
            (percent >= 1.0).then(|| (name.clone(), percent))
        })
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(3);
    Some(Busy {
        others_percent: others,
        steal_percent: steal,
        top,
    })
}

/// The process's resident memory now (Linux `VmRSS`), in bytes.
pub fn current_rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of this process (all threads), to the nanosecond where the C
/// library offers `CLOCK_PROCESS_CPUTIME_ID`; else from `/proc/self/stat`, in 10 ms ticks.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through a valid pointer.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } == 0 {
            return Some(Duration::new(
                u64::try_from(now.tv_sec).ok()?,
                u32::try_from(now.tv_nsec).ok()?,
            ));
        }
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / CLOCK_TICKS_PER_SECOND,
    ))
}

/// `USER_HZ`: 100 on every Linux architecture that matters here (x86, ARM).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
struct CoreTicks {
    busy: u64,
    steal: u64,
    total: u64,
}

impl CoreTicks {
    fn steal_percent_until(&self, later: &CoreTicks) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return 0.0;
        }
        100.0 * later.steal.saturating_sub(self.steal) as f64 / total as f64
    }

    fn busy_percent_until(&self, later: &CoreTicks) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return 0.0;
        }
        100.0 * later.busy.saturating_sub(self.busy) as f64 / total as f64
    }
}

/// Cumulative ticks of each logical CPU from `/proc/stat` (`cpu0`, `cpu1`, ...).
fn core_ticks() -> Vec<CoreTicks> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return vec![];
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(|line| {
            let ticks: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
            let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
            let total: u64 = ticks.iter().take(8).sum();
            Some(CoreTicks {
                busy: total - idle,
                steal: *ticks.get(7).unwrap_or(&0),
                total,
            })
        })
        .collect()
}

/// Held by unit tests that allocate or measure large buffers, so they do not overlap.
#[cfg(test)]
pub(crate) static MEMORY_HUNGRY_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule on figures `/proc` gave for two `run --quick --phases latency` on this 2-core
    /// VM (2 threads, q4_0): quiet, others 1.8% of a core and steal 0.0%; beside one `yes`,
    /// others 95.9% and steal 0.1% (decode fell from ~80 to 4.9 tokens/s).
    #[test]
    fn contention_is_others_beyond_the_free_cores_plus_a_quarter_core() {
        assert_eq!(contention(1.8, 0.0, 2, 2), None);
        let busy = contention(95.9, 0.1, 2, 2).expect("a busy neighbour is contention");
        assert!(
            busy.contains("96% of a core") && busy.contains("2 of 2 CPUs"),
            "{busy}"
        );
        // One thread on two cores leaves a core free: a neighbour using it is no contention.
        assert_eq!(contention(95.9, 0.1, 1, 2), None);
        assert!(contention(130.0, 0.0, 1, 2).is_some());
        assert!(contention(0.0, 40.0, 2, 2).unwrap().contains("stole 40%"));
        // From cumulative ticks: 2 cores, this process 150% of a core, cores 100% and 90% busy.
        let start = [
            CoreTicks {
                busy: 0,
                steal: 0,
                total: 0,
            },
            CoreTicks {
                busy: 0,
                steal: 0,
                total: 0,
            },
        ];
        let end = [
            CoreTicks {
                busy: 100,
                steal: 0,
                total: 100,
            },
            CoreTicks {
                busy: 90,
                steal: 30,
                total: 100,
            },
        ];
        let busy: Vec<f64> = start
            .iter()
            .zip(&end)
            .map(|(a, b)| a.busy_percent_until(b))
            .collect();
        let steal: f64 = start
            .iter()
            .zip(&end)
            .map(|(a, b)| a.steal_percent_until(b))
            .sum();
        let mut usage = Usage {
            wall_seconds: 1.0,
            samples: 2,
            peak_rss_bytes: None,
            mean_rss_bytes: None,
            process_cpu_percent: Some(150.0),
            other_cpu_percent: Some((busy.iter().sum::<f64>() - 150.0).max(0.0)),
            per_core_busy_percent: busy,
            steal_percent: Some(steal),
            contention: None,
        };
        // Others took 190 - 150 = 40% of a core: over 25% on 2 of 2 CPUs; on 1 of 2 it is
        // within the free core, but the hypervisor's 30% steal is still contention.
        usage.judge(2);
        let why = usage.contention.clone().unwrap();
        assert!(why.contains("used 40% of a core"), "{why}");
        usage.judge(1);
        let why = usage.contention.clone().unwrap();
        assert!(why.contains("stole 30%"), "{why}");
        usage.steal_percent = Some(0.0);
        usage.judge(1);
        assert_eq!(usage.contention, None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn rss_rises_when_a_large_buffer_is_touched() {
        // The bandwidth test frees big buffers; interleaved, it would hide this one's rise.
        let _alone = MEMORY_HUNGRY_TESTS
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        const BUFFER: usize = 256 << 20;
        let sampler = Sampler::start();
        std::thread::sleep(SAMPLE_INTERVAL * 2);
        let before = current_rss_bytes().unwrap();
        // Written page by page so every page is resident, not just reserved.
        let buffer = vec![1u8; BUFFER];
        std::thread::sleep(SAMPLE_INTERVAL * 3);
        let usage = sampler.finish();
        assert!(std::hint::black_box(&buffer)
            .iter()
            .step_by(4096)
            .all(|&b| b == 1));
        let peak = usage.peak_rss_bytes.unwrap();
        assert!(
            peak >= before + (BUFFER as u64) * 9 / 10,
            "peak {peak} should exceed the {before} before the allocation by ~{BUFFER}"
        );
        assert!(usage.mean_rss_bytes.unwrap() <= peak);
        assert!(usage.samples >= 4, "{} samples", usage.samples);
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn process_cpu_matches_the_kernels_own_clock() {
        fn cpu_clock() -> Duration {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: writes one timespec we own.
            unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
            Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
        }
        let (cpu_start, wall_start) = (cpu_clock(), Instant::now());
        let (_, usage) = measure(|| {
            let until = Instant::now() + Duration::from_millis(500);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        });
        // Other tests share this process, so the truth is the process's CPU clock over the
        // same span, not "one busy thread = 100%".
        let expected =
            100.0 * (cpu_clock() - cpu_start).as_secs_f64() / wall_start.elapsed().as_secs_f64();
        let cpu = usage.process_cpu_percent.unwrap();
        // /proc counts in 10 ms ticks: up to 2 ticks off over ~0.5 s.
        assert!(
            (cpu - expected).abs() < 12.0,
            "sampler {cpu:.1}% vs clock {expected:.1}%"
        );
        assert!(cpu > 30.0, "a spinning thread must show: {cpu}%");
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(usage.per_core_busy_percent.len(), cores);
        assert!(usage
            .per_core_busy_percent
            .iter()
            .all(|p| (0.0..=100.0).contains(p)));
    }
}
