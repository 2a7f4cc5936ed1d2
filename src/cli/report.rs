//! `llm-bench report`: results files in, Markdown and SVG charts out.

use llm_bench::fs::prepare_output_dir;
use llm_bench::fs::write_all_atomically;
use llm_bench::report::{self, charts, Inputs, DEFAULT_PRICE_PER_HOUR};
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
    let entries = inputs.entries();
    // Every chart is drawn before anything is written, so a failure leaves no half report.
    let drawn = charts::draw_all(&entries)?;
    let files: Vec<&str> = drawn.iter().map(|c| c.file).collect();
    let markdown = report::markdown(&inputs, args.price_per_hour, &files);
    // Written as one: a full disk leaves no charts without their report.
    let report_path = out.join("report.md");
    let mut files: Vec<(PathBuf, &[u8])> = drawn
        .iter()
        .map(|chart| (out.join(chart.file), chart.svg.as_bytes()))
        .collect();
    files.push((report_path.clone(), markdown.as_bytes()));
    write_all_atomically(&files)?;
    super::out::outln!("{}", report_path.display())?;
    for chart in &drawn {
        super::out::outln!("{}", out.join(chart.file).display())?;
    }
    Ok(0)
}
