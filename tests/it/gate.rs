//! The gate's rules on hand-built Criterion files, and its exit codes.

use crate::common;

use common::{assert_fails_with, cli, stderr};
use llm_bench::gate::{self, Verdict};
use std::path::Path;

/// Writes `<dir>/<id>/<run>/{benchmark,sample,estimates}.json` as Criterion does, with one
/// iteration per sample taking `times_ns`.
fn write_run(dir: &Path, id: &str, run: &str, times_ns: &[f64]) {
    let run_dir = dir.join(id).join(run);
    std::fs::create_dir_all(&run_dir).unwrap();
    let (group, rest) = id.split_once('/').unwrap();
    let benchmark = serde_json::json!({"group_id": group, "function_id": rest, "value_str": null,
        "throughput": {"Elements": 64}, "full_id": id, "directory_name": id, "title": id});
    std::fs::write(run_dir.join("benchmark.json"), benchmark.to_string()).unwrap();
    let iters = vec![1.0; times_ns.len()];
    let sample = serde_json::json!({"sampling_mode": "Flat", "iters": iters, "times": times_ns});
    std::fs::write(run_dir.join("sample.json"), sample.to_string()).unwrap();
    std::fs::write(run_dir.join("estimates.json"), "{}").unwrap();
}

/// 30 samples around `median` with a deterministic relative spread of +-`spread`.
fn samples(median: f64, spread: f64, phase: usize) -> Vec<f64> {
    (0..30)
        .map(|i| {
            let wobble = (((i * 7 + phase * 13) % 30) as f64 / 29.0 - 0.5) * 2.0; // -1..1
            median * (1.0 + spread * wobble)
        })
        .collect()
}

fn gate_cli(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "gate",
        "--criterion-dir",
        dir.to_str().unwrap(),
        "--baseline",
        "main",
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

/// `gate --paired --baseline a --against AGAINST` over `dir`, plus `extra`.
fn paired_cli(dir: &Path, against: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "gate",
        "--paired",
        "--criterion-dir",
        dir.to_str().unwrap(),
        "--baseline",
        "a",
        "--against",
        against,
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

#[test]
fn verdicts_follow_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("g/clear-regression", 1.30, 0.01, Verdict::Regressed, true),
        ("g/clear-improvement", 0.70, 0.01, Verdict::Improved, true),
        (
            "g/noise-within-threshold",
            1.00,
            0.04,
            Verdict::Unchanged,
            false,
        ),
        (
            "g/significant-below-threshold",
            1.03,
            0.002,
            Verdict::Unchanged,
            true,
        ),
        // Big median shift but so noisy that it is not significant: not a regression.
        ("g/big-but-noisy", 1.10, 0.9, Verdict::Unchanged, false),
    ];
    for (id, factor, spread, _, _) in cases {
        write_run(d, id, "main", &samples(1e6, spread, 0));
        write_run(d, id, "new", &samples(1e6 * factor, spread, 1));
    }
    let base = gate::read_run(d, "main").unwrap();
    let new = gate::read_run(d, "new").unwrap();
    let report = gate::compare("main", &base, "new", &new, 0.05, |_| true);
    for (id, factor, _, verdict, significant) in cases {
        let c = report.comparisons.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.verdict, verdict, "{id}: {c:?}");
        assert_eq!(c.significant, significant, "{id}: {c:?}");
        assert!(
            (c.change - (factor - 1.0)).abs() < 0.02,
            "{id}: change {}",
            c.change
        );
        assert!(
            c.change_ci_low <= c.change && c.change <= c.change_ci_high,
            "{id}: {c:?}"
        );
        let tokens_per_s = 64.0 / (c.new_median_ns / 1e9);
        assert!((c.new_throughput_per_s.unwrap() - tokens_per_s).abs() < 1e-6);
    }
    assert_eq!(
        report.comparisons[0].id, "g/clear-regression",
        "worst first"
    );
    assert_eq!(report.comparisons.last().unwrap().id, "g/clear-improvement");
}

