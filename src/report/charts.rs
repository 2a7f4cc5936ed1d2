//! The report's charts: the file each is drawn to (by `output::Svg`) and embedded from.

/// TTFT and E2E per run.
pub const LATENCY: &str = "latency.svg";
/// Generated tokens/s per decoding strategy.
pub const STRATEGIES: &str = "strategies.svg";
/// Generated tokens/s against output length.
pub const SCALING: &str = "scaling.svg";
/// Generated tokens/s against batch size.
pub const BATCH: &str = "batch.svg";
/// Decode tokens/s against threads.
pub const THREADS_DECODE: &str = "threads-decode.svg";
/// Prefill tokens/s against threads.
pub const THREADS_PREFILL: &str = "threads-prefill.svg";
/// Decode tokens/s against bytes read per token, under the bandwidth line.
pub const ROOFLINE: &str = "roofline.svg";
/// TPOT p50 against output tokens/s, a line per load endpoint, a point per level.
pub const LOAD_LATENCY: &str = "load-latency.svg";
/// Goodput (or completed requests/s) against request rate, a line per load endpoint.
pub const LOAD_GOODPUT: &str = "load-goodput.svg";
