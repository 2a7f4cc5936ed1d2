//! `llm-bench doctor`: is this machine fit to benchmark on? Each check reads what Linux
//! exposes (`/proc`, `/sys`), says what it found, and what to change when it is a problem.

mod build;
mod cpu;
mod machine;

use crate::markdown::table;

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Results will be distorted or noisier than they need to be.
    Warn,
    /// Not a problem, or not readable here (e.g. a VM hides the CPU frequency driver).
    Info,
}

/// One check of the machine.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// Its outcome.
    pub status: Status,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when nothing).
    pub fix: String,
}

fn check(name: &'static str, status: Status, found: String, fix: &str) -> Check {
    Check {
        name,
        status,
        found,
        fix: fix.to_string(),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every check, for a run on `threads` threads.
pub fn checks(threads: usize) -> Vec<Check> {
    let system = crate::system::SystemInfo::collect(threads);
    let cores = system.logical_cores.max(1);
    let mut out = vec![
        cpu::threads(&system, threads),
        cpu::smt(&system, threads),
        cpu::governor(cores),
        cpu::boost(),
    ];
    machine::others(threads, cores, &mut out);
    machine::load(cores, &mut out);
    out.push(machine::memory());
    out.push(build::build(&system));
    out.push(build::kernels());
    out
}

/// The checks as a Markdown table.
pub fn render(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.name.to_string(),
                match c.status {
                    Status::Ok => "ok",
                    Status::Warn => "WARN",
                    Status::Info => "info",
                }
                .to_string(),
                c.found.clone(),
                c.fix.clone(),
            ]
        })
        .collect();
    table(&["check", "status", "found", "what to do"], &rows)
}
