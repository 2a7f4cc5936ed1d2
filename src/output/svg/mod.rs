//! SVG: the report's charts, drawn with plotters (their files: `report::charts`). Each chart
//! function returns the SVG text, or `None` when the results hold no data for that chart.

mod load;

use super::{Exporter, File};
use crate::error::{Error, Result};
use crate::report::charts::{
    BATCH, LATENCY, LOAD_GOODPUT, LOAD_LATENCY, ROOFLINE, SCALING, STRATEGIES, THREADS_DECODE,
    THREADS_PREFILL,
};
use crate::report::load::EndpointEntry;
use crate::report::{Entry, Report};
use crate::results::{FormatRun, PhaseName};
use crate::stats::percentile;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::Palette99;

const SIZE: (u32, u32) = (900, 520);

/// The report's charts, one SVG file each, for every chart its results hold data for.
pub struct Svg;

impl Exporter<Report<'_>> for Svg {
    fn export(&self, doc: &Report) -> Result<Vec<File>> {
        draw_all(&doc.inputs.entries(), &doc.inputs.endpoints())
    }
}

/// Every chart the results hold data for.
fn draw_all(entries: &[Entry], endpoints: &[EndpointEntry]) -> Result<Vec<File>> {
    let drawn = [
        (LATENCY, latency(entries)?),
        (STRATEGIES, strategies(entries)?),
        (SCALING, scaling(entries)?),
        (BATCH, batch(entries)?),
        (THREADS_DECODE, threads_decode(entries)?),
        (THREADS_PREFILL, threads_prefill(entries)?),
        (ROOFLINE, roofline(entries)?),
        (LOAD_LATENCY, load::latency(endpoints)?),
        (LOAD_GOODPUT, load::goodput(endpoints)?),
    ];
    Ok(drawn
        .into_iter()
        .filter_map(|(file, svg)| {
            svg.map(|text| File {
                name: file.into(),
                text,
            })
        })
        .collect())
}
const FONT: &str = "sans-serif";

type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(
    file: &str,
    paint: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(file, &e))?;
        paint(root.clone()).map_err(|e| chart_error(file, e.as_ref()))?;
        root.present().map_err(|e| chart_error(file, &e))?;
    }
    Ok(svg)
}

fn chart_error(file: &str, e: &dyn std::error::Error) -> Error {
    Error::Render {
        file: file.into(),
        detail: e.to_string(),
    }
}

fn color(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::COLORS[i % Palette99::COLORS.len()];
    RGBColor(r, g, b)
}

/// The entries whose run has the data a chart needs, with their chart labels; `None` if none.
fn having<'e, 'r>(
    entries: &'e [Entry<'r>],
    has: impl Fn(&FormatRun) -> bool,
) -> Option<(Vec<&'e Entry<'r>>, Vec<String>)> {
    let with: Vec<&Entry> = entries.iter().filter(|e| has(e.run)).collect();
    let labels = short_labels(&with);
    (!with.is_empty()).then_some((with, labels))
}

/// Labels without the model name when every entry is the same model (`q4_1`, `f32`).
fn short_labels(entries: &[&Entry]) -> Vec<String> {
    let same_model = entries
        .windows(2)
        .all(|w| w[0].run.model.name == w[1].run.model.name);
    entries
        .iter()
        .map(|e| {
            if same_model {
                e.label
                    .split_once('@')
                    .map_or(e.label.clone(), |(_, f)| f.to_string())
            } else {
                e.label.clone()
            }
        })
        .collect()
}

/// The y axis top: 40% above the highest value, so the legend has a free band at the top.
fn upper_bound(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, f64::max);
    if max > 0.0 {
        max * 1.4
    } else {
        1.0
    }
}

