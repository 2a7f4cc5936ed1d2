//! `llm-bench serve` and `llm-bench load` as processes on loopback, spoken to over HTTP by an
//! independent client (ureq): the OpenAI endpoints, streamed events parsed one by one, bad
//! requests, concurrent streams, the queue, disconnects and shutdown. The served text is held
//! against `llm-bench generate` on the same model (another code path: the lockstep loop).

use crate::common;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `llm-bench serve`, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(model: &str, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--model", model, "--port", "0", "--threads", "1"];
        args.extend_from_slice(extra);
        Server::spawn(&args)
    }

    /// `llm-bench ARGS` (a `serve` command), once it says where it listens.
    pub fn spawn(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
            .args(args)
            .env_remove("LLM_BENCH_MODEL")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("serve ended: {}", stderr.lock().unwrap()))
                .unwrap();
            stderr.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server {
            child,
            base,
            stderr,
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = ureq::post(&format!("{}{path}", self.base)).send_string(&body.to_string());
        let (code, response) = match response {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => panic!("{path}: {e}"),
        };
        (
            code,
            serde_json::from_str(&response.into_string().unwrap()).unwrap(),
        )
    }

    /// A streamed request's events, each `data:` parsed, up to `[DONE]` (which must come).
    pub fn stream(&self, path: &str, body: &Value) -> Vec<Value> {
        let response = ureq::post(&format!("{}{path}", self.base))
            .send_string(&body.to_string())
            .unwrap();
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        let mut events = vec![];
        for line in BufReader::new(response.into_reader()).lines() {
            let line = line.unwrap();
            let Some(data) = line.strip_prefix("data: ") else {
                assert!(line.is_empty(), "not an event line: {line:?}");
                continue;
            };
            if data == "[DONE]" {
                return events;
            }
            events.push(serde_json::from_str(data).unwrap());
        }
        panic!("the stream ended without data: [DONE]: {events:?}");
    }

    pub fn get(&self, path: &str) -> String {
        ureq::get(&format!("{}{path}", self.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// Sends SIGTERM and waits: the exit status and everything the server printed.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = self.terminate();
        let log = self.stderr.lock().unwrap().clone();
        (status, log)
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// A tiny Llama (byte-level vocabulary: a token per byte) in `dir`.
fn tiny_model(dir: &Path) -> String {
    common::write_tiny_llama(dir, &common::tiny_config(257, 256));
    dir.to_str().unwrap().to_string()
}

/// Greedy text of `prompt` by `llm-bench generate` (the lockstep loop): `tokens` long, or
/// up to end-of-sequence if `to_eos`.
fn generated_to(model: &str, prompt: &str, tokens: usize, to_eos: bool) -> String {
    let n = tokens.to_string();
    let min = if to_eos { "0".to_string() } else { n.clone() };
    let out = common::cli(
        &[
            "generate",
            "--model",
            model,
            "--engine",
            "tuned",
            "--prompt",
            prompt,
            "--max-new-tokens",
            &n,
            "--min-new-tokens",
            &min,
            "--threads",
            "1",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Under ignore_eos the server masks end-of-sequence (as llama-server does) where
    // `generate --min-new-tokens` keeps it in the sequence: the two agree only without one.
    assert!(
        !v["output_tokens"].as_array().unwrap().contains(&json!(256)),
        "{prompt:?} generates end-of-sequence: pick another prompt"
    );
    v["text"].as_str().unwrap().to_string()
}

fn generated(model: &str, prompt: &str, tokens: usize) -> String {
    generated_to(model, prompt, tokens, false)
}

fn completion(prompt: &str, tokens: usize, stream: bool) -> Value {
    json!({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": true,
           "stream": stream, "stream_options": {"include_usage": true}})
}

/// JSON and streamed completions carry the text `generate` makes, OpenAI's fields and
/// usage; the stream is one chunk per token, a finish chunk, a usage chunk, `[DONE]`.
#[test]
fn completions_answer_as_json_and_as_events_with_the_generated_text() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let want = generated(&model, "hello", 12);
    let server = Server::start(&model, &[]);
    let models: Value = serde_json::from_str(&server.get("/v1/models")).unwrap();
    let name = models["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&server.get("/health")).unwrap()["status"],
        "ok"
    );

    let mut body = completion("hello", 12, false);
    body["model"] = name.clone().into();
    let (code, answer) = server.post("/v1/completions", &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], name.as_str());
    assert_eq!(answer["choices"][0]["text"], want.as_str());
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17})
    );

    let events = server.stream("/v1/completions", &completion("hello", 12, true));
    let (usage, rest) = events.split_last().unwrap();
    let (finish, tokens) = rest.split_last().unwrap();
    assert_eq!(tokens.len(), 12, "one chunk per token: {events:?}");
    let text: String = tokens
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, want);
    assert!(tokens
        .iter()
        .all(|e| e["choices"][0]["finish_reason"].is_null()));
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);

    // A stop text ends the answer before it, with finish_reason stop.
    let cut = want.chars().skip(3).take(2).collect::<String>();
    let mut stop = completion("hello", 12, false);
    stop["stop"] = cut.clone().into();
    let (_, answer) = server.post("/v1/completions", &stop);
    let text = answer["choices"][0]["text"].as_str().unwrap();
    assert!(
        want.starts_with(text) && !text.contains(&cut),
        "{text:?} {want:?}"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    let (status, log) = server.stop();
    assert!(
        status.success() && log.contains("stopped"),
        "{status}: {log}"
    );
}

