//! Generation with exact timings: sampling strategies, the loop, and the per-token trace.
//!
//! One monotonic clock (`Instant`) stamps the request start, the end of tokenization, every
//! generated token and the end. Definitions follow vLLM's benchmark:
//! - TTFT: request start (before tokenization) to the first generated token id;
//! - ITL: the gap between consecutive generated tokens (TPOT is their mean);
//! - E2E: request start to the last generated token.

use crate::engine::Logits;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tokenizer::TextTokenizer;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How the next token is chosen. The four the tutorial this project grew from compares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// Always the most likely token.
    Greedy,
    /// Sample from the whole distribution, softened by `temperature`.
    Temperature {
        /// Above 0; 1 keeps the distribution as it is.
        temperature: f64,
    },
    /// Sample among the `k` most likely tokens (temperature 1).
    TopK {
        /// At least 1.
        k: usize,
    },
    /// Sample among the most likely tokens whose probabilities add up to `p` (temperature 1).
    TopP {
        /// In (0, 1].
        p: f64,
    },
}

impl Strategy {
    /// The tutorial's four: greedy, temperature 0.7, top-k 50, top-p 0.9.
    pub const STANDARD: [Strategy; 4] = [
        Strategy::Greedy,
        Strategy::Temperature { temperature: 0.7 },
        Strategy::TopK { k: 50 },
        Strategy::TopP { p: 0.9 },
    ];

    fn sampling(self) -> Sampling {
        match self {
            Strategy::Greedy => Sampling::ArgMax,
            Strategy::Temperature { temperature } => Sampling::All { temperature },
            Strategy::TopK { k } => Sampling::TopK {
                k,
                temperature: 1.0,
            },
            Strategy::TopP { p } => Sampling::TopP {
                p,
                temperature: 1.0,
            },
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Greedy => write!(f, "greedy"),
            Strategy::Temperature { temperature } => write!(f, "temperature={temperature}"),
            Strategy::TopK { k } => write!(f, "top-k={k}"),
            Strategy::TopP { p } => write!(f, "top-p={p}"),
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidStrategy {
            found: s.to_string(),
            reason: reason.to_string(),
        };
        let (name, value) = match s.trim().split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s.trim(), None),
        };
        let number = |default: f64| -> Result<f64> {
            value.map_or(Ok(default), |v| {
                v.parse::<f64>()
                    .map_err(|_| bad("the value is not a number"))
            })
        };
        match name {
            "greedy" if value.is_none() => Ok(Strategy::Greedy),
            "temperature" | "sampling" => {
                let temperature = number(0.7)?;
                if !(temperature > 0.0 && temperature.is_finite()) {
                    return Err(bad(
                        "temperature must be > 0 (use greedy for deterministic output)",
                    ));
                }
                Ok(Strategy::Temperature { temperature })
            }
            "top-k" | "topk" => {
                let k = number(50.0)?;
                if k < 1.0 || k.fract() != 0.0 {
                    return Err(bad("top-k must be a whole number >= 1"));
                }
                Ok(Strategy::TopK { k: k as usize })
            }
            "top-p" | "topp" => {
                let p = number(0.9)?;
                if !(p > 0.0 && p <= 1.0) {
                    return Err(bad("top-p must be in (0, 1]"));
                }
                Ok(Strategy::TopP { p })
            }
            _ => Err(bad("expected greedy, temperature=T, top-k=K or top-p=P")),
        }
    }
}

/// One request: a prompt, how many tokens, how chosen.
#[derive(Debug, Clone)]
pub struct Request {
    /// The prompt.
    pub prompt: String,
    /// Tokens to generate at most.
    pub max_new_tokens: usize,
    /// Ignore end-of-sequence until this many tokens exist, so runs compare.
    pub min_new_tokens: usize,
    /// How tokens are chosen.
    pub strategy: Strategy,
    /// The sampler's seed.
    pub seed: u64,
    /// Sequences run together, each a copy of the prompt.
    pub batch: usize,
}

/// Everything measured for one request. Times in milliseconds from the request start.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The prompt's token ids.
    pub prompt_tokens: Vec<u32>,
    /// Generated token ids of each sequence (up to and excluding its end-of-sequence token).
    pub output_tokens: Vec<Vec<u32>>,
    /// Time to tokenize the prompt.
    pub tokenize_ms: f64,
    /// From the end of tokenization to the first token's logits being sampled.
    pub prefill_ms: f64,
    /// Time to the first token, tokenizing included.
    pub ttft_ms: f64,
    /// Gaps between consecutive generation steps (each step yields one token per sequence).
    pub itl_ms: Vec<f64>,
    /// Time from the start to the last token.
    pub e2e_ms: f64,
    /// Sequences stepped together.
    pub batch: usize,
    /// Time the engine's threads spent waiting for one another over the request, averaged
    /// over them (`Engine::thread_wait`); `None` for engines that do not count it.
    pub thread_wait_ms: Option<f64>,
}

