//! x86-64 with AVX-512 VNNI (Ice Lake, Zen 4 and later): the interleaved 4-bit rows of
//! `repack` with `vpdpbusd`, which multiplies unsigned by signed bytes and adds each four
//! products into a 32-bit lane in one instruction, where AVX2 needs `vpmaddubsw`, a 16-bit
//! sum and a widening `vpmaddwd`. On 256-bit vectors (AVX-512VL), so the layout and the
//! tiling are AVX2's; every other kernel is AVX2's.
//!
//! Each `pub fn` is safe to call only through [`super::Kernels`], which hands them out after
//! [`detected`] found every feature.

use super::blocks::BlockQ8;
use super::repack::{BlockQ4_0x8, BlockQ4_1x8, Interleaved, ROWS};
use std::arch::x86_64::*;
use std::ops::Range;

/// The features every function here is compiled for (AVX2's too).
pub(super) fn detected() -> bool {
    super::avx2::detected()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// As AVX2's `rows8_tokens`, with the byte products summed straight into 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn rows8_tokens<I: Interleaved, const N: usize>(w: &[I], x: [&[BlockQ8]; N]) -> [__m256; N] {
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); N];
    for (b, block) in w.iter().enumerate() {
        let mut sums = [_mm256_setzero_si256(); N];
        for c in 0..4 {
            // SAFETY: 32 bytes at 32c of the 128 nibble bytes; unaligned load.
            let packed = unsafe { _mm256_loadu_si256(block.nibbles().as_ptr().add(32 * c).cast()) };
            let lo = _mm256_and_si256(packed, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
            for t in 0..N {
                let qs = x[t][b].qs.as_ptr();
                // SAFETY: bytes 4c..4c + 4 and 16 + 4c..20 + 4c of the 32; unaligned reads.
                let (xl, xh) = unsafe {
                    (
                        _mm256_set1_epi32(qs.add(4 * c).cast::<i32>().read_unaligned()),
                        _mm256_set1_epi32(qs.add(16 + 4 * c).cast::<i32>().read_unaligned()),
                    )
                };
                sums[t] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(sums[t], lo, xl), hi, xh);
            }
        }
        // SAFETY: eight halves, 16 bytes; unaligned loads.
        let d = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(block.scales().as_ptr().cast()) });
        let m = if I::OFFSETS {
            _mm256_cvtph_ps(unsafe { _mm_loadu_si128(block.offsets().as_ptr().cast()) })
        } else {
            _mm256_setzero_ps()
        };
        for t in 0..N {
            let xb = &x[t][b];
            let mut whole = sums[t];
            if !I::OFFSETS {
                whole = _mm256_sub_epi32(whole, _mm256_set1_epi32(8 * xb.sum));
            }
            let scale = _mm256_mul_ps(d, _mm256_set1_ps(xb.d));
            acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(whole), acc[t]);
            if I::OFFSETS {
                acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(xb.s), acc[t]);
            }
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn rows8<I: Interleaved>(w: &[I], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    let per = w.len();
    let token = |t: usize| &x[t * per..(t + 1) * per];
    let mut t = tokens.start;
    while t < tokens.end {
        let o = &mut out[(t - tokens.start) * ROWS..];
        let mut store = |i: usize, v: __m256| {
            // SAFETY: `out` holds 8 results per token of `tokens`.
            unsafe { _mm256_storeu_ps(o[i * ROWS..(i + 1) * ROWS].as_mut_ptr(), v) }
        };
        let n = (tokens.end - t).min(4);
        match n {
            4 => {
                let r =
                    rows8_tokens::<I, 4>(w, [token(t), token(t + 1), token(t + 2), token(t + 3)]);
                r.into_iter().enumerate().for_each(|(i, v)| store(i, v));
            }
            3 => {
                let r = rows8_tokens::<I, 3>(w, [token(t), token(t + 1), token(t + 2)]);
                r.into_iter().enumerate().for_each(|(i, v)| store(i, v));
            }
            2 => {
                let r = rows8_tokens::<I, 2>(w, [token(t), token(t + 1)]);
                r.into_iter().enumerate().for_each(|(i, v)| store(i, v));
            }
            _ => store(0, rows8_tokens::<I, 1>(w, [token(t)])[0]),
        }
        t += n;
    }
}

// Safe entry points for the dispatch table. SAFETY (both): `Kernels::for_level` hands these
// out only after `detected()` returned true on this CPU.

pub(super) fn rows8_q4_0(w: &[BlockQ4_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}

pub(super) fn rows8_q4_1(w: &[BlockQ4_1x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows8(w, x, tokens, out) }
}
