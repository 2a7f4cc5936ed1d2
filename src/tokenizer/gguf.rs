//! Rebuilding a tokenizer from a GGUF file's `tokenizer.ggml.*` metadata (as llama.cpp reads
//! it), or handing a vocabulary llm-bench cannot rebuild to the registered foreign loader; and
//! writing a tokenizer back out as GGUF metadata.

use super::bpe::{byte_level_bpe, byte_level_split, sentencepiece_bpe};
use super::{ChatTemplate, Inner, TextTokenizer, FOREIGN_LOADER};
use crate::error::{Error, Result};
use crate::gguf::{Content, Value};
use serde_json::{json, Value as Json};
use std::path::Path;

/// The chat template a GGUF file carries (`tokenizer.chat_template`), with the texts of its
/// BOS and EOS tokens.
fn chat_template(content: &Content) -> Option<ChatTemplate> {
    let Some(Value::String(source)) = content.metadata.get("tokenizer.chat_template") else {
        return None;
    };
    let text = |key| TextTokenizer::token_text(content, key).unwrap_or_default();
    Some(ChatTemplate {
        source: source.clone(),
        bos_token: text("tokenizer.ggml.bos_token_id"),
        eos_token: text("tokenizer.ggml.eos_token_id"),
    })
}

impl TextTokenizer {
    /// Rebuilds the tokenizer llama.cpp would use from `tokenizer.ggml.*` metadata.
    ///
    /// Building one takes ~0.3 s for a 49k vocabulary, and `run` plans every format of the
    /// same file: the last one built is kept, keyed by a hash of the metadata it came from.
    pub fn from_gguf(content: &Content, path: &Path) -> Result<Self> {
        static LAST: std::sync::Mutex<Option<(u64, TextTokenizer)>> = std::sync::Mutex::new(None);
        let key = tokenizer_metadata_hash(content);
        if let Some((k, tokenizer)) = &*LAST.lock().unwrap_or_else(|p| p.into_inner()) {
            if *k == key {
                return Ok(tokenizer.clone());
            }
        }
        let mut built = match Self::build_from_gguf(content, path) {
            Err(Error::BadField { field, problem, .. }) if is_unrebuildable(&field, &problem) => {
                Self::foreign(content, path, &field, &problem)?
            }
            other => other?,
        };
        built.chat = chat_template(content);
        *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, built.clone()));
        Ok(built)
    }

    /// The vocabulary of the GGUF at `path` read by the registered foreign loader, for a
    /// `field` llm-bench cannot rebuild; without a loader, that field's refusal.
    fn foreign(content: &Content, path: &Path, field: &str, problem: &str) -> Result<Self> {
        let refused = |problem: String| Error::BadField {
            path: path.into(),
            field: field.into(),
            problem,
        };
        let Some((name, loader)) = FOREIGN_LOADER.get() else {
            return Err(refused(format!(
                "{problem}; or build llm-bench with --features llama-cpp, which tokenizes it with llama.cpp's own code"
            )));
        };
        let vocab = loader(path).map_err(refused)?;
        let kind = |key: &str| match content.metadata.get(key) {
            Some(Value::String(s)) => s.clone(),
            _ => "default".into(),
        };
        Ok(TextTokenizer {
            chat: None,
            inner: Inner::Foreign(vocab),
            bos_to_prepend: None,
            eos_token_ids: match content.metadata.get("tokenizer.ggml.eos_token_id") {
                Some(Value::U32(id)) => vec![*id],
                _ => vec![],
            },
            origin: format!(
                "{name}:{}/{}",
                kind("tokenizer.ggml.model"),
                kind("tokenizer.ggml.pre")
            ),
        })
    }

    /// A vocabulary token's text (`tokenizer.ggml.tokens` at the id `key` holds).
    fn token_text(content: &Content, key: &str) -> Option<String> {
        let id = match content.metadata.get(key)? {
            Value::U32(id) => *id as usize,
            _ => return None,
        };
        match content.metadata.get("tokenizer.ggml.tokens")? {
            Value::Array(tokens) => match tokens.get(id)? {
                Value::String(text) => Some(text.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn build_from_gguf(content: &Content, path: &Path) -> Result<Self> {
        let md = &content.metadata;
        let field_err = |field: &str, problem: String| Error::BadField {
            path: path.into(),
            field: field.into(),
            problem,
        };
        let string_list = |key: &str| -> Result<Vec<String>> {
            let values = md
                .get(key)
                .ok_or_else(|| field_err(key, "is missing".into()))?
                .to_vec()
                .map_err(|e| field_err(key, e.to_string()))?;
            values
                .iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|e| field_err(key, e.to_string()))
                })
                .collect()
        };
        // Each key is read with the type llama.cpp requires of it: a value of another type is
        // refused, not replaced by a default.
        let wrong = |key: &str, v: &Value, expected: &str| {
            field_err(key, crate::family::wrong_gguf_type(key, v, expected))
        };
        let model = match md.get("tokenizer.ggml.model") {
            Some(Value::String(model)) => model.clone(),
            Some(v) => return Err(wrong("tokenizer.ggml.model", v, "STRING")),
            None => {
                return Err(field_err(
                    "tokenizer.ggml.model",
                    "is missing: this GGUF carries no tokenizer".into(),
                ))
            }
        };
        let tokens = string_list("tokenizer.ggml.tokens")?;
        let token_types: Vec<i32> = match typed_list(
            md,
            "tokenizer.ggml.token_type",
            "I32",
            &wrong,
            |v| match v {
                Value::I32(t) => Some(*t),
                _ => None,
            },
        )? {
            Some(types) => types,
            None => vec![1; tokens.len()],
        };
        let id_key = |key: &str| match md.get(key) {
            None => Ok(None),
            Some(Value::U32(id)) => Ok(Some(*id)),
            Some(v) => Err(wrong(key, v, "U32")),
        };
        let bool_key = |key: &str, default: bool| match md.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(wrong(key, v, "BOOL")),
        };
        let bos = id_key("tokenizer.ggml.bos_token_id")?;
        let eos = id_key("tokenizer.ggml.eos_token_id")?;
        let add_bos = bool_key("tokenizer.ggml.add_bos_token", model == "llama")?;
        // Control (3) and user-defined (4) tokens are matched whole in the text, as llama.cpp does.
        let added_tokens: Vec<Json> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(token_types.get(*i), Some(3) | Some(4)))
            .map(|(i, t)| {
                json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": token_types[i] == 3})
            })
            .collect();
        let (spec, origin) = match model.as_str() {
            "gpt2" => {
                let merges = string_list("tokenizer.ggml.merges")?;
                let pre = match md.get("tokenizer.ggml.pre") {
                    None => "default".to_string(),
                    Some(Value::String(pre)) => pre.clone(),
                    Some(v) => return Err(wrong("tokenizer.ggml.pre", v, "STRING")),
                };
                let split = pre_tokenizer(&pre)
                    .map_err(|problem| field_err("tokenizer.ggml.pre", problem))?;
                let spec = byte_level_bpe(&tokens, &merges, split, added_tokens);
                (spec, format!("gguf:gpt2/{pre}"))
            }
            "llama" => {
                let scores: Vec<f32> =
                    typed_list(md, "tokenizer.ggml.scores", "F32", &wrong, |v| match v {
                        Value::F32(score) => Some(*score),
                        _ => None,
                    })?
                    .ok_or_else(|| field_err("tokenizer.ggml.scores", "is missing".into()))?;
                let add_space_prefix = bool_key("tokenizer.ggml.add_space_prefix", true)?;
                (
                    sentencepiece_bpe(&tokens, &scores, add_space_prefix, added_tokens),
                    "gguf:llama-spm".to_string(),
                )
            }
            other => {
                return Err(field_err(
                    "tokenizer.ggml.model",
                    format!("is {other:?}; {UNSUPPORTED_MODEL} and \"llama\" (SentencePiece)"),
                ))
            }
        };
        let inner: tokenizers::Tokenizer = serde_json::from_value::<tokenizers::Tokenizer>(spec)
            .map_err(|e| {
                field_err(
                    "tokenizer.ggml.*",
                    format!("cannot be turned into a tokenizer: {e}"),
                )
            })?;
        Ok(Self {
            chat: None,
            inner: Inner::Rebuilt(Box::new(inner)),
            bos_to_prepend: if add_bos { bos } else { None },
            eos_token_ids: eos.into_iter().collect(),
            origin,
        })
    }

    /// The `tokenizer.ggml.*` entries of a GGUF file that holds this tokenizer, for a model of
    /// `vocab_size` tokens (ids the tokenizer does not use become unused `[PAD<id>]` tokens,
    /// as converters write them). Byte-level BPE only (GPT-2 style, as Llama 3 and SmolLM2
    /// use); `pre` is llama.cpp's pre-tokenizer name (`llama-bpe`, `smollm`, `default`).
    pub fn gguf_metadata(&self, vocab_size: usize, pre: &str) -> Result<Vec<(String, Value)>> {
        let unsupported = |why: String| {
            Error::Tokenizer(format!(
                "cannot write this tokenizer into a GGUF file: {why}"
            ))
        };
        let spec: Json =
            serde_json::from_str(&self.to_json()?).map_err(|e| unsupported(e.to_string()))?;
        let model = &spec["model"];
        if model["type"] != "BPE" || model["byte_fallback"] == true {
            return Err(unsupported(format!(
                "its model is {} (byte fallback {}); only byte-level BPE (GPT-2 style) is written",
                model["type"], model["byte_fallback"]
            )));
        }
        let mut tokens: Vec<Option<(String, i32)>> = vec![None; vocab_size];
        let mut put = |id: u64, token: &str, kind: i32| -> Result<()> {
            let slot = usize::try_from(id)
                .ok()
                .and_then(|id| tokens.get_mut(id))
                .ok_or_else(|| {
                    unsupported(format!(
                        "token {token:?} has id {id}, outside the model's vocabulary of {vocab_size}"
                    ))
                })?;
            *slot = Some((token.to_string(), kind));
            Ok(())
        };
        for (token, id) in model["vocab"].as_object().into_iter().flatten() {
            put(id.as_u64().unwrap_or(u64::MAX), token, 1)?;
        }
        // Special added tokens are control tokens (3), the others user-defined (4).
        for added in spec["added_tokens"].as_array().into_iter().flatten() {
            let kind = if added["special"] == true { 3 } else { 4 };
            let content = added["content"].as_str().unwrap_or_default();
            put(added["id"].as_u64().unwrap_or(u64::MAX), content, kind)?;
        }
        let (names, kinds): (Vec<Value>, Vec<Value>) = tokens
            .into_iter()
            .enumerate()
            .map(|(id, t)| {
                let (name, kind) = t.unwrap_or_else(|| (format!("[PAD{id}]"), 5));
                (Value::String(name), Value::I32(kind))
            })
            .unzip();
        // Merges are "a b" strings in older files, ["a", "b"] pairs in newer ones.
        let merges: Vec<Value> = model["merges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| match m {
                Json::String(s) => Ok(s.clone()),
                Json::Array(pair) if pair.len() == 2 => Ok(format!(
                    "{} {}",
                    pair[0].as_str().unwrap_or_default(),
                    pair[1].as_str().unwrap_or_default()
                )),
                other => Err(unsupported(format!("a merge is {other}"))),
            })
            .map(|m| m.map(Value::String))
            .collect::<Result<_>>()?;
        let mut out = vec![
            (
                "tokenizer.ggml.model".to_string(),
                Value::String("gpt2".into()),
            ),
            ("tokenizer.ggml.pre".to_string(), Value::String(pre.into())),
            ("tokenizer.ggml.tokens".to_string(), Value::Array(names)),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(kinds)),
            ("tokenizer.ggml.merges".to_string(), Value::Array(merges)),
            (
                "tokenizer.ggml.add_bos_token".to_string(),
                Value::Bool(self.bos_to_prepend.is_some()),
            ),
        ];
        if let Some(bos) = self.bos_to_prepend {
            out.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(bos)));
        }
        if let Some(&eos) = self.eos_token_ids.first() {
            out.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)));
        }
        Ok(out)
    }
}

