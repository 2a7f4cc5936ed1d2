//! k-quant rows (q2k, q3k, q4k, q6k) by 8-bit activations in plain NEON, for the `neon` level and
//! `neondot`'s matrices whose rows do not come in groups of eight: each
//! 32-weight sub-block's byte products by `smull`/`sadalp` as in `rows.rs`, the eight
//! sub-blocks' integer sums of a super-block then scaled together in two four-lane
//! FMAs, as `generic::dot_sub_blocks`, `generic::dot_q6k` (and its kin for q3k and q2k)
//! define the products.

use super::rows::products;
use crate::arch::generic::each_token;
use crate::blocks::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ6K, BlockQ8x8, QK};
use std::arch::aarch64::*;

/// `Σ_j sums[j] · factors[j]` over a super-block's eight sub-blocks, into `acc`.
#[inline]
#[target_feature(enable = "neon")]
fn scaled(acc: float32x4_t, sums: &[i32; 8], factors: &[f32; 8]) -> float32x4_t {
    // SAFETY: eight i32 and eight f32: two loads of four each.
    unsafe {
        let acc = vfmaq_f32(
            acc,
            vcvtq_f32_s32(vld1q_s32(sums.as_ptr())),
            vld1q_f32(factors.as_ptr()),
        );
        vfmaq_f32(
            acc,
            vcvtq_f32_s32(vld1q_s32(sums.as_ptr().add(4))),
            vld1q_f32(factors.as_ptr().add(4)),
        )
    }
}

/// Block `j`'s 32 activation bytes as two vectors.
#[inline]
#[target_feature(enable = "neon")]
fn activations(x: &BlockQ8x8, j: usize) -> [int8x16_t; 2] {
    let qs = &x.qs[QK * j..QK * (j + 1)];
    // SAFETY: 32 bytes: two loads of 16.
    unsafe { [vld1q_s8(qs.as_ptr()), vld1q_s8(qs.as_ptr().add(16))] }
}

#[target_feature(enable = "neon")]
fn dot_q4k_neon(w: &[BlockQ4K], x: &[BlockQ8x8]) -> f32 {
    let (mut acc, mut mins) = (vdupq_n_f32(0.0), 0f32);
    for (w, x) in w.iter().zip(x) {
        let mut sums = [0i32; 8];
        for c in 0..4 {
            // SAFETY: 32 bytes of the 128 at 32c: two loads of 16.
            let packed = unsafe {
                let at = w.qs.as_ptr().add(32 * c);
                [vld1q_u8(at), vld1q_u8(at.add(16))]
            };
            let low = packed.map(|p| vreinterpretq_s8_u8(vandq_u8(p, vdupq_n_u8(0x0F))));
            let high = packed.map(|p| vreinterpretq_s8_u8(vshrq_n_u8::<4>(p)));
            sums[2 * c] = vaddvq_s32(products(low, activations(x, 2 * c)));
            sums[2 * c + 1] = vaddvq_s32(products(high, activations(x, 2 * c + 1)));
        }
        let (scales, mins_of) = w.scales_mins();
        let (d, dmin) = (w.d.to_f32(), w.dmin.to_f32());
        let factors: [f32; 8] = std::array::from_fn(|j| d * scales[j] as f32 * x.d[j]);
        acc = scaled(acc, &sums, &factors);
        for (&min, dsum) in mins_of.iter().zip(&x.dsum) {
            mins += dmin * min as f32 * dsum;
        }
    }
    vaddvq_f32(acc) - mins
}

#[target_feature(enable = "neon")]
fn dot_q6k_neon(w: &[BlockQ6K], x: &[BlockQ8x8]) -> f32 {
    let mut acc = vdupq_n_f32(0.0);
    for (w, x) in w.iter().zip(x) {
        let mut sums = [0i32; 8];
        for (j, sum) in sums.iter_mut().enumerate() {
            let (h, k) = (j / 4, j % 4);
            let at = 64 * h + 32 * (k % 2);
            // SAFETY: 32 bytes of `ql` (at + 32 ≤ 128) and of `qh` (32h + 32 ≤ 64).
            let (ql, qh) = unsafe {
                let (l, q) = (w.ql.as_ptr().add(at), w.qh.as_ptr().add(32 * h));
                (
                    [vld1q_u8(l), vld1q_u8(l.add(16))],
                    [vld1q_u8(q), vld1q_u8(q.add(16))],
                )
            };
            let shift = vdupq_n_s8(-2 * k as i8);
            let q: [int8x16_t; 2] = std::array::from_fn(|i| {
                let low = if k < 2 {
                    vandq_u8(ql[i], vdupq_n_u8(0x0F))
                } else {
                    vshrq_n_u8::<4>(ql[i])
                };
                let high = vandq_u8(vshlq_u8(qh[i], shift), vdupq_n_u8(3));
                let q = vorrq_u8(low, vshlq_n_u8::<4>(high));
                vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32))
            });
            let xs = activations(x, j);
            *sum = w.scales[2 * j] as i32 * group_sum(q[0], xs[0])
                + w.scales[2 * j + 1] as i32 * group_sum(q[1], xs[1]);
        }
        let d = w.d.to_f32();
        let factors: [f32; 8] = std::array::from_fn(|j| d * x.d[j]);
        acc = scaled(acc, &sums, &factors);
    }
    vaddvq_f32(acc)
}

