//! One streamed request to an OpenAI-compatible endpoint, timed chunk by chunk as vLLM's
//! benchmark times it: TTFT is the first chunk that carries generated text, ITL the gaps
//! between such chunks, E2E the whole request; token counts come from the server's `usage`.

use serde_json::Value;
use std::time::{Duration, Instant};

/// What can go wrong with one request, by kind (the report counts each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No connection, or it broke.
    Connection,
    /// An HTTP status other than 200 (429: the server's queue was full).
    Status(u16),
    /// The request's time limit passed.
    Timeout,
    /// The stream carried an error event, malformed data, or ended before `[DONE]`.
    Stream,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connection => write!(f, "connection"),
            Failure::Status(code) => write!(f, "HTTP {code}"),
            Failure::Timeout => write!(f, "timeout"),
            Failure::Stream => write!(f, "stream"),
        }
    }
}

/// One request's timings, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// When it was sent, from the start of its level.
    pub sent: f64,
    /// Time to the first chunk with generated text.
    pub ttft: Option<f64>,
    /// Gaps between chunks with generated text.
    pub itl: Vec<f64>,
    /// Sent to the stream's end.
    pub e2e: f64,
    /// The server's `usage.completion_tokens`, else the chunks with text.
    pub output_tokens: usize,
    /// The server's `usage.prompt_tokens`, where it sent usage.
    pub prompt_tokens: Option<usize>,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
    /// The message of the failure (the server's error body, the connection's error).
    pub detail: Option<String>,
    /// The generated text, as streamed.
    pub text: String,
    /// Which of the run's prompts it sent.
    pub prompt: usize,
    /// Its prompt and output tokens as llm-bench's tokenizer of the model counts them
    /// (`--tokenizer`), to check the server's `usage`.
    pub counted: Option<(usize, usize)>,
}

impl Outcome {
    /// Time per output token after the first: (E2E − TTFT) / (tokens − 1), vLLM's TPOT.
    pub fn tpot(&self) -> Option<f64> {
        let ttft = self.ttft?;
        (self.output_tokens > 1).then(|| (self.e2e - ttft) / (self.output_tokens - 1) as f64)
    }
}

/// The request body for `prompt`, chat or plain completion, streamed with usage.
pub fn body(model: &str, chat: bool, prompt: &str, max_tokens: usize, ignore_eos: bool) -> Value {
    let mut body = serde_json::json!({
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if chat {
        body["messages"] = serde_json::json!([{"role": "user", "content": prompt}]);
    } else {
        body["prompt"] = prompt.into();
    }
    if ignore_eos {
        // vLLM's and llama-server's names: generate exactly `max_tokens`.
        body["ignore_eos"] = true.into();
        body["min_tokens"] = max_tokens.into();
    }
    body
}

/// Sends `body` to `url` and reads the stream to its end.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    timeout: Duration,
    level_start: Instant,
) -> Outcome {
    let start = Instant::now();
    let mut outcome = Outcome {
        sent: (start - level_start).as_secs_f64(),
        ..Outcome::default()
    };
    let result = tokio::time::timeout(timeout, read(client, url, body, start, &mut outcome)).await;
    outcome.e2e = start.elapsed().as_secs_f64();
    match result {
        Err(_) => outcome.fail(Failure::Timeout, format!("no answer within {timeout:?}")),
        Ok(Err((failure, detail))) => outcome.fail(failure, detail),
        Ok(Ok(())) => {}
    }
    outcome
}

impl Outcome {
    fn fail(&mut self, failure: Failure, detail: String) {
        self.failure = Some(failure);
        self.detail = Some(detail);
    }
}

type Failed = (Failure, String);

async fn read(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    start: Instant,
    outcome: &mut Outcome,
) -> Result<(), Failed> {
    let connection = |e: reqwest::Error| (Failure::Connection, chain(&e));
    let mut response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(connection)?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err((Failure::Status(status), text.chars().take(300).collect()));
    }
    let mut events = Events::default();
    let mut last: Option<Instant> = None;
    let mut chunks_with_text = 0;
    while let Some(bytes) = response.chunk().await.map_err(connection)? {
        events.push(&bytes);
        while let Some(data) = events.next_data() {
            if data == "[DONE]" {
                if outcome.output_tokens == 0 {
                    outcome.output_tokens = chunks_with_text;
                }
                return Ok(());
            }
            let value: Value = serde_json::from_str(&data).map_err(|e| {
                (
                    Failure::Stream,
                    format!("a chunk is not JSON ({e}): {data}"),
                )
            })?;
            if value.get("error").is_some() {
                return Err((Failure::Stream, value["error"].to_string()));
            }
            if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
                let count = |key: &str| usage[key].as_u64().map(|n| n as usize);
                outcome.output_tokens = count("completion_tokens").unwrap_or(0);
                outcome.prompt_tokens = count("prompt_tokens");
            }
            let choice = &value["choices"][0];
            let text = choice["text"]
                .as_str()
                .or_else(|| choice["delta"]["content"].as_str());
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                outcome.text.push_str(text);
                let now = Instant::now();
                match last {
                    None => outcome.ttft = Some((now - start).as_secs_f64()),
                    Some(before) => outcome.itl.push((now - before).as_secs_f64()),
                }
                last = Some(now);
                chunks_with_text += 1;
            }
        }
    }
    Err((
        Failure::Stream,
        "the stream ended before data: [DONE]".into(),
    ))
}

/// An error with its causes: `error sending request: connection closed before ...`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Server-sent events split out of a byte stream: the `data:` of each event.
#[derive(Default)]
pub struct Events {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl Events {
    /// Adds bytes as they arrive.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event's data (its `data:` lines joined by newlines), if one has
    /// arrived. Comments and other fields are skipped.
    pub fn next_data(&mut self) -> Option<String> {
        loop {
            let end = self.buffer.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let data = self.data.join("\n");
                    self.data.clear();
                    return Some(data);
                }
                continue;
            }
            if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events split across reads, CRLF line ends, comments, multi-line data.
    #[test]
    fn events_are_read_whatever_the_reads_cut() {
        let stream =
            b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut events = Events::default();
            let mut got = vec![];
            for piece in stream.chunks(cut) {
                events.push(piece);
                while let Some(d) = events.next_data() {
                    got.push(d);
                }
            }
            assert_eq!(got, ["{\"a\":1}", "one\ntwo", "[DONE]"], "cut {cut}");
        }
    }

    #[test]
    fn tpot_excludes_the_first_token() {
        let o = Outcome {
            ttft: Some(0.5),
            e2e: 1.5,
            output_tokens: 11,
            ..Outcome::default()
        };
        assert_eq!(o.tpot(), Some(0.1));
        assert_eq!(
            Outcome {
                output_tokens: 1,
                ..o
            }
            .tpot(),
            None
        );
    }
}
