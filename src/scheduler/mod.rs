//! Serving's scheduler: requests that come and go, batched continuously on one engine.
//!
//! One thread owns the model. Each turn it drops requests whose client has gone or whose time
//! is up, admits waiting ones into free slots, and runs one engine step over every running
//! sequence: one token for each that is decoding, and chunks of the prompts being prefilled
//! within a budget of tokens per step, so that a long prompt does not stall the others'
//! decoding. After the step each sequence whose prompt is done samples its next token and
//! sends the new text to its request.
//!
//! Requests reach it through [`Scheduler::submit`], which refuses at once when the queue is
//! full; events come back on the request's own channel.

mod sequence;

use crate::engine::Work;
use crate::error::{Error, Result};
use crate::model::Model;
use sequence::Sequence;
pub use sequence::{Event, Finish, Usage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// How a request's tokens are chosen: the OpenAI API's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f64,
    /// Sample among the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to `p`.
    pub top_p: Option<f64>,
    /// The sampler's seed.
    pub seed: u64,
}

/// One request, tokenized and checked.
#[derive(Debug)]
pub struct Job {
    /// The prompt's token ids (at least one).
    pub prompt: Vec<u32>,
    /// At most this many tokens are generated.
    pub max_tokens: usize,
    /// End-of-sequence tokens do not end generation before this many tokens.
    pub min_tokens: usize,
    /// End-of-sequence tokens never end generation.
    pub ignore_eos: bool,
    /// Texts that end generation (left out of the output).
    pub stop: Vec<String>,
    /// How tokens are chosen.
    pub sampling: Sampling,
    /// When the request gives up.
    pub deadline: Instant,
    /// Where its events go; a closed channel (the client went away) cancels it.
    pub events: UnboundedSender<Event>,
}

/// The scheduler's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Sequences run at once (at most the engine's).
    pub max_sequences: usize,
    /// Requests that may wait for a slot; beyond it [`Scheduler::submit`] refuses.
    pub max_waiting: usize,
    /// Tokens one engine step runs at most (decode tokens first, prompt chunks after).
    pub step_tokens: usize,
}

/// What the server sees of the scheduler: counts, and the way in.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests waiting for a slot.
    pub waiting: AtomicUsize,
    /// Sequences running.
    pub running: AtomicUsize,
}

/// The way into the scheduler thread.
#[derive(Clone)]
pub struct Scheduler {
    jobs: mpsc::Sender<Job>,
    counts: Arc<Counts>,
    max_waiting: usize,
}

/// A request refused by a full queue.
#[derive(Debug)]
pub struct QueueFull {
    /// Requests waiting.
    pub waiting: usize,
}

impl Scheduler {
    /// Starts the scheduler thread on `model`. The thread ends when every `Scheduler` clone
    /// is dropped and the running requests are done.
    pub fn start(
        mut model: Model,
        settings: Settings,
    ) -> Result<(Scheduler, std::thread::JoinHandle<()>)> {
        let slots = settings
            .max_sequences
            .min(model.engine.max_sequences())
            .max(1);
        if slots == 1 {
            // An engine that runs one sequence at a time sizes its cache once, untimed.
            let context = model.context_length();
            model.engine.reserve(1, context)?;
        }
        let (jobs, inbox) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let mut worker = Worker {
            model,
            inbox,
            counts: counts.clone(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            free: (0..slots).rev().collect(),
            // One sequence at a time takes its prompt whole: its engine has no chunks.
            step_tokens: if slots == 1 {
                usize::MAX
            } else {
                settings.step_tokens.max(1)
            },
        };
        let thread = std::thread::Builder::new()
            .name("llm-bench-scheduler".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::InvalidSetting {
                name: "serve",
                reason: format!("cannot start the scheduler thread: {e}"),
            })?;
        let scheduler = Scheduler {
            jobs,
            counts,
            max_waiting: settings.max_waiting,
        };
        Ok((scheduler, thread))
    }

    /// Queues `job`, or refuses at once when `max_waiting` requests already wait.
    pub fn submit(&self, job: Job) -> std::result::Result<(), QueueFull> {
        let waiting = self.counts.waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= self.max_waiting {
            self.counts.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueFull { waiting });
        }
        if self.jobs.send(job).is_err() {
            self.counts.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueFull { waiting });
        }
        Ok(())
    }

    /// Requests waiting and sequences running.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

struct Worker {
    model: Model,
    inbox: mpsc::Receiver<Job>,
    counts: Arc<Counts>,
    waiting: VecDeque<(Job, Instant)>,
    running: Vec<Sequence>,
    free: Vec<usize>,
    step_tokens: usize,
}

/// How a running sequence ends ([`Worker::end`]).
enum End {
    /// Its last token, a stop, or an error: the request hears it with its usage.
    Finished(std::result::Result<Finish, Error>),
    /// Its client went away, or its time is up.
    Abandoned(Abandoned),
}

/// Why a request, waiting or running, is dropped before it finishes.
#[derive(Clone, Copy)]
enum Abandoned {
    /// Past its deadline: the request hears so.
    TimedOut,
    /// Its client went away.
    Cancelled,
}

impl Abandoned {
    /// Whether `job` is to be dropped now, and why.
    fn of(job: &Job, now: Instant) -> Option<Abandoned> {
        if job.events.is_closed() {
            Some(Abandoned::Cancelled)
        } else {
            (now >= job.deadline).then_some(Abandoned::TimedOut)
        }
    }

