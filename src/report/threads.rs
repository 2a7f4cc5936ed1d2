//! Thread sweeps (`--threads 1,2,4`): tokens/s at each thread count, the speedup over the
//! first count, the parallel efficiency (speedup ÷ thread ratio; 1.00 is perfect scaling),
//! the memory read bandwidth at each count where the sweep measured it (decode cannot scale
//! past it) and, for engines that count it, the share of the time their threads waited.
//! `generate` prints [`table`] for one request per count; the report's section reads the
//! `threads` phase of each run.

use super::{charts, embed, table as markdown_table, Entry};
use crate::results::Phase;

/// One thread count's speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Threads.
    pub threads: usize,
    /// Prefill tokens/s (p50).
    pub prefill_tokens_per_s: f64,
    /// Decode tokens/s (p50).
    pub decode_tokens_per_s: Option<f64>,
    /// The share of the time the engine's threads waited for one another, where it counts it.
    pub thread_wait_share: Option<f64>,
    /// Memory read bandwidth measured with this many threads, where the sweep measured it.
    pub read_bytes_per_s: Option<f64>,
}

/// The medians of each group of a `threads` phase.
pub fn points(phase: &Phase) -> Vec<Point> {
    phase
        .groups
        .iter()
        .map(|g| Point {
            threads: g.setting.threads.unwrap_or_default(),
            prefill_tokens_per_s: g.summary.prefill_tokens_per_s.p50,
            decode_tokens_per_s: g.summary.decode_tokens_per_s.as_ref().map(|d| d.p50),
            thread_wait_share: g.summary.thread_wait_share,
            read_bytes_per_s: g.read_bytes_per_s,
        })
        .collect()
}

/// Speedup of `value` over `first`, and that divided by the thread ratio.
fn scaling(value: Option<f64>, first: Option<f64>, threads: usize, first_threads: usize) -> String {
    match (value, first) {
        (Some(v), Some(f)) if f > 0.0 && first_threads > 0 => {
            let speedup = v / f;
            let efficiency = speedup / (threads as f64 / first_threads as f64);
            format!("{speedup:.2}x ({efficiency:.2})")
        }
        _ => "-".into(),
    }
}

/// A column: its header next to the function that fills its cell from a point and the first.
struct Column {
    header: &'static str,
    cell: fn(&Point, &Point) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "threads",
        cell: |p, _| p.threads.to_string(),
    },
    Column {
        header: "prefill tok/s",
        cell: |p, _| format!("{:.1}", p.prefill_tokens_per_s),
    },
    Column {
        header: "prefill speedup (efficiency)",
        cell: |p, f| {
            scaling(
                Some(p.prefill_tokens_per_s),
                Some(f.prefill_tokens_per_s),
                p.threads,
                f.threads,
            )
        },
    },
    Column {
        header: "decode tok/s",
        cell: |p, _| {
            p.decode_tokens_per_s
                .map_or("-".into(), |d| format!("{d:.1}"))
        },
    },
    Column {
        header: "decode speedup (efficiency)",
        cell: |p, f| {
            scaling(
                p.decode_tokens_per_s,
                f.decode_tokens_per_s,
                p.threads,
                f.threads,
            )
        },
    },
    Column {
        header: "memory read GB/s (speedup)",
        cell: |p, f| match (p.read_bytes_per_s, f.read_bytes_per_s) {
            (Some(b), Some(first)) if first > 0.0 => {
                format!("{:.1} ({:.2}x)", b / 1e9, b / first)
            }
            _ => "-".into(),
        },
    },
    Column {
        header: "threads waiting",
        cell: |p, _| {
            p.thread_wait_share
                .map_or("-".into(), |w| format!("{:.1}%", w * 100.0))
        },
    },
];

fn rows(points: &[Point], label: Option<&str>) -> Vec<Vec<String>> {
    let Some(first) = points.first() else {
        return vec![];
    };
    points
        .iter()
        .map(|p| {
            label
                .map(str::to_string)
                .into_iter()
                .chain(COLUMNS.iter().map(|c| (c.cell)(p, first)))
                .collect()
        })
        .collect()
}

/// The sweep of one run as a Markdown table.
pub fn table(points: &[Point]) -> String {
    let headers: Vec<&str> = COLUMNS.iter().map(|c| c.header).collect();
    markdown_table(&headers, &rows(points, None))
}

/// The thread sweep's section.
pub fn section(out: &mut String, entries: &[Entry], charts_drawn: &[&str]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter_map(|e| {
            e.run
                .threads
                .as_ref()
                .map(|p| rows(&points(p), Some(&e.label)))
        })
        .flatten()
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("\n## Threads\n\nThe same requests at each thread count (`--threads 1,2,4`), medians. Speedup is against the first count; efficiency = speedup ÷ thread ratio (1.00 = perfect scaling). Decode is bound by memory bandwidth, so it stops scaling once the threads saturate it: its speedup is best read against the memory read bandwidth's, measured at each count before the model loaded. Threads waiting: the share of the time the engine's threads spent waiting for one another (at barriers, and idle while one worked alone), where the engine counts it.\n\n");
    let headers: Vec<&str> = std::iter::once("run")
        .chain(COLUMNS.iter().map(|c| c.header))
        .collect();
    out.push_str(&markdown_table(&headers, &rows));
    embed(
        out,
        charts_drawn,
        charts::THREADS_DECODE,
        "decode tokens/s against threads",
    );
    embed(
        out,
        charts_drawn,
        charts::THREADS_PREFILL,
        "prefill tokens/s against threads",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_and_efficiency_are_against_the_first_count() {
        let points = [
            Point {
                threads: 1,
                prefill_tokens_per_s: 100.0,
                decode_tokens_per_s: Some(40.0),
                thread_wait_share: None,
                read_bytes_per_s: Some(20e9),
            },
            Point {
                threads: 4,
                prefill_tokens_per_s: 300.0,
                decode_tokens_per_s: Some(60.0),
                thread_wait_share: Some(0.125),
                read_bytes_per_s: Some(30e9),
            },
        ];
        let t = table(&points);
        let last = t.lines().last().unwrap();
        // prefill 3x on 4x the threads: efficiency 0.75; decode 1.5x: 0.38 (0.375).
        assert!(last.contains("| 4 |"), "{t}");
        assert!(last.contains("3.00x (0.75)"), "{t}");
        assert!(last.contains("1.50x (0.38)"), "{t}");
        assert!(last.ends_with("| 30.0 (1.50x) | 12.5% |"), "{t}");
        assert!(
            t.lines().nth(2).unwrap().ends_with("| 20.0 (1.00x) | - |"),
            "{t}"
        );
        assert!(t.lines().nth(2).unwrap().contains("1.00x (1.00)"), "{t}");
        let missing = scaling(None, Some(1.0), 2, 1);
        assert_eq!(missing, "-");
    }
}
