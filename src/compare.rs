//! `llm-bench compare`: one run against another (typically full precision against quantized):
//! speedup, throughput, TTFT and memory, each with both runs' spread and a 95% bootstrap
//! interval of the change, so a difference inside the noise is called that.

use crate::error::{Error, Result};
use crate::results::{FormatRun, PhaseName, RequestRecord, Results, Summary};
use crate::stats::{bootstrap_median_change, median};
use crate::units::{mean_plus_minus, MIB};
use serde::Serialize;
use std::path::{Path, PathBuf};

const RESAMPLES: usize = 2000;
const SEED: u64 = 0x11ab;

/// Picks the run to compare from a results file: by format (`q4_1`) or label
/// (`smollm2-135m-instruct@q4_1+candle`), and by engine; a file holding one run needs no
/// choice, and a choice must leave exactly one run.
pub fn select<'a>(
    path: &Path,
    results: &'a Results,
    format: Option<&str>,
    engine: Option<&str>,
    flags: (&'static str, &'static str),
) -> Result<&'a FormatRun> {
    let available = || {
        results
            .runs
            .iter()
            .map(FormatRun::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matching: Vec<&FormatRun> = results
        .runs
        .iter()
        .filter(|r| format.is_none_or(|f| r.model.format == f || r.label() == f))
        .filter(|r| engine.is_none_or(|e| r.model.engine.name == e))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::FormatNotInResults {
            path: path.into(),
            found: [format, engine]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" on "),
            available: available(),
        }),
        several => Err(Error::InvalidSetting {
            name: if format.is_none() { flags.0 } else { flags.1 },
            reason: format!(
                "{} holds {} runs that match ({}); choose one with {} and {}",
                path.display(),
                several.len(),
                several
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join(", "),
                flags.0,
                flags.1
            ),
        }),
    }
}

/// One run against another.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The base run.
    pub base: Side,
    /// The other run.
    pub other: Side,
    /// Each metric's change.
    pub metrics: Vec<MetricChange>,
    /// Differences between the runs that make the comparison less fair.
    pub warnings: Vec<String>,
}

/// One side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Its results file.
    pub file: PathBuf,
    /// Its run's label.
    pub label: String,
    /// Its format.
    pub format: String,
    /// Real or synthetic weights.
    pub weights: crate::results::WeightsKind,
}

/// One metric's change between the runs.
#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    /// The metric.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Whether lower values are better (times, sizes).
    pub lower_is_better: bool,
    /// The base run's values.
    pub base: Spread,
    /// The other run's values.
    pub other: Spread,
    /// `other / base - 1` of the medians (of the single values where there is no spread).
    pub change: f64,
    /// 95% bootstrap interval of `change`; absent for single measurements.
    pub change_interval: Option<(f64, f64)>,
    /// `base / other` for times and sizes, `other / base` for rates: above 1 = other is better.
    pub improvement_factor: f64,
    /// Better, worse, within noise or single values.
    pub verdict: Verdict,
}

/// A metric's values on one side.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (absent for one value).
    pub std: Option<f64>,
    /// Values.
    pub n: usize,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Self> {
        let s = Summary::of(values)?;
        Some(Self {
            median: s.p50,
            mean: s.mean,
            std: s.std,
            n: s.n,
        })
    }
    /// `mean ± std (n=…)`, or the single value.
    pub fn text(&self) -> String {
        if self.n > 1 {
            format!("{} (n={})", mean_plus_minus(self.mean, self.std, 2), self.n)
        } else {
            format!("{:.2}", self.mean)
        }
    }
}

/// What a change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The other run is better beyond the noise.
    Better,
    /// The other run is worse beyond the noise.
    Worse,
    /// The interval includes no change.
    WithinNoise,
    /// One value per side (sizes, peak memory): no interval, the figure stands as measured.
    SingleMeasurement,
}

