//! `llm-bench`: the command-line front door onto the library.

mod cli;

/// Exit codes: 0 success, 1 `gate` found a regression, 2 any error (bad input included).
fn main() {
    match cli::run() {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            // Not `eprintln!`: it panics when stderr itself cannot be written.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            std::process::exit(2);
        }
    }
}
