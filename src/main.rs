//! `llm-bench`: the command-line front door onto the library.

mod cli;

fn main() {
    if let Err(err) = cli::run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
