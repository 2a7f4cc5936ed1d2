//! Interleaved q4k, q5k and q6k rows (`repack::BlockQ4Kx8`, `BlockQ5Kx8`, `BlockQ6Kx8`) with
//! `sdot`, as AVX2's `rows8_q4k` and `rows8_q6k` multiply them: each 32-byte piece of eight
//! rows' weights is two registers of four rows, four weights of each row by four activation
//! bytes broadcast.
//! - q4k: a piece's low nibbles are four weights of sub-block `2c`, its high nibbles four of
//!   `2c + 1`; every sub-block's sums are scaled by its row's 6-bit scale and its min taken off.
//!   q5k likewise, each weight's fifth bit from `qh` put above its nibble.
//! - q6k: the six-bit codes as stored (weight + 32, from `ql` and `qh`); 32 times the group's
//!   activation sum (`BlockQ8x8::bsums`) comes off each 16-weight group's sums, which are
//!   then multiplied by the row's group scale in integers, before the block's scales.

use super::{broadcast4, halves, sdot, store8};
use crate::blocks::{BlockQ8, BlockQ8x8};
use crate::repack::{BlockQ4Kx8, BlockQ5Kx8, BlockQ6Kx8};
use half::f16;
use std::arch::aarch64::*;
use std::ops::Range;

/// Byte `i` of the eight rows' 12 scale bytes (`8i..8i + 8`).
#[inline]
#[target_feature(enable = "neon")]
fn row8(s: &[u8; 96], i: usize) -> uint8x8_t {
    // SAFETY: eight bytes at 8i (i < 12) of 96.
    unsafe { vld1_u8(s[8 * i..8 * i + 8].as_ptr()) }
}

/// Eight bytes as two vectors of four f32.
#[inline]
#[target_feature(enable = "neon")]
fn widen(v: uint8x8_t) -> [float32x4_t; 2] {
    let v = vmovl_u8(v);
    [
        vcvtq_f32_u32(vmovl_u16(vget_low_u16(v))),
        vcvtq_f32_u32(vmovl_high_u16(v)),
    ]
}

/// Sub-block `j`'s 6-bit scale and min of each of the eight rows, as GGUF packs them
/// (`get_scale_min_k4`): for `j < 4` the low six bits of bytes `j` and `j + 4`; above, a
/// nibble of byte `j + 4` with the top two bits of bytes `j - 4` and `j`.
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::arch::arm) fn scales_mins(
    s: &[u8; 96],
    j: usize,
) -> ([float32x4_t; 2], [float32x4_t; 2]) {
    let six = vdup_n_u8(63);
    let (scales, mins) = if j < 4 {
        (vand_u8(row8(s, j), six), vand_u8(row8(s, j + 4), six))
    } else {
        let (low, nibble) = (row8(s, j + 4), vdup_n_u8(0x0F));
        let top = |v: uint8x8_t| vand_u8(vshr_n_u8::<2>(v), vdup_n_u8(0x30));
        (
            vorr_u8(vand_u8(low, nibble), top(row8(s, j - 4))),
            vorr_u8(vshr_n_u8::<4>(low), top(row8(s, j))),
        )
    };
    (widen(scales), widen(mins))
}

/// A q4k or q5k group's factors: its rows' scales of their sub-block scales and of their
/// mins, and their packed 6-bit scales and mins.
pub(in crate::arch::arm) type Factors<'a> = (&'a [f16; 8], &'a [f16; 8], &'a [u8; 96]);

/// Piece `p` of chunk `c` of eight interleaved rows' nibbles (`qs`): four weights of each row
/// of sub-block `2c` (low nibbles) and of `2c + 1` (high ones), rows 0-3 in the first register.
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::arch::arm) fn nibbles(qs: &[u8; 1024], c: usize, p: usize) -> [[int8x16_t; 2]; 2] {
    let at = 256 * c + 32 * p;
    // SAFETY: 32 bytes at `at` + 32 <= 1024: two loads of 16.
    let packed = unsafe {
        [
            vld1q_u8(qs[at..at + 16].as_ptr()),
            vld1q_u8(qs[at + 16..at + 32].as_ptr()),
        ]
    };
    [
        packed.map(|v| vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)))),
        packed.map(|v| vreinterpretq_s8_u8(vshrq_n_u8::<4>(v))),
    ]
}