/// Sixteen streamed requests at once, of different lengths: every one succeeds with the text
/// it would have alone, and /metrics counts them.
#[test]
fn sixteen_concurrent_streams_each_get_their_own_text() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let prompts = ["a", "the quick", "good morning", "dear sir"];
    let want: Vec<String> = prompts.iter().map(|p| generated(&model, p, 20)).collect();
    let server = Server::start(&model, &["--max-sequences", "16", "--step-tokens", "8"]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    let events =
                        server.stream("/v1/completions", &completion(prompts[i % 4], 20, true));
                    events
                        .iter()
                        .filter_map(|e| e["choices"][0]["text"].as_str())
                        .collect::<String>()
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), want[i % 4], "request {i}");
        }
    });
    let metrics = server.get("/metrics");
    for line in [
        "llm_bench_requests_total{outcome=\"length\"} 16",
        "llm_bench_generation_tokens_total 320",
        "llm_bench_time_to_first_token_seconds_count 16",
        "llm_bench_sequences_running 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains("llm_bench_inter_token_latency_seconds_bucket{le=\"0.005\"}"));
}

/// Each bad request is a 400 naming the field, in OpenAI's error shape; the server goes on.
#[test]
fn bad_requests_are_400s_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let server = Server::start(&model, &[]);
    let long = "x".repeat(300);
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "/v1/completions",
            "{\"prompt\": ".into(),
            None,
            "not a valid request",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "model": "gpt-4"}).to_string(),
            Some("model"),
            "unknown model",
        ),
        (
            "/v1/completions",
            json!({"prompt": long}).to_string(),
            Some("prompt"),
            "context holds 256",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "max_tokens": 0}).to_string(),
            Some("max_tokens"),
            "at least 1",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "max_tokens": 1000}).to_string(),
            Some("max_tokens"),
            "leave 255",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "temperature": -0.5}).to_string(),
            Some("temperature"),
            "0 (greedy) or more",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "top_p": 0}).to_string(),
            Some("top_p"),
            "(0, 1]",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "top_p": 1.5}).to_string(),
            Some("top_p"),
            "(0, 1]",
        ),
        (
            "/v1/completions",
            json!({"prompt": 5}).to_string(),
            Some("prompt"),
            "list of token ids",
        ),
        (
            "/v1/completions",
            json!({"prompt": [999]}).to_string(),
            Some("prompt"),
            "outside the vocabulary",
        ),
        (
            "/v1/completions",
            json!({}).to_string(),
            Some("prompt"),
            "required",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "n": 2}).to_string(),
            Some("n"),
            "n must be 1",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}).to_string(),
            Some("messages"),
            "no chat template",
        ),
    ];
    for (path, body, param, message) in cases {
        let response = ureq::post(&format!("{}{path}", server.base)).send_string(&body);
        let Err(ureq::Error::Status(code, r)) = response else {
            panic!("{body}: expected an error, got {response:?}");
        };
        let error: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        assert_eq!(code, 400, "{body}: {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["param"].as_str(), param, "{body}: {error}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text:?} lacks {message:?}");
    }
    let (code, _) = server.post("/v1/completions", &completion("a", 2, false));
    assert_eq!(code, 200, "the server still answers");
}

