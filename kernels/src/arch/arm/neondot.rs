//! aarch64 with NEON and the dot-product extension (Armv8.2 `dotprod`: Graviton 2, 3 and 4,
//! Neoverse N1/V1/V2, Ampere Altra, Apple M1 and later): the interleaved rows of `repack`
//! with `sdot`, which multiplies signed bytes and adds each four products into a 32-bit lane
//! in one instruction. A 32-byte piece of eight interleaved rows is two 16-byte registers of
//! four rows each, so the layout and the tiling are AVX2's. Its other kernels are the `neon`
//! level's, in plain NEON: dense dots, the exponentials and attention (`neon/dense.rs`), and
//! row-major quantized dots (`neon/rows.rs`) for matrices whose rows do not come in groups of
//! eight.
//!
//! `sdot` is written as inline assembly: Rust's `vdotq_s32` is not stable yet
//! (`stdarch_neon_dotprod`). The safe entry points are private: the table ([`kernels`]) hands
//! them out, only for a [`NeonDot`] token. Tested under QEMU's `max` CPU on x86-64 hosts
//! (`scripts/test-aarch64`), and refused on CPUs without `dotprod`.

pub(super) mod kquants;

use super::{neon, NeonDot};
use crate::blocks::{BlockQ8, QK};
use crate::repack::{
    BlockQ4_0x8, BlockQ4_1x8, BlockQ5_0x8, BlockQ5_1x8, BlockQ8_0x8, Nibbles, ROWS,
};
use crate::{Kernels, Level};
use half::f16;
use std::arch::aarch64::*;
use std::ops::Range;

/// The `neondot` level's kernels: `neon`'s, with `sdot` for interleaved rows (the k-quants' too).
pub(crate) fn kernels(token: NeonDot) -> Kernels {
    let mut k = neon::kernels(token.neon());
    k.level = Level::NeonDot;
    k.q4_0.rows8 = Some(rows8_q4_0);
    k.q4_1.rows8 = Some(rows8_q4_1);
    k.q5_0.rows8 = Some(rows8_q5_0);
    k.q5_1.rows8 = Some(rows8_q5_1);
    k.q8_0.rows8 = Some(rows8_q8_0);
    k.q4k.rows8 = Some(kquants::rows8_q4k);
    k.q5k.rows8 = Some(kquants::rows8_q5k);
    k.q6k.rows8 = Some(kquants::rows8_q6k);
    k
}

accumulate_bytes!(
    /// `acc[i] += Σ_j a[4i + j] · b[4i + j]` over signed bytes, per 32-bit lane.
    sdot,
    "sdot",
    "neon,dotprod",
    int8x16_t
);

/// Four bytes of activations at `at`, in every 32-bit lane.
#[inline]
#[target_feature(enable = "neon")]
fn broadcast4(qs: &[i8], at: usize) -> int8x16_t {
    let word = i32::from_le_bytes([
        qs[at] as u8,
        qs[at + 1] as u8,
        qs[at + 2] as u8,
        qs[at + 3] as u8,
    ]);
    vreinterpretq_s8_s32(vdupq_n_s32(word))
}

/// Eight f16 scales as two vectors of four f32, exactly: the half's magnitude bits shifted
/// into an f32's and scaled by 2^112 (zero and subnormal halves come out right; scales are
/// never infinite or NaN), the sign put back.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn halves(h: &[f16; ROWS]) -> [float32x4_t; 2] {
    let bits: [u16; ROWS] = h.map(f16::to_bits);
    // SAFETY: eight u16 from an eight-element array.
    let v = unsafe { vld1q_u16(bits.as_ptr()) };
    let widen = |x: uint32x4_t| {
        let magnitude = vshlq_n_u32::<13>(vandq_u32(x, vdupq_n_u32(0x7FFF)));
        let sign = vshlq_n_u32::<16>(vandq_u32(x, vdupq_n_u32(0x8000)));
        let value = vmulq_n_f32(
            vreinterpretq_f32_u32(magnitude),
            f32::from_bits(0x7780_0000),
        );
        vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(value), sign))
    };
    [widen(vmovl_u16(vget_low_u16(v))), widen(vmovl_high_u16(v))]
}

/// Bits `16 half..16 half + 16` of `word` as 0x10 in bytes 0..16 (byte `j` from bit
/// `16 half + j`): q5_0's fifth bits for the half of a 32-byte piece that holds rows
/// `4 half..4 half + 4` (`repack::BlockQ5_0x8`).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn fifth_bits(word: u32, half: usize) -> uint8x16_t {
    const SPREAD: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // Little-endian: byte 0 of each 16-bit lane holds bits 0-7, byte 1 bits 8-15.
    let both = vreinterpretq_u8_u16(vdupq_n_u16((word >> (16 * half)) as u16));
    // SAFETY: sixteen bytes from each sixteen-byte constant.
    let (spread, bit) = unsafe { (vld1q_u8(SPREAD.as_ptr()), vld1q_u8(BIT.as_ptr())) };
    let set = vtstq_u8(vqtbl1q_u8(both, spread), bit);
    vandq_u8(set, vdupq_n_u8(0x10))
}