/// Piece `p` of chunk `c` of eight interleaved q5k rows: their nibbles with their fifth bits
/// (bits `2c` and `2c + 1` of the rows' `qh` piece `p`) moved to bit 4.
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::arch::arm) fn weights_q5k(g: &BlockQ5Kx8, c: usize, p: usize) -> [[int8x16_t; 2]; 2] {
    let q = nibbles(&g.qs, c, p);
    // SAFETY: 32 bytes at 32p (p < 8) of 256: two loads of 16.
    let high = unsafe {
        [
            vld1q_u8(g.qh[32 * p..32 * p + 16].as_ptr()),
            vld1q_u8(g.qh[32 * p + 16..32 * p + 32].as_ptr()),
        ]
    };
    std::array::from_fn(|h| {
        // Bit 2c + h of each byte, to bit 4.
        let down = vdupq_n_s8(-((2 * c + h) as i8));
        std::array::from_fn(|r| {
            let bit = vandq_u8(vshlq_u8(high[r], down), vdupq_n_u8(1));
            vorrq_s8(q[h][r], vreinterpretq_s8_u8(vshlq_n_u8::<4>(bit)))
        })
    })
}

/// Eight interleaved q4k or q5k rows by `N` tokens' activations (eight blocks per
/// super-block), the group's `factors` and its `weights` (piece `p` of chunk `c`, as
/// [`nibbles`] gives them): rows 0-3 in the first vector of each pair, 4-7 in the second.
// The halves, sub-blocks and tokens index several arrays each, as in AVX2's kernels.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn k4_tokens<G, const N: usize>(
    w: &[G],
    x: [&[BlockQ8]; N],
    factors: impl Fn(&G) -> Factors<'_>,
    weights: impl Fn(&G, usize, usize) -> [[int8x16_t; 2]; 2],
) -> [[float32x4_t; 2]; N] {
    let zero = [vdupq_n_f32(0.0); 2];
    let (mut acc, mut mins) = ([zero; N], [zero; N]);
    for (b, g) in w.iter().enumerate() {
        let blocks: [&[BlockQ8]; N] = std::array::from_fn(|i| &x[i][8 * b..8 * b + 8]);
        let (d, dmin, scales) = factors(g);
        let (d, dmin) = (halves(d), halves(dmin));
        for c in 0..4 {
            // sums[token][sub-block 2c + h][rows 4 · half..]
            let mut sums = [[[vdupq_n_s32(0); 2]; 2]; N];
            for p in 0..8 {
                let q = weights(g, c, p);
                for i in 0..N {
                    for h in 0..2 {
                        let xs = broadcast4(&blocks[i][2 * c + h].qs, 4 * p);
                        for half in 0..2 {
                            sums[i][h][half] = sdot(sums[i][h][half], q[h][half], xs);
                        }
                    }
                }
            }
            for h in 0..2 {
                let j = 2 * c + h;
                let (scale, min) = scales_mins(scales, j);
                for i in 0..N {
                    let xb = &blocks[i][j];
                    let dsum = xb.d * xb.sum as f32;
                    for half in 0..2 {
                        let factor = vmulq_n_f32(vmulq_f32(d[half], scale[half]), xb.d);
                        let sum = vcvtq_f32_s32(sums[i][h][half]);
                        acc[i][half] = vfmaq_f32(acc[i][half], sum, factor);
                        let m = vmulq_f32(dmin[half], min[half]);
                        mins[i][half] = vfmaq_n_f32(mins[i][half], m, dsum);
                    }
                }
            }
        }
    }
    std::array::from_fn(|i| std::array::from_fn(|half| vsubq_f32(acc[i][half], mins[i][half])))
}

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q4k_tokens<const N: usize>(w: &[BlockQ4Kx8], x: [&[BlockQ8]; N]) -> [[float32x4_t; 2]; N] {
    k4_tokens(
        w,
        x,
        |g| (&g.d, &g.dmin, &g.scales),
        |g, c, p| nibbles(&g.qs, c, p),
    )
}

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q5k_tokens<const N: usize>(w: &[BlockQ5Kx8], x: [&[BlockQ8]; N]) -> [[float32x4_t; 2]; N] {
    k4_tokens(
        w,
        x,
        |g| (&g.d, &g.dmin, &g.scales),
        |g, c, p| weights_q5k(g, c, p),
    )
}

