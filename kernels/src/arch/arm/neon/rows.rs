//! Row-major quantized dots in plain NEON (no dot-product extension): one row of q8_0, q4_0,
//! q4_1, q5_0 or q5_1 blocks by a token's 8-bit activations. The `neon` level multiplies every quantized
//! matrix with them; `neondot` only matrices whose rows do not come in groups of eight (the
//! rest take `sdot` on interleaved rows).
//!
//! Per block: the 32 byte products widened to 16 bits (`smull`: one product per lane, so no
//! saturation whatever the bytes), added pairwise into 32-bit lanes (`sadalp`), the block's
//! integer sum scaled once.

use crate::blocks::{Block, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8, BlockQ8_0, QK};
use std::arch::aarch64::*;

/// Σ a[i] · b[i] over 32 signed bytes each, in 32-bit lanes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn products(a: [int8x16_t; 2], b: [int8x16_t; 2]) -> int32x4_t {
    let mut sum = vdupq_n_s32(0);
    for (a, b) in a.into_iter().zip(b) {
        sum = vpadalq_s16(sum, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
        sum = vpadalq_s16(sum, vmull_high_s8(a, b));
    }
    sum
}

/// A block's 32 bytes as two vectors.
#[inline]
#[target_feature(enable = "neon")]
fn load32(qs: &[i8; QK]) -> [int8x16_t; 2] {
    // SAFETY: 32 bytes: two loads of 16.
    unsafe { [vld1q_s8(qs.as_ptr()), vld1q_s8(qs.as_ptr().add(16))] }
}

/// The 32 nibbles of a 4-bit block as bytes 0..16, low nibbles first (GGUF's order).
#[inline]
#[target_feature(enable = "neon")]
fn nibbles(qs: &[u8; QK / 2]) -> [uint8x16_t; 2] {
    // SAFETY: 16 bytes.
    let packed = unsafe { vld1q_u8(qs.as_ptr()) };
    [vandq_u8(packed, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(packed)]
}

/// Σ over the blocks of `d · d_x · Σ q·x`, plus the block's offset times the activations'
/// stored sum `s` (q4_1's and q5_1's `m`; 0 for the others): every row-major format, given
/// its weights as signed bytes (`q`) and its scale (`d`).
#[inline]
#[target_feature(enable = "neon")]
fn dot_blocks<B: Block>(
    w: &[B],
    x: &[BlockQ8],
    q: impl Fn(&B) -> [int8x16_t; 2],
    d: impl Fn(&B) -> f32,
) -> f32 {
    let (mut acc, mut offsets) = (vdupq_n_f32(0.0), 0f32);
    for (w, x) in w.iter().zip(x) {
        let sum = products(q(w), load32(&x.qs));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sum), d(w) * x.d);
        offsets += w.offset() * x.s;
    }
    vaddvq_f32(acc) + offsets
}

/// Unsigned bytes (nibbles, or q5's five bits) less `zero` as signed bytes.
#[inline]
#[target_feature(enable = "neon")]
fn signed(q: [uint8x16_t; 2], zero: i8) -> [int8x16_t; 2] {
    q.map(|n| vsubq_s8(vreinterpretq_s8_u8(n), vdupq_n_s8(zero)))
}

#[target_feature(enable = "neon")]
fn dot_q8_0_neon(w: &[BlockQ8_0], x: &[BlockQ8]) -> f32 {
    dot_blocks(w, x, |w| load32(&w.qs), |w| w.d.to_f32())
}

#[target_feature(enable = "neon")]
fn dot_q4_0_neon(w: &[BlockQ4_0], x: &[BlockQ8]) -> f32 {
    dot_blocks(w, x, |w| signed(nibbles(&w.qs), 8), |w| w.d.to_f32())
}

#[target_feature(enable = "neon")]
fn dot_q4_1_neon(w: &[BlockQ4_1], x: &[BlockQ8]) -> f32 {
    dot_blocks(w, x, |w| signed(nibbles(&w.qs), 0), |w| w.d.to_f32())
}

/// A q5 block's 32 weights, 0..32 unsigned: the nibbles with bit `i` of `qh` as 16 in byte
/// `i` (each byte tests its own bit of `qh`'s byte `i / 8`).
#[inline]
#[target_feature(enable = "neon")]
fn five_bits(qs: &[u8; QK / 2], qh: u32) -> [uint8x16_t; 2] {
    let bits: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: 16 bytes.
    let bits = unsafe { vld1q_u8(bits.as_ptr()) };
    let h = qh.to_le_bytes();
    let high = |a: u8, b: u8| {
        let bytes = vcombine_u8(vdup_n_u8(a), vdup_n_u8(b));
        vandq_u8(vtstq_u8(bytes, bits), vdupq_n_u8(0x10))
    };
    let [low, top] = nibbles(qs);
    [
        vorrq_u8(low, high(h[0], h[1])),
        vorrq_u8(top, high(h[2], h[3])),
    ]
}

#[target_feature(enable = "neon")]
fn dot_q5_0_neon(w: &[BlockQ5_0], x: &[BlockQ8]) -> f32 {
    dot_blocks(
        w,
        x,
        |w| signed(five_bits(&w.qs, w.qh), 16),
        |w| w.d.to_f32(),
    )
}

#[target_feature(enable = "neon")]
fn dot_q5_1_neon(w: &[BlockQ5_1], x: &[BlockQ8]) -> f32 {
    dot_blocks(
        w,
        x,
        |w| signed(five_bits(&w.qs, w.qh), 0),
        |w| w.d.to_f32(),
    )
}

// Safe entry points for the dispatch table. SAFETY (all): NEON is part of every aarch64 CPU.

pub(super) fn dot_q5_0(w: &[BlockQ5_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q5_0_neon(w, x) }
}

pub(super) fn dot_q5_1(w: &[BlockQ5_1], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q5_1_neon(w, x) }
}

pub(super) fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q8_0_neon(w, x) }
}

pub(super) fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4_0_neon(w, x) }
}

pub(super) fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4_1_neon(w, x) }
}
