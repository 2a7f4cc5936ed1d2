//! The cost model (the tutorial's: price per instance-hour, the instance kept busy) and the
//! report's cost section.

use super::{table, Entry};
use std::fmt::Write;

/// The tutorial's cloud price, used when none is given: USD per instance-hour.
pub const DEFAULT_PRICE_PER_HOUR: f64 = 0.145;
/// 24 h x 365 d / 12 months.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What 1,000 queries cost at `queries_per_s` on an instance billed `price_per_hour`, the
/// instance kept fully busy; `None` when nothing was served.
pub fn cost_per_1k_queries(queries_per_s: f64, price_per_hour: f64) -> Option<f64> {
    (queries_per_s > 0.0).then(|| price_per_hour / (queries_per_s * 3600.0) * 1000.0)
}

/// The instance's bill for a month of running 24/7.
pub fn monthly_cost(price_per_hour: f64) -> f64 {
    price_per_hour * HOURS_PER_MONTH
}

pub(super) fn section(out: &mut String, entries: &[Entry], price: f64) {
    let _ = writeln!(
        out,
        "\n## Cost efficiency\n\nAt {price} USD per instance-hour{}. Cost per 1K queries = price ÷ (queries/s × 3600) × 1000, \
         the instance kept busy with the throughput phase's queries; monthly = price × {HOURS_PER_MONTH} h (24/7) = {:.2} USD.\n",
        if price == DEFAULT_PRICE_PER_HOUR {
            " (the default: the tutorial's figure; pass --price-per-hour for your instance)"
        } else {
            ""
        },
        monthly_cost(price)
    );
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| {
            e.run
                .throughput
                .as_ref()
                .map(|p| (e, p.groups[0].summary.queries_per_s))
        })
        .map(|(e, qps)| {
            vec![
                e.label.clone(),
                format!("{qps:.3}"),
                cost_per_1k_queries(qps, price).map_or("-".into(), |c| format!("{c:.4}")),
                format!("{:.0}", qps * 3600.0 * HOURS_PER_MONTH),
                format!("{:.2}", monthly_cost(price)),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "run",
            "queries/s",
            "USD per 1K queries",
            "queries per month (24/7)",
            "USD per month (24/7)",
        ],
        &rows,
    ));
}
