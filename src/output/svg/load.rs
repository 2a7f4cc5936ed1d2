//! The load sweeps' charts: latency against throughput a point per level, and goodput
//! against request rate, a line per endpoint.

use super::plot_lines;
use crate::error::Result;
use crate::report::charts::{LOAD_GOODPUT, LOAD_LATENCY};
use crate::report::load::EndpointEntry;
use crate::results::{LevelSummary, LoadMode};

/// Lines of points, and their labels.
type Series = (Vec<Vec<(f64, f64)>>, Vec<String>);

/// Each endpoint's points `(x, y)` over its levels that have both; `None` when none has any.
fn series(
    endpoints: &[EndpointEntry],
    point: impl Fn(&LevelSummary) -> Option<(f64, f64)>,
) -> Option<Series> {
    let (series, labels): (Vec<_>, Vec<_>) = endpoints
        .iter()
        .map(|e| {
            let points: Vec<(f64, f64)> = e.run.levels.iter().filter_map(&point).collect();
            (points, e.label.clone())
        })
        .filter(|(points, _)| !points.is_empty())
        .unzip();
    (!series.is_empty()).then_some((series, labels))
}

/// TPOT p50 against output tokens/s: how much latency each step of throughput costs.
pub(super) fn latency(endpoints: &[EndpointEntry]) -> Result<Option<String>> {
    let Some((series, labels)) = series(endpoints, |l| {
        Some((l.output_throughput, l.tpot_ms?.p50)).filter(|p| p.0 > 0.0)
    }) else {
        return Ok(None);
    };
    plot_lines(
        LOAD_LATENCY,
        "latency against throughput, a point per level",
        "output tokens/s (all requests)",
        "TPOT p50 (ms)",
        &series,
        &labels,
    )
    .map(Some)
}

/// Goodput (completed requests/s where no target was set) against the finite request rates.
pub(super) fn goodput(endpoints: &[EndpointEntry]) -> Result<Option<String>> {
    let Some((series, labels)) = series(endpoints, |l| match (l.mode, l.level) {
        (LoadMode::Rate, Some(rate)) => Some((rate, l.served_per_s())),
        _ => None,
    }) else {
        return Ok(None);
    };
    plot_lines(
        LOAD_GOODPUT,
        "goodput against request rate",
        "requests sent per second",
        "requests per second within targets",
        &series,
        &labels,
    )
    .map(Some)
}