/// TTFT and E2E of the latency phase, per run: box from p25 to p75, whiskers to min and max,
/// the median as a bar, and every request as a dot.
fn latency(entries: &[Entry]) -> Result<Option<String>> {
    let Some((with, labels)) = having(entries, |run| run.latency.is_some()) else {
        return Ok(None);
    };
    let samples = |pick: fn(&crate::results::RequestRecord) -> f64| -> Vec<Vec<f64>> {
        with.iter()
            .map(|e| {
                e.run.latency.as_ref().expect("filtered").groups[0]
                    .requests
                    .iter()
                    .map(pick)
                    .collect()
            })
            .collect()
    };
    let panels = [
        ("time to first token (ms)", samples(|r| r.ttft_ms)),
        ("end-to-end latency (ms)", samples(|r| r.e2e_ms)),
    ];
    draw(LATENCY, |root| {
        let halves = root.split_evenly((1, 2));
        for ((title, data), area) in panels.iter().zip(halves.iter()) {
            let top = upper_bound(data.iter().flatten().copied());
            let mut chart = categorical(area, title, &labels, top, "ms")?;
            for (i, values) in data.iter().enumerate() {
                let x = i as f64;
                let q = |p| percentile(values, p).unwrap_or(0.0);
                let style = color(i);
                chart.draw_series([PathElement::new(
                    vec![(x, q(0.0)), (x, q(100.0))],
                    style.stroke_width(1),
                )])?;
                chart.draw_series([Rectangle::new(
                    [(x - 0.25, q(25.0)), (x + 0.25, q(75.0))],
                    style.mix(0.35).filled(),
                )])?;
                chart.draw_series([PathElement::new(
                    vec![(x - 0.25, q(50.0)), (x + 0.25, q(50.0))],
                    BLACK.stroke_width(2),
                )])?;
                let count = values.len().max(1) as f64;
                chart.draw_series(values.iter().enumerate().map(|(j, &v)| {
                    // Spread the dots across the box so repeated values stay visible.
                    let jitter = (j as f64 / count - 0.5) * 0.3;
                    Circle::new((x + jitter, v), 2, style.filled())
                }))?;
            }
        }
        Ok(())
    })
    .map(Some)
}

fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

