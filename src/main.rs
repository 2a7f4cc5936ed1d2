//! `llm-bench`: the command-line front door onto the library.

mod cli;

/// Exit codes: 0 success, 1 `gate` found a regression, 2 any error (bad input included).
fn main() {
    match cli::run() {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
