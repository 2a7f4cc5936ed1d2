//! Prompts of a set length in words for servers whose tokenizer llm-bench does not have: words
//! drawn (seeded) from the built-in customer-support prompts, so that no two prompts share a
//! prefix a server's prompt cache could reuse. Common English words are about one token each
//! in Llama's and Qwen's vocabularies; the server's `usage` gives the exact count.

use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;
use std::path::Path;

const CORPUS: &str = include_str!("../../fixtures/prompts/customer-support.txt");

/// `count` prompts of `words` words each.
pub fn random_words(count: usize, words: usize, seed: u64) -> Vec<String> {
    let vocabulary: Vec<&str> = CORPUS.split_whitespace().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut picked = Vec::with_capacity(words);
            while picked.len() < words {
                let mut round = vocabulary.clone();
                round.shuffle(&mut rng);
                picked.extend(round.into_iter().take(words - picked.len()));
            }
            picked.join(" ")
        })
        .collect()
}

/// The first human turn of each conversation of a ShareGPT-style JSON file
/// (`[{"conversations": [{"from": "human", "value": "..."}, ...]}, ...]`).
pub fn sharegpt(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |problem: String| Error::BadField {
        path: path.into(),
        field: "conversations".into(),
        problem,
    };
    let entries: Vec<Value> = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("is not a JSON list of conversations ({e}); expected ShareGPT's [{{\"conversations\": [{{\"from\": \"human\", \"value\": ...}}]}}]")))?;
    let prompts: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            entry["conversations"]
                .as_array()?
                .iter()
                .find(|turn| turn["from"] == "human")?["value"]
                .as_str()
                .filter(|text| !text.trim().is_empty())
                .map(str::to_string)
        })
        .collect();
    if prompts.is_empty() {
        return Err(bad(format!(
            "none of its {} entries has a human turn with text; expected ShareGPT's [{{\"conversations\": [{{\"from\": \"human\", \"value\": ...}}]}}]",
            entries.len()
        )));
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_have_the_words_asked_and_differ() {
        let p = random_words(3, 700, 1);
        assert!(p.iter().all(|p| p.split_whitespace().count() == 700));
        assert_ne!(p[0], p[1]);
        assert_eq!(p, random_words(3, 700, 1));
    }

    #[test]
    fn sharegpt_files_give_their_first_human_turns_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.json");
        std::fs::write(&file, r#"[{"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello"}]},
            {"conversations": [{"from": "gpt", "value": "x"}]}, {"id": 3}]"#).unwrap();
        assert_eq!(sharegpt(&file).unwrap(), ["Hi?"]);
        std::fs::write(&file, "[{\"id\": 1}]").unwrap();
        let err = sharegpt(&file).unwrap_err().to_string();
        assert!(
            err.contains("d.json") && err.contains("human turn"),
            "{err}"
        );
        std::fs::write(&file, "{").unwrap();
        assert!(sharegpt(&file)
            .unwrap_err()
            .to_string()
            .contains("ShareGPT"));
    }
}