type Categorical<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart whose x axis is `labels`, category `i` centred on `x = i`, and y runs 0..`top`.
fn categorical<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    labels: &[String],
    top: f64,
    y_desc: &str,
) -> std::result::Result<Categorical<'a, 'b>, Box<dyn std::error::Error>> {
    let n = labels.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // Ticks on every half unit; only whole ones get a label.
        .x_labels(n.max(2) * 2 + 1)
        .x_label_formatter(&|x| category(labels, *x))
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// The label of the category nearest `x`, on integer ticks only.
fn category(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// Decode tokens/s per sampling strategy, one bar per run: sampling costs show per token.
fn strategies(entries: &[Entry]) -> Result<Option<String>> {
    let Some((with, labels)) = having(entries, |run| run.strategies.is_some()) else {
        return Ok(None);
    };
    let strategies: Vec<String> = with[0]
        .run
        .strategies
        .as_ref()
        .expect("filtered")
        .groups
        .iter()
        .map(|g| g.setting.strategy.clone())
        .collect();
    let value = |e: &Entry, s: &str| {
        e.run
            .strategies
            .as_ref()
            .and_then(|p| p.groups.iter().find(|g| g.setting.strategy == s))
            .and_then(|g| g.summary.decode_tokens_per_s.as_ref())
            .map(|d| d.p50)
    };
    let top = upper_bound(
        with.iter()
            .flat_map(|e| strategies.iter().filter_map(move |s| value(e, s))),
    );
    draw(STRATEGIES, |root| {
        let mut chart = categorical(
            &root,
            "decode tokens/s (p50) by sampling strategy",
            &strategies,
            top,
            "decode tokens/s",
        )?;
        let width = 0.8 / with.len() as f64;
        for (r, (entry, label)) in with.iter().zip(&labels).enumerate() {
            let style = color(r);
            chart
                .draw_series(strategies.iter().enumerate().filter_map(|(i, s)| {
                    let left = i as f64 - 0.4 + r as f64 * width;
                    value(entry, s).map(|v| {
                        Rectangle::new([(left, 0.0), (left + width * 0.9, v)], style.filled())
                    })
                }))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], style.filled())
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
    .map(Some)
}

/// What a line chart plots on its y axis, named next to the value it reads.
struct YAxis {
    desc: &'static str,
    of: fn(&crate::results::GroupSummary) -> Option<f64>,
}

const GENERATED: YAxis = YAxis {
    desc: "generated tokens/s",
    of: |s| Some(s.generated_tokens_per_s),
};

/// One line per run: `x` from each group's setting, `y` read from its summary.
fn lines(
    entries: &[Entry],
    file: &str,
    caption: &str,
    x_desc: &str,
    phase: PhaseName,
    x_of: fn(&crate::results::RequestSetting) -> usize,
    y: YAxis,
) -> Result<Option<String>> {
    let Some((with, labels)) = having(entries, |run| run.phase(phase).is_some()) else {
        return Ok(None);
    };
    let series: Vec<Vec<(f64, f64)>> = with
        .iter()
        .map(|e| {
            e.run
                .phase(phase)
                .expect("filtered")
                .groups
                .iter()
                .filter_map(|g| Some((x_of(&g.setting) as f64, (y.of)(&g.summary)?)))
                .collect()
        })
        .collect();
    plot_lines(file, caption, x_desc, y.desc, &series, &labels).map(Some)
}

/// Lines through each series' points, labelled, from 0 on both axes.
fn plot_lines(
    file: &str,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Vec<(f64, f64)>],
    labels: &[String],
) -> Result<String> {
    let x_max = series.iter().flatten().map(|p| p.0).fold(1.0, f64::max);
    let top = upper_bound(series.iter().flatten().map(|p| p.1));
    draw(file, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max * 1.05, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()?;
        for (i, (points, label)) in series.iter().zip(labels).enumerate() {
            let style = color(i);
            chart
                .draw_series(LineSeries::new(points.clone(), style.stroke_width(2)))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], style.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, style.filled())))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

fn scaling(entries: &[Entry]) -> Result<Option<String>> {
    lines(
        entries,
        SCALING,
        "generated tokens/s against output length",
        "new tokens per request",
        PhaseName::Scaling,
        |s| s.new_tokens,
        GENERATED,
    )
}

fn batch(entries: &[Entry]) -> Result<Option<String>> {
    lines(
        entries,
        BATCH,
        "generated tokens/s against batch size",
        "sequences per batch",
        PhaseName::Batch,
        |s| s.batch,
        GENERATED,
    )
}

/// The thread sweep: decode tokens/s (p50) against threads, a line per engine and format.
fn threads_decode(entries: &[Entry]) -> Result<Option<String>> {
    lines(
        entries,
        THREADS_DECODE,
        "decode tokens/s against threads",
        "threads",
        PhaseName::Threads,
        |s| s.threads.unwrap_or_default(),
        YAxis {
            desc: "decode tokens/s (p50)",
            of: |s| s.decode_tokens_per_s.as_ref().map(|d| d.p50),
        },
    )
}

fn threads_prefill(entries: &[Entry]) -> Result<Option<String>> {
    lines(
        entries,
        THREADS_PREFILL,
        "prefill tokens/s against threads",
        "threads",
        PhaseName::Threads,
        |s| s.threads.unwrap_or_default(),
        YAxis {
            desc: "prefill tokens/s (p50)",
            of: |s| Some(s.prefill_tokens_per_s.p50),
        },
    )
}

/// Decode tokens/s against bytes read per token, log-log, under the line the memory
/// bandwidth allows (`tokens/s = bandwidth / bytes per token`).
fn roofline(entries: &[Entry]) -> Result<Option<String>> {
    let Some((with, labels)) = having(entries, |run| run.roofline.is_some()) else {
        return Ok(None);
    };
    let points: Vec<(f64, f64, f64)> = with
        .iter()
        .map(|e| {
            let r = e.run.roofline.as_ref().expect("filtered");
            (
                r.bytes_read_per_token as f64 / 1e6,
                r.decode_tokens_per_s,
                r.read_bytes_per_s,
            )
        })
        .collect();
    let bandwidth = points.iter().map(|p| p.2).fold(0.0, f64::max);
    let (x_lo, x_hi) = (
        points.iter().map(|p| p.0).fold(f64::MAX, f64::min) / 3.0,
        points.iter().map(|p| p.0).fold(0.0, f64::max) * 3.0,
    );
    let limit = |mb: f64| bandwidth / (mb * 1e6);
    let y_hi = limit(x_lo).max(points.iter().map(|p| p.1).fold(0.0, f64::max)) * 2.0;
    let y_lo = points
        .iter()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .min(limit(x_hi))
        / 3.0;
    draw(ROOFLINE, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "decode against the memory-bandwidth limit ({:.1} GB/s)",
                    bandwidth / 1e9
                ),
                (FONT, 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo.max(1e-3)..y_hi).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_desc("MB of weights read per token")
            .y_desc("decode tokens/s")
            .draw()?;
        let steps = 50;
        let curve: Vec<(f64, f64)> = (0..=steps)
            .map(|i| {
                let x = x_lo * (x_hi / x_lo).powf(i as f64 / steps as f64);
                (x, limit(x))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(curve, BLACK.stroke_width(2)))?
            .label("bandwidth limit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        for (i, (&(x, y, _), label)) in points.iter().zip(&labels).enumerate() {
            let style = color(i);
            chart
                .draw_series([Circle::new((x, y), 6, style.filled())])?
                .label(format!("{label}: {:.0}% of limit", 100.0 * y / limit(x)))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, style.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        Ok(())
    })
    .map(Some)
}
