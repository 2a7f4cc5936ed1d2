//! One forward step: every layer's attention and feed-forward blocks over the new tokens of
//! every sequence (each at its own position), then the logits of each sequence's last token.

use super::attention::attention;
use super::{Buffers, Dims, Entry, Layer, Row, SequenceCache, StepPlan, TunedEngine};
use crate::engine::{Logits, Work};
use crate::error::{Error, Result};
use crate::family::RopeStyle;
use crate::kernels::matrix::{multiply, Activations, Input, Matrix, Product, RmsNorm, Then};
use crate::kernels::{ops, Kernels, Pool};
use half::f16;

/// The shape of one step: its rows (`all` of them, entry by entry) and whether its products
/// run as GEMMs.
#[derive(Clone, Copy)]
struct Step<'a> {
    entries: &'a [Entry],
    rows: &'a [Row],
    all: usize,
    gemm: bool,
}

impl TunedEngine {
    /// Room for `batch` sequences of `positions` each, so steps do not grow the cache (nor
    /// attention's scores, a row of `positions` per thread).
    pub(super) fn grow_caches(&mut self, batch: usize, positions: usize) {
        self.grow_slots(batch);
        let kv = self.dims.kv();
        let scores = &mut self.buffers.scores;
        scores.reserve((self.pool.threads() * positions).saturating_sub(scores.len()));
        for cache in &mut self.caches[..batch] {
            for buffer in cache.keys.iter_mut().chain(cache.values.iter_mut()) {
                buffer.reserve((positions * kv).saturating_sub(buffer.len()));
            }
        }
    }

    /// Caches for slots `0..slots`, empty where new.
    fn grow_slots(&mut self, slots: usize) {
        let layers = self.layers.len();
        if self.caches.len() < slots {
            self.caches.resize_with(slots, || SequenceCache {
                keys: vec![Vec::new(); layers],
                values: vec![Vec::new(); layers],
            });
            self.positions.resize(slots, 0);
        }
    }

    /// Lays out a step: each entry's tokens after what its slot holds, checked against the
    /// context and the vocabulary before anything runs.
    fn plan<'w>(&mut self, work: impl Iterator<Item = Work<'w>> + Clone) -> Result<()> {
        let d = self.dims;
        let slots = work.clone().map(|w| w.slot + 1).max().unwrap_or(0);
        self.grow_slots(slots);
        let StepPlan {
            entries,
            rows,
            tokens,
        } = &mut self.steps;
        entries.clear();
        rows.clear();
        tokens.clear();
        for w in work {
            let (start, n) = (self.positions[w.slot], w.tokens.len());
            if start + n > d.context {
                return Err(Error::ContextOverflow {
                    prompt_tokens: start,
                    new_tokens: n,
                    context_length: d.context,
                });
            }
            if let Some(&bad) = w.tokens.iter().find(|&&id| id as usize >= d.vocab) {
                return Err(Error::InvalidSetting {
                    name: "token id",
                    reason: format!("{bad} is outside the vocabulary of {}", d.vocab),
                });
            }
            entries.push(Entry {
                slot: w.slot,
                start,
                n,
                first: rows.len(),
            });
            rows.extend((start..start + n).map(|position| Row {
                slot: w.slot,
                position,
            }));
            tokens.extend_from_slice(w.tokens);
        }
        Ok(())
    }

    /// Runs each entry's new tokens after its slot's cache; returns the logits of each entry's
    /// last token. The work comes as an iterator so a decode step need not collect one.
    pub(super) fn forward<'w>(
        &mut self,
        work: impl Iterator<Item = Work<'w>> + Clone,
    ) -> Result<&Logits> {
        self.plan(work)?;
        let d = self.dims;
        let Self {
            kernels,
            pool,
            embedding,
            layers,
            norm,
            output,
            inv_freq,
            caches,
            buffers: b,
            logits,
            steps,
            positions,
            ..
        } = self;
        // Prompts of many tokens run their products as GEMMs (as that prompt alone would).
        let step = Step {
            entries: &steps.entries,
            rows: &steps.rows,
            all: steps.rows.len(),
            gemm: steps.entries.iter().any(|e| e.n >= GEMM_MIN_TOKENS),
        };
        b.size_for(&d, step.all);
        let half = d.head_dim / 2;
        for (row, turns) in step.rows.iter().zip(b.turns.chunks_exact_mut(half)) {
            ops::rope_turns(row.position, inv_freq, turns);
        }
        for (&id, x) in steps.tokens.iter().zip(b.x.chunks_exact_mut(d.hidden)) {
            embedding.row_into(id as usize, x);
        }
        for (l, layer) in layers.iter().enumerate() {
            attention_block(pool, kernels, &d, step, layer, l, b, caches);
            feed_forward_block(pool, kernels, &d, step, layer, b);
        }
        let output = output.as_ref().unwrap_or(embedding);
        last_logits(pool, kernels, &d, step, norm, output, b, logits);
        for e in step.entries {
            positions[e.slot] = e.start + e.n;
        }
        Ok(&self.logits)
    }
}

