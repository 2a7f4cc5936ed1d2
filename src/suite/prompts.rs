//! The prompts a suite runs: the built-in customer-support prompts, or a file of them.

use crate::error::{Error, Result};
use std::path::Path;

/// The tutorial's five customer-support prompts.
pub const BUILTIN_PROMPTS: &str = include_str!("../../fixtures/prompts/customer-support.txt");
/// The prompts and where they came from.
#[derive(Debug, Clone)]
pub struct Prompts {
    /// Where the prompts came from.
    pub source: String,
    /// The prompts.
    pub list: Vec<String>,
}

impl Prompts {
    /// The prompts built into llm-bench.
    pub fn builtin() -> Self {
        Self {
            source: "built-in (fixtures/prompts/customer-support.txt)".into(),
            list: BUILTIN_PROMPTS
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// One prompt per line, or JSONL with a `prompt` field per line; blank lines are skipped.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut list = Vec::new();
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() {
                continue;
            }
            if line.starts_with('{') {
                let bad = |problem: &str| Error::BadField {
                    path: path.into(),
                    field: format!("prompt (line {number})"),
                    problem: problem.to_string(),
                };
                let value: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| bad(&format!("is on a line that is not valid JSON: {e}")))?;
                let prompt = value
                    .get("prompt")
                    .and_then(|p| p.as_str())
                    .ok_or_else(|| {
                        bad("is missing or not a string; expected {\"prompt\": \"...\"}")
                    })?;
                if prompt.trim().is_empty() {
                    return Err(bad("is empty"));
                }
                list.push(prompt.to_string());
            } else {
                list.push(line.to_string());
            }
        }
        if list.is_empty() {
            return Err(Error::NoPrompts { path: path.into() });
        }
        Ok(Self {
            source: path.display().to_string(),
            list,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_files_take_plain_lines_and_jsonl_and_skip_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.jsonl");
        std::fs::write(
            &path,
            "First prompt\n\n{\"prompt\": \"Second, from JSON\", \"id\": 7}\n  Third  \n",
        )
        .unwrap();
        let prompts = Prompts::read(&path).unwrap();
        assert_eq!(prompts.list, ["First prompt", "Second, from JSON", "Third"]);
        assert_eq!(prompts.source, path.display().to_string());
        assert_eq!(Prompts::builtin().list.len(), 5);
    }
}