impl Trace {
    /// Prompt tokens processed per second of prefill, over the whole batch.
    pub fn prefill_tokens_per_s(&self) -> f64 {
        per_second(
            (self.prompt_tokens.len() * self.batch) as f64,
            self.prefill_ms,
        )
    }
    /// Tokens after the first, divided by the time after the first, over the whole batch.
    pub fn decode_tokens_per_s(&self) -> f64 {
        per_second(
            (self.itl_ms.len() * self.batch) as f64,
            self.itl_ms.iter().sum(),
        )
    }
    /// The share of the request's time the engine's threads spent waiting for one another.
    pub fn thread_wait_share(&self) -> Option<f64> {
        self.thread_wait_ms.map(|w| {
            if self.e2e_ms > 0.0 {
                w / self.e2e_ms
            } else {
                0.0
            }
        })
    }
    /// Decode tokens per second of one sequence.
    pub fn decode_tokens_per_s_per_sequence(&self) -> f64 {
        per_second(self.itl_ms.len() as f64, self.itl_ms.iter().sum())
    }
}

fn per_second(count: f64, ms: f64) -> f64 {
    if ms > 0.0 {
        count / (ms / 1000.0)
    } else {
        0.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Checks a request against the model before any work is done.
pub fn validate(model: &Model, request: &Request, prompt_tokens: usize) -> Result<()> {
    if request.batch == 0 {
        return Err(Error::InvalidSetting {
            name: "--batch",
            reason: "must be at least 1".into(),
        });
    }
    if request.max_new_tokens == 0 {
        return Err(Error::InvalidSetting {
            name: "--max-new-tokens",
            reason: "must be at least 1".into(),
        });
    }
    if request.min_new_tokens > request.max_new_tokens {
        return Err(Error::InvalidSetting {
            name: "--min-new-tokens",
            reason: format!(
                "{} is more than --max-new-tokens {}",
                request.min_new_tokens, request.max_new_tokens
            ),
        });
    }
    if prompt_tokens == 0 {
        return Err(Error::EmptyPrompt);
    }
    // Saturating: a --max-new-tokens near 2^64 must overflow the context, not the sum.
    if prompt_tokens.saturating_add(request.max_new_tokens) > model.context_length() {
        return Err(Error::ContextOverflow {
            prompt_tokens,
            new_tokens: request.max_new_tokens,
            context_length: model.context_length(),
        });
    }
    crate::model::check_request_memory(
        &model.info.config,
        model.info.weight_bytes,
        request.batch,
        prompt_tokens,
        request.max_new_tokens,
    )
}

/// Runs one request. `on_step` sees each step's new token per sequence as it is generated;
/// its own time counts in the inter-token latency, so keep it short.
pub fn generate(
    model: &mut Model,
    request: &Request,
    mut on_step: impl FnMut(&TextTokenizer, &[u32]),
) -> Result<Trace> {
    // Checked and sized before the clock starts: the request is validated (context, memory)
    // before an engine that allocates its KV cache up front (llama.cpp) sizes it, as a server
    // would at start-up. The prompt is tokenized again on the clock: TTFT includes it.
    let untimed = model.tokenizer.encode(&request.prompt)?;
    validate(model, request, untimed.len())?;
    model
        .engine
        .reserve(request.batch, untimed.len() + request.max_new_tokens)?;
    let waited_before = model.engine.thread_wait();
    let start = Instant::now();
    let prompt_tokens = model.tokenizer.encode(&request.prompt)?;
    let tokenized = Instant::now();
    let mut samplers: Vec<LogitsProcessor> = (0..request.batch)
        .map(|i| {
            LogitsProcessor::from_sampling(
                request.seed.wrapping_add(i as u64),
                request.strategy.sampling(),
            )
        })
        .collect();
    let prompts = vec![prompt_tokens.clone(); request.batch];
    let engine = model.info.engine.name.clone();
    let checked = |phase: &dyn Fn() -> String, logits: &Logits| finite(logits, &engine, phase);
    let logits = model.engine.prefill(&prompts)?;
    checked(&|| "the prefill".into(), logits)?;
    let mut next = sample_each(logits, &mut samplers)?;
    let mut outputs: Vec<Vec<u32>> =
        vec![Vec::with_capacity(request.max_new_tokens); request.batch];
    let mut finished = vec![false; request.batch];
    let mut step_times = Vec::with_capacity(request.max_new_tokens);
    for step in 0..request.max_new_tokens {
        // `next` was sampled from the prefill's or the last decode step's logits.
        step_times.push(Instant::now());
        for (seq, &token) in next.iter().enumerate() {
            if finished[seq] {
                continue;
            }
            if step >= request.min_new_tokens && model.tokenizer.is_eos(token) {
                finished[seq] = true;
            } else {
                outputs[seq].push(token);
            }
        }
        on_step(&model.tokenizer, &next);
        if finished.iter().all(|&f| f) || step + 1 == request.max_new_tokens {
            break;
        }
        let logits = model.engine.decode(&next)?;
        checked(&|| format!("decode step {}", step + 1), logits)?;
        next = sample_each(logits, &mut samplers)?;
    }
    let first = step_times[0];
    let last = *step_times.last().expect("at least one step ran");
    let waited = model
        .engine
        .thread_wait()
        .zip(waited_before)
        .map(|(after, before)| ms(after.saturating_sub(before)));
    Ok(Trace {
        prompt_tokens,
        output_tokens: outputs,
        tokenize_ms: ms(tokenized - start),
        prefill_ms: ms(first - tokenized),
        ttft_ms: ms(first - start),
        itl_ms: step_times.windows(2).map(|w| ms(w[1] - w[0])).collect(),
        e2e_ms: ms(last - start),
        batch: request.batch,
        thread_wait_ms: waited,
    })
}

/// Refuses logits holding NaN or Inf: greedy would pick token 0 from them and the run would
/// look normal. The first bad value is named with the engine and the step.
fn finite(logits: &Logits, engine: &str, phase: &dyn Fn() -> String) -> Result<()> {
    match logits.data.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(at) => Err(Error::NonFiniteLogits {
            engine: engine.to_string(),
            phase: phase(),
            sequence: at / logits.vocab.max(1),
            token: at % logits.vocab.max(1),
            value: logits.data[at],
        }),
    }
}

/// One token per sequence, each from its own seeded sampler. The engines hand back plain
/// `f32` rows; candle's `LogitsProcessor` samples them, whichever engine made them, so every
/// engine is sampled identically.
fn sample_each(logits: &Logits, samplers: &mut [LogitsProcessor]) -> Result<Vec<u32>> {
    samplers
        .iter_mut()
        .enumerate()
        .map(|(seq, sampler)| {
            let row = Tensor::from_slice(logits.row(seq), logits.vocab, &Device::Cpu)?;
            Ok(sampler.sample(&row)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_and_print_back() {
        for s in Strategy::STANDARD {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
        }
        assert_eq!(
            "top-k".parse::<Strategy>().unwrap(),
            Strategy::TopK { k: 50 }
        );
    }

    #[test]
    fn out_of_range_parameters_are_rejected_with_the_rule() {
        for (input, rule) in [
            ("temperature=0", "> 0"),
            ("temperature=-1", "> 0"),
            ("top-p=0", "(0, 1]"),
            ("top-p=1.5", "(0, 1]"),
            ("top-k=0", ">= 1"),
            ("beam=4", "expected greedy"),
        ] {
            let err = input.parse::<Strategy>().unwrap_err().to_string();
            assert!(err.contains(rule), "{input}: {err}");
        }
    }

    #[test]
    fn logits_with_nan_or_inf_are_refused_naming_the_step_and_engine() {
        let mut logits = Logits {
            vocab: 4,
            data: vec![0.5; 8],
        };
        assert!(finite(&logits, "tuned", &|| "the prefill".into()).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            logits.data[6] = bad;
            let err = finite(&logits, "tuned", &|| "decode step 3".into())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tuned")
                    && err.contains("decode step 3")
                    && err.contains("sequence 1, token id 2")
                    && err.contains("weights"),
                "{err}"
            );
        }
    }

    #[test]
    fn throughput_counts_tokens_after_the_first() {
        let trace = Trace {
            prompt_tokens: vec![1; 10],
            output_tokens: vec![vec![5; 5]; 2],
            tokenize_ms: 1.0,
            prefill_ms: 100.0,
            ttft_ms: 101.0,
            itl_ms: vec![10.0, 20.0, 30.0, 40.0],
            e2e_ms: 201.0,
            batch: 2,
            thread_wait_ms: None,
        };
        assert_eq!(trace.prefill_tokens_per_s(), 200.0); // 20 tokens in 0.1 s
        assert_eq!(trace.decode_tokens_per_s(), 80.0); // 8 tokens in 0.1 s
        assert_eq!(trace.decode_tokens_per_s_per_sequence(), 40.0);
    }
}