#[test]
fn exit_codes_and_one_sided_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "decode/m@q4_0/512", "main", &samples(2e7, 0.01, 0));
    write_run(d, "decode/m@q4_0/512", "new", &samples(2e7 * 1.25, 0.01, 1));
    write_run(d, "decode/m@q4_0/0", "main", &samples(1e7, 0.01, 0));
    write_run(d, "decode/m@q4_0/0", "new", &samples(1e7, 0.01, 1));
    write_run(d, "prefill/m@q4_0/16", "main", &samples(1e7, 0.01, 0));
    write_run(d, "prefill/m@q4_0/64", "new", &samples(1e7, 0.01, 0));

    let out = gate_cli(d, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let first_row = table.lines().nth(2).unwrap();
    assert!(
        first_row.starts_with("decode/m@q4_0/512") && first_row.contains("REGRESSED"),
        "{table}"
    );
    assert!(table.contains("only in main: prefill/m@q4_0/16"), "{table}");
    assert!(table.contains("only in new: prefill/m@q4_0/64"), "{table}");

    // The slowdown is under a 30% threshold, and the filter can leave it out.
    assert_eq!(gate_cli(d, &["--threshold", "30%"]).status.code(), Some(0));
    assert_eq!(gate_cli(d, &["--filter", "/0$"]).status.code(), Some(0));

    let json_out = gate_cli(
        d,
        &[
            "--format",
            "json",
            "--export",
            "bmf",
            "--export-to",
            d.join("bmf.json").to_str().unwrap(),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["comparisons"][0]["verdict"], "regressed");
    let bmf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("bmf.json")).unwrap()).unwrap();
    let latency = &bmf["decode/m@q4_0/512"]["latency"];
    assert!(
        (latency["value"].as_f64().unwrap() - 2.5e7).abs() < 2.5e7 * 0.02,
        "{bmf}"
    );
    assert!(latency["lower_value"].as_f64() <= latency["value"].as_f64());
    assert!(
        bmf["decode/m@q4_0/512"]["throughput"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let md = gate_cli(d, &["--format", "markdown"]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("| decode/m@q4_0/512 |"));
}

#[test]
fn bad_input_exits_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/a", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/a", "new", &samples(1e6, 0.01, 1));
    let out = gate_cli(d, &["--against", "nightly"]);
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(
        &out,
        &[
            "no Criterion run named \"nightly\"",
            "--save-baseline nightly",
        ],
    );

    let out = cli(
        &[
            "gate",
            "--criterion-dir",
            d.join("absent").to_str().unwrap(),
            "--baseline",
            "main",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["absent", "cargo bench"]);

    std::fs::write(
        d.join("g/a/new/sample.json"),
        "{\"iters\": [1.0], \"times\": ",
    )
    .unwrap();
    let out = gate_cli(d, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["g/a/new/sample.json", "not a valid Criterion JSON"]);

    for bad in ["0", "-5%", "fast"] {
        let out = gate_cli(d, &[&format!("--threshold={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert_fails_with(&out, &["--threshold"]);
    }
}

#[test]
fn a_bare_threshold_above_one_is_refused_with_both_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/a", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/a", "new", &samples(1e6, 0.01, 1));
    let out = gate_cli(d, &["--threshold", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert_fails_with(&out, &["--threshold", "5%", "0.05", "500%"]);
    for ok in ["5%", "0.05"] {
        assert_eq!(
            gate_cli(d, &["--threshold", ok]).status.code(),
            Some(0),
            "{ok}"
        );
    }
}

#[test]
fn sample_times_of_zero_or_below_are_refused_not_compared() {
    for (times, needle) in [
        (vec![0.0; 30], "times[0] is 0"),
        (vec![-5.0; 30], "times[0] is -5"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_run(d, "g/a", "main", &samples(1e6, 0.01, 0));
        write_run(d, "g/a", "new", &times);
        let out = gate_cli(d, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_fails_with(&out, &["g/a/new/sample.json", needle, "positive"]);
    }
}

/// `sample.json` with these iteration counts and times, beside a sound `main` run.
fn gate_on_sample(iters: serde_json::Value, times: serde_json::Value) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/a", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/a", "new", &[1.0]);
    let sample = serde_json::json!({"sampling_mode": "Flat", "iters": iters, "times": times});
    std::fs::write(d.join("g/a/new/sample.json"), sample.to_string()).unwrap();
    gate_cli(d, &[])
}

#[test]
fn overflowing_fractional_and_oversized_samples_are_refused() {
    let huge = vec![1.7e308; 30];
    let started = std::time::Instant::now();
    for (iters, times, needles) in [
        // Medians of these overflow to inf and their change to NaN: "NaN ns ... unchanged".
        (
            serde_json::json!(vec![1.0; 30]),
            serde_json::json!(huge),
            &["times[0] / iters[0]", "not a measurement"][..],
        ),
        (
            serde_json::json!(vec![1e-300; 30]),
            serde_json::json!(vec![1e6; 30]),
            &["iters[0] is 1e-300", "whole numbers"][..],
        ),
        (
            serde_json::json!(vec![0.5; 30]),
            serde_json::json!(vec![1e6; 30]),
            &["iters[0] is 0.5"][..],
        ),
        // A million samples a side would keep the bootstrap busy for a minute.
        (
            serde_json::json!(vec![1.0; 1_000_000]),
            serde_json::json!(vec![1e6; 1_000_000]),
            &["1000000 samples", "at most 100000", "sample_size"][..],
        ),
    ] {
        let out = gate_on_sample(iters, times);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_fails_with(&out, &[&["g/a/new/sample.json"][..], needles].concat());
    }
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn two_folders_with_one_full_id_are_refused_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/a", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/a", "new", &samples(1e6, 0.01, 1));
    // A second folder (an old Criterion version's directory name) claiming the same id.
    write_run(d, "g/a_old", "new", &samples(2e6, 0.01, 1));
    let text = std::fs::read_to_string(d.join("g/a_old/new/benchmark.json")).unwrap();
    let text = text.replace("\"full_id\":\"g/a_old\"", "\"full_id\":\"g/a\"");
    std::fs::write(d.join("g/a_old/new/benchmark.json"), text).unwrap();
    let out = gate_cli(d, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_fails_with(
        &out,
        &["full_id \"g/a\"", "two folders", "remove the stale one"],
    );
}

#[test]
fn rounds_named_ambiguously_are_refused_not_collapsed() {
    for stray in ["a.01", "a.+1"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in 1..=3 {
            write_run(d, "g/x", &format!("a.{k}"), &samples(1e6, 0.01, k));
            write_run(d, "g/x", &format!("b.{k}"), &samples(1e6, 0.01, k));
        }
        write_run(d, "g/x", stray, &samples(3e6, 0.01, 9));
        let out = paired_cli(d, "b", &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_fails_with(
            &out,
            &[
                &format!("\"{stray}\""),
                "round 1",
                "a.1",
                "rename or remove",
            ],
        );
    }
}

#[test]
fn a_closed_stdout_keeps_the_verdict_as_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/slow", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/slow", "new", &samples(1.5e6, 0.01, 1));
    for (format, expected) in [("table", 1), ("json", 1), ("markdown", 1)] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-bench"))
            .args([
                "gate",
                "--criterion-dir",
                d.to_str().unwrap(),
                "--baseline",
                "main",
            ])
            .args(["--format", format])
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(expected), "{}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
}

/// Writes a usage note beside a run, as llm-bench's benches do, recorded on a machine where
/// another process took `others` percent of a core while the benchmark used both of 2 CPUs.
fn write_usage(dir: &Path, id: &str, run: &str, others: f64) {
    let mut usage = serde_json::json!({"wall_seconds": 1.0, "samples": 0,
        "peak_rss_bytes": null, "mean_rss_bytes": null, "process_cpu_percent": 190.0,
        "per_core_busy_percent": [100.0, 100.0], "other_cpu_percent": others,
        "steal_percent": 0.0, "contention": null});
    usage["contention"] = llm_bench::resources::contention(others, 0.0, 2, 2).into();
    std::fs::write(
        dir.join(id).join(run).join("llm-bench-usage.json"),
        usage.to_string(),
    )
    .unwrap();
}

/// Six rounds on a machine that drifts 10% slower each round; `b` is 6% slower than `a` in
/// every round, `same` is `a` again. Unpaired, the drift hides the 6%; paired, it cancels.
fn write_drifting_rounds(d: &Path, id: &str) {
    for k in 1..=6 {
        let drift = 1.0 + 0.1 * k as f64;
        write_run(d, id, &format!("a.{k}"), &samples(1e6 * drift, 0.01, k));
        write_run(
            d,
            id,
            &format!("b.{k}"),
            &samples(1.06e6 * drift, 0.01, k + 1),
        );
        write_run(
            d,
            id,
            &format!("same.{k}"),
            &samples(1e6 * drift, 0.01, k + 2),
        );
    }
}

#[test]
fn paired_rounds_see_through_drift_between_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_drifting_rounds(d, "g/drifting");
    let (a, b) = (
        gate::read_rounds(d, "a").unwrap(),
        gate::read_rounds(d, "b").unwrap(),
    );
    assert_eq!(a.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let report = gate::compare_paired("a", &a, "b", &b, 0.03, |_| true).unwrap();
    let c = &report.comparisons[0];
    assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
    assert_eq!(c.rounds, Some(6));
    assert!((c.change - 0.06).abs() < 0.005, "{c:?}");
    assert!(c.change_ci_low > 0.03 && c.change_ci_high < 0.09, "{c:?}");
    // Two separate runs of the same code, rounds 1 and 6, read the drift as a 50% slowdown.
    let unpaired = gate::compare_one(&a[&1]["g/drifting"], &a[&6]["g/drifting"], 0.03);
    assert_eq!(unpaired.verdict, Verdict::Regressed, "{unpaired:?}");

    // A/A through the CLI: exit 0 and a rounds column.
    let out = paired_cli(d, "same", &["--threshold", "3%"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", stderr(&out));
    assert!(
        table.contains("per-round ratios") && table.contains("rounds"),
        "{table}"
    );
    let out = paired_cli(d, "b", &["--threshold", "3%", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["paired"], true);
    assert_eq!(json["comparisons"][0]["rounds"], 6);
}

#[test]
fn paired_mode_refuses_too_few_rounds_and_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for k in 1..=2 {
        write_run(d, "g/x", &format!("a.{k}"), &samples(1e6, 0.01, k));
        write_run(d, "g/x", &format!("b.{k}"), &samples(1e6, 0.01, k));
    }
    for (against, needles) in [
        ("b", &["at least 3 rounds", "found 2", "ROUNDS=3"][..]),
        ("nightly", &["nightly.1", "scripts/bench-ab"][..]),
    ] {
        let out = paired_cli(d, against, &[]);
        assert_fails_with(&out, needles);
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn contended_measurements_are_marked_in_the_gate_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, "g/quiet", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/quiet", "new", &samples(1e6, 0.01, 1));
    write_usage(d, "g/quiet", "new", 3.0);
    write_run(d, "g/busy", "main", &samples(1e6, 0.01, 0));
    write_run(d, "g/busy", "new", &samples(1.5e6, 0.01, 1));
    write_usage(d, "g/busy", "new", 97.0);
    let out = gate_cli(d, &["--against", "new"]);
    let table = String::from_utf8_lossy(&out.stdout);
    // The verdict stands (a contended regression still fails), but it is marked and explained.
    assert_eq!(out.status.code(), Some(1), "{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(
        row("g/busy").contains("REGRESSED, CONTENDED (new)"),
        "{table}"
    );
    assert!(!row("g/quiet").contains("CONTENDED"), "{table}");
    assert!(
        table.contains("contended: g/busy (new): other processes used 97% of a core"),
        "{table}"
    );
    // A note older than the samples it sits beside (a later run replaced them) is ignored.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_run(d, "g/busy", "new", &samples(1.5e6, 0.01, 1));
    let table = String::from_utf8_lossy(&gate_cli(d, &["--against", "new"]).stdout).to_string();
    assert!(!table.contains("CONTENDED"), "{table}");
}