    /// Counts the request by its outcome and tells its client, where one still listens. The
    /// caller has already taken the request out of the counts `/metrics` reports.
    fn tell(self, job: &Job) {
        match self {
            Abandoned::TimedOut => {
                metrics::counter!("llm_bench_requests_total", "outcome" => "timeout").increment(1);
                let _ = job.events.send(Event::TimedOut);
            }
            Abandoned::Cancelled => {
                metrics::counter!("llm_bench_requests_total", "outcome" => "cancelled")
                    .increment(1);
            }
        }
    }
}

impl Worker {
    fn run(&mut self) {
        loop {
            if !self.receive() {
                return;
            }
            self.drop_abandoned();
            self.admit();
            if !self.running.is_empty() {
                self.step();
            }
            self.counts
                .running
                .store(self.running.len(), Ordering::SeqCst);
        }
    }

    /// Takes new requests: waits for one when there is nothing to do. False when every
    /// sender is gone and nothing is left.
    fn receive(&mut self) -> bool {
        if self.running.is_empty() && self.waiting.is_empty() {
            match self.inbox.recv() {
                Ok(job) => self.waiting.push_back((job, Instant::now())),
                Err(_) => return false,
            }
        }
        while let Ok(job) = self.inbox.try_recv() {
            self.waiting.push_back((job, Instant::now()));
        }
        true
    }

    /// Ends requests whose client went away (their cache freed) or whose time is up.
    fn drop_abandoned(&mut self) {
        let now = Instant::now();
        let mut dropped = Vec::new();
        // The queue is rebuilt only on a step that drops something from it.
        if (self.waiting.iter()).any(|(job, _)| Abandoned::of(job, now).is_some()) {
            for (job, arrived) in std::mem::take(&mut self.waiting) {
                match Abandoned::of(&job, now) {
                    Some(why) => dropped.push((job, why)),
                    None => self.waiting.push_back((job, arrived)),
                }
            }
        }
        // As for running sequences ([`Self::end`]): the count first, then the clients.
        self.counts
            .waiting
            .fetch_sub(dropped.len(), Ordering::SeqCst);
        for (job, why) in dropped {
            why.tell(&job);
        }
        let ended = (self.running.iter().enumerate())
            .filter_map(|(i, s)| Some((i, End::Abandoned(Abandoned::of(&s.job, now)?))))
            .collect();
        self.end(ended);
    }

    /// Takes the sequences at these indices of `running` out, each ended as said. The count
    /// `/metrics` reports is updated before any of their clients hears that it ended, so a
    /// client reading `/metrics` after its response never finds itself still running.
    fn end(&mut self, mut ended: Vec<(usize, End)>) {
        if ended.is_empty() {
            return;
        }
        // From the highest index down, so each `swap_remove` leaves the others in place.
        ended.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let taken: Vec<(Sequence, End)> = (ended.into_iter())
            .map(|(i, end)| (self.running.swap_remove(i), end))
            .collect();
        self.counts
            .running
            .store(self.running.len(), Ordering::SeqCst);
        for (s, end) in taken {
            let slot = s.slot;
            match end {
                End::Finished(finish) => s.finish(finish),
                End::Abandoned(why) => why.tell(&s.job),
            }
            self.release(slot);
        }
    }

    fn release(&mut self, slot: usize) {
        self.model.engine.release(slot);
        self.free.push(slot);
    }

    /// Moves waiting requests into free slots, oldest first.
    fn admit(&mut self) {
        while !self.free.is_empty() {
            let Some((job, arrived)) = self.waiting.pop_front() else {
                break;
            };
            self.counts.waiting.fetch_sub(1, Ordering::SeqCst);
            let slot = self.free.pop().expect("a free slot");
            self.running.push(Sequence::new(job, slot, arrived));
        }
    }

    /// One engine step over every running sequence: decode tokens first, then prompt chunks
    /// while the step's token budget lasts.
    fn step(&mut self) {
        let mut budget = self.step_tokens;
        let mut chosen: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for decode in [true, false] {
            for (i, s) in self.running.iter().enumerate() {
                if let Some(range) = s.next_tokens(decode, &mut budget) {
                    chosen.push((i, range));
                }
            }
        }
        if chosen.is_empty() {
            return;
        }
        let work: Vec<Work> = chosen
            .iter()
            .map(|(i, range)| {
                let s = &self.running[*i];
                Work {
                    slot: s.slot,
                    tokens: &s.tokens()[range.clone()],
                }
            })
            .collect();
        let result = self.model.engine.step(&work);
        let logits = match result {
            Ok(logits) => logits,
            Err(e) => {
                let message = e.to_string();
                let failed = (chosen.iter())
                    .map(|(i, _)| {
                        let error = Error::InvalidSetting {
                            name: "engine",
                            reason: message.clone(),
                        };
                        (*i, End::Finished(Err(error)))
                    })
                    .collect();
                self.end(failed);
                return;
            }
        };
        let context = self.model.info.config.max_position_embeddings;
        let mut done = Vec::new();
        for (entry, (i, range)) in chosen.iter().enumerate() {
            let s = &mut self.running[*i];
            if let Some(finish) =
                s.advance(range.end, logits.row(entry), &self.model.tokenizer, context)
            {
                done.push((*i, finish));
            }
        }
        let done = done
            .into_iter()
            .map(|(i, f)| (i, End::Finished(f)))
            .collect();
        self.end(done);
    }
}
