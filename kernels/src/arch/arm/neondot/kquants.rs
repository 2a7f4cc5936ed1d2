//! Interleaved q4k rows (`repack::BlockQ4Kx8`) with `sdot`, as AVX2's `rows8_q4k` multiplies
//! them: each 32-byte piece of eight rows' nibbles is two registers of four rows, its low
//! nibbles four weights of sub-block `2c` of each row and its high nibbles four of sub-block
//! `2c + 1`, each by four activation bytes broadcast; every sub-block's sums are then scaled
//! by its row's 6-bit scale and its min taken off, four rows to a vector.

use super::{broadcast4, halves, sdot, store8};
use crate::blocks::BlockQ8;
use crate::repack::BlockQ4Kx8;
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
fn scales_mins(s: &[u8; 96], j: usize) -> ([float32x4_t; 2], [float32x4_t; 2]) {
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

/// Eight interleaved q4k rows by `N` tokens' activations (eight blocks per super-block):
/// rows 0-3 in the first vector of each pair, 4-7 in the second.
// The halves, sub-blocks and tokens index several arrays each, as in AVX2's kernels.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q4k_tokens<const N: usize>(w: &[BlockQ4Kx8], x: [&[BlockQ8]; N]) -> [[float32x4_t; 2]; N] {
    let low = vdupq_n_u8(0x0F);
    let zero = [vdupq_n_f32(0.0); 2];
    let (mut acc, mut mins) = ([zero; N], [zero; N]);
    for (b, g) in w.iter().enumerate() {
        let blocks: [&[BlockQ8]; N] = std::array::from_fn(|i| &x[i][8 * b..8 * b + 8]);
        let (d, dmin) = (halves(&g.d), halves(&g.dmin));
        for c in 0..4 {
            // sums[token][sub-block 2c + h][rows 4 · half..]
            let mut sums = [[[vdupq_n_s32(0); 2]; 2]; N];
            for p in 0..8 {
                let at = 256 * c + 32 * p;
                // SAFETY: 32 bytes at `at` + 32 <= 1024: two loads of 16.
                let packed = unsafe {
                    [
                        vld1q_u8(g.qs[at..at + 16].as_ptr()),
                        vld1q_u8(g.qs[at + 16..at + 32].as_ptr()),
                    ]
                };
                let q = [
                    packed.map(|v| vreinterpretq_s8_u8(vandq_u8(v, low))),
                    packed.map(|v| vreinterpretq_s8_u8(vshrq_n_u8::<4>(v))),
                ];
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
                let (scale, min) = scales_mins(&g.scales, j);
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
