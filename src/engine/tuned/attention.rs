//! Causal attention over the f16 KV cache, one kernel call per (sequence, token, head).

use super::{Dims, Row, SequenceCache};
use crate::kernels::{Kernels, Pool, SharedOut};
use half::f16;

/// Causal attention of every query head of every new token over its sequence's cache, the
/// (sequence, token, head) items dealt round-robin to the threads so that a prefill's long
/// and short rows are shared evenly. `rows`: each new token's sequence and position (its
/// keys and values already in the cache).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention(
    pool: &mut Pool,
    k: &Kernels,
    d: &Dims,
    caches: &[SequenceCache],
    layer: usize,
    rows: &[Row],
    q: &[f16],
    out: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let (hd, h, kv) = (d.head_dim, d.q_width(), d.kv());
    let group = d.heads / d.kv_heads;
    let most = rows.iter().map(|r| r.position + 1).max().unwrap_or(0);
    let threads = pool.threads();
    scores.resize(threads * most, 0.0);
    let (out, scratch) = (SharedOut(out.as_mut_ptr()), SharedOut(scores.as_mut_ptr()));
    let items = rows.len() * d.heads;
    pool.run(&|thread| {
        // SAFETY: each thread has its own `most` scores.
        let scores = unsafe { std::slice::from_raw_parts_mut(scratch.at(thread * most), most) };
        for item in (thread..items).step_by(threads) {
            let (t, head) = (item / d.heads, item % d.heads);
            let (row, g) = (rows[t], head / group);
            let cache = (
                &caches[row.slot].keys[layer],
                &caches[row.slot].values[layer],
            );
            let at = t * h + head * hd;
            // SAFETY: item (t, head) alone writes these head_dim outputs.
            let o = unsafe { std::slice::from_raw_parts_mut(out.at(at), hd) };
            (k.ops.attend)(
                &q[at..at + hd],
                &cache.0[g * hd..],
                &cache.1[g * hd..],
                kv,
                row.position + 1,
                scores,
                o,
            );
        }
    });
}
