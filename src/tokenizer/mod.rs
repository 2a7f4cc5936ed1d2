//! Tokenizers: a `tokenizer.json`, or one rebuilt from a GGUF file's own metadata (so a lone
//! `.gguf` needs no other file), or a byte-level stand-in for synthetic models that have no
//! real vocabulary. A GGUF vocabulary llm-bench cannot rebuild (a pre-tokenizer or model it
//! does not know) is read by the [`ForeignVocab`] loader an engine registers (llama.cpp's
//! own), where one is built in; the tokenizer's `origin` says which.

mod bpe;
mod chat;
mod gguf;

use crate::error::{Error, Result};
use bpe::{byte_alphabet, byte_level_bpe, byte_level_split};
pub use chat::{ChatMessage, ChatTemplate};
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Text to token ids and back by another library's code, for a vocabulary llm-bench does not
/// rebuild.
pub trait ForeignVocab: Send + Sync {
    /// The ids of `text`, with the BOS token and special tokens as the model's file asks.
    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String>;
    /// Token ids as text.
    fn decode(&self, ids: &[u32]) -> std::result::Result<String, String>;
    /// Tokens in the vocabulary.
    fn vocab_size(&self) -> usize;
}

/// Reads the vocabulary of the GGUF file at the path.
pub type VocabLoader = fn(&Path) -> std::result::Result<Arc<dyn ForeignVocab>, String>;

static FOREIGN_LOADER: OnceLock<(&'static str, VocabLoader)> = OnceLock::new();

/// Registers `loader` (named `name` in tokenizers' origins) for the vocabularies llm-bench
/// cannot rebuild; the first registration stays.
pub fn register_foreign_loader(name: &'static str, loader: VocabLoader) {
    let _ = FOREIGN_LOADER.set((name, loader));
}

#[derive(Clone)]
enum Inner {
    Rebuilt(Box<tokenizers::Tokenizer>),
    Foreign(Arc<dyn ForeignVocab>),
}

/// A model's tokenizer, with its end-of-sequence tokens.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Inner,
    /// Prepended by us, not by the tokenizer: GGUF says so with `tokenizer.ggml.add_bos_token`.
    bos_to_prepend: Option<u32>,
    /// Every token that ends generation.
    pub eos_token_ids: Vec<u32>,
    /// Where it came from, for reports: a path, `gguf:<pre-tokenizer>`, `byte-level`.
    pub origin: String,
    /// The model's chat template, where its files carry one.
    pub chat: Option<ChatTemplate>,
}

impl TextTokenizer {
    /// Reads a tokenizer.json.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer.json not found; place the model's tokenizer.json next to its weights"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| crate::paths::corrupt(path, "tokenizer.json", e))?;
        let eos_token_ids = [
            "</s>",
            "<|end_of_text|>",
            "<|eot_id|>",
            "<|endoftext|>",
            "<|im_end|>",
        ]
        .iter()
        .filter_map(|t| inner.token_to_id(t))
        .collect();
        let chat = chat_template_beside(path, &inner);
        Ok(Self {
            inner: Inner::Rebuilt(Box::new(inner)),
            bos_to_prepend: None,
            chat,
            eos_token_ids,
            origin: path.display().to_string(),
        })
    }

    /// A tokenizer of the 256 bytes plus an end-of-text token, for synthetic models whose real
    /// vocabulary is not available: prompts cost one token per byte.
    pub fn byte_level() -> Self {
        let tokens: Vec<String> = byte_alphabet().into_iter().map(String::from).collect();
        let eos_id = tokens.len();
        let mut all = tokens;
        all.push("<|endoftext|>".into());
        let added = vec![
            json!({"id": eos_id, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                                "rstrip": false, "normalized": false, "special": true}),
        ];
        let spec = byte_level_bpe(&all, &[], byte_level_split(true), added);
        let inner = serde_json::from_value::<tokenizers::Tokenizer>(spec)
            .expect("the byte-level tokenizer spec is valid");
        Self {
            inner: Inner::Rebuilt(Box::new(inner)),
            bos_to_prepend: None,
            eos_token_ids: vec![eos_id as u32],
            origin: "byte-level".into(),
            chat: None,
        }
    }

    /// The tokenizer as `tokenizer.json` text (for writing a model folder).
    pub fn to_json(&self) -> Result<String> {
        self.rebuilt()?
            .to_string(false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The Hugging Face tokenizer, if llm-bench rebuilt it (not a foreign vocabulary).
    fn rebuilt(&self) -> Result<&tokenizers::Tokenizer> {
        match &self.inner {
            Inner::Rebuilt(t) => Ok(t.as_ref()),
            Inner::Foreign(_) => Err(Error::Tokenizer(format!(
                "the vocabulary is read by {}, which llm-bench cannot write out",
                self.origin
            ))),
        }
    }

    /// Whether the vocabulary holds `token` (a foreign one is not asked: `false`).
    pub fn has_token(&self, token: &str) -> bool {
        self.rebuilt().is_ok_and(|t| t.token_to_id(token).is_some())
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Rebuilt(t) => t.get_vocab_size(true),
            Inner::Foreign(v) => v.vocab_size(),
        }
    }

    /// The ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let inner = match &self.inner {
            Inner::Rebuilt(t) => t,
            Inner::Foreign(v) => {
                let ids = v.encode(text).map_err(Error::Tokenizer)?;
                if ids.is_empty() && !text.trim().is_empty() {
                    return Err(Error::Unencodable {
                        preview: text.chars().take(40).collect(),
                        tokenizer: self.origin.clone(),
                    });
                }
                return Ok(ids);
            }
        };
        let encoding = inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        // Text the vocabulary cannot spell at all would run as the BOS token alone.
        if encoding.is_empty() && !text.trim().is_empty() {
            return Err(Error::Unencodable {
                preview: text.chars().take(40).collect(),
                tokenizer: self.origin.clone(),
            });
        }
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        ids.extend(self.bos_to_prepend);
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner {
            Inner::Rebuilt(t) => t
                .decode(ids, true)
                .map_err(|e| Error::Tokenizer(e.to_string())),
            Inner::Foreign(v) => v.decode(ids).map_err(Error::Tokenizer),
        }
    }

    /// Whether `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_token_ids.contains(&id)
    }
}

/// The chat template of the `tokenizer_config.json` beside `tokenizer.json` (a string, or
/// the `default` of a list of named templates), with its BOS and EOS tokens' texts.
fn chat_template_beside(path: &Path, tokenizer: &tokenizers::Tokenizer) -> Option<ChatTemplate> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_file_name("tokenizer_config.json")).ok()?)
            .ok()?;
    let source = match &config["chat_template"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(named) => named.iter().find(|t| t["name"] == "default")?
            ["template"]
            .as_str()?
            .to_string(),
        _ => return None,
    };
    // A special token is a string, or an object with its text in `content`.
    let token = |key: &str| {
        let value = &config[key];
        let text = value.as_str().or_else(|| value["content"].as_str());
        text.filter(|t| tokenizer.token_to_id(t).is_some())
            .unwrap_or_default()
            .to_string()
    };
    Some(ChatTemplate {
        source,
        bos_token: token("bos_token"),
        eos_token: token("eos_token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_round_trips_any_text() {
        let tok = TextTokenizer::byte_level();
        let text = "héllo\t wörld 123 🦀";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids.len(), text.len(), "one token per byte");
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(tok.vocab_size(), 257);
        assert!(tok.is_eos(256));
    }
}