/// The array at `key` with every element taken by `pick`, `None` when the key is absent; an
/// element or value of another type is `wrong`'s error ("ARRAY of `expected`").
fn typed_list<T>(
    md: &std::collections::HashMap<String, Value>,
    key: &str,
    expected: &str,
    wrong: &dyn Fn(&str, &Value, &str) -> Error,
    pick: impl Fn(&Value) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    let expected = format!("ARRAY of {expected}");
    match md.get(key) {
        None => Ok(None),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| pick(v).ok_or_else(|| wrong(key, v, &expected)))
            .collect::<Result<Vec<T>>>()
            .map(Some),
        Some(v) => Err(wrong(key, v, &expected)),
    }
}

/// A hash of every `tokenizer.*` metadata entry, names and values.
fn tokenizer_metadata_hash(content: &Content) -> u64 {
    use std::hash::{Hash, Hasher};
    fn value(v: &Value, h: &mut std::collections::hash_map::DefaultHasher) {
        std::mem::discriminant(v).hash(h);
        match v {
            Value::U8(x) => x.hash(h),
            Value::I8(x) => x.hash(h),
            Value::U16(x) => x.hash(h),
            Value::I16(x) => x.hash(h),
            Value::U32(x) => x.hash(h),
            Value::I32(x) => x.hash(h),
            Value::U64(x) => x.hash(h),
            Value::I64(x) => x.hash(h),
            Value::F32(x) => x.to_bits().hash(h),
            Value::F64(x) => x.to_bits().hash(h),
            Value::Bool(x) => x.hash(h),
            Value::String(x) => x.hash(h),
            Value::Array(items) => {
                items.len().hash(h);
                for item in items {
                    value(item, h);
                }
            }
        }
    }
    let mut keys: Vec<&String> = content
        .metadata
        .keys()
        .filter(|k| k.starts_with("tokenizer."))
        .collect();
    keys.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for key in keys {
        key.hash(&mut h);
        value(&content.metadata[key], &mut h);
    }
    h.finish()
}

