//! The OpenAI API's request bodies as the server reads them, checked field by field: a bad
//! field is an HTTP 400 whose OpenAI-style error body names it.

use crate::scheduler::Sampling;
use crate::tokenizer::{ChatMessage, TextTokenizer};
use serde::Deserialize;
use serde_json::{json, Value};

/// An HTTP error with an OpenAI-style body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to send instead.
    pub message: String,
    /// The request field at fault, where one is.
    pub param: Option<String>,
}

impl ApiError {
    /// A 400 naming `param`.
    pub fn bad(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: (!param.is_empty()).then(|| param.to_string()),
        }
    }

    /// The error's JSON body.
    pub fn body(&self) -> Value {
        let kind = match self.status {
            400 | 404 => "invalid_request_error",
            429 | 503 => "server_overloaded",
            504 => "timeout",
            _ => "server_error",
        };
        json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": self.status}})
    }
}

/// A prompt: text, one text in a list, or token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// Text.
    Text(String),
    /// A list of texts (one, as `n` is 1).
    Texts(Vec<String>),
    /// Token ids.
    Ids(Vec<u32>),
}

/// A message's content: text, or a list of parts of which the text ones are read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Text.
    Text(String),
    /// `[{"type": "text", "text": "..."}]`.
    Parts(Vec<Value>),
}

/// A chat message as sent.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`.
    pub role: String,
    /// Its content.
    pub content: Option<Content>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// A last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// `stop`: one text or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The body of `/v1/completions` or `/v1/chat/completions` (the fields the server reads; others
