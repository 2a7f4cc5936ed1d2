//! `llm-bench serve`: an OpenAI-compatible HTTP server (axum on tokio) in front of the
//! continuous-batching scheduler. `POST /v1/completions`, `POST /v1/chat/completions` (JSON or
//! server-sent events), `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text).
//!
//! Handlers only parse, check and tokenize; the scheduler thread owns the model. A full
//! queue is a 429 at once; a client that goes away drops its event channel, which cancels its
//! sequence and frees its cache.

mod metrics;
pub mod openai;

use crate::scheduler::{Event, Finish, Job, Scheduler, Usage};
use crate::tokenizer::TextTokenizer;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use openai::{ApiError, Checked, Kind};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{self, UnboundedReceiver};

/// What the handlers share.
pub struct Served {
    /// The model's name in requests and `/v1/models`.
    pub name: String,
    /// Its tokenizer (requests are tokenized by the handlers).
    pub tokenizer: TextTokenizer,
    /// Its context length.
    pub context: usize,
    /// The way into the scheduler.
    pub scheduler: Scheduler,
    /// How long a request may take, queue included.
    pub request_timeout: Duration,
    /// Request ids.
    next_id: AtomicU64,
    metrics: metrics::Metrics,
}

impl Served {
    /// The state for [`router`].
    pub fn new(
        name: String,
        tokenizer: TextTokenizer,
        context: usize,
        scheduler: Scheduler,
        request_timeout: Duration,
    ) -> Arc<Served> {
        Arc::new(Served {
            name,
            tokenizer,
            context,
            scheduler,
            request_timeout,
            next_id: AtomicU64::new(1),
            metrics: metrics::Metrics::install(),
        })
    }
}

/// The server's routes.
pub fn router(state: Arc<Served>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/models", get(models))
        .route("/metrics", get(render_metrics))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves; requests under way are finished.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<Served>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

async fn models(State(s): State<Arc<Served>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [
        {"id": s.name, "object": "model", "created": 0, "owned_by": "llm-bench", "max_model_len": s.context}
    ]}))
}

async fn render_metrics(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let counts = s.scheduler.counts();
    let text = s.metrics.render(
        counts.running.load(Ordering::SeqCst),
        counts.waiting.load(Ordering::SeqCst),
    );
    ([("content-type", "text/plain; version=0.0.4")], text)
}

async fn completions(State(s): State<Arc<Served>>, body: Bytes) -> Response {
    respond(s, body, Kind::Completion).await
}

async fn chat_completions(State(s): State<Arc<Served>>, body: Bytes) -> Response {
    respond(s, body, Kind::Chat).await
}

/// One request: checked, queued, then answered as JSON or as a stream of events.
async fn respond(s: Arc<Served>, body: Bytes, kind: Kind) -> Response {
    let checked = match openai::parse(&body)
        .and_then(|body| openai::check(body, kind, &s.name, &s.tokenizer, s.context))
    {
        Ok(checked) => checked,
        Err(e) => {
            ::metrics::counter!("llm_bench_requests_total", "outcome" => "rejected").increment(1);
            return e.into_response();
        }
    };
    let (sender, events) = mpsc::unbounded_channel();
    let (stream, include_usage) = (checked.stream, checked.include_usage);
    let job = job(checked, sender, s.request_timeout);
    if let Err(full) = s.scheduler.submit(job) {
        ::metrics::counter!("llm_bench_requests_total", "outcome" => "queue_full").increment(1);
        return ApiError {
            status: 429,
            message: format!(
                "the server's queue is full ({} requests waiting): retry later, or start it with a larger --max-waiting",
                full.waiting
            ),
            param: None,
        }
        .into_response();
    }
    let reply = Reply {
        id: format!(
            "{}-{}",
            kind.prefix(),
            s.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: s.name.clone(),
        kind,
    };
    if stream {
        Sse::new(reply.stream(events, include_usage)).into_response()
    } else {
        reply.whole(events).await
    }
}

fn job(c: Checked, events: mpsc::UnboundedSender<Event>, timeout: Duration) -> Job {
    Job {
        prompt: c.prompt,
        max_tokens: c.max_tokens,
        min_tokens: c.min_tokens,
        ignore_eos: c.ignore_eos,
        stop: c.stop,
        sampling: c.sampling,
        deadline: Instant::now() + timeout,
        events,
    }
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Completion => "cmpl",
            Kind::Chat => "chatcmpl",
        }
    }
}

