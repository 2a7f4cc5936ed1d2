//! The build and the kernels: SIMD compiled in, the tuned kernels' level.

use super::{check, Check, Status};
use crate::system::SystemInfo;

/// Wide SIMD compiled in.
pub(super) fn build(system: &SystemInfo) -> Check {
    let features = &system.compiled_target_features;
    let simd = ["avx2", "avx512f", "neon", "sve"];
    if features.iter().any(|f| simd.contains(&f.as_str())) {
        check(
            "build",
            Status::Ok,
            format!("compiled for {}", features.join(", ")),
            "",
        )
    } else {
        check(
            "build",
            Status::Warn,
            format!("no wide SIMD compiled in ({})", features.join(", ")),
            "build with RUSTFLAGS=\"-C target-cpu=native\" (.cargo/config.toml sets it; stock candle decodes ~2.7x faster with it)",
        )
    }
}

/// The tuned kernels' level (chosen at run time, whatever the build).
pub(super) fn kernels() -> Check {
    let levels: Vec<&str> = crate::kernels::Level::available()
        .iter()
        .map(|l| l.name())
        .collect();
    match crate::kernels::Level::chosen() {
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
    }
}