/// `llm-bench load` sweeps concurrency against `llm-bench serve`: every request completes
/// with the tokens asked for, the table has a row per level, and the JSON its summaries.
#[test]
fn load_sweeps_concurrency_against_serve() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let server = Server::start(&model, &[]);
    let out = dir.path().join("sweeps");
    let results = out.join("results.json");
    let run = common::cli(
        &[
            "load",
            &server.base,
            "--concurrency",
            "1,4",
            "--requests",
            "8",
            "--input-tokens",
            "16",
            "--output-tokens",
            "10",
            "--slo",
            "ttft=10s,tpot=1s",
            "--tokenizer",
            &model,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(run.status.success(), "{}", common::stderr(&run));
    assert!(
        common::stderr(&run).contains("token counts: prompt"),
        "{}",
        common::stderr(&run)
    );
    let table = String::from_utf8(run.stdout).unwrap();
    assert!(
        table.contains("| c=1 | 8 | 0 |") && table.contains("| c=4 | 8 | 0 |"),
        "{table}"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(v["complete"], true);
    assert!(v["settings"].is_null(), "no model run in this file");
    let endpoint = &v["endpoints"][0];
    let model = endpoint["model"].as_str().unwrap();
    let host = server.base.trim_start_matches("http://");
    assert_eq!(endpoint["label"], format!("{host} {model}"), "{endpoint}");
    assert!(endpoint["client_cpu_us_per_token"].as_f64().unwrap() > 0.0);
    let levels = endpoint["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    for level in levels {
        assert_eq!(level["completed"], 8);
        assert_eq!(level["mean_output_tokens"], 10.0);
        assert_eq!(
            level["goodput"], level["request_throughput"],
            "every request within targets"
        );
        let (p50, p99) = (
            level["tpot_ms"]["p50"].as_f64().unwrap(),
            level["tpot_ms"]["p99"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99);
        // The server counts prompts with the tokenizer llm-bench loads from the same folder.
        assert_eq!(
            level["tokenizer_prompt_tokens"], level["mean_prompt_tokens"],
            "{level}"
        );
        assert!(level["tokenizer_output_tokens"].as_f64().unwrap() > 0.0);
    }
    // The same label again is refused before any request, the file untouched; another label
    // joins it, here an open-loop sweep.
    let before = std::fs::read(&results).unwrap();
    let again = common::cli(&["load", &server.base, "--out", out.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(2), "{}", common::stderr(&again));
    assert!(
        common::stderr(&again).contains("--label"),
        "{}",
        common::stderr(&again)
    );
    assert_eq!(std::fs::read(&results).unwrap(), before);
    let rates = common::cli(
        &[
            "load",
            &server.base,
            "--rate",
            "4,inf",
            "--requests",
            "4",
            "--input-tokens",
            "16",
            "--output-tokens",
            "10",
            "--label",
            "open loop",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(rates.status.success(), "{}", common::stderr(&rates));
    let v: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let rate_levels = v["endpoints"][1]["levels"].as_array().unwrap();
    assert_eq!(
        (
            rate_levels[0]["mode"].as_str(),
            rate_levels[0]["level"].as_f64()
        ),
        (Some("rate"), Some(4.0))
    );
    assert!(
        rate_levels[1]["level"].is_null(),
        "an infinite rate is null in JSON"
    );
    // The report draws both sweeps: the tables, the cost at the best level, the curves.
    let report = common::cli(&["report", results.to_str().unwrap()], &[]);
    assert!(report.status.success(), "{}", common::stderr(&report));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for text in [
        "## Serving under load",
        "### open loop",
        "| rate inf |",
        "USD per 1K queries",
        "load-latency.svg",
        "load-goodput.svg",
    ] {
        assert!(md.contains(text), "{text} missing:\n{md}");
    }
    for chart in ["load-latency.svg", "load-goodput.svg"] {
        assert!(std::fs::read_to_string(out.join(chart))
            .unwrap()
            .contains("<svg"));
    }
    assert!(
        common::stderr(&common::cli(&["load", "https://example.com"], &[]))
            .contains("only http://")
    );
}

fn smollm2() -> String {
    let path = llm_bench::defaults::default_gguf_path();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model",
        path.display()
    );
    path.to_str().unwrap().to_string()
}

/// A system and a user message (the user's content as a list of parts), and the prompt
/// Hugging Face's apply_chat_template writes for them with SmolLM2's ChatML template.
fn france_chat() -> (Value, &'static str) {
    let messages = json!([{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}]);
    let chatml = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    (messages, chatml)
}

/// SmolLM2's own chat template (from its GGUF) turns messages into its ChatML prompt: the
/// answer is the one `generate` gives that prompt, streamed with a role chunk first.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn chat_completions_use_the_models_own_template() {
    let _alone = common::one_model_run_at_a_time();
    let model = smollm2();
    let (messages, chatml) = france_chat();
    let want = generated_to(&model, chatml, 16, true);
    let server = Server::start(&model, &[]);
    let body = json!({"messages": messages, "max_tokens": 16, "temperature": 0});
    let (code, answer) = server.post("/v1/chat/completions", &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert_eq!(answer["choices"][0]["message"]["content"], want.as_str());
    assert_eq!(answer["choices"][0]["finish_reason"], "stop", "{answer}");
    assert!(want.contains("Paris"), "{want}");
    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let events = server.stream("/v1/chat/completions", &streamed);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(events
        .iter()
        .all(|e| e["object"] == "chat.completion.chunk"));
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, want);
}

/// The official `openai` Python client (tests/it/openai_client.py: its own JSON and event
/// parsing) lists the model, completes and chats, whole and streamed, with the text
/// `generate` gives, and raises its 400 errors for bad requests.
#[test]
#[ignore = "needs models/ and the openai package: scripts/fetch-model, scripts/install-openai-client"]
fn the_openai_python_client_completes_chats_and_streams() {
    let _alone = common::one_model_run_at_a_time();
    let model = smollm2();
    let prompt = "The capital of France is";
    let completion = generated(&model, prompt, 12);
    let (messages, chatml) = france_chat();
    let chat_answer = generated_to(&model, chatml, 16, true);
    let server = Server::start(&model, &[]);
    let models: Value = serde_json::from_str(&server.get("/v1/models")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected.json");
    let want = json!({"model": models["data"][0]["id"], "prompt": prompt, "tokens": 12,
                      "completion": completion, "chat": messages, "chat_tokens": 16,
                      "chat_answer": chat_answer});
    std::fs::write(&expected, want.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&server.base)
        .arg(&expected)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.contains(" ok\n"),
        "{printed}\n{}",
        common::stderr(&out)
    );
}

/// A request past its time limit before it runs gets a 504 naming `--request-timeout` (as
/// the status, or streamed as the one event before `[DONE]`), and `/metrics` counts it as
/// timed out and no longer waiting nor running by the time the client has its answer; the
/// server goes on to the next request.
#[test]
fn a_request_past_its_time_limit_is_a_504_and_leaves_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // A nanosecond: every request is past its deadline when the worker first looks at it.
    let server = Server::start(&model, &["--request-timeout", "1ns"]);
    let (code, answer) = server.post("/v1/completions", &completion("hello", 4, false));
    assert_eq!(code, 504, "{answer}");
    let events = server.stream("/v1/completions", &completion("hello", 4, true));
    assert_eq!(events.len(), 1, "{events:?}");
    for error in [&answer["error"], &events[0]["error"]] {
        assert_eq!(error["code"], 504, "{error}");
        assert!(
            (error["message"].as_str().unwrap()).contains("--request-timeout"),
            "{error}"
        );
    }
    let metrics = server.get("/metrics");
    for line in [
        "llm_bench_requests_total{outcome=\"timeout\"} 2",
        "llm_bench_sequences_running 0",
        "llm_bench_sequences_waiting 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

/// One sequence at a time, one request waiting: a third request is refused at once (429);
/// a client that disconnects mid-stream frees its sequence, so the waiting request runs to
/// its end long before the abandoned one could have; SIGTERM then stops the server cleanly.
#[test]
#[ignore = "needs models/: run scripts/fetch-model"]
fn a_full_queue_is_a_429_and_a_disconnect_frees_the_sequence() {
    let _alone = common::one_model_run_at_a_time();
    let server = Server::start(&smollm2(), &["--max-sequences", "1", "--max-waiting", "1"]);
    // Thousands of tokens: tens of seconds, unless cancelled.
    let long = ureq::post(&format!("{}/v1/completions", server.base))
        .send_string(&completion("Once upon a time", 8000, true).to_string())
        .unwrap();
    let mut reader = BufReader::new(long.into_reader());
    let mut line = String::new();
    while !line.contains("\"text\"") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    // Waiting: its response has begun (the request is queued) but no token comes yet.
    let waiting = ureq::post(&format!("{}/v1/completions", server.base))
        .send_string(&completion("Hello", 4, true).to_string())
        .unwrap();
    let (code, refused) = server.post("/v1/completions", &completion("Hi", 4, false));
    assert_eq!(code, 429, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-waiting"));
    drop(reader);
    let mut rest = String::new();
    waiting.into_reader().read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("\"finish_reason\":\"length\"") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
    let metrics = server.get("/metrics");
    for line in [
        "llm_bench_requests_total{outcome=\"cancelled\"} 1",
        "llm_bench_requests_total{outcome=\"queue_full\"} 1",
        "llm_bench_requests_total{outcome=\"length\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
}

/// docs/serving.md's llama-server lines as written: llama.cpp's own server (built by
/// scripts/build-llama-server) on the fetched model, loaded by `llm-bench load` exactly as it
/// loads `serve`: every request completes with the tokens asked for (llama-server honours
/// ignore_eos), and the prompt tokens come from its usage.
#[test]
#[ignore = "needs models/ and llama-server: scripts/fetch-model, scripts/build-llama-server (minutes)"]
fn load_measures_llama_server_as_it_measures_serve() {
    let _alone = common::one_model_run_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/serving.md")).unwrap();
    let line = |start: &str| {
        docs.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("docs/serving.md shows no {start:?}"))
            .split("  #")
            .next()
            .unwrap()
            .trim()
            .to_string()
    };
    let built = Command::new(root.join("scripts/build-llama-server"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", common::stderr(&built));
    let binary = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let server_line = line("\"$(scripts/build-llama-server)\"");
    let args: Vec<&str> = server_line
        .trim_end_matches('&')
        .split_whitespace()
        .skip(1)
        .collect();
    let mut server = Command::new(&binary)
        .args(&args)
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ureq::get("http://127.0.0.1:8081/health").call().is_ok()
    });
    let load = line("llm-bench load http://127.0.0.1:8081");
    let dir = tempfile::tempdir().unwrap();
    let mut words: Vec<&str> = load.split_whitespace().skip(1).collect();
    words.extend(["--out", dir.path().to_str().unwrap()]);
    let run = healthy.then(|| common::cli(&words, &[]));
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy, "llama-server did not answer /health within 60 s");
    let run = run.unwrap();
    assert!(run.status.success(), "{}", common::stderr(&run));
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let levels = v["endpoints"][0]["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 5);
    for level in levels {
        assert_eq!(level["completed"], level["requests"], "{level}");
        assert_eq!(level["mean_output_tokens"], 64.0, "{level}");
        assert!(
            level["mean_prompt_tokens"].as_f64().unwrap() > 100.0,
            "{level}"
        );
    }
}

/// llama-cpp batches sequences that come and go too: `serve --engine llama-cpp` takes four at
/// once and completes every request of a concurrency-4 sweep, each its full length.
#[cfg(feature = "llama-cpp")]
#[test]
fn serve_batches_sequences_on_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let server = Server::start(&model, &["--engine", "llama-cpp", "--max-sequences", "4"]);
    assert!(
        server.stderr.lock().unwrap().contains("up to 4 sequences"),
        "{}",
        server.stderr.lock().unwrap()
    );
    let run = common::cli(
        &[
            "load",
            &server.base,
            "--concurrency",
            "4",
            "--requests",
            "8",
            "--input-tokens",
            "16",
            "--output-tokens",
            "12",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", common::stderr(&run));
    let table = String::from_utf8(run.stdout).unwrap();
    assert!(table.contains("| c=4 | 8 | 0 |"), "{table}");
    let metrics = server.get("/metrics");
    assert!(
        metrics.contains("llm_bench_generation_tokens_total 108"),
        "8 requests of 12 tokens and the warm-up's: {metrics}"
    );
}