/// The `tokenizer.ggml.pre` values [`byte_level_bpe`] rebuilds as llama.cpp splits them.
const KNOWN_PRE_TOKENIZERS: [&str; 11] = [
    "default",
    "gpt-2",
    "llama-bpe",
    "llama3",
    "llama-v3",
    "qwen2",
    "deepseek-r1-qwen",
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
];

/// Whether a GGUF tokenizer error is a vocabulary llm-bench does not rebuild (rather than a
/// malformed one): another library may read it. The refusals are written with these phrases.
fn is_unrebuildable(field: &str, problem: &str) -> bool {
    matches!(field, "tokenizer.ggml.pre" | "tokenizer.ggml.model")
        && (problem.contains(UNREBUILDABLE_PRE) || problem.contains(UNSUPPORTED_MODEL))
}

const UNREBUILDABLE_PRE: &str = "a pre-tokenizer llm-bench cannot rebuild";
const UNSUPPORTED_MODEL: &str = "supported: \"gpt2\" (byte-level BPE)";

/// The pre-tokenizer llama.cpp selects by `tokenizer.ggml.pre` (llama-vocab.cpp), spelled as
/// Hugging Face's tokenizer.json spells the same split.
fn pre_tokenizer(pre: &str) -> std::result::Result<Json, String> {
    Ok(match pre {
        "llama3" | "llama-bpe" | "llama-v3" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
             "behavior": "Isolated", "invert": false},
            byte_level_split(false)]}),
        // Llama 3's split with single digits.
        "qwen2" | "deepseek-r1-qwen" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
             "behavior": "Isolated", "invert": false},
            byte_level_split(false)]}),
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level_split(true)]})
        }
        "default" | "gpt-2" => byte_level_split(true),
        // Any other split (deepseek-llm, falcon, ...) would cut text where llama.cpp does
        // not, and every token count would be wrong.
        other => {
            return Err(format!(
                "is {other:?}, {UNREBUILDABLE_PRE} (it rebuilds {}): its \
                 token ids would differ from llama.cpp's; convert the model with a supported \
                 pre-tokenizer, or give a model directory with its tokenizer.json",
                KNOWN_PRE_TOKENIZERS.join(", ")
            ))
        }
    })
}