/// What every response of one request carries.
struct Reply {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

/// How a request ended, as an HTTP error.
fn failure(event: Event) -> ApiError {
    match event {
        Event::TimedOut => ApiError {
            status: 504,
            message: "the request ran out of time: the server's --request-timeout, queue included"
                .into(),
            param: None,
        },
        Event::Failed(e) => ApiError {
            status: 500,
            message: e.to_string(),
            param: None,
        },
        other => ApiError {
            status: 500,
            message: format!("unexpected event {other:?}"),
            param: None,
        },
    }
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Completion, _) => "text_completion",
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
        }
    }

    fn envelope(&self, chunk: bool, choices: Value, usage: Option<Usage>) -> Value {
        let mut v = json!({"id": self.id, "object": self.object(chunk), "created": self.created,
                           "model": self.model, "choices": choices});
        if let Some(usage) = usage {
            v["usage"] = json!(usage);
        }
        v
    }

    /// The answer in one JSON body once generation ends.
    async fn whole(self, mut events: UnboundedReceiver<Event>) -> Response {
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            match event {
                Event::Token { text: new } => text.push_str(&new),
                Event::Done { finish, usage } => {
                    let choice = match self.kind {
                        Kind::Completion => {
                            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish.name()})
                        }
                        Kind::Chat => {
                            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish.name()})
                        }
                    };
                    return Json(self.envelope(false, json!([choice]), Some(usage)))
                        .into_response();
                }
                other => return failure(other).into_response(),
            }
        }
        failure(Event::Failed(crate::Error::InvalidSetting {
            name: "serve",
            reason: "the scheduler stopped".into(),
        }))
        .into_response()
    }

    fn chunk(&self, text: Option<&str>, finish: Option<Finish>) -> Value {
        let finish = finish.map(Finish::name);
        let choice = match self.kind {
            Kind::Completion => {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
            }
            Kind::Chat => {
                let delta = match text {
                    Some(t) => json!({"content": t}),
                    None => json!({}),
                };
                json!({"index": 0, "delta": delta, "finish_reason": finish})
            }
        };
        self.envelope(true, json!([choice]), None)
    }

    /// The answer as server-sent events: one chunk per token, a last chunk with the finish
    /// reason, a usage chunk when asked for, then `[DONE]`.
    fn stream(
        self,
        events: UnboundedReceiver<Event>,
        include_usage: bool,
    ) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        let data = |v: Value| Ok(SseEvent::default().data(v.to_string()));
        let mut opening = vec![];
        if self.kind == Kind::Chat {
            let role = json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]);
            opening.push(data(self.envelope(true, role, None)));
        }
        let body = stream::unfold(
            (self, events, false),
            move |(reply, mut events, ended)| async move {
                if ended {
                    return None;
                }
                let items = match events.recv().await {
                    Some(Event::Token { text }) => vec![data(reply.chunk(Some(&text), None))],
                    Some(Event::Done { finish, usage }) => {
                        let mut items = vec![data(reply.chunk(None, Some(finish)))];
                        if include_usage {
                            items.push(data(reply.envelope(true, json!([]), Some(usage))));
                        }
                        items.push(Ok(SseEvent::default().data("[DONE]")));
                        return Some((items, (reply, events, true)));
                    }
                    Some(other) => {
                        let items = vec![
                            data(failure(other).body()),
                            Ok(SseEvent::default().data("[DONE]")),
                        ];
                        return Some((items, (reply, events, true)));
                    }
                    None => return None,
                };
                Some((items, (reply, events, false)))
            },
        );
        stream::iter(opening).chain(body.flat_map(stream::iter))
    }
}

use futures_util::StreamExt;