impl Buffers {
    /// Every buffer at the size this step needs (they only grow: no step allocates once the
    /// largest request has run).
    fn size_for(&mut self, d: &Dims, all: usize) {
        let (h, kv) = (d.hidden, d.kv());
        for (buffer, len) in [
            (&mut self.x, all * h),
            (&mut self.q, all * d.q_width()),
            (&mut self.k, all * kv),
            (&mut self.v, all * kv),
            (&mut self.attended, all * d.q_width()),
            (&mut self.projected, all * h),
            (&mut self.gate, all * d.intermediate),
            (&mut self.up, all * d.intermediate),
        ] {
            buffer.resize(len, 0.0);
        }
        self.turns.resize(all * (d.head_dim / 2), (0.0, 0.0));
    }
}

fn rms<'a>(weight: &'a [f32], d: &Dims) -> Option<RmsNorm<'a>> {
    Some(RmsNorm { weight, eps: d.eps })
}

/// Attention: the normed input through q/k/v (one operation), their biases and per-head norms
/// where the family has them, RoPE, the new keys and values
/// into each sequence's cache, attention over it, the output projection added to `x`.
#[allow(clippy::too_many_arguments)]
fn attention_block(
    pool: &mut Pool,
    k: &Kernels,
    d: &Dims,
    step: Step,
    layer: &Layer,
    l: usize,
    b: &mut Buffers,
    caches: &mut [SequenceCache],
) {
    let Step { all, gemm, .. } = step;
    let (qw, kv, half) = (d.q_width(), d.kv(), d.head_dim / 2);
    feed(
        pool,
        k,
        &mut b.acts,
        &b.x,
        all,
        rms(&layer.attn_norm, d),
        &[&layer.q, &layer.k, &layer.v],
        gemm,
    );
    multiply(
        pool,
        k,
        &mut b.acts,
        &mut [
            Product {
                matrix: &layer.q,
                out: &mut b.q,
            },
            Product {
                matrix: &layer.k,
                out: &mut b.k,
            },
            Product {
                matrix: &layer.v,
                out: &mut b.v,
            },
        ],
        Then::Nothing,
    );
    if let Some([q_bias, k_bias, v_bias]) = &layer.qkv_bias {
        for (values, bias) in [(&mut b.q, q_bias), (&mut b.k, k_bias), (&mut b.v, v_bias)] {
            for row in values.chunks_exact_mut(bias.len()) {
                add(row, bias);
            }
        }
    }
    if let Some([q_norm, k_norm]) = &layer.qk_norm {
        for (values, weight) in [(&mut b.q, q_norm), (&mut b.k, k_norm)] {
            ops::rms_norm_each(values, weight, d.eps);
        }
    }
    let rope = match d.rope {
        RopeStyle::Normal => ops::rope,
        RopeStyle::Neox => ops::rope_neox,
    };
    for ((q, key), turns) in (b.q.chunks_exact_mut(qw))
        .zip(b.k.chunks_exact_mut(kv))
        .zip(b.turns.chunks_exact(half))
    {
        rope(q, turns);
        rope(key, turns);
    }
    for e in step.entries {
        let (cache, rows) = (&mut caches[e.slot], e.first * kv..(e.first + e.n) * kv);
        cache.keys[l].truncate(e.start * kv);
        cache.keys[l].extend(b.k[rows.clone()].iter().map(|&v| f16::from_f32(v)));
        cache.values[l].truncate(e.start * kv);
        cache.values[l].extend(b.v[rows].iter().map(|&v| f16::from_f32(v)));
    }
    b.q16.clear();
    b.q16.extend(b.q.iter().map(|&v| f16::from_f32(v)));
    attention(
        pool,
        k,
        d,
        caches,
        l,
        step.rows,
        &b.q16,
        &mut b.attended,
        &mut b.scores,
    );
    feed(
        pool,
        k,
        &mut b.acts,
        &b.attended,
        all,
        None,
        &[&layer.o],
        gemm,
    );
    multiply(
        pool,
        k,
        &mut b.acts,
        &mut [Product {
            matrix: &layer.o,
            out: &mut b.projected,
        }],
        Then::Nothing,
    );
    add(&mut b.x, &b.projected);
}