/// `Σ q · x` over one 16-weight group: sixteen signed weights by sixteen activations.
#[inline]
#[target_feature(enable = "neon")]
fn group_sum(q: int8x16_t, x: int8x16_t) -> i32 {
    let p = vpaddlq_s16(vmull_s8(vget_low_s8(q), vget_low_s8(x)));
    vaddvq_s32(vpadalq_s16(p, vmull_high_s8(q, x)))
}

/// The two-bit codes of sub-block `j` of q2k's or q3k's `qs` (bits `2 (j % 4)` of bytes
/// `32 (j / 4)..`), one byte per weight, as two vectors of sixteen (groups `2j` and `2j + 1`).
#[inline]
#[target_feature(enable = "neon")]
fn two_bits(qs: &[u8; 64], j: usize) -> [uint8x16_t; 2] {
    let (h, k) = (j / 4, j % 4);
    let shift = vdupq_n_s8(-2 * k as i8);
    // SAFETY: 32 bytes at 32h (h < 2) of 64: two loads of 16.
    let q = unsafe {
        let at = qs.as_ptr().add(32 * h);
        [vld1q_u8(at), vld1q_u8(at.add(16))]
    };
    q.map(|v| vandq_u8(vshlq_u8(v, shift), vdupq_n_u8(3)))
}

#[target_feature(enable = "neon")]
fn dot_q3k_neon(w: &[BlockQ3K], x: &[BlockQ8x8]) -> f32 {
    let mut acc = vdupq_n_f32(0.0);
    for (w, x) in w.iter().zip(x) {
        // SAFETY: 32 bytes: two loads of 16.
        let hmask = unsafe {
            [
                vld1q_u8(w.hmask.as_ptr()),
                vld1q_u8(w.hmask.as_ptr().add(16)),
            ]
        };
        let mut sums = [0i32; 8];
        for (j, sum) in sums.iter_mut().enumerate() {
            let (low, down) = (two_bits(&w.qs, j), vdupq_n_s8(-(j as i8)));
            // Each weight's high bit above its two low ones, less 4: q, -4..4.
            let q: [int8x16_t; 2] = std::array::from_fn(|i| {
                let high = vandq_u8(vshlq_u8(hmask[i], down), vdupq_n_u8(1));
                let code = vorrq_u8(low[i], vshlq_n_u8::<2>(high));
                vsubq_s8(vreinterpretq_s8_u8(code), vdupq_n_s8(4))
            });
            let xs = activations(x, j);
            *sum = w.scale(2 * j) as i32 * group_sum(q[0], xs[0])
                + w.scale(2 * j + 1) as i32 * group_sum(q[1], xs[1]);
        }
        let d = w.d.to_f32();
        let factors: [f32; 8] = std::array::from_fn(|j| d * x.d[j]);
        acc = scaled(acc, &sums, &factors);
    }
    vaddvq_f32(acc)
}

#[target_feature(enable = "neon")]
fn dot_q2k_neon(w: &[BlockQ2K], x: &[BlockQ8x8]) -> f32 {
    let (mut acc, mut mins) = (vdupq_n_f32(0.0), 0f32);
    for (w, x) in w.iter().zip(x) {
        let (d, dmin) = (w.d.to_f32(), w.dmin.to_f32());
        let mut sums = [0i32; 8];
        for (j, sum) in sums.iter_mut().enumerate() {
            let q = two_bits(&w.qs, j).map(|v| vreinterpretq_s8_u8(v));
            let xs = activations(x, j);
            let (first, second) = (w.scales[2 * j] as i32, w.scales[2 * j + 1] as i32);
            *sum =
                (first & 0x0F) * group_sum(q[0], xs[0]) + (second & 0x0F) * group_sum(q[1], xs[1]);
            let (b0, b1) = (x.bsums[2 * j] as i32, x.bsums[2 * j + 1] as i32);
            mins += dmin * x.d[j] * ((first >> 4) * b0 + (second >> 4) * b1) as f32;
        }
        let factors: [f32; 8] = std::array::from_fn(|j| d * x.d[j]);
        acc = scaled(acc, &sums, &factors);
    }
    vaddvq_f32(acc) - mins
}

// Safe entry points for the level's table. SAFETY (all): only `super::kernels` hands them
// out, for a `Neon` token (made after detecting NEON).

pub(super) fn rows_q4k(
    w: &[BlockQ4K],
    x: &[BlockQ8x8],
    tokens: std::ops::Range<usize>,
    out: &mut [f32],
) {
    each_token(|w, x| unsafe { dot_q4k_neon(w, x) }, w, x, tokens, out)
}

pub(super) fn rows_q2k(
    w: &[BlockQ2K],
    x: &[BlockQ8x8],
    tokens: std::ops::Range<usize>,
    out: &mut [f32],
) {
    each_token(|w, x| unsafe { dot_q2k_neon(w, x) }, w, x, tokens, out)
}

pub(super) fn rows_q3k(
    w: &[BlockQ3K],
    x: &[BlockQ8x8],
    tokens: std::ops::Range<usize>,
    out: &mut [f32],
) {
    each_token(|w, x| unsafe { dot_q3k_neon(w, x) }, w, x, tokens, out)
}

pub(super) fn rows_q6k(
    w: &[BlockQ6K],
    x: &[BlockQ8x8],
    tokens: std::ops::Range<usize>,
    out: &mut [f32],
) {
    each_token(|w, x| unsafe { dot_q6k_neon(w, x) }, w, x, tokens, out)
}
