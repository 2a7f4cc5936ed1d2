//! One running request: its prompt's progress through the engine, its sampler, the text sent
//! so far, and when it ends (end of sequence, a stop text, its token limit, the context).

use super::{Job, Sampling};
use crate::error::{Error, Result};
use crate::tokenizer::TextTokenizer;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};
use std::time::Instant;

/// What a request hears from the scheduler, in order: one `Token` per generated token, then
/// `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    /// A token was generated; `text` is the output's new text (empty while a character or a
    /// possible stop text is incomplete).
    Token {
        /// New text.
        text: String,
    },
    /// Generation ended.
    Done {
        /// Why.
        finish: Finish,
        /// Token counts.
        usage: Usage,
    },
    /// The request failed: the engine's error.
    Failed(Error),
    /// The request's time ran out.
    TimedOut,
}

/// Why generation ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-sequence token or a stop text.
    Stop,
    /// `max_tokens`, or the context is full.
    Length,
}

impl Finish {
    /// OpenAI's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// A request's token counts (OpenAI's `usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// The prompt's tokens.
    pub prompt_tokens: usize,
    /// Tokens generated (an end-of-sequence token that ended it not counted).
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

pub(super) struct Sequence {
    pub(super) job: Job,
    pub(super) slot: usize,
    arrived: Instant,
    last_token: Option<Instant>,
    /// The prompt, then every generated token.
    tokens: Vec<u32>,
    /// How many of `tokens` the engine's cache holds.
    fed: usize,
    generated: usize,
    sampler: LogitsProcessor,
    /// Bytes of the output's text sent.
    sent: usize,
    /// Scratch for a row with end-of-sequence tokens masked.
    masked: Vec<f32>,
}

impl Sequence {
    pub(super) fn new(job: Job, slot: usize, arrived: Instant) -> Self {
        metrics::counter!("llm_bench_prompt_tokens_total").increment(job.prompt.len() as u64);
        let sampler = LogitsProcessor::from_sampling(job.sampling.seed, sampling(job.sampling));
        Sequence {
            tokens: job.prompt.clone(),
            job,
            slot,
            arrived,
            last_token: None,
            fed: 0,
            generated: 0,
            sampler,
            sent: 0,
            masked: Vec::new(),
        }
    }

    pub(super) fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    fn prefilling(&self) -> bool {
        self.fed < self.job.prompt.len()
    }

    /// The range of tokens this sequence feeds the next step: its last token when decoding
    /// (`decode` true), a chunk of its prompt out of `budget` when prefilling.
    pub(super) fn next_tokens(
        &self,
        decode: bool,
        budget: &mut usize,
    ) -> Option<std::ops::Range<usize>> {
        match (decode, self.prefilling()) {
            (true, false) => {
                *budget = budget.saturating_sub(1);
                Some(self.fed..self.tokens.len())
            }
            (false, true) => {
                let n = (self.job.prompt.len() - self.fed).min(*budget);
                *budget -= n;
                (n > 0).then(|| self.fed..self.fed + n)
            }
            _ => None,
        }
    }

    /// After a step fed the tokens up to `end`: when the prompt is done, samples the next
    /// token from `logits` and sends its text. `Some` when the sequence has ended.
    pub(super) fn advance(
        &mut self,
        end: usize,
        logits: &[f32],
        tokenizer: &TextTokenizer,
        context: usize,
    ) -> Option<std::result::Result<Finish, Error>> {
        self.fed = end;
        if self.prefilling() {
            return None;
        }
        let token = match self.sample(logits, tokenizer) {
            Ok(token) => token,
            Err(e) => return Some(Err(e)),
        };
        let now = Instant::now();
        match self.last_token {
            None => metrics::histogram!("llm_bench_time_to_first_token_seconds")
                .record((now - self.arrived).as_secs_f64()),
            Some(last) => metrics::histogram!("llm_bench_inter_token_latency_seconds")
                .record((now - last).as_secs_f64()),
        }
        self.last_token = Some(now);
        metrics::counter!("llm_bench_generation_tokens_total").increment(1);
        if tokenizer.is_eos(token) {
            // Masked while ignored: an end-of-sequence token here ends the output.
            return Some(Ok(Finish::Stop));
        }
        self.generated += 1;
        self.tokens.push(token);
        let text = match tokenizer.decode(&self.tokens[self.job.prompt.len()..]) {
            Ok(text) => text,
            Err(e) => return Some(Err(e)),
        };
        if let Some(at) = self
            .job
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            self.send_text(&text, at.max(self.sent));
            return Some(Ok(Finish::Stop));
        }
        let full = self.generated >= self.job.max_tokens || self.tokens.len() >= context;
        let ready = if full {
            text.len()
        } else {
            self.sendable(&text)
        };
        self.send_text(&text, ready);
        full.then_some(Ok(Finish::Length))
    }