/// Feed-forward: the normed input through gate/up (one operation, SiLU gating fused into
/// it), then down, added to `x`.
fn feed_forward_block(
    pool: &mut Pool,
    k: &Kernels,
    d: &Dims,
    step: Step,
    layer: &Layer,
    b: &mut Buffers,
) {
    feed(
        pool,
        k,
        &mut b.acts,
        &b.x,
        step.all,
        rms(&layer.ffn_norm, d),
        &[&layer.gate, &layer.up],
        step.gemm,
    );
    multiply(
        pool,
        k,
        &mut b.acts,
        &mut [
            Product {
                matrix: &layer.gate,
                out: &mut b.gate,
            },
            Product {
                matrix: &layer.up,
                out: &mut b.up,
            },
        ],
        Then::SiluMul,
    );
    feed(
        pool,
        k,
        &mut b.acts,
        &b.gate,
        step.all,
        None,
        &[&layer.down],
        step.gemm,
    );
    multiply(
        pool,
        k,
        &mut b.acts,
        &mut [Product {
            matrix: &layer.down,
            out: &mut b.projected,
        }],
        Then::Nothing,
    );
    add(&mut b.x, &b.projected);
}

/// The logits of each sequence's last token only: its row normed, through the output matrix
/// (or the tied embedding), written in place into `logits`.
#[allow(clippy::too_many_arguments)]
fn last_logits(
    pool: &mut Pool,
    k: &Kernels,
    d: &Dims,
    step: Step,
    norm: &[f32],
    output: &Matrix,
    b: &mut Buffers,
    logits: &mut Logits,
) {
    let h = d.hidden;
    let batch = step.entries.len();
    b.last.clear();
    for e in step.entries {
        let last = (e.first + e.n - 1) * h;
        b.last.extend_from_slice(&b.x[last..last + h]);
    }
    feed(
        pool,
        k,
        &mut b.acts,
        &b.last,
        batch,
        rms(norm, d),
        &[output],
        false,
    );
    logits.vocab = d.vocab;
    logits.data.resize(batch * d.vocab, 0.0);
    multiply(
        pool,
        k,
        &mut b.acts,
        &mut [Product {
            matrix: output,
            out: &mut logits.data,
        }],
        Then::Nothing,
    );
}

/// Prompt length from which f32, f16 and bf16 products (and block-format ones whose rows do not
/// come in groups of eight) run as GEMMs; below it, one dot product per row and token.
/// Interleaved block formats take their four-token kernels either way. The GEMM path wins on
/// short f32 prompts already; the threshold itself is not tuned further.
const GEMM_MIN_TOKENS: usize = 8;

/// Hands `x` (`tokens` rows), normed first when `norm` is given, to the next products with
/// `matrices`, on the chosen path: quantized when any of them is in a block format.
#[allow(clippy::too_many_arguments)]
fn feed(
    pool: &mut Pool,
    k: &Kernels,
    acts: &mut Activations,
    x: &[f32],
    tokens: usize,
    norm: Option<RmsNorm>,
    matrices: &[&Matrix],
    gemm: bool,
) {
    let input = Input {
        norm,
        quantize: matrices.iter().any(|m| m.quantized()),
        gemm,
    };
    acts.set(pool, k, x, tokens, x.len() / tokens, input);
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
