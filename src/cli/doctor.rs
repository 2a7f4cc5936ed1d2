//! `llm-bench doctor`: what on this machine would distort a benchmark, and what to do.

#[derive(clap::Args)]
pub struct Args {
    /// Threads the benchmarks will use [default: RAYON_NUM_THREADS, else all cores]
    #[arg(long)]
    threads: Option<usize>,
}

/// Exit 0 when every check passes, 1 when one warns.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let threads = args
        .threads
        .filter(|&n| n > 0)
        .unwrap_or_else(llm_bench::system::configured_threads);
    let checks = llm_bench::doctor::checks(threads);
    super::out::outln!("{}", llm_bench::doctor::render(&checks))?;
    let warnings = checks
        .iter()
        .filter(|c| c.status == llm_bench::doctor::Status::Warn)
        .count();
    super::out::outln!(
        "{}",
        if warnings == 0 {
            "doctor: nothing on this machine should distort a benchmark".to_string()
        } else {
            format!("doctor: {warnings} warning(s): results taken now may be distorted")
        }
    )?;
    Ok(if warnings == 0 { 0 } else { 1 })
}
