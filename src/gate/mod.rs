//! The regression gate: compares two of Criterion's saved runs and says, per benchmark id,
//! whether it regressed, improved or is unchanged.
//!
//! The rule: per-iteration times come from each side's `sample.json`; the change is
//! `median(new) / median(base) - 1`, with a 95% bootstrap confidence interval (2,000
//! resamples, seeded). **Regressed**: slower by more than the threshold *and* the interval
//! lies wholly above 0 (the slowdown is not noise). **Improved**: the mirror image.
//! Everything else is **unchanged**, marked when the change is significant but within the
//! threshold.
//!
//! Paired mode ([`compare_paired`]) reads interleaved rounds (`<base>.1`, `<new>.1`,
//! `<base>.2`, … as `scripts/bench-ab` saves them): each round gives one ratio of the two
//! sides' medians, the change is the median of those ratios and the interval comes from
//! resampling rounds, so drift between rounds hits both sides and cancels. Same verdict rule.

pub mod criterion_files;

use crate::error::{Error, Result};
use crate::stats::{bootstrap_median, bootstrap_median_change, median, paired_median_change};
pub use criterion_files::{read_rounds, read_run, Measurement, Throughput};
use serde::Serialize;
use std::collections::BTreeMap;

const RESAMPLES: usize = 2000;
const SEED: u64 = 0x6A7E;

/// A benchmark's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Slower beyond the threshold, with an interval excluding no change.
    Regressed,
    /// Faster beyond the threshold likewise.
    Improved,
    /// Within the threshold, or within the noise.
    Unchanged,
}

/// One benchmark in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Its id.
    pub id: String,
    /// The base run's median time.
    pub base_median_ns: f64,
    /// The new run's median time.
    pub new_median_ns: f64,
    /// `new / base - 1` of the medians: +0.25 is 25% slower.
    pub change: f64,
    /// 95% bootstrap interval of `change`: its low end.
    pub change_ci_low: f64,
    /// Its high end.
    pub change_ci_high: f64,
    /// The interval excludes 0.
    pub significant: bool,
    /// Regressed, improved or unchanged.
    pub verdict: Verdict,
    /// Elements (tokens, multiply-adds) or bytes per second at the median, where declared.
    pub base_throughput_per_s: Option<f64>,
    /// The new run's rate at its median.
    pub new_throughput_per_s: Option<f64>,
    /// The rates' unit.
    pub throughput_unit: Option<&'static str>,
    /// Paired mode: the rounds both sides have (the medians above are medians over rounds).
    pub rounds: Option<usize>,
    /// Why a side's timings may be distorted by other processes (llm-bench's benches record
    /// the machine's load beside every benchmark), e.g. "2 of 6 rounds: other processes …".
    pub base_contention: Option<String>,
    /// Why the new side's timings may be distorted.
    pub new_contention: Option<String>,
}

/// Paired mode needs this many rounds: fewer give no usable interval.
pub const MIN_ROUNDS: usize = 3;

/// The verdict rule, shared by both modes.
fn verdict(change: f64, lo: f64, hi: f64, threshold: f64) -> Verdict {
    if change > threshold && lo > 0.0 {
        Verdict::Regressed
    } else if change < -threshold && hi < 0.0 {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

fn rate(m: &Measurement, median_ns: f64) -> Option<f64> {
    m.throughput.map(|t| t.amount() as f64 / (median_ns / 1e9))
}

/// "k of n rounds: why" for the rounds that were contended, or `None`.
fn contended_rounds<'a>(sides: impl Iterator<Item = &'a Measurement>) -> Option<String> {
    let notes: Vec<Option<&str>> = sides.map(Measurement::contention).collect();
    let first = notes.iter().flatten().next()?;
    let count = notes.iter().flatten().count();
    Some(if notes.len() == 1 {
        first.to_string()
    } else {
        format!("{count} of {} rounds: {first}", notes.len())
    })
}

/// The gate's verdicts on two runs.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// The base run's name.
    pub baseline: String,
    /// The run under test.
    pub against: String,
    /// The change that counts as a regression (0.05 = 5%).
    pub threshold: f64,
    /// Compared round by round (`--paired`) rather than as two runs.
    pub paired: bool,
    /// Worst regression first.
    pub comparisons: Vec<Comparison>,
    /// Benchmarks only the base run has.
    pub only_in_baseline: Vec<String>,
    /// Benchmarks only the run under test has.
    pub only_in_against: Vec<String>,
}

impl GateReport {
    /// The regressed benchmarks.
    pub fn regressed(&self) -> impl Iterator<Item = &Comparison> {
        self.comparisons
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
    }
}

/// The verdict on one benchmark in two runs.
pub fn compare_one(base: &Measurement, new: &Measurement, threshold: f64) -> Comparison {
    let (base_median, new_median) = (
        median(&base.per_iteration_ns).unwrap_or(f64::NAN),
        median(&new.per_iteration_ns).unwrap_or(f64::NAN),
    );
    let (lo, hi) = bootstrap_median_change(
        &base.per_iteration_ns,
        &new.per_iteration_ns,
        RESAMPLES,
        SEED,
    )
    .unwrap_or((f64::NAN, f64::NAN));
    let estimate = Estimate {
        base_median,
        new_median,
        change: new_median / base_median - 1.0,
        lo,
        hi,
    };
    estimate.judged(&new.id, threshold, &[(base, new)], None)
}

