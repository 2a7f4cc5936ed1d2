//! The gate on real Criterion output: a tiny benchmark measured by Criterion itself, saved as
//! a baseline, measured again unchanged (passes), then with 25% more work (fails, exit 1).

mod common;

use common::{cli, stderr};
use criterion::Criterion;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const ID: &str = "probe/mix";

/// Pure integer work, linear in `rounds`: more rounds is a real slowdown, not a sleep.
fn mix(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..rounds {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(i ^ (x >> 29));
    }
    x
}

enum Save {
    As(&'static str),
    ComparedTo(&'static str),
}

fn measure(dir: &Path, save: Save, rounds: u64) {
    let criterion = Criterion::default()
        .output_directory(dir)
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .without_plots();
    let mut criterion = match save {
        Save::As(name) => criterion.save_baseline(name.into()),
        Save::ComparedTo(name) => criterion.retain_baseline(name.into(), true),
    };
    criterion.bench_function(ID, |b| b.iter(|| mix(black_box(rounds))));
    criterion.final_summary();
}

fn gate(dir: &Path) -> std::process::Output {
    // 10%: twice the default, so a loaded CI machine does not flag the unchanged rerun; the
    // 25% slowdown is still far beyond it.
    cli(
        &[
            "gate",
            "--criterion-dir",
            dir.to_str().unwrap(),
            "--baseline",
            "main",
            "--against",
            "new",
            "--threshold",
            "10%",
        ],
        &[],
    )
}

#[test]
fn unchanged_passes_and_a_real_slowdown_fails() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = 20_000;
    measure(dir.path(), Save::As("main"), rounds);

    measure(dir.path(), Save::ComparedTo("main"), rounds);
    let out = gate(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "unchanged run flagged:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );

    measure(dir.path(), Save::ComparedTo("main"), rounds * 5 / 4);
    let out = gate(dir.path());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "25% slowdown passed:\n{table}{}",
        stderr(&out)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(ID))
        .unwrap_or_else(|| panic!("{ID} missing:\n{table}"));
    assert!(row.contains("REGRESSED"), "{row}");
}
