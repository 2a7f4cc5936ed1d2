//! `llm-bench report`: results files in, Markdown and SVG charts out.

use llm_bench::fs::prepare_output_dir;
use llm_bench::fs::write_all_atomically;
use llm_bench::output::{Exporter, Markdown, Svg};
use llm_bench::report::{Inputs, Report, DEFAULT_PRICE_PER_HOUR};
use llm_bench::results::Results;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// results.json files written by `llm-bench run`
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Instance price in USD per hour, for the cost section [default: 0.145, the tutorial's figure]
    #[arg(long, default_value_t = DEFAULT_PRICE_PER_HOUR, value_parser = parse_price)]
    price_per_hour: f64,
    /// Output folder for report.md and the charts [default: the first results file's folder]
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_price(s: &str) -> Result<f64, String> {
    let price: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of USD per hour like 0.145, found {s:?}"))?;
    if !(price > 0.0 && price.is_finite()) {
        return Err(format!("the price must be above 0 USD per hour, found {s}"));
    }
    Ok(price)
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let files = args
        .results
        .iter()
        .map(|path| Ok((path.clone(), Results::load(path)?)))
        .collect::<llm_bench::Result<Vec<_>>>()?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.results[0]
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    prepare_output_dir(&out)?;
    let inputs = Inputs { files };
    let mut report = Report {
        inputs: &inputs,
        price_per_hour: args.price_per_hour,
        charts: Vec::new(),
    };
    // Every chart is drawn before anything is written, so a failure leaves no half report.
    let charts = Svg.export(&report)?;
    report.charts = charts.iter().map(|c| c.name.clone()).collect();
    // The report first in what is printed; written as one, so a full disk leaves no charts
    // without their report.
    let rendered: Vec<_> = Markdown
        .export(&report)?
        .into_iter()
        .chain(charts)
        .collect();
    let files: Vec<(PathBuf, &[u8])> = rendered
        .iter()
        .map(|f| (out.join(&f.name), f.text.as_bytes()))
        .collect();
    write_all_atomically(&files)?;
    for (path, _) in &files {
        super::out::outln!("{}", path.display())?;
    }
    Ok(0)
}