    /// The next token: end-of-sequence tokens masked while the request ignores them or has
    /// fewer than its `min_tokens`; logits with NaN or Inf refused.
    fn sample(&mut self, logits: &[f32], tokenizer: &TextTokenizer) -> Result<u32> {
        if let Some(at) = logits.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteLogits {
                engine: "serve".into(),
                phase: format!("token {} of a request", self.generated + 1),
                sequence: self.slot,
                token: at,
                value: logits[at],
            });
        }
        let mask = self.job.ignore_eos || self.generated < self.job.min_tokens;
        if self.job.sampling.temperature <= 0.0 {
            // Greedy straight from the row: no copy, end-of-sequence skipped while masked. Ties
            // go to the last maximum, as candle's sampler (and so `generate`) picks.
            let best = (logits.iter().enumerate())
                .filter(|(id, _)| !(mask && tokenizer.is_eos(*id as u32)))
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(id, _)| id as u32);
            return Ok(best);
        }
        let row = if mask {
            self.masked.clear();
            self.masked.extend_from_slice(logits);
            for &eos in &tokenizer.eos_token_ids {
                if let Some(x) = self.masked.get_mut(eos as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
            &self.masked
        } else {
            logits
        };
        let row = Tensor::from_slice(row, row.len(), &Device::Cpu)?;
        Ok(self.sampler.sample(&row)?)
    }

    /// How much of `text` can go out: not an incomplete character, nor an ending that may
    /// become a stop text.
    fn sendable(&self, text: &str) -> usize {
        let mut end = text.len();
        if text.ends_with('\u{FFFD}') {
            end -= '\u{FFFD}'.len_utf8();
        }
        for stop in &self.job.stop {
            for cut in (1..stop.len()).rev() {
                if stop.is_char_boundary(cut) && text[..end].ends_with(&stop[..cut]) {
                    end -= cut;
                    break;
                }
            }
        }
        end.max(self.sent)
    }

    /// Sends `text[sent..end]` as this token's event (empty when nothing new is ready).
    fn send_text(&mut self, text: &str, end: usize) {
        let new = match text.get(self.sent..end) {
            Some(new) => new.to_string(),
            None => String::new(),
        };
        self.sent += new.len();
        let _ = self.job.events.send(Event::Token { text: new });
    }

    /// Tells the request it has ended.
    pub(super) fn finish(self, finish: std::result::Result<Finish, Error>) {
        let outcome = match &finish {
            Ok(finish) => finish.name(),
            Err(_) => "error",
        };
        metrics::counter!("llm_bench_requests_total", "outcome" => outcome).increment(1);
        let event = match finish {
            Ok(finish) => Event::Done {
                finish,
                usage: Usage {
                    prompt_tokens: self.job.prompt.len(),
                    completion_tokens: self.generated,
                    total_tokens: self.job.prompt.len() + self.generated,
                },
            },
            Err(e) => Event::Failed(e),
        };
        let _ = self.job.events.send(event);
    }
}

fn sampling(s: Sampling) -> CandleSampling {
    let temperature = s.temperature;
    if temperature <= 0.0 {
        return CandleSampling::ArgMax;
    }
    match (s.top_k, s.top_p) {
        (None, None) => CandleSampling::All { temperature },
        (Some(k), None) => CandleSampling::TopK { k, temperature },
        (None, Some(p)) => CandleSampling::TopP { p, temperature },
        (Some(k), Some(p)) => CandleSampling::TopKThenTopP { k, p, temperature },
    }
}
