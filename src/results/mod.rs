//! The results file `llm-bench run` and `llm-bench load` write and `report` / `compare` read:
//! a versioned schema (`schemas/results-v3.schema.json` is generated from these types, and a test keeps the two
//! equal), loading with errors that name the file and the field, and the summaries.
//!
//! Versioning: `schema_version` changes whenever a field is renamed, removed or changes
//! meaning; readers refuse other versions rather than misreading them. Adding an optional
//! field does not change the version.

pub mod endpoint;
pub mod facts;
pub mod schema;
pub mod summary;

pub use endpoint::{EndpointRun, LevelSummary, LoadMode, Slo, Spread};
pub use facts::{
    Bandwidth, BuildInfo, EngineInfo, Machine, Roofline, SystemInfo, Usage, WeightsKind,
};
pub use schema::*;
pub use summary::{GroupSummary, Summary};

use crate::error::{Error, Result};
use std::path::Path;

/// The results file's `$schema`-style identifier.
pub const SCHEMA_ID: &str = "llm-bench/results";
/// Version 3 (this build): `endpoints` holds what `llm-bench load` measured of servers, and
/// `settings` (those of `llm-bench run`) is null in a file only `load` wrote. Version 2 named
/// engines in `model.engine` and run labels; version 1 had a closed enum of candle's paths.
/// Other versions are refused with the version named.
pub const SCHEMA_VERSION: u32 = 3;
/// The results file's name in an output folder.
pub const RESULTS_FILE: &str = "results.json";

/// The most requests one phase may make (and a results file may hold in one phase): far past
/// any useful run (days of requests), far below what the traces kept for them would take of
/// memory, and what the reports' statistics get through in seconds.
pub const MAX_REQUESTS_PER_PHASE: usize = 100_000;