/// A change and its interval, before the verdict.
struct Estimate {
    base_median: f64,
    new_median: f64,
    change: f64,
    lo: f64,
    hi: f64,
}

impl Estimate {
    /// The comparison of `pairs` (one pair of runs, or the rounds), with the verdict, the
    /// throughput at the medians (as the last pair declares it) and any contention.
    fn judged(
        self,
        id: &str,
        threshold: f64,
        pairs: &[(&Measurement, &Measurement)],
        rounds: Option<usize>,
    ) -> Comparison {
        let (base, new) = pairs[pairs.len() - 1];
        let Estimate {
            base_median,
            new_median,
            change,
            lo,
            hi,
        } = self;
        Comparison {
            id: id.into(),
            base_median_ns: base_median,
            new_median_ns: new_median,
            change,
            change_ci_low: lo,
            change_ci_high: hi,
            significant: lo > 0.0 || hi < 0.0,
            verdict: verdict(change, lo, hi, threshold),
            base_throughput_per_s: rate(base, base_median),
            new_throughput_per_s: rate(new, new_median),
            throughput_unit: new.throughput.map(|t| t.unit()),
            rounds,
            base_contention: contended_rounds(pairs.iter().map(|p| p.0)),
            new_contention: contended_rounds(pairs.iter().map(|p| p.1)),
        }
    }
}

/// One id measured in rounds: `pairs[k]` is round k's (base, new).
pub fn compare_rounds(
    id: &str,
    pairs: &[(&Measurement, &Measurement)],
    threshold: f64,
) -> Option<Comparison> {
    let medians: Vec<(f64, f64)> = pairs
        .iter()
        .map(|(b, n)| Some((median(&b.per_iteration_ns)?, median(&n.per_iteration_ns)?)))
        .collect::<Option<_>>()?;
    let (change, lo, hi) = paired_median_change(&medians, RESAMPLES, SEED)?;
    let (base_medians, new_medians): (Vec<f64>, Vec<f64>) = medians.iter().copied().unzip();
    let (base_median, new_median) = (median(&base_medians)?, median(&new_medians)?);
    if pairs.is_empty() {
        return None;
    }
    let estimate = Estimate {
        base_median,
        new_median,
        change,
        lo,
        hi,
    };
    Some(estimate.judged(id, threshold, pairs, Some(pairs.len())))
}

/// One saved run: its measurements by id.
pub type Run = BTreeMap<String, Measurement>;

/// A run with the name Criterion saved it under (`cargo bench -- --save-baseline NAME`).
pub struct NamedRun<'a> {
    /// The name.
    pub name: &'a str,
    /// Its measurements by benchmark id.
    pub run: &'a Run,
}

/// Paired mode: every id that both sides measured in at least [`MIN_ROUNDS`] common rounds.
/// Rounds one side lacks for an id are left out of that id's pairs.
pub fn compare_paired(
    baseline: &str,
    base: &BTreeMap<u32, Run>,
    against: &str,
    new: &BTreeMap<u32, Run>,
    threshold: f64,
    filter: impl Fn(&str) -> bool,
) -> Result<GateReport> {
    let ids = |rounds: &BTreeMap<u32, Run>| -> std::collections::BTreeSet<String> {
        rounds
            .values()
            .flat_map(|run| run.keys())
            .filter(|id| filter(id))
            .cloned()
            .collect()
    };
    let (base_ids, new_ids) = (ids(base), ids(new));
    let mut comparisons = Vec::new();
    for id in base_ids.intersection(&new_ids) {
        let pairs: Vec<(&Measurement, &Measurement)> = base
            .iter()
            .filter_map(|(k, run)| Some((run.get(id)?, new.get(k)?.get(id)?)))
            .collect();
        if pairs.len() < MIN_ROUNDS {
            return Err(Error::TooFewRounds {
                id: id.clone(),
                baseline: baseline.into(),
                against: against.into(),
                found: pairs.len(),
                needed: MIN_ROUNDS,
            });
        }
        comparisons.extend(compare_rounds(id, &pairs, threshold));
    }
    sort_worst_first(&mut comparisons);
    Ok(GateReport {
        baseline: baseline.into(),
        against: against.into(),
        threshold,
        paired: true,
        only_in_baseline: base_ids.difference(&new_ids).cloned().collect(),
        only_in_against: new_ids.difference(&base_ids).cloned().collect(),
        comparisons,
    })
}

fn sort_worst_first(comparisons: &mut [Comparison]) {
    let rank = |c: &Comparison| match c.verdict {
        Verdict::Regressed => 0,
        Verdict::Unchanged => 1,
        Verdict::Improved => 2,
    };
    comparisons.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.change.total_cmp(&a.change)));
}

/// Compares every id both runs have (optionally only those `filter` keeps).
pub fn compare(
    baseline: &str,
    base: &Run,
    against: &str,
    new: &Run,
    threshold: f64,
    filter: impl Fn(&str) -> bool,
) -> GateReport {
    let mut comparisons: Vec<Comparison> = base
        .iter()
        .filter(|(id, _)| filter(id))
        .filter_map(|(id, b)| new.get(id).map(|n| compare_one(b, n, threshold)))
        .collect();
    sort_worst_first(&mut comparisons);
    let one_sided = |x: &Run, y: &Run| {
        x.keys()
            .filter(|id| filter(id) && !y.contains_key(*id))
            .cloned()
            .collect()
    };
    GateReport {
        baseline: baseline.into(),
        against: against.into(),
        threshold,
        paired: false,
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
