//! What else the machine is doing: other processes and the hypervisor, the load average,
//! free memory.

use super::{check, read, Check, Status};

/// Other processes and the hypervisor's steal over one second (one or two checks).
pub(super) fn others(threads: usize, cores: usize, out: &mut Vec<Check>) {
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
}

/// The one-minute load average (no check where /proc/loadavg is unreadable).
pub(super) fn load(cores: usize, out: &mut Vec<Check>) {
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
}

/// Available memory.
pub(super) fn memory() -> Check {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let (available, total) = (sys.available_memory(), sys.total_memory());
    if total > 0 && (available as f64) < total as f64 * 0.25 {
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
    }
}
