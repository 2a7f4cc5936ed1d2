//! The small element-wise steps of a Llama layer between its matrix products: RMSNorm and
//! rotary position embedding (llama's adjacent pairs and GPT-NeoX's halves). Plain loops the compiler
//! vectorizes; their cost is a few percent of a step's. SiLU gating and attention, whose
//! exponentials and f16 conversions are worth SIMD, are kernels of every level
//! (`Ops::silu_mul`, `Ops::attend` of the dispatch table).

/// `out = x / rms(x) * weight`, for one vector: `out[i] = x[i] * rms_scale(x, eps) * weight[i]`
/// (the tuned engine applies it as it quantizes, `matrix::Activations::set`).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    rms_apply(x, rms_scale(x, eps), weight, out);
}

/// `out[i] = x[i] * scale * weight[i]` for the `x.len()` values of `x` (a whole vector, or a
/// block of it with the weights from that block on): RMSNorm once its factor is known.
pub fn rms_apply(x: &[f32], scale: f32, weight: &[f32], out: &mut [f32]) {
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// RMSNorm of each `weight.len()`-wide chunk of `x` in place (Qwen3's per-head q/k norms).
pub fn rms_norm_each(x: &mut [f32], weight: &[f32], eps: f32) {
    for head in x.chunks_exact_mut(weight.len()) {
        let scale = rms_scale(head, eps);
        for (v, &w) in head.iter_mut().zip(weight) {
            *v *= scale * w;
        }
    }
}

/// `1 / sqrt(mean(x²) + eps)`, RMSNorm's factor for `x`.
pub fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    1.0 / (mean_square + eps).sqrt()
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

/// Rotates each head of `x` (heads of `turns.len() * 2` values) as GPT-NeoX's RoPE does
/// (llama.cpp's `LLAMA_ROPE_TYPE_NEOX`, Qwen2's): the pair `(x[i], x[i + half])` turns by
/// `turns[i]`.
pub fn rope_neox(x: &mut [f32], turns: &[(f32, f32)]) {
    let half = turns.len();
    for head in x.chunks_exact_mut(half * 2) {
        let (firsts, seconds) = head.split_at_mut(half);
        for ((a, b), &(sin, cos)) in firsts.iter_mut().zip(seconds).zip(turns) {
            let (x0, x1) = (*a, *b);
            *a = x0 * cos - x1 * sin;
            *b = x0 * sin + x1 * cos;
        }
    }
}

/// The inverse frequencies of RoPE: `theta^(-2i / head_dim)` for `i < head_dim / 2`.
pub fn rope_inv_freq(head_dim: usize, theta: f32) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32))
        .collect()
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
    fn rms_norm_each_norms_every_head_as_rms_norm_norms_one() {
        let x: Vec<f32> = (0..12)
            .map(|i| (i as f32 * 1.3).cos() * (1 + i) as f32)
            .collect();
        let weight = [0.5, 1.0, 2.0, -1.0];
        let mut each = x.clone();
        rms_norm_each(&mut each, &weight, 1e-6);
        for (head, normed) in x.chunks(4).zip(each.chunks(4)) {
            let mut one = [0.0; 4];
            rms_norm(head, &weight, 1e-6, &mut one);
            assert_eq!(normed, one);
            // In f64: x / sqrt(mean(x²) + eps) * w.
            let ms = head.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 4.0;
            for ((&v, &w), &got) in head.iter().zip(&weight).zip(normed) {
                let want = v as f64 / (ms + 1e-6).sqrt() * w as f64;
                assert!((got as f64 - want).abs() < 1e-5 * want.abs().max(1.0));
            }
        }
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
    fn neox_rope_turns_the_halves_pairs_as_normal_rope_turns_adjacent_ones() {
        // Two heads of dim 6 at position 3: NEOX on [a0 a1 a2 b0 b1 b2] is normal RoPE on
        // [a0 b0 a1 b1 a2 b2], reordered back.
        let inv = rope_inv_freq(6, 100.0);
        let mut turns = [(0.0, 0.0); 3];
        rope_turns(3, &inv, &mut turns);
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let mut neox = x.clone();
        rope_neox(&mut neox, &turns);
        let interleave = |v: &[f32]| -> Vec<f32> {
            v.chunks(6)
                .flat_map(|h| (0..3).flat_map(move |i| [h[i], h[i + 3]]))
                .collect()
        };
        let mut normal = interleave(&x);
        rope(&mut normal, &turns);
        assert_eq!(interleave(&neox), normal);
        // And against the definition in f64: x0 cos - x1 sin, x0 sin + x1 cos.
        for (h, head) in neox.chunks(6).enumerate() {
            for i in 0..3 {
                let angle = 3.0 * 100f64.powf(-2.0 * i as f64 / 6.0);
                let (x0, x1) = (x[h * 6 + i] as f64, x[h * 6 + i + 3] as f64);
                let want = [
                    x0 * angle.cos() - x1 * angle.sin(),
                    x0 * angle.sin() + x1 * angle.cos(),
                ];
                for (got, want) in [head[i], head[i + 3]].into_iter().zip(want) {
                    assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
                }
            }
        }
    }
}
