//! Tokenizers: a `tokenizer.json`, or one rebuilt from a GGUF file's own metadata (so a lone
//! `.gguf` needs no other file), or a byte-level stand-in for synthetic models that have no
//! real vocabulary. A GGUF vocabulary llm-bench cannot rebuild (a pre-tokenizer or model it
//! does not know) is read by the [`ForeignVocab`] loader an engine registers (llama.cpp's
//! own), where one is built in; the tokenizer's `origin` says which.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::{json, Value as Json};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Text to token ids and back by another library's code, for a vocabulary llm-bench does not
/// rebuild.
pub trait ForeignVocab: Send + Sync {
    /// The ids of `text`, with the BOS token and special tokens as the model's file asks.
    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String>;
    fn decode(&self, ids: &[u32]) -> std::result::Result<String, String>;
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

#[derive(Clone)]
pub struct TextTokenizer {
    inner: Inner,
    /// Prepended by us, not by the tokenizer: GGUF says so with `tokenizer.ggml.add_bos_token`.
    bos_to_prepend: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    /// Where it came from, for reports: a path, `gguf:<pre-tokenizer>`, `byte-level`.
    pub origin: String,
}

impl TextTokenizer {
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
        Ok(Self {
            inner: Inner::Rebuilt(Box::new(inner)),
            bos_to_prepend: None,
            eos_token_ids,
            origin: path.display().to_string(),
        })
    }

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
        let built = match Self::build_from_gguf(content, path) {
            Err(Error::BadField { field, problem, .. }) if is_unrebuildable(&field, &problem) => {
                Self::foreign(content, path, &field, &problem)?
            }
            other => other?,
        };
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
            inner: Inner::Rebuilt(Box::new(inner)),
            bos_to_prepend: if add_bos { bos } else { None },
            eos_token_ids: eos.into_iter().collect(),
            origin,
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

    /// Whether the vocabulary holds `token` (a foreign one is not asked: `false`).
    pub fn has_token(&self, token: &str) -> bool {
        self.rebuilt().is_ok_and(|t| t.token_to_id(token).is_some())
    }

    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Rebuilt(t) => t.get_vocab_size(true),
            Inner::Foreign(v) => v.vocab_size(),
        }
    }

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

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner {
            Inner::Rebuilt(t) => t
                .decode(ids, true)
                .map_err(|e| Error::Tokenizer(e.to_string())),
            Inner::Foreign(v) => v.decode(ids).map_err(Error::Tokenizer),
        }
    }

    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_token_ids.contains(&id)
    }
}

/// A hash of every `tokenizer.*` metadata entry, names and values.
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

/// GPT-2's printable stand-ins for the 256 bytes, in byte order.
fn byte_alphabet() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shift = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                shift += 1;
                char::from_u32(255 + shift).unwrap()
            }
        })
        .collect()
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

fn byte_level_split(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

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

fn byte_level_bpe(
    tokens: &[String],
    merges: &[String],
    pre_tokenizer: Json,
    added_tokens: Vec<Json>,
) -> Json {
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

/// SentencePiece BPE as Hugging Face's `LlamaConverter` rebuilds it: merges recovered from the
/// vocabulary, ranked by the merged piece's score.
fn sentencepiece_bpe(
    tokens: &[String],
    scores: &[f32],
    add_space_prefix: bool,
    added_tokens: Vec<Json>,
) -> Json {
    let ids: std::collections::HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // A split can only be a merge where both halves are tokens, so only the lengths tokens
    // have are tried: a 400 KB piece costs a few lookups, not one per character (quadratic).
    let mut lengths: Vec<usize> = tokens.iter().map(String::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut merges: Vec<(usize, usize, f32)> = Vec::new();
    for (merged_id, piece) in tokens.iter().enumerate() {
        let mut local: Vec<(usize, usize, f32)> = lengths
            .iter()
            .copied()
            .take_while(|&split| split < piece.len())
            .filter(|&split| split > 0 && piece.is_char_boundary(split))
            .filter(|&split| lengths.binary_search(&(piece.len() - split)).is_ok())
            .filter_map(|split| {
                let (l, r) = piece.split_at(split);
                Some((
                    *ids.get(l)?,
                    *ids.get(r)?,
                    scores.get(merged_id).copied().unwrap_or(0.0),
                ))
            })
            .collect();
        local.sort_by_key(|&(l, r, _)| (l, r));
        merges.extend(local);
    }
    merges.sort_by(|a, b| b.2.total_cmp(&a.2));
    let merges: Vec<Json> = merges
        .iter()
        .map(|&(l, r, _)| json!([tokens[l], tokens[r]]))
        .collect();
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let mut normalizers = vec![];
    if add_space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": "▁"}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": if add_space_prefix { 1 } else { 0 }, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": tokens.first(), "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
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

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let alphabet = byte_alphabet();
        let unique: std::collections::HashSet<_> = alphabet.iter().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(alphabet[b' ' as usize], 'Ġ');
    }

    #[test]
    fn sentencepiece_merges_are_every_split_into_two_tokens() {
        let tokens: Vec<String> = [
            "<unk>", "▁", "é", "a", "▁é", "éa", "▁éa", "aa", "aaa", "▁aaa",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        // Every split at every character, as the merges are defined.
        let mut naive: Vec<(String, String)> = Vec::new();
        for piece in &tokens {
            for (split, _) in piece.char_indices().skip(1) {
                let (l, r) = piece.split_at(split);
                if tokens.iter().any(|t| t == l) && tokens.iter().any(|t| t == r) {
                    naive.push((l.to_string(), r.to_string()));
                }
            }
        }
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        let mut merges: Vec<(String, String)> = spec["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
            .collect();
        merges.sort();
        naive.sort();
        assert_eq!(merges, naive);
        assert_eq!(merges.len(), 8, "{merges:?}");
    }

    #[test]
    fn a_huge_piece_builds_in_linear_time() {
        let mut tokens: Vec<String> = ["<unk>", "▁", "a", "aa"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        tokens.push("a".repeat(400_000));
        let scores = vec![0.0; tokens.len()];
        let started = std::time::Instant::now();
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        assert_eq!(spec["model"]["merges"].as_array().unwrap().len(), 1);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    #[test]
    fn sentencepiece_merges_follow_scores() {
        let tokens: Vec<String> = ["<unk>", "▁", "a", "b", "ab", "▁ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, -1.0, -2.0, -3.0, -0.5, -0.1];
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        let tok = serde_json::from_value::<tokenizers::Tokenizer>(spec).unwrap();
        let ids = tok.encode("ab", false).unwrap().get_ids().to_vec();
        assert_eq!(ids, vec![5], "'▁ab' is one piece");
        assert_eq!(
            tok.decode(&[5, 4], true).unwrap(),
            "abab",
            "leading space stripped once"
        );
    }
}