/// Eight interleaved 4-bit rows (q5_0's with their fifth bits) by `N` tokens: as AVX2's
/// `rows8_tokens`, rows 0-3 in the first vector of each pair and rows 4-7 in the second.
// The halves and tokens index several arrays each, as in AVX2's kernels.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn rows8_tokens<I: Nibbles, const N: usize>(w: &[I], x: [&[BlockQ8]; N]) -> [[float32x4_t; 2]; N] {
    let low = vdupq_n_u8(0x0F);
    let mut acc = [[vdupq_n_f32(0.0); 2]; N];
    for (b, block) in w.iter().enumerate() {
        let mut sums = [[vdupq_n_s32(0); 2]; N];
        let nibbles = block.nibbles();
        for c in 0..4 {
            for half in 0..2 {
                let at = 32 * c + 16 * half;
                // SAFETY: 16 bytes at `at` + 16 <= 128.
                let packed = unsafe { vld1q_u8(nibbles[at..at + 16].as_ptr()) };
                let mut lo = vandq_u8(packed, low);
                let mut hi = vshrq_n_u8::<4>(packed);
                if I::FIFTH {
                    lo = vorrq_u8(lo, fifth_bits(block.fifth()[c], half));
                    hi = vorrq_u8(hi, fifth_bits(block.fifth()[4 + c], half));
                }
                let (lo, hi) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
                for t in 0..N {
                    let qs = &x[t][b].qs;
                    let s = sdot(sums[t][half], lo, broadcast4(qs, 4 * c));
                    sums[t][half] = sdot(s, hi, broadcast4(qs, 16 + 4 * c));
                }
            }
        }
        let d = halves(block.scales());
        let m = if I::OFFSETS {
            halves(block.offsets())
        } else {
            [vdupq_n_f32(0.0); 2]
        };
        for t in 0..N {
            let xb = &x[t][b];
            for half in 0..2 {
                let mut whole = sums[t][half];
                if !I::OFFSETS {
                    // The weights are q - CENTRE: CENTRE · Σx off in integers.
                    whole = vsubq_s32(whole, vdupq_n_s32(I::CENTRE * xb.sum));
                }
                let scale = vmulq_n_f32(d[half], xb.d);
                acc[t][half] = vfmaq_f32(acc[t][half], scale, vcvtq_f32_s32(whole));
                if I::OFFSETS {
                    acc[t][half] = vfmaq_n_f32(acc[t][half], m[half], xb.s);
                }
            }
        }
    }
    acc
}

/// Eight interleaved q8_0 rows by `N` tokens: signed by signed bytes, no offset to remove.
// The halves and tokens index several arrays each, as in AVX2's kernels.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn rows8_q8_tokens<const N: usize>(w: &[BlockQ8_0x8], x: [&[BlockQ8]; N]) -> [[float32x4_t; 2]; N] {
    let mut acc = [[vdupq_n_f32(0.0); 2]; N];
    for (b, block) in w.iter().enumerate() {
        let mut sums = [[vdupq_n_s32(0); 2]; N];
        for c in 0..QK / 4 {
            for half in 0..2 {
                let at = 32 * c + 16 * half;
                // SAFETY: 16 bytes at `at` + 16 <= 256.
                let weights = unsafe { vld1q_s8(block.qs[at..at + 16].as_ptr()) };
                for t in 0..N {
                    sums[t][half] = sdot(sums[t][half], weights, broadcast4(&x[t][b].qs, 4 * c));
                }
            }
        }
        let d = halves(&block.d);
        for t in 0..N {
            for half in 0..2 {
                let scale = vmulq_n_f32(d[half], x[t][b].d);
                acc[t][half] = vfmaq_f32(acc[t][half], scale, vcvtq_f32_s32(sums[t][half]));
            }
        }
    }
    acc
}

/// Eight results of an interleaved kernel into `dst[..8]`.
#[inline]
#[target_feature(enable = "neon")]
fn store8(dst: &mut [f32], v: &[float32x4_t; 2]) {
    assert!(dst.len() >= 8);
    // SAFETY: 8 floats checked above: two stores of four.
    unsafe {
        vst1q_f32(dst.as_mut_ptr(), v[0]);
        vst1q_f32(dst.as_mut_ptr().add(4), v[1]);
    }
}

#[target_feature(enable = "neon,dotprod")]
fn rows8<I: Nibbles>(w: &[I], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(rows8_tokens::<I>, w, x, tokens, out, store8)
}

#[target_feature(enable = "neon,dotprod")]
fn rows8_q8(w: &[BlockQ8_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(rows8_q8_tokens, w, x, tokens, out, store8)
}

// Safe entry points for the table. SAFETY (all): only `kernels` hands them out, for a
// `NeonDot` token (made after detecting `dotprod`).

fn rows8_q4_0(w: &[BlockQ4_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}

fn rows8_q4_1(w: &[BlockQ4_1x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}

fn rows8_q5_0(w: &[BlockQ5_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}

fn rows8_q5_1(w: &[BlockQ5_1x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}

fn rows8_q8_0(w: &[BlockQ8_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8_q8(w, x, tokens, out) }
}
