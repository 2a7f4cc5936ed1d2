//! `/metrics`: Prometheus text from the `metrics` facade the scheduler records into
//! (requests by outcome, prompt and generated tokens, TTFT and inter-token latency
//! histograms), with the running and waiting sequences as gauges.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets in seconds, from a fast decode step to a long queue.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's Prometheus recorder (the `metrics` facade takes one per process).
pub(super) struct Metrics(Option<PrometheusHandle>);

impl Metrics {
    /// Installs the recorder, or shares the one already installed.
    pub(super) fn install() -> Self {
        static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        });
        Metrics(handle.clone())
    }

    /// The text `/metrics` answers, with the scheduler's counts as of now.
    pub(super) fn render(&self, running: usize, waiting: usize) -> String {
        metrics::gauge!("llm_bench_sequences_running").set(running as f64);
        metrics::gauge!("llm_bench_sequences_waiting").set(waiting as f64);
        match &self.0 {
            Some(handle) => handle.render(),
            None => "# the metrics recorder could not be installed in this process\n".into(),
        }
    }
}
