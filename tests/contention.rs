//! Contention: a run beside CPU-bound processes is flagged, and its bandwidth not cached. A
//! test binary of its own, so the busy processes slow no other test (and flag none).

mod common;

use common::{cli, stderr, tiny_config, write_tiny_llama};
use llm_bench::results::Results;

/// CPU-bound processes killed when dropped (also when the test fails).
struct Busy(Vec<std::process::Child>);

impl Busy {
    /// One shell busy loop per logical CPU.
    fn on_every_cpu(cores: usize) -> Self {
        Busy(
            (0..cores)
                .map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A run beside CPU-bound processes is flagged as contended in results.json and the report,
/// and the memory bandwidth it measured is not cached for later runs.
#[test]
fn a_run_beside_busy_processes_is_flagged_as_contended_and_caches_no_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tiny_llama(&model, &tiny_config(257, 512));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _busy = Busy::on_every_cpu(cores);
    let out_dir = dir.path().join("out");
    let threads = cores.to_string();
    let out = cli(
        &[
            "run",
            "--quick",
            "--phases",
            "latency",
            "--max-new-tokens",
            "8",
            "--threads",
            &threads,
            "--model",
            model.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("machine is busy before the run starts"),
        "{err}"
    );
    assert!(err.contains("CONTENDED"), "{err}");
    let results = Results::load(&out_dir.join("results.json")).unwrap();
    let latency = results.runs[0].latency.as_ref().unwrap();
    let why = latency.resources.contention.as_deref().expect("contended");
    assert!(why.contains("other processes used"), "{why}");
    assert!(latency.resources.other_cpu_percent.unwrap() > 25.0);
    let bandwidth = results.memory_bandwidth.as_ref().unwrap();
    assert!(bandwidth.contention.is_some());
    assert!(
        !out_dir.join("memory-bandwidth.json").exists(),
        "a contended figure was cached"
    );
    let report = cli(
        &["report", out_dir.join("results.json").to_str().unwrap()],
        &[],
    );
    assert!(report.status.success(), "{}", stderr(&report));
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("> **Contended**"), "{markdown}");
}

/// `llm-bench doctor` names a CPU-bound neighbour, says what to do, and exits 1.
#[test]
fn doctor_names_a_busy_neighbour_and_exits_1() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _busy = Busy::on_every_cpu(cores);
    let out = cli(&["doctor"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("| other processes |"))
        .unwrap_or_else(|| panic!("no other-processes check: {text}"));
    assert!(row.contains("WARN") && row.contains("sh "), "{row}");
    for check in [
        "threads",
        "CPU governor",
        "turbo boost",
        "steal",
        "memory",
        "build",
        "kernels",
    ] {
        assert!(
            text.contains(&format!("| {check} |")),
            "no {check} check: {text}"
        );
    }
}

/// A phase far shorter than the kernel's 10 ms CPU ticks (here: none at all) beside busy
/// processes is still judged contended: others' share is read over `JUDGED_WINDOW`, not over
/// the phase alone, where the tick counts would read 0% or 100% by chance.
#[test]
fn a_phase_shorter_than_a_clock_tick_is_judged_over_a_long_enough_window() {
    use llm_bench::resources::{Sampler, JUDGED_WINDOW};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _busy = Busy::on_every_cpu(cores);
    // Let the busy loops start before the phase begins.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let started = std::time::Instant::now();
    let mut usage = Sampler::cpu_only().finish();
    assert!(started.elapsed() >= JUDGED_WINDOW);
    assert!(usage.wall_seconds < JUDGED_WINDOW.as_secs_f64());
    usage.judge(cores);
    assert!(usage.other_cpu_percent.unwrap() > 50.0, "{usage:?}");
    let why = usage.contention.expect("contended");
    assert!(why.contains("other processes used"), "{why}");
}