/// Compares `other` against `base`.
pub fn compare(
    base: (&Path, &Results, &FormatRun),
    other: (&Path, &Results, &FormatRun),
) -> Comparison {
    let side = |(path, _, run): (&Path, &Results, &FormatRun)| Side {
        file: path.into(),
        label: run.label(),
        format: run.model.format.clone(),
        weights: run.model.weights,
    };
    let (b, o) = (base.2, other.2);
    let mut metrics = Vec::new();
    for m in SAMPLED {
        let (xb, xo) = (m.values(b), m.values(o));
        if let Some(change) = sampled_change(m.name, m.unit, m.lower_is_better, &xb, &xo) {
            metrics.push(change);
        }
    }
    if let (Some(tb), Some(to)) = (&b.throughput, &o.throughput) {
        let (qb, qo) = (
            tb.groups[0].summary.queries_per_s,
            to.groups[0].summary.queries_per_s,
        );
        metrics.extend(single_change("throughput", "queries/s", false, qb, qo));
    }
    metrics.extend(single_change(
        "weights in memory",
        "MiB",
        true,
        b.model.weight_bytes as f64 / MIB,
        o.model.weight_bytes as f64 / MIB,
    ));
    if let (Some(sb), Some(so)) = (b.serving_rss_added_bytes(), o.serving_rss_added_bytes()) {
        metrics.extend(single_change(
            "resident memory added by the model (latency phase)",
            "MiB",
            true,
            sb as f64 / MIB,
            so as f64 / MIB,
        ));
    }
    if let (Some(pb), Some(po)) = (crate::report::peak_rss(b), crate::report::peak_rss(o)) {
        metrics.extend(single_change(
            "peak RSS",
            "MiB",
            true,
            pb as f64 / MIB,
            po as f64 / MIB,
        ));
    }
    Comparison {
        base: side(base),
        other: side(other),
        metrics,
        warnings: warnings(base.1, b, other.1, o),
    }
}

/// A metric measured per request, compared with a bootstrap interval.
struct SampledMetric {
    name: &'static str,
    unit: &'static str,
    lower_is_better: bool,
    phase: PhaseName,
    value: fn(&RequestRecord) -> f64,
}

impl SampledMetric {
    fn values(&self, run: &FormatRun) -> Vec<f64> {
        run.phase(self.phase)
            .map(|p| {
                p.groups
                    .iter()
                    .flat_map(|g| g.requests.iter().map(self.value))
                    .collect()
            })
            .unwrap_or_default()
    }
}

const SAMPLED: [SampledMetric; 5] = [
    SampledMetric {
        name: "E2E latency",
        unit: "ms",
        lower_is_better: true,
        phase: PhaseName::Latency,
        value: |q| q.e2e_ms,
    },
    SampledMetric {
        name: "decode speed",
        unit: "tokens/s",
        lower_is_better: false,
        phase: PhaseName::Latency,
        value: |q| q.decode_tokens_per_s,
    },
    SampledMetric {
        name: "TTFT",
        unit: "ms",
        lower_is_better: true,
        phase: PhaseName::Latency,
        value: |q| q.ttft_ms,
    },
    SampledMetric {
        name: "prefill speed",
        unit: "tokens/s",
        lower_is_better: false,
        phase: PhaseName::Latency,
        value: |q| q.prefill_tokens_per_s,
    },
    // Back to back, queries/s is the inverse of the per-request time.
    SampledMetric {
        name: "throughput: time per query",
        unit: "ms",
        lower_is_better: true,
        phase: PhaseName::Throughput,
        value: |q| q.e2e_ms,
    },
];

fn improvement(lower_is_better: bool, base: f64, other: f64) -> f64 {
    if lower_is_better {
        base / other
    } else {
        other / base
    }
}

fn sampled_change(
    metric: &str,
    unit: &str,
    lower_is_better: bool,
    base: &[f64],
    other: &[f64],
) -> Option<MetricChange> {
    let (mb, mo) = (median(base)?, median(other)?);
    // A ratio needs two positive medians (a run of one-token requests has no decode rate).
    if !(mb > 0.0 && mo > 0.0) {
        return None;
    }
    let interval = bootstrap_median_change(base, other, RESAMPLES, SEED);
    let verdict = match interval {
        Some((lo, hi)) if lo <= 0.0 && hi >= 0.0 => Verdict::WithinNoise,
        Some((lo, _)) if (lo > 0.0) != lower_is_better => Verdict::Better,
        Some(_) => Verdict::Worse,
        None => Verdict::SingleMeasurement,
    };
    Some(MetricChange {
        metric: metric.into(),
        unit: unit.into(),
        lower_is_better,
        base: Spread::of(base)?,
        other: Spread::of(other)?,
        change: mo / mb - 1.0,
        change_interval: interval,
        improvement_factor: improvement(lower_is_better, mb, mo),
        verdict,
    })
}

