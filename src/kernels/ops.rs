//! The small element-wise steps of a Llama layer between its matrix products: RMSNorm,
//! rotary position embedding (GGUF's adjacent-pair order), SiLU gating, and attention of one
//! query head over the KV cache. Plain loops the compiler vectorizes; their cost is a few
//! percent of a step's.

use super::Kernels;
use half::f16;

/// `out = x / rms(x) * weight`, for one vector.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_square + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// The turns of RoPE at `position`: `(sin, cos)` of `position * inv_freq[i]` for each pair.
pub fn rope_turns(position: usize, inv_freq: &[f32], turns: &mut [(f32, f32)]) {
    for (t, &f) in turns.iter_mut().zip(inv_freq) {
        *t = (position as f32 * f).sin_cos();
    }
}

/// Rotates each head of `x` (heads of `turns.len() * 2` values): the pair `(x[2i], x[2i + 1])`
/// turns by `turns[i]`, as llama.cpp's normal RoPE does on GGUF's q/k rows.
pub fn rope(x: &mut [f32], turns: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(turns.len() * 2) {
        for (pair, &(sin, cos)) in head.chunks_exact_mut(2).zip(turns) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * cos - b * sin;
            pair[1] = a * sin + b * cos;
        }
    }
}

/// The inverse frequencies of RoPE: `theta^(-2i / head_dim)` for `i < head_dim / 2`.
pub fn rope_inv_freq(head_dim: usize, theta: f32) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32))
        .collect()
}

/// `gate = silu(gate) * up`, in place.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Attention of one query head over `positions` cached keys and values of its KV head, in
/// llama.cpp's precision: the cache holds f16, the query is rounded to f16 for `q·k`, the
/// softmax runs in f32 and its weights are rounded to f16 before they scale the values.
/// `keys(p)` and `values(p)` give position p's `q.len()` values; `scores` is scratch of at
/// least `positions`; the weighted sum of values goes to `out`.
pub fn attend<'a>(
    q: &[f16],
    positions: usize,
    keys: impl Fn(usize) -> &'a [f16],
    values: impl Fn(usize) -> &'a [f16],
    k: &Kernels,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let scale = 1.0 / (q.len() as f32).sqrt();
    let scores = &mut scores[..positions];
    let mut max = f32::NEG_INFINITY;
    for (p, s) in scores.iter_mut().enumerate() {
        *s = (k.dot_f16)(q, keys(p)) * scale;
        max = max.max(*s);
    }
    let mut sum = 0f64;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s as f64;
    }
    let inverse = (1.0 / sum) as f32;
    out.fill(0.0);
    for (p, &s) in scores.iter().enumerate() {
        (k.axpy_f16)(f16::from_f32(s * inverse).to_f32(), values(p), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_scales_to_unit_root_mean_square() {
        let mut out = [0.0; 4];
        rms_norm(
            &[2.0, -2.0, 2.0, -2.0],
            &[1.0, 1.0, 0.5, 1.0],
            0.0,
            &mut out,
        );
        assert_eq!(out, [1.0, -1.0, 0.5, -1.0]);
    }

    #[test]
    fn rope_turns_adjacent_pairs_by_position_times_frequency() {
        // Two heads of dim 4: pairs (0,1) at frequency 1, (2,3) at frequency 0.5.
        let inv = rope_inv_freq(4, 4.0);
        assert_eq!(inv, vec![1.0, 0.5]);
        let mut x = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let mut turns = [(0.0, 0.0); 2];
        rope_turns(2, &inv, &mut turns);
        rope(&mut x, &turns);
        let (s2, c2, s1, c1) = (2f32.sin(), 2f32.cos(), 1f32.sin(), 1f32.cos());
        let expected = [c2, s2, -s1, c1, c2, s2, -s1, c1];
        for (a, b) in x.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{x:?}");
        }
    }

    #[test]
    fn attention_weights_values_by_softmax_of_scaled_scores_on_every_level() {
        // q·k = 0 and 2 (scaled by 1/sqrt(4) to 0 and 1): weights 1/(1+e), e/(1+e).
        let h = |v: [f32; 4]| v.map(f16::from_f32);
        let q = h([1.0, 1.0, 0.0, 0.0]);
        let keys = [h([0.0; 4]), h([1.0, 1.0, 0.0, 0.0])];
        let values = [h([1.0, 0.0, 0.0, 0.0]), h([0.0, 1.0, 0.0, 0.0])];
        let e = 1f32.exp();
        for level in crate::kernels::Level::available() {
            let k = Kernels::for_level(level).unwrap();
            let (mut scores, mut out) = ([0.0; 2], [f32::NAN; 4]);
            attend(
                &q,
                2,
                |p| &keys[p],
                |p| &values[p],
                &k,
                &mut scores,
                &mut out,
            );
            // The weights are rounded to f16: within 2^-11 of the exact ones.
            assert!((out[0] - 1.0 / (1.0 + e)).abs() < 5e-4, "{out:?}");
            assert!((out[1] - e / (1.0 + e)).abs() < 5e-4, "{out:?}");
            assert_eq!(&out[2..], &[0.0, 0.0]);
        }
    }
}
