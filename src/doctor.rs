//! `llm-bench doctor`: is this machine fit to benchmark on? Each check reads what Linux
//! exposes (`/proc`, `/sys`), says what it found, and what to change when it is a problem.

use crate::markdown::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Results will be distorted or noisier than they need to be.
    Warn,
    /// Not a problem, or not readable here (e.g. a VM hides the CPU frequency driver).
    Info,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
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
    let mut out = Vec::new();

    let (capped, warning) = crate::system::cap_threads(threads, cores);
    out.push(match warning {
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
    });

    let physical = system.physical_cores.unwrap_or(cores);
    let smt = read("/sys/devices/system/cpu/smt/active");
    out.push(if smt.as_deref() == Some("1") && threads > physical {
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
    });

    let governors: Vec<String> = (0..cores)
        .filter_map(|c| {
            read(&format!(
                "/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
            ))
        })
        .collect();
    out.push(if governors.is_empty() {
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
    });

    let boost = read("/sys/devices/system/cpu/cpufreq/boost")
        .map(|b| b == "1")
        .or_else(|| read("/sys/devices/system/cpu/intel_pstate/no_turbo").map(|n| n == "0"));
    out.push(match boost {
        Some(true) => check(
            "turbo boost",
            Status::Warn,
            "on: clock speed depends on temperature and on the other cores' load".into(),
            "disable it for comparisons (echo 0 > /sys/devices/system/cpu/cpufreq/boost, or echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo)",
        ),
        Some(false) => check("turbo boost", Status::Ok, "off".into(), ""),
        None => check("turbo boost", Status::Info, "not exposed".into(), ""),
    });

    match crate::resources::busy_before_run(std::time::Duration::from_secs(1)) {
        Some(busy) => {
            let busiest = busy.busiest();
            let found = format!(
                "others used {:.0}% of a core over 1 s{}",
                busy.others_percent,
                if busiest.is_empty() {
                    String::new()
                } else {
                    format!(" (busiest: {busiest})")
                }
            );
            out.push(
                match crate::resources::contention(busy.others_percent, 0.0, threads, cores) {
                    Some(_) => check(
                        "other processes",
                        Status::Warn,
                        found,
                        "stop them, or runs will be flagged as contended",
                    ),
                    None => check("other processes", Status::Ok, found, ""),
                },
            );
            out.push(
                if busy.steal_percent > crate::resources::CONTENTION_PERCENT {
                    check(
                        "steal",
                        Status::Warn,
                        format!("the hypervisor took {:.0}% of a core", busy.steal_percent),
                        "a shared VM: prefer a dedicated host, or compare only within one sitting",
                    )
                } else {
                    check(
                        "steal",
                        Status::Ok,
                        format!("{:.1}% of a core", busy.steal_percent),
                        "",
                    )
                },
            );
        }
        None => out.push(check(
            "other processes",
            Status::Info,
            "/proc/stat not readable".into(),
            "",
        )),
    }
    if let Some(load) = read("/proc/loadavg") {
        let one_minute: f64 = load
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.push(if one_minute > cores as f64 * 0.5 {
            check(
                "load average",
                Status::Warn,
                format!("{one_minute:.2} over the last minute on {cores} CPUs"),
                "wait for the machine to settle",
            )
        } else {
            check("load average", Status::Ok, format!("{one_minute:.2}"), "")
        });
    }

    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let (available, total) = (sys.available_memory(), sys.total_memory());
    out.push(if total > 0 && (available as f64) < total as f64 * 0.25 {
        check(
            "memory",
            Status::Warn,
            format!("{:.1} of {:.1} GiB available", gib(available), gib(total)),
            "free memory: a model that does not fit is paged, and paging is what gets timed",
        )
    } else {
        check(
            "memory",
            Status::Ok,
            format!("{:.1} of {:.1} GiB available", gib(available), gib(total)),
            "",
        )
    });

    let features = system.compiled_target_features;
    let simd = ["avx2", "avx512f", "neon", "sve"];
    out.push(if features.iter().any(|f| simd.contains(&f.as_str())) {
        check("build", Status::Ok, format!("compiled for {}", features.join(", ")), "")
    } else {
        check(
            "build",
            Status::Warn,
            format!("no wide SIMD compiled in ({})", features.join(", ")),
            "build with RUSTFLAGS=\"-C target-cpu=native\" (.cargo/config.toml sets it; stock candle decodes ~2.7x faster with it)",
        )
    });

    // The tuned kernels pick their level at run time, whatever the build.
    let levels: Vec<&str> = crate::kernels::Level::available()
        .iter()
        .map(|l| l.name())
        .collect();
    out.push(match crate::kernels::Level::chosen() {
        Ok(level) => check(
            "kernels",
            Status::Info,
            format!(
                "tuned kernels at {} (this CPU runs {})",
                level.name(),
                levels.join(", ")
            ),
            "",
        ),
        Err(e) => check(
            "kernels",
            Status::Warn,
            e.to_string(),
            "unset LLM_BENCH_KERNELS, or name a level this CPU runs",
        ),
    });
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
