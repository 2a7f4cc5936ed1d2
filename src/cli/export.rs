//! `llm-bench export`: a model (a synthetic twin, a folder, a GGUF in another type) written as
//! a GGUF file that llama.cpp loads, with its tokenizer.

use anyhow::Context;
use llm_bench::spec::ModelSpec;
use llm_bench::WeightFormat;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: org/name[@rev], a folder, a .gguf file or synthetic:<preset>
    model: String,
    /// Output file (written atomically: a failure leaves none)
    out: PathBuf,
    /// Weight format of the matrices: q4_0, q8_0, f32, … [default: a synthetic twin's usual format, f32 for a folder]
    #[arg(long, value_parser = super::parse_format)]
    format: Option<WeightFormat>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.out.extension().is_none_or(|e| e != "gguf") {
        anyhow::bail!(
            "the output {} must end in .gguf (llama.cpp and llm-bench recognise GGUF files by it)",
            args.out.display()
        );
    }
    let spec = ModelSpec::parse(&args.model)?;
    let planned = llm_bench::model::plan(&spec, args.format).context("planning the export")?;
    for notice in &planned.resolved.notices {
        eprintln!("note: {notice}");
    }
    for fallback in &planned.layout().fallbacks {
        eprintln!("note: {fallback}");
    }
    let started = std::time::Instant::now();
    let exported = llm_bench::export::write_gguf(&planned, &args.out)?;
    super::out::outln!(
        "wrote {} ({} in {}, {} tensors, {} parameters, {} of weights, {} file) in {:.1} s",
        exported.path.display(),
        planned.name,
        planned.format_label,
        exported.tensors,
        exported.parameters,
        llm_bench::units::mib(exported.weight_bytes),
        llm_bench::units::mib(exported.file_bytes),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