fn single_change(
    metric: &str,
    unit: &str,
    lower_is_better: bool,
    base: f64,
    other: f64,
) -> Option<MetricChange> {
    // A ratio needs two positive values: a model that added no resident memory has none.
    if !(base > 0.0 && other > 0.0) {
        return None;
    }
    let one = |v: f64| Spread {
        median: v,
        mean: v,
        std: None,
        n: 1,
    };
    Some(MetricChange {
        metric: metric.into(),
        unit: unit.into(),
        lower_is_better,
        base: one(base),
        other: one(other),
        change: other / base - 1.0,
        change_interval: None,
        improvement_factor: improvement(lower_is_better, base, other),
        verdict: Verdict::SingleMeasurement,
    })
}

fn warnings(rb: &Results, b: &FormatRun, ro: &Results, o: &FormatRun) -> Vec<String> {
    let mut w = Vec::new();
    if rb.system.cpu_model != ro.system.cpu_model || rb.system.threads != ro.system.threads {
        w.push(format!(
            "different machines or thread counts: {} with {} threads vs {} with {} threads",
            rb.system.cpu_model, rb.system.threads, ro.system.cpu_model, ro.system.threads
        ));
    }
    if b.model.name != o.model.name {
        w.push(format!(
            "different models: {} vs {}",
            b.model.name, o.model.name
        ));
    }
    let like = |s: &crate::results::Settings| (s.max_new_tokens, s.prompts.clone());
    if rb.settings.as_ref().map(like) != ro.settings.as_ref().map(like) {
        w.push("different prompts or output lengths: latencies are not like for like".into());
    }
    if rb.created != ro.created {
        w.push(
            "measured in different runs: machine drift between runs is not in the intervals".into(),
        );
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_speedup_is_better_and_overlapping_runs_are_noise() {
        let base: Vec<f64> = (0..20).map(|i| 100.0 + (i % 4) as f64).collect();
        let faster: Vec<f64> = base.iter().map(|x| x / 2.0).collect();
        let m = sampled_change("E2E", "ms", true, &base, &faster).unwrap();
        assert_eq!(m.verdict, Verdict::Better);
        assert!(
            (m.improvement_factor - 2.0).abs() < 0.05,
            "{}",
            m.improvement_factor
        );
        assert!((m.change + 0.5).abs() < 0.02);
        let (lo, hi) = m.change_interval.unwrap();
        assert!(lo < -0.45 && hi < 0.0, "{lo} {hi}");

        let jittered: Vec<f64> = base.iter().rev().copied().collect();
        assert_eq!(
            sampled_change("E2E", "ms", true, &base, &jittered)
                .unwrap()
                .verdict,
            Verdict::WithinNoise
        );

        // A rate that drops is worse.
        let slower_rate = sampled_change("decode", "tokens/s", false, &base, &faster).unwrap();
        assert_eq!(slower_rate.verdict, Verdict::Worse);
    }

    #[test]
    fn memory_reduction_is_a_single_measurement() {
        let m = single_change("weights", "MiB", true, 400.0, 100.0).unwrap();
        assert_eq!(m.verdict, Verdict::SingleMeasurement);
        assert_eq!(m.change, -0.75);
        assert_eq!(m.improvement_factor, 4.0);
    }

    #[test]
    fn no_ratio_is_made_with_a_zero_side() {
        // A model that added no resident memory would otherwise compare as +inf%.
        assert!(single_change("rss", "MiB", true, 0.0, 100.0).is_none());
        assert!(single_change("rss", "MiB", true, 100.0, 0.0).is_none());
        assert!(sampled_change("decode", "tokens/s", false, &[0.0, 0.0], &[5.0, 6.0]).is_none());
    }
}
