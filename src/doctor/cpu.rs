//! The CPU's checks: threads against cores, SMT, the frequency governor, turbo boost.

use super::{check, read, Check, Status};
use crate::system::SystemInfo;

/// Threads against the logical CPUs.
pub(super) fn threads(system: &SystemInfo, threads: usize) -> Check {
    let cores = system.logical_cores.max(1);
    let (capped, warning) = crate::system::cap_threads(threads, cores);
    match warning {
        Some(w) => check(
            "threads",
            Status::Warn,
            w,
            "pass --threads at most the logical CPUs",
        ),
        None => check(
            "threads",
            Status::Ok,
            format!("{capped} of {cores} logical CPUs ({})", system.cpu_model),
            "",
        ),
    }
}

/// Threads sharing physical cores.
pub(super) fn smt(system: &SystemInfo, threads: usize) -> Check {
    let cores = system.logical_cores.max(1);
    let physical = system.physical_cores.unwrap_or(cores);
    let smt = read("/sys/devices/system/cpu/smt/active");
    if smt.as_deref() == Some("1") && threads > physical {
        check(
            "SMT",
            Status::Warn,
            format!("on: {threads} threads on {physical} physical cores share their units"),
            "use at most one thread per physical core, or record that SMT was used",
        )
    } else {
        check(
            "SMT",
            Status::Info,
            format!(
                "{} ({physical} physical cores)",
                match smt.as_deref() {
                    Some("1") => "on",
                    Some("0") => "off",
                    _ => "not exposed",
                }
            ),
            "",
        )
    }
}

/// The frequency governor of every CPU.
pub(super) fn governor(cores: usize) -> Check {
    let governors: Vec<String> = (0..cores)
        .filter_map(|c| {
            read(&format!(
                "/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
            ))
        })
        .collect();
    if governors.is_empty() {
        check(
            "CPU governor",
            Status::Info,
            "not exposed (a VM, or no cpufreq driver)".into(),
            "",
        )
    } else if governors.iter().all(|g| g == "performance") {
        check("CPU governor", Status::Ok, "performance".into(), "")
    } else {
        let mut kinds = governors.clone();
        kinds.sort();
        kinds.dedup();
        check(
            "CPU governor",
            Status::Warn,
            kinds.join(", "),
            "sudo cpupower frequency-set -g performance (clock speed then does not follow the load)",
        )
    }
}

/// Turbo boost.
pub(super) fn boost() -> Check {
    let boost = read("/sys/devices/system/cpu/cpufreq/boost")
        .map(|b| b == "1")
        .or_else(|| read("/sys/devices/system/cpu/intel_pstate/no_turbo").map(|n| n == "0"));
    match boost {
        Some(true) => check(
            "turbo boost",
            Status::Warn,
            "on: clock speed depends on temperature and on the other cores' load".into(),
            "disable it for comparisons (echo 0 > /sys/devices/system/cpu/cpufreq/boost, or echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo)",
        ),
        Some(false) => check("turbo boost", Status::Ok, "off".into(), ""),
        None => check("turbo boost", Status::Info, "not exposed".into(), ""),
    }
}
