//! The results file `llm-bench run` writes and `report` / `compare` read: a versioned schema
//! (`schemas/results-v1.schema.json` is generated from these types, and a test keeps the two
//! equal), loading with errors that name the file and the field, and the summaries.
//!
//! Versioning: `schema_version` changes whenever a field is renamed, removed or changes
//! meaning; readers refuse other versions rather than misreading them. Adding an optional
//! field does not change the version.

pub mod schema;
pub mod summary;

pub use schema::*;
pub use summary::{GroupSummary, Summary};

use crate::error::{Error, Result};
use std::path::Path;

pub const SCHEMA_ID: &str = "llm-bench/results";
pub const SCHEMA_VERSION: u32 = 1;
pub const RESULTS_FILE: &str = "results.json";

impl Results {
    /// Reads and checks a results file: JSON, the right schema and version, every field.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::NotResults {
                path: path.into(),
                problem: format!("it is not valid JSON ({e})"),
            })?;
        let schema = value.get("schema").and_then(|s| s.as_str());
        if schema != Some(SCHEMA_ID) {
            return Err(Error::NotResults {
                path: path.into(),
                problem: format!(
                    "its `schema` field is {}, expected {SCHEMA_ID:?}",
                    schema.map_or("missing".to_string(), |s| format!("{s:?}"))
                ),
            });
        }
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(Error::SchemaVersion {
                path: path.into(),
                found: version.map_or("missing".to_string(), |v| v.to_string()),
                expected: SCHEMA_VERSION,
            });
        }
        serde_path_to_error::deserialize(value).map_err(|e| Error::ResultsField {
            path: path.into(),
            location: match e.path().to_string() {
                root if root == "." => "the top level".into(),
                path => path,
            },
            problem: e.inner().to_string(),
        })
    }

    /// Writes atomically: a reader (or a run interrupted later) never sees half a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("results are plain data");
        crate::bench::write_atomically(path, &json).map_err(|e| Error::io(path, e))
    }
}

/// The JSON Schema of the results file, generated from the Rust types.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Results)).expect("a schema is JSON")
}
