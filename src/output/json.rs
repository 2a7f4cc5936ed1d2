//! JSON: any document as pretty-printed data (the fields are the document's; see its type).

use super::{one, Exporter, File, Named};
use crate::error::{Error, Result};

/// Pretty-printed JSON, ending in a newline.
pub struct Json;

impl<D: serde::Serialize + Named> Exporter<D> for Json {
    fn export(&self, doc: &D) -> Result<Vec<File>> {
        let text = serde_json::to_string_pretty(doc).map_err(|e| Error::Render {
            file: format!("{}.json", D::STEM),
            detail: e.to_string(),
        })?;
        one::<D>("json", text + "\n")
    }
}
