//! The gate on real Criterion output: a tiny benchmark measured by Criterion itself in
//! interleaved rounds, unchanged (passes) and with 25% more work (fails, exit 1).

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

/// One short Criterion run of `mix(rounds)`, saved as the baseline `name`. Samples of about
/// a millisecond, shorter than the scheduler's time slice: when other processes want the
/// cores, most samples still run uninterrupted, and the median is theirs.
fn measure(dir: &Path, name: &str, rounds: u64) {
    let mut criterion = Criterion::default()
        .output_directory(dir)
        .sample_size(100)
        .nresamples(1000)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(200))
        .without_plots()
        .save_baseline(name.into());
    criterion.bench_function(ID, |b| b.iter(|| mix(black_box(rounds))));
    criterion.final_summary();
}

fn gate(dir: &Path, against: &str) -> std::process::Output {
    cli(
        &[
            "gate",
            "--paired",
            "--criterion-dir",
            dir.to_str().unwrap(),
            "--baseline",
            "a",
            "--against",
            against,
            "--threshold",
            "10%",
        ],
        &[],
    )
}

/// Interleaved rounds, as `scripts/bench-ab` makes them, so the test does not need a quiet
/// machine: drift between rounds (another process starting, a frequency change) slows both
/// sides of a round alike. `a` and `b` are the same code (an A/A comparison); `c` does 25%
/// more work. The order rotates each round, so no side always runs first.
#[test]
fn unchanged_passes_and_a_real_slowdown_fails_in_paired_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let work = 20_000;
    let sides = [("a", work), ("b", work), ("c", work * 5 / 4)];
    for round in 1..=5 {
        for i in 0..sides.len() {
            let (name, rounds) = sides[(i + round) % sides.len()];
            measure(dir.path(), &format!("{name}.{round}"), rounds);
        }
    }

    let out = gate(dir.path(), "b");
    assert_eq!(
        out.status.code(),
        Some(0),
        "unchanged code flagged:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );

    let out = gate(dir.path(), "c");
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
    // The rounds column says how many pairs the estimate rests on.
    assert!(row.split_whitespace().any(|cell| cell == "5"), "{row}");
}
