//! The regression gate: compares two of Criterion's saved runs and says, per benchmark id,
//! whether it regressed, improved or is unchanged.
//!
//! The rule: per-iteration times come from each side's `sample.json`; the change is
//! `median(new) / median(base) - 1`, with a 95% bootstrap confidence interval (2,000
//! resamples, seeded). **Regressed**: slower by more than the threshold *and* the interval
//! lies wholly above 0 (the slowdown is not noise). **Improved**: the mirror image.
//! Everything else is **unchanged**, marked when the change is significant but within the
//! threshold.

pub mod bmf;
pub mod criterion_files;

use crate::stats::{bootstrap_median, bootstrap_median_change, median};
pub use criterion_files::{read_run, Measurement, Throughput};
use serde::Serialize;
use std::collections::BTreeMap;

const RESAMPLES: usize = 2000;
const SEED: u64 = 0x6A7E;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub id: String,
    pub base_median_ns: f64,
    pub new_median_ns: f64,
    /// `new / base - 1` of the medians: +0.25 is 25% slower.
    pub change: f64,
    pub change_ci_low: f64,
    pub change_ci_high: f64,
    /// The interval excludes 0.
    pub significant: bool,
    pub verdict: Verdict,
    /// Elements (tokens, multiply-adds) or bytes per second at the median, where declared.
    pub base_throughput_per_s: Option<f64>,
    pub new_throughput_per_s: Option<f64>,
    pub throughput_unit: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub baseline: String,
    pub against: String,
    pub threshold: f64,
    /// Worst regression first.
    pub comparisons: Vec<Comparison>,
    pub only_in_baseline: Vec<String>,
    pub only_in_against: Vec<String>,
}

impl GateReport {
    pub fn regressed(&self) -> impl Iterator<Item = &Comparison> {
        self.comparisons
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
    }
}

pub fn compare_one(base: &Measurement, new: &Measurement, threshold: f64) -> Comparison {
    let (base_median, new_median) = (
        median(&base.per_iteration_ns).unwrap_or(f64::NAN),
        median(&new.per_iteration_ns).unwrap_or(f64::NAN),
    );
    let change = new_median / base_median - 1.0;
    let (lo, hi) = bootstrap_median_change(
        &base.per_iteration_ns,
        &new.per_iteration_ns,
        RESAMPLES,
        SEED,
    )
    .unwrap_or((f64::NAN, f64::NAN));
    let significant = lo > 0.0 || hi < 0.0;
    let verdict = if change > threshold && lo > 0.0 {
        Verdict::Regressed
    } else if change < -threshold && hi < 0.0 {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    let rate = |m: &Measurement, median_ns: f64| {
        m.throughput.map(|t| t.amount() as f64 / (median_ns / 1e9))
    };
    Comparison {
        id: new.id.clone(),
        base_median_ns: base_median,
        new_median_ns: new_median,
        change,
        change_ci_low: lo,
        change_ci_high: hi,
        significant,
        verdict,
        base_throughput_per_s: rate(base, base_median),
        new_throughput_per_s: rate(new, new_median),
        throughput_unit: new.throughput.map(|t| t.unit()),
    }
}

/// Compares every id both runs have (optionally only those `filter` keeps).
pub fn compare(
    baseline: &str,
    base: &BTreeMap<String, Measurement>,
    against: &str,
    new: &BTreeMap<String, Measurement>,
    threshold: f64,
    filter: impl Fn(&str) -> bool,
) -> GateReport {
    let mut comparisons: Vec<Comparison> = base
        .iter()
        .filter(|(id, _)| filter(id))
        .filter_map(|(id, b)| new.get(id).map(|n| compare_one(b, n, threshold)))
        .collect();
    let rank = |c: &Comparison| match c.verdict {
        Verdict::Regressed => 0,
        Verdict::Unchanged => 1,
        Verdict::Improved => 2,
    };
    comparisons.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.change.total_cmp(&a.change)));
    let one_sided = |x: &BTreeMap<String, Measurement>, y: &BTreeMap<String, Measurement>| {
        x.keys()
            .filter(|id| filter(id) && !y.contains_key(*id))
            .cloned()
            .collect()
    };
    GateReport {
        baseline: baseline.into(),
        against: against.into(),
        threshold,
        only_in_baseline: one_sided(base, new),
        only_in_against: one_sided(new, base),
        comparisons,
    }
}

/// Median per-iteration time and its 95% bootstrap interval, in nanoseconds.
pub fn read_run_summary(m: &Measurement) -> (f64, f64, f64) {
    let med = median(&m.per_iteration_ns).unwrap_or(f64::NAN);
    let (lo, hi) = bootstrap_median(&m.per_iteration_ns, RESAMPLES, SEED).unwrap_or((med, med));
    (med, lo, hi)
}