/// are ignored, as OpenAI's servers do).
#[derive(Debug, Deserialize)]
pub struct Body {
    /// The model asked for; must be the one served when given.
    pub model: Option<String>,
    /// Completions: the prompt.
    pub prompt: Option<Prompt>,
    /// Chat: the messages.
    pub messages: Option<Vec<Message>>,
    /// Tokens to generate at most.
    pub max_tokens: Option<i64>,
    /// Chat's newer name for `max_tokens`.
    pub max_completion_tokens: Option<i64>,
    /// vLLM's and llama-server's: generate at least this many.
    pub min_tokens: Option<i64>,
    /// vLLM's and llama-server's: never stop at end-of-sequence.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Sampling temperature, 0 greedy (default 1, as OpenAI's).
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (vLLM's and llama-server's); 0 or -1 off.
    pub top_k: Option<i64>,
    /// The sampler's seed.
    pub seed: Option<u64>,
    /// Stop texts.
    pub stop: Option<Stop>,
    /// Server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Choices per prompt: 1 only.
    pub n: Option<i64>,
}

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/v1/completions`.
    Completion,
    /// `/v1/chat/completions`.
    Chat,
}

/// A checked request: its tokens and generation settings.
#[derive(Debug)]
pub struct Checked {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// Tokens before end-of-sequence may end it.
    pub min_tokens: usize,
    /// Never stop at end-of-sequence.
    pub ignore_eos: bool,
    /// Stop texts.
    pub stop: Vec<String>,
    /// Sampling.
    pub sampling: Sampling,
    /// Stream the answer.
    pub stream: bool,
    /// Add a usage chunk to the stream.
    pub include_usage: bool,
}

/// Parses `bytes` as a request body, naming the field at fault.
pub fn parse(bytes: &[u8]) -> Result<Body, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        // A body that is not JSON at all has no field at fault.
        let syntax = e.inner().is_syntax() || e.inner().is_eof();
        let param = if syntax || path == "." {
            ""
        } else {
            path.as_str()
        };
        let takes = match param {
            "prompt" => "prompt takes a text, a list of one text, or a list of token ids".into(),
            "stop" => "stop takes a text or a list of texts".into(),
            p if p.ends_with(".content") => {
                format!("{p} takes a text or a list of {{\"type\": \"text\", \"text\"}} parts")
            }
            _ => e.inner().to_string(),
        };
        ApiError::bad(
            param,
            format!("the request body is not a valid request: {takes}"),
        )
    })
}

/// Checks `body` against the served model (`name`, its tokenizer and context): every refusal
/// names the field and what it takes.
pub fn check(
    body: Body,
    kind: Kind,
    name: &str,
    tokenizer: &TextTokenizer,
    context: usize,
) -> Result<Checked, ApiError> {
    if let Some(model) = &body.model {
        if model != name {
            return Err(ApiError {
                status: 400,
                message: format!("unknown model {model:?}: this server serves {name:?} (GET /v1/models lists it)"),
                param: Some("model".into()),
            });
        }
    }
    if let Some(n) = body.n.filter(|&n| n != 1) {
        return Err(ApiError::bad(
            "n",
            format!("n must be 1 (one choice per request), found {n}"),
        ));
    }
    let (prompt, field) = match kind {
        Kind::Completion => (completion_prompt(body.prompt, tokenizer)?, "prompt"),
        Kind::Chat => (chat_prompt(body.messages, tokenizer)?, "messages"),
    };
    if prompt.len() >= context {
        return Err(ApiError::bad(field, format!(
            "the prompt has {} tokens, but the model's context holds {context} (prompt and output together): shorten it",
            prompt.len()
        )));
    }
    let room = context - prompt.len();
    let (max_field, asked) = match (body.max_completion_tokens, body.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    // OpenAI's default for completions is 16 tokens; chat runs to the end of the context.
    let max_tokens = match asked {
        None if kind == Kind::Completion => 16.min(room),
        None => room,
        Some(m) if m < 1 => {
            return Err(ApiError::bad(max_field, format!("{max_field} must be at least 1, found {m}")))
        }
        Some(m) if m as u64 > room as u64 => {
            return Err(ApiError::bad(max_field, format!(
                "{max_field} is {m}, but the prompt's {} tokens leave {room} of the model's context of {context}: ask for at most {room}",
                prompt.len()
            )))
        }
        Some(m) => m as usize,
    };
    let min_tokens = match body.min_tokens {
        None => 0,
        Some(m) if m < 0 || m as u64 > max_tokens as u64 => {
            return Err(ApiError::bad(
                "min_tokens",
                format!("min_tokens must be between 0 and max_tokens ({max_tokens}), found {m}"),
            ))
        }
        Some(m) => m as usize,
    };
    let temperature = body.temperature.unwrap_or(1.0);
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(ApiError::bad(
            "temperature",
            format!("temperature must be 0 (greedy) or more, found {temperature}"),
        ));
    }
    if let Some(p) = body.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return Err(ApiError::bad(
            "top_p",
            format!("top_p must be in (0, 1], found {p}"),
        ));
    }
    let top_k = match body.top_k {
        None | Some(0) | Some(-1) => None,
        Some(k) if k < 0 => {
            return Err(ApiError::bad(
                "top_k",
                format!("top_k must be a whole number >= 1 (0 or -1: off), found {k}"),
            ))
        }
        Some(k) => Some(k as usize),
    };
    let stop = match body.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.iter().any(String::is_empty) || stop.len() > 4 {
        return Err(ApiError::bad("stop", "stop takes up to 4 non-empty texts"));
    }
    Ok(Checked {
        prompt,
        max_tokens,
        min_tokens,
        ignore_eos: body.ignore_eos,
        stop,
        sampling: Sampling {
            temperature,
            top_k,
            top_p: body.top_p.filter(|&p| p < 1.0),
            seed: body.seed.unwrap_or_else(rand::random),
        },
        include_usage: body.stream_options.is_some_and(|o| o.include_usage),
        stream: body.stream,
    })
}

fn completion_prompt(
    prompt: Option<Prompt>,
    tokenizer: &TextTokenizer,
) -> Result<Vec<u32>, ApiError> {
    let text = match prompt {
        None => return Err(ApiError::bad("prompt", "prompt is required")),
        Some(Prompt::Ids(ids)) => {
            let vocab = tokenizer.vocab_size();
            if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(ApiError::bad(
                    "prompt",
                    format!("token id {bad} is outside the vocabulary of {vocab}"),
                ));
            }
            return non_empty(ids, "prompt");
        }
        Some(Prompt::Text(text)) => text,
        Some(Prompt::Texts(mut texts)) if texts.len() == 1 => texts.remove(0),
        Some(Prompt::Texts(texts)) => {
            return Err(ApiError::bad(
                "prompt",
                format!(
                    "one prompt per request, found a list of {}: send them as separate requests",
                    texts.len()
                ),
            ))
        }
    };
    let ids = tokenizer
        .encode(&text)
        .map_err(|e| ApiError::bad("prompt", e.to_string()))?;
    non_empty(ids, "prompt")
}

fn chat_prompt(
    messages: Option<Vec<Message>>,
    tokenizer: &TextTokenizer,
) -> Result<Vec<u32>, ApiError> {
    let Some(messages) = messages.filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad(
            "messages",
            "messages is required: a list of {\"role\", \"content\"}",
        ));
    };
    let messages: Vec<ChatMessage> = messages
        .into_iter()
        .map(|m| ChatMessage {
            role: m.role,
            content: match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .filter(|p| p["type"] == "text")
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
            },
        })
        .collect();
    let ids = tokenizer
        .encode_chat(&messages)
        .map_err(|e| ApiError::bad("messages", e.to_string()))?;
    non_empty(ids, "messages")
}

fn non_empty(ids: Vec<u32>, field: &str) -> Result<Vec<u32>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad(
            field,
            format!("{field} is empty: give at least one token"),
        ));
    }
    Ok(ids)
}