#[target_feature(enable = "neon,dotprod")]
fn rows8_q4k_body(w: &[BlockQ4Kx8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(
        q4k_tokens,
        w,
        x,
        tokens,
        out,
        store8,
        crate::repack::ROWS,
        8
    )
}

/// The table's `q4k.rows8`. SAFETY (of the call): only `kernels` hands it out, for a
/// `NeonDot` token (made after detecting `dotprod`).
pub(super) fn rows8_q4k(w: &[BlockQ4Kx8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8_q4k_body(w, x, tokens, out) }
}

#[target_feature(enable = "neon,dotprod")]
fn rows8_q5k_body(w: &[BlockQ5Kx8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(
        q5k_tokens,
        w,
        x,
        tokens,
        out,
        store8,
        crate::repack::ROWS,
        8
    )
}

/// The table's `q5k.rows8`. SAFETY (of the call): as [`rows8_q4k`].
pub(super) fn rows8_q5k(w: &[BlockQ5Kx8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8_q5k_body(w, x, tokens, out) }
}

/// Sub-block `j`'s group `half` (16 weights) of eight interleaved q6k rows: four pieces of
/// four weights of each row, rows 0-3 in the first register of each pair, as unsigned 6-bit
/// values (AVX2's `weights_q6k_x8`, in registers of 16 bytes).
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::arch::arm) fn weights_q6k(
    g: &BlockQ6Kx8,
    j: usize,
    half: usize,
) -> [[int8x16_t; 2]; 4] {
    let (h, s) = (j / 4, j % 4);
    std::array::from_fn(|pp| {
        let p = 4 * half + pp;
        let (l, t) = (256 * (2 * h + s % 2) + 32 * p, 256 * h + 32 * p);
        std::array::from_fn(|r| {
            let (l, t) = (l + 16 * r, t + 16 * r);
            // SAFETY: 16 bytes of `ql` (l + 16 ≤ 1024) and of `qh` (t + 16 ≤ 512).
            let (ql, qh) = unsafe {
                (
                    vld1q_u8(g.ql[l..l + 16].as_ptr()),
                    vld1q_u8(g.qh[t..t + 16].as_ptr()),
                )
            };
            let ql = if s < 2 { ql } else { vshrq_n_u8::<4>(ql) };
            // Bits 2s..2s + 2 of each `qh` byte to bits 4..6.
            let qh = match s {
                0 => vshlq_n_u8::<4>(qh),
                1 => vshlq_n_u8::<2>(qh),
                2 => qh,
                _ => vshrq_n_u8::<2>(qh),
            };
            let q = vorrq_u8(
                vandq_u8(ql, vdupq_n_u8(0x0F)),
                vandq_u8(qh, vdupq_n_u8(0x30)),
            );
            vreinterpretq_s8_u8(q)
        })
    })
}

/// Eight interleaved q6k rows by `N` tokens' activations (one group of eight blocks per
/// super-block): rows 0-3 in the first vector of each pair, 4-7 in the second.
// The halves, groups and tokens index several arrays each, as in AVX2's kernels.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q6k_tokens<const N: usize>(w: &[BlockQ6Kx8], x: [&[BlockQ8x8]; N]) -> [[float32x4_t; 2]; N] {
    let mut acc = [[vdupq_n_f32(0.0); 2]; N];
    for (b, g) in w.iter().enumerate() {
        let xs: [&BlockQ8x8; N] = std::array::from_fn(|i| &x[i][b]);
        let d = halves(&g.d);
        let mut blocks = [[vdupq_n_f32(0.0); 2]; N];
        for j in 0..8 {
            // Each row's Σ scale · q · x over the sub-block, and Σ scale · Σx (the offset).
            let mut exact = [[vdupq_n_s32(0); 2]; N];
            for half in 0..2 {
                let group = 2 * j + half;
                // SAFETY: eight bytes at 8 · group (< 128).
                let scales = unsafe { vld1_s8(g.scales[8 * group..8 * group + 8].as_ptr()) };
                let scales = vmovl_s8(scales);
                let scales = [vmovl_s16(vget_low_s16(scales)), vmovl_high_s16(scales)];
                let q = weights_q6k(g, j, half);
                for i in 0..N {
                    let at = 32 * j + 16 * half;
                    let mut sums = [vdupq_n_s32(0); 2];
                    for (p, q) in q.iter().enumerate() {
                        let xv = broadcast4(&xs[i].qs, at + 4 * p);
                        for r in 0..2 {
                            sums[r] = sdot(sums[r], q[r], xv);
                        }
                    }
                    let bsum = 32 * i32::from(xs[i].bsums[group]);
                    for r in 0..2 {
                        let centred = vsubq_s32(sums[r], vdupq_n_s32(bsum));
                        exact[i][r] = vmlaq_s32(exact[i][r], centred, scales[r]);
                    }
                }
            }
            for i in 0..N {
                for r in 0..2 {
                    let sum = vcvtq_f32_s32(exact[i][r]);
                    blocks[i][r] = vfmaq_n_f32(blocks[i][r], sum, xs[i].d[j]);
                }
            }
        }
        for i in 0..N {
            for r in 0..2 {
                acc[i][r] = vfmaq_f32(acc[i][r], blocks[i][r], d[r]);
            }
        }
    }
    acc
}

#[target_feature(enable = "neon,dotprod")]
fn rows8_q6k_body(w: &[BlockQ6Kx8], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(
        q6k_tokens,
        w,
        x,
        tokens,
        out,
        store8,
        crate::repack::ROWS,
        1
    )
}

/// The table's `q6k.rows8`. SAFETY (of the call): only `kernels` hands it out, for a
/// `NeonDot` token (made after detecting `dotprod`).
pub(super) fn rows8_q6k(w: &[BlockQ6Kx8], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8_q6k_body(w, x, tokens, out) }
}