impl Results {
    /// Reads and checks a results file: JSON, the right schema and version, every field.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // Read in passes that keep no tree of the whole file (a phase may hold 100,000
        // requests): the schema and version first, then the types, and the numbers' signs.
        #[derive(serde::Deserialize)]
        struct Head {
            schema: Option<serde_json::Value>,
            schema_version: Option<serde_json::Value>,
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| Error::NotResults {
            path: path.into(),
            problem: if e.is_data() {
                format!("its top level is not a JSON object ({e})")
            } else {
                format!("it is not valid JSON ({e})")
            },
        })?;
        let schema = head.schema.as_ref().and_then(|s| s.as_str());
        if schema != Some(SCHEMA_ID) {
            return Err(Error::NotResults {
                path: path.into(),
                problem: format!(
                    "its `schema` field is {}, expected {SCHEMA_ID:?}",
                    schema.map_or("missing".to_string(), |s| format!("{s:?}"))
                ),
            });
        }
        let version = head.schema_version.as_ref().and_then(|v| v.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(Error::SchemaVersion {
                path: path.into(),
                found: version.map_or("missing".to_string(), |v| v.to_string()),
                expected: SCHEMA_VERSION,
            });
        }
        if has_negative_number(&bytes) {
            // Only a file with a negative number pays for the tree that locates it.
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::NotResults {
                    path: path.into(),
                    problem: format!("it is not valid JSON ({e})"),
                })?;
            if let Some((location, number)) = first_negative(&value, String::new()) {
                return Err(Error::ResultsField {
                    path: path.into(),
                    location,
                    problem: format!(
                        "{number} is negative; every time, count, rate and size is 0 or more"
                    ),
                });
            }
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let results: Results =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                Error::ResultsField {
                    path: path.into(),
                    location: match e.path().to_string() {
                        root if root == "." => "the top level".into(),
                        path => path,
                    },
                    problem: e.inner().to_string(),
                }
            })?;
        results
            .check()
            .map_err(|(location, problem)| Error::ResultsField {
                path: path.into(),
                location,
                problem,
            })?;
        Ok(results)
    }

    /// What the types cannot say: every phase has requests, and every figure that reports
    /// and comparisons divide by is above 0, as in any file `run` writes.
    fn check(&self) -> std::result::Result<(), (String, String)> {
        let positive = |at: String, what: &str, x: f64| {
            if x > 0.0 {
                Ok(())
            } else {
                Err((at, format!("{what} is {x}; it must be above 0")))
            }
        };
        if let Some(bw) = &self.memory_bandwidth {
            positive(
                "memory_bandwidth".into(),
                "read_bytes_per_s",
                bw.read_bytes_per_s,
            )?;
        }
        endpoints_agree(&self.endpoints)?;
        let mut labels = std::collections::HashMap::new();
        for (r, run) in self.runs.iter().enumerate() {
            if let Some(first) = labels.insert(run.label(), r) {
                return Err((
                    format!("runs[{r}].model"),
                    format!(
                        "is {} again, as runs[{first}]: a run writes each model, format and engine once, so reports could not tell the two apart",
                        run.label()
                    ),
                ));
            }
            let at = format!("runs[{r}].model");
            positive(at.clone(), "parameters", run.model.parameters as f64)?;
            positive(at.clone(), "weight_bytes", run.model.weight_bytes as f64)?;
            positive(
                at,
                "bytes_read_per_token",
                run.model.bytes_read_per_token as f64,
            )?;
            for name in PhaseName::ALL {
                let Some(phase) = run.phase(name) else {
                    continue;
                };
                let requests: usize = phase.groups.iter().map(|g| g.requests.len()).sum();
                if requests > MAX_REQUESTS_PER_PHASE {
                    return Err((
                        format!("runs[{r}].{name}"),
                        format!("holds {requests} requests; no run makes more than {MAX_REQUESTS_PER_PHASE} in one phase"),
                    ));
                }
                let at = format!("runs[{r}].{name}.groups");
                if phase.groups.is_empty() {
                    return Err((
                        at,
                        "is empty; a finished phase has at least one group".into(),
                    ));
                }
                for (g, group) in phase.groups.iter().enumerate() {
                    let at = format!("{at}[{g}]");
                    if group.requests.is_empty() {
                        return Err((
                            format!("{at}.requests"),
                            "is empty; a group has at least one request".into(),
                        ));
                    }
                    group_agrees(&at, group)?;
                    let summary = &group.summary;
                    positive(
                        format!("{at}.summary"),
                        "queries_per_s",
                        summary.queries_per_s,
                    )?;
                    positive(
                        format!("{at}.summary"),
                        "wall_seconds",
                        summary.wall_seconds,
                    )?;
                    for (q, request) in group.requests.iter().enumerate() {
                        let at = format!("{at}.requests[{q}]");
                        positive(at.clone(), "ttft_ms", request.ttft_ms)?;
                        positive(at.clone(), "e2e_ms", request.e2e_ms)?;
                        positive(at.clone(), "batch", request.batch as f64)?;
                        if request.ttft_ms > request.e2e_ms {
                            return Err((
                                at,
                                format!(
                                    "ttft_ms {} is above e2e_ms {}; the first token cannot \
                                     come after the last",
                                    request.ttft_ms, request.e2e_ms
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes atomically: a reader (or a run interrupted later) never sees half a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("results are plain data");
        crate::fs::write_atomically(path, &json)
    }
}

/// What a group's figures say of one another, as any group `run` writes has it: its summary
/// counts its requests, its batch is 1 or more, and each distribution runs min <= p50 <= p90
/// <= p95 <= p99 <= max with the mean between min and max.
fn group_agrees(at: &str, group: &Group) -> std::result::Result<(), (String, String)> {
    let summary = &group.summary;
    if summary.requests != group.requests.len() {
        return Err((
            format!("{at}.summary.requests"),
            format!(
                "is {} but the group lists {} requests",
                summary.requests,
                group.requests.len()
            ),
        ));
    }
    if group.setting.batch == 0 {
        return Err((
            format!("{at}.setting.batch"),
            "is 0; a batch holds at least one sequence".into(),
        ));
    }
    let distributions = [
        ("ttft_ms", Some(&summary.ttft_ms)),
        ("itl_ms", summary.itl_ms.as_ref()),
        ("tpot_ms", summary.tpot_ms.as_ref()),
        ("e2e_ms", Some(&summary.e2e_ms)),
        ("prefill_tokens_per_s", Some(&summary.prefill_tokens_per_s)),
        ("decode_tokens_per_s", summary.decode_tokens_per_s.as_ref()),
    ];
    for (name, s) in distributions {
        let Some(s) = s else { continue };
        // Interpolation and summing round in the last bits; an edit does not.
        let slack = 1e-9 * s.max.abs().max(1.0);
        let order = [
            ("min", s.min),
            ("p50", s.p50),
            ("p90", s.p90),
            ("p95", s.p95),
            ("p99", s.p99),
            ("max", s.max),
        ];
        for pair in order.windows(2) {
            let ((a, x), (b, y)) = (pair[0], pair[1]);
            if x > y + slack {
                return Err((
                    format!("{at}.summary.{name}"),
                    format!("{a} {x} is above {b} {y}; a distribution's figures rise in order"),
                ));
            }
        }
        if s.mean < s.min - slack || s.mean > s.max + slack {
            return Err((
                format!("{at}.summary.{name}"),
                format!(
                    "mean {} lies outside min {} .. max {}",
                    s.mean, s.min, s.max
                ),
            ));
        }
    }
    Ok(())
}

/// What endpoint sweeps say of themselves, as any `load` writes them: labels apart, no level
/// completing more requests than it sent, and percentiles rising in order.
fn endpoints_agree(endpoints: &[EndpointRun]) -> std::result::Result<(), (String, String)> {
    for (e, endpoint) in endpoints.iter().enumerate() {
        if let Some(first) = endpoints[..e]
            .iter()
            .position(|o| o.label == endpoint.label)
        {
            return Err((
                format!("endpoints[{e}].label"),
                format!(
                    "is {:?} again, as endpoints[{first}]: reports could not tell the two apart",
                    endpoint.label
                ),
            ));
        }
        for (l, level) in endpoint.levels.iter().enumerate() {
            let at = format!("endpoints[{e}].levels[{l}]");
            if level.completed > level.requests {
                return Err((
                    format!("{at}.completed"),
                    format!(
                        "is {} but the level sent {} requests",
                        level.completed, level.requests
                    ),
                ));
            }
            let spreads = [
                ("ttft_ms", level.ttft_ms),
                ("tpot_ms", level.tpot_ms),
                ("itl_ms", level.itl_ms),
                ("e2e_ms", level.e2e_ms),
            ];
            for (name, spread) in spreads {
                let Some(s) = spread else { continue };
                let slack = 1e-9 * s.p99.abs().max(1.0);
                if s.p50 > s.p90 + slack || s.p90 > s.p95 + slack || s.p95 > s.p99 + slack {
                    return Err((
                        format!("{at}.{name}"),
                        format!(
                            "p50 {} p90 {} p95 {} p99 {} do not rise in order",
                            s.p50, s.p90, s.p95, s.p99
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether the JSON text holds a `-` outside its strings: the sign of a negative number.
fn has_negative_number(json: &[u8]) -> bool {
    let (mut in_string, mut escaped, mut previous) = (false, false, 0u8);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'-' && !matches!(previous, b'e' | b'E') {
            return true;
        }
        previous = b;
    }
    false
}

/// The first negative number in `value` and where it is (`runs[0].latency...`). Every number
/// a results file holds is a time, count, rate, size or percentage, so a negative one can only
/// come from an edit, and would print as negative costs or -3000% changes.
fn first_negative(value: &serde_json::Value, at: String) -> Option<(String, f64)> {
    use serde_json::Value;
    match value {
        Value::Number(n) => n.as_f64().filter(|x| *x < 0.0).map(|x| (at, x)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_negative(v, format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let at = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            first_negative(v, at)
        }),
        _ => None,
    }
}

/// The JSON Schema of the results file, generated from the Rust types.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Results)).expect("a schema is JSON")
}
