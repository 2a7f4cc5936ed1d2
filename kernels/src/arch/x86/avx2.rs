//! x86-64 kernels for AVX2 with FMA and F16C (Haswell, Zen 1 and later). Integer dot products
//! of 32 weights by 32 activations per block, as llama.cpp's ggml-cpu does on AVX2: unpack the
//! weights to bytes, multiply unsigned by signed bytes into 16-bit pairs (`vpmaddubsw`), sum
//! pairs into 32-bit lanes (`vpmaddwd`), scale by both blocks' scales in f32 with one FMA.
//!
//! The safe entry points are private: the table ([`kernels`]) hands them out, and only for
//! an [`Avx2`] token, which exists only where the three features were detected.

#[macro_use]
pub(super) mod kquants;

use super::Avx2;
use crate::arch::generic;
use crate::blocks::{
    BlockIQ4NL, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8, BlockQ8_0, IQ4NL_VALUES, QK,
};
use crate::dispatch::{Dense, Ops, Quant};
use crate::repack::{
    BlockQ4_0x8, BlockQ4_1x8, BlockQ5_0x8, BlockQ5_1x8, BlockQ8_0x8, Nibbles, ROWS,
};
use crate::{Kernels, Level};
use half::{bf16, f16};
use std::arch::x86_64::*;
use std::ops::Range;

/// The AVX2 level's kernels (the other x86 levels start from them).
pub(crate) fn kernels(_: Avx2) -> Kernels {
    Kernels {
        level: Level::Avx2,
        q8_0: Quant::grouped(dot_q8_0, rows8_q8_0),
        q4_0: Quant::grouped(dot_q4_0, rows8_q4_0),
        q4_1: Quant::grouped(dot_q4_1, rows8_q4_1),
        q5_0: Quant::grouped(dot_q5_0, rows8_q5_0),
        q5_1: Quant::grouped(dot_q5_1, rows8_q5_1),
        q4k: Quant::grouped(kquants::rows_q4k, kquants::rows8_q4k),
        q2k: Quant::rows(kquants::rows_q2k),
        q3k: Quant::rows(kquants::rows_q3k),
        iq4_nl: Quant::rows(dot_iq4_nl),
        q5k: Quant::grouped(kquants::rows_q5k, kquants::rows8_q5k),
        q6k: Quant::grouped(kquants::rows_q6k, kquants::rows8_q6k),
        dense: Dense {
            f32: dot_f32,
            f16: dot_f16_f32,
            bf16: dot_bf16_f32,
            gemm: Some(super::gemm::tile_avx2),
        },
        ops: Ops {
            quantize,
            silu_mul,
            softmax_exp,
            attend,
            dot_f16,
            axpy_f16,
        },
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::arch::x86) fn half_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(in crate::arch::x86) fn sum_lanes(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// 32 signed bytes times 32 signed bytes, summed in 8 lanes of 4 products each, as f32.
/// `vpmaddubsw` needs an unsigned operand: |w| times x with w's sign moved onto x. No 16-bit
/// saturation: |w| ≤ 128 and the activation quantizer keeps |x| ≤ 127, so a pair stays
/// within 2 · 128 · 127 < 32767.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_i8(w: __m256i, x: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// The 32 nibbles of a 4-bit block as bytes 0..16, low nibbles first (GGUF's order).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn nibbles(qs: &[u8; QK / 2]) -> __m256i {
    // SAFETY: `qs` is 16 readable bytes; the load is unaligned.
    let low = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(low), low);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_i8(qs: &[i8; QK]) -> __m256i {
    // SAFETY: `qs` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) }
}

/// Sums `product(w, x)` over block pairs into two accumulators, so consecutive blocks' FMAs do
/// not wait for each other (an FMA's latency is 4-5 cycles; a block's work is about that).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_blocks<W, X>(w: &[W], x: &[X], product: impl Fn(&W, &X) -> __m256) -> __m256 {
    let mut acc = [_mm256_setzero_ps(); 2];
    let pairs = w.len().min(x.len()) / 2;
    for i in 0..pairs {
        acc[0] = _mm256_add_ps(acc[0], product(&w[2 * i], &x[2 * i]));
        acc[1] = _mm256_add_ps(acc[1], product(&w[2 * i + 1], &x[2 * i + 1]));
    }
    if w.len().min(x.len()) % 2 == 1 {
        let last = 2 * pairs;
        acc[0] = _mm256_add_ps(acc[0], product(&w[last], &x[last]));
    }
    _mm256_add_ps(acc[0], acc[1])
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q8_0_avx2(w: &[BlockQ8_0], x: &[BlockQ8]) -> f32 {
    sum_lanes(sum_blocks(w, x, |w, x| {
        let d = _mm256_set1_ps(half_to_f32(w.d) * x.d);
        _mm256_mul_ps(d, dot_i8(load_i8(&w.qs), load_i8(&x.qs)))
    }))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_0_avx2(w: &[BlockQ4_0], x: &[BlockQ8]) -> f32 {
    let eight = _mm256_set1_epi8(8);
    sum_lanes(sum_blocks(w, x, |w, x| {
        let d = _mm256_set1_ps(half_to_f32(w.d) * x.d);
        let q = _mm256_sub_epi8(nibbles(&w.qs), eight);
        _mm256_mul_ps(d, dot_i8(q, load_i8(&x.qs)))
    }))
}

/// iq4_nl: each nibble looks its value up in llama.cpp's table (`vpshufb`, the 16 values in
/// both 128-bit lanes), then the signed byte products as q4_0's (|value| ≤ 127).
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq4_nl_avx2(w: &[BlockIQ4NL], x: &[BlockQ8]) -> f32 {
    // SAFETY: the table is 16 readable bytes; unaligned load.
    let values = unsafe { _mm_loadu_si128(IQ4NL_VALUES.as_ptr().cast()) };
    let table = _mm256_set_m128i(values, values);
    sum_lanes(sum_blocks(w, x, |w, x| {
        let d = _mm256_set1_ps(half_to_f32(w.d) * x.d);
        let q = _mm256_shuffle_epi8(table, nibbles(&w.qs));
        _mm256_mul_ps(d, dot_i8(q, load_i8(&x.qs)))
    }))
}

/// One block of a format with an offset (q4_1, q5_1): its weights `q` as unsigned bytes (at
/// most 31, so a pair stays within 2 · 31 · 127 < 32767: no sign juggling), scaled by `d` and
/// the activations' scale, with the offset term `m · s` in lane 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn with_offset(q: __m256i, d: f16, m: f16, x: &BlockQ8) -> __m256 {
    let pairs = _mm256_maddubs_epi16(q, load_i8(&x.qs));
    let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    let offset = _mm256_setr_ps(half_to_f32(m) * x.s, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    _mm256_fmadd_ps(_mm256_set1_ps(half_to_f32(d) * x.d), sums, offset)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_1_avx2(w: &[BlockQ4_1], x: &[BlockQ8]) -> f32 {
    sum_lanes(sum_blocks(w, x, |w, x| {
        with_offset(nibbles(&w.qs), w.d, w.m, x)
    }))
}

/// Bit `i` of `qh` as 0x10 in byte `i`: the fifth bit of q5_0's and q5_1's weight `i`. Byte `i`
/// takes `qh`'s byte `i / 8` (a shuffle within each 128-bit lane, where every 32-bit word is
/// `qh`), then keeps bit `i % 8` of it.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn fifth_bits(qh: u32) -> __m256i {
    let spread = _mm256_setr_epi64x(
        0x0000_0000_0000_0000,
        0x0101_0101_0101_0101,
        0x0202_0202_0202_0202,
        0x0303_0303_0303_0303,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), spread);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_0_avx2(w: &[BlockQ5_0], x: &[BlockQ8]) -> f32 {
    let sixteen = _mm256_set1_epi8(16);
    sum_lanes(sum_blocks(w, x, |w, x| {
        let d = _mm256_set1_ps(half_to_f32(w.d) * x.d);
        let q = _mm256_or_si256(nibbles(&w.qs), fifth_bits(w.qh));
        _mm256_mul_ps(d, dot_i8(_mm256_sub_epi8(q, sixteen), load_i8(&x.qs)))
    }))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_1_avx2(w: &[BlockQ5_1], x: &[BlockQ8]) -> f32 {
    sum_lanes(sum_blocks(w, x, |w, x| {
        let q = _mm256_or_si256(nibbles(&w.qs), fifth_bits(w.qh));
        with_offset(q, w.d, w.m, x)
    }))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f32_avx2(w: &[f32], x: &[f32]) -> f32 {
    // SAFETY (the closure's callers): 8 floats readable at `p`.
    dot_widened(w, x, |p| unsafe { _mm256_loadu_ps(p) }, |v| v)
}

/// 8 halves from `x[i..i + 8]` as f32.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load_f16(x: &[f16], i: usize) -> __m256 {
    debug_assert!(i + 8 <= x.len());
    // SAFETY: i + 8 ≤ x.len(); unaligned 16-byte load.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(x.as_ptr().add(i).cast()) })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16_avx2(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut i = 0;
    while i + 16 <= n {
        acc[0] = _mm256_fmadd_ps(load_f16(a, i), load_f16(b, i), acc[0]);
        acc[1] = _mm256_fmadd_ps(load_f16(a, i + 8), load_f16(b, i + 8), acc[1]);
        i += 16;
    }
    if i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(load_f16(a, i), load_f16(b, i), acc[0]);
        i += 8;
    }
    let mut sum = sum_lanes(_mm256_add_ps(acc[0], acc[1]));
    for k in i..n {
        sum += a[k].to_f32() * b[k].to_f32();
    }
    sum
}

#[target_feature(enable = "avx2,fma,f16c")]
fn axpy_f16_avx2(w: f32, x: &[f16], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let wv = _mm256_set1_ps(w);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 ≤ n ≤ y.len(); unaligned loads and stores.
        unsafe {
            let out = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                out,
                _mm256_fmadd_ps(wv, load_f16(x, i), _mm256_loadu_ps(out)),
            );
        }
        i += 8;
    }
    for k in i..n {
        y[k] += w * x[k].to_f32();
    }
}

/// Eight interleaved rows (see `repack`) by `N` tokens' activations: lane `k` of result `t`
/// is row `k` · token `t`. Each 32-byte piece of weights is loaded and unpacked once for all
/// `N` tokens (q5_0's fifth bits ORed in); byte products are summed in 16 bits over a block
/// (8 × 3810 < 32767) and widened once, or for q5_0 (2 × 7874 per chunk) widened per chunk;
/// then scaled for all eight rows with one FMA.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows8_tokens<I: Nibbles, const N: usize>(w: &[I], x: [&[BlockQ8]; N]) -> [__m256; N] {
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); N];
    for (b, block) in w.iter().enumerate() {
        let mut sums = [_mm256_setzero_si256(); N];
        for c in 0..4 {
            // SAFETY: 32 bytes at 32c of the 128 nibble bytes; unaligned load.
            let packed = unsafe { _mm256_loadu_si256(block.nibbles().as_ptr().add(32 * c).cast()) };
            let mut lo = _mm256_and_si256(packed, low);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
            if I::FIFTH {
                lo = _mm256_or_si256(lo, fifth_bits(block.fifth()[c]));
                hi = _mm256_or_si256(hi, fifth_bits(block.fifth()[4 + c]));
            }
            for t in 0..N {
                let qs = x[t][b].qs.as_ptr();
                // SAFETY: bytes 4c..4c + 4 and 16 + 4c..20 + 4c of the 32; unaligned reads.
                let (xl, xh) = unsafe {
                    (
                        _mm256_set1_epi32(qs.add(4 * c).cast::<i32>().read_unaligned()),
                        _mm256_set1_epi32(qs.add(16 + 4 * c).cast::<i32>().read_unaligned()),
                    )
                };
                let pair =
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
                sums[t] = if I::FIFTH {
                    _mm256_add_epi32(sums[t], _mm256_madd_epi16(pair, ones))
                } else {
                    _mm256_add_epi16(sums[t], pair)
                };
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
            let mut whole = if I::FIFTH {
                sums[t]
            } else {
                _mm256_madd_epi16(sums[t], ones)
            };
            if !I::OFFSETS {
                // The weights are q - CENTRE: take CENTRE · Σx off in integers, as llama.cpp
                // does.
                whole = _mm256_sub_epi32(whole, _mm256_set1_epi32(I::CENTRE * xb.sum));
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

/// `out[(t - tokens.start) * 8 + k]` = row `k` of the group `w` · token `t` of `x` (tokens'
/// activations one after another, `w.len()` blocks each), four tokens at a time.
/// Eight interleaved q8_0 rows by `N` tokens: each 32-byte load holds four weights of each
/// row; `vpmaddubsw` needs one unsigned operand, so the weights' signs move onto the
/// activations (|w| computed once for all tokens). Pairs reach 2 · 128 · 127 < 32767, so each
/// product is widened before the next is added.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows8_q8_tokens<const N: usize>(w: &[BlockQ8_0x8], x: [&[BlockQ8]; N]) -> [__m256; N] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); N];
    for (b, block) in w.iter().enumerate() {
        let mut sums = [_mm256_setzero_si256(); N];
        for c in 0..QK / 4 {
            // SAFETY: 32 bytes at 32c of the 256; unaligned load.
            let weights = unsafe { _mm256_loadu_si256(block.qs.as_ptr().add(32 * c).cast()) };
            let magnitudes = _mm256_sign_epi8(weights, weights);
            for t in 0..N {
                // SAFETY: bytes 4c..4c + 4 of the 32; unaligned read.
                let xs = unsafe {
                    _mm256_set1_epi32(
                        x[t][b]
                            .qs
                            .as_ptr()
                            .add(4 * c)
                            .cast::<i32>()
                            .read_unaligned(),
                    )
                };
                let pairs = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(xs, weights));
                sums[t] = _mm256_add_epi32(sums[t], _mm256_madd_epi16(pairs, ones));
            }
        }
        // SAFETY: eight halves, 16 bytes; unaligned load.
        let d = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(block.d.as_ptr().cast()) });
        for t in 0..N {
            let scale = _mm256_mul_ps(d, _mm256_set1_ps(x[t][b].d));
            acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums[t]), acc[t]);
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
fn rows8<I: Nibbles>(w: &[I], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(rows8_tokens::<I>, w, x, tokens, out, store8)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn rows8_q8(w: &[BlockQ8_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
    four_tokens_at_a_time!(rows8_q8_tokens, w, x, tokens, out, store8)
}

/// Weights widened eight at a time to f32 by `widen` (f32 as they are, f16 through F16C, bf16
/// by shifting into the top of an f32) by f32 activations, four accumulators of eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_widened<H: Copy>(
    w: &[H],
    x: &[f32],
    widen: impl Fn(*const H) -> __m256,
    tail: impl Fn(H) -> f32,
) -> f32 {
    let n = w.len().min(x.len());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // Rows are read once per token and one after another: asking for the weights 4 KiB ahead
    // keeps more of the stream in flight than the hardware prefetcher does on its own.
    let ahead = 4096 / std::mem::size_of::<H>();
    while i + 32 <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(i + 8 * j + ahead).cast());
            // SAFETY: i + 8j + 8 ≤ n, inside both slices; unaligned loads.
            let (wv, xv) = unsafe {
                (
                    widen(w.as_ptr().add(i + 8 * j)),
                    _mm256_loadu_ps(x.as_ptr().add(i + 8 * j)),
                )
            };
            *a = _mm256_fmadd_ps(wv, xv, *a);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: as above.
        let (wv, xv) = unsafe { (widen(w.as_ptr().add(i)), _mm256_loadu_ps(x.as_ptr().add(i))) };
        acc[0] = _mm256_fmadd_ps(wv, xv, acc[0]);
        i += 8;
    }
    let mut sum = sum_lanes(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for k in i..n {
        sum += tail(w[k]) * x[k];
    }
    sum
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16_f32_avx2(w: &[f16], x: &[f32]) -> f32 {
    // SAFETY (the closure's callers): 8 halves readable at `p`.
    dot_widened(
        w,
        x,
        |p| unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) },
        f16::to_f32,
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_bf16_f32_avx2(w: &[bf16], x: &[f32]) -> f32 {
    dot_widened(
        w,
        x,
        // SAFETY (the closure's callers): 8 bf16 readable at `p`; a bf16 is an f32's top half.
        |p| unsafe {
            let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
        },
        bf16::to_f32,
    )
}

/// `e^x` in eight lanes, Cephes' `expf`: `x = n ln 2 + r` with |r| ≤ ln 2 / 2 (ln 2 split in
/// two parts so `r` is exact), a degree-7 polynomial for `e^r`, and `2^n` built in the
/// exponent bits. Within 4e-7 of `e^x` relative (a few ulp; `tests.rs` checks it) for x in
/// [-87, 88]; x is clamped to that range, which keeps `2^n` a normal float (e^-87 ≈ 1.6e-38
/// stands for anything smaller).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
        _mm256_set1_ps(88.0),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let p = _mm256_fmadd_ps(
        p,
        _mm256_mul_ps(r, r),
        _mm256_add_ps(r, _mm256_set1_ps(1.0)),
    );
    let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(two_n))
}

#[target_feature(enable = "avx2,fma")]
fn silu_mul_avx2(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / 8 * 8;
    let one = _mm256_set1_ps(1.0);
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= n for both; unaligned loads and store.
        unsafe {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
            let s = _mm256_div_ps(g, _mm256_add_ps(one, e));
            _mm256_storeu_ps(gate.as_mut_ptr().add(i), _mm256_mul_ps(s, u));
        }
    }
    generic::silu_mul(&mut gate[whole..n], &up[whole..n]);
}

#[target_feature(enable = "avx2,fma")]
fn softmax_exp_avx2(scores: &mut [f32], max: f32) -> f64 {
    let whole = scores.len() / 8 * 8;
    let mut sum = _mm256_setzero_ps();
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= len; unaligned load and store.
        unsafe {
            let p = scores.as_mut_ptr().add(i);
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), _mm256_set1_ps(max)));
            _mm256_storeu_ps(p, e);
            sum = _mm256_add_ps(sum, e);
        }
    }
    sum_lanes(sum) as f64 + generic::softmax_exp(&mut scores[whole..], max)
}

/// As [`BlockQ8::quantize`], eight lanes at a time: `vmaxps` keeps its second operand where
/// the first is NaN (so a NaN is passed over), NaN products are zeroed and clamped to ±127
/// before the truncation and its fraction's step away from zero, and the i32 values are
/// packed to bytes in order.
#[target_feature(enable = "avx2")]
fn quantize_avx2(xs: &[f32]) -> BlockQ8 {
    let xs: &[f32; QK] = xs.try_into().expect("a block is 32 activations");
    // SAFETY: 32 floats: four unaligned loads of eight.
    let v: [__m256; 4] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_ps(xs.as_ptr().add(8 * i)) });
    let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let amax = max_lanes(v.iter().fold(_mm256_setzero_ps(), |m, &x| {
        _mm256_max_ps(_mm256_and_ps(x, magnitude), m)
    }));
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let q = v.map(|x| {
        let y = _mm256_mul_ps(x, id);
        let y = _mm256_and_ps(y, _mm256_cmp_ps::<_CMP_ORD_Q>(y, y));
        let y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
        let t = _mm256_cvttps_epi32(y);
        let frac = _mm256_sub_ps(y, _mm256_cvtepi32_ps(t));
        // Compare masks are -1 where true.
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5)));
        let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(frac, _mm256_set1_ps(-0.5)));
        _mm256_add_epi32(_mm256_sub_epi32(t, up), down)
    });
    let total = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let total = _mm_add_epi32(
        _mm256_castsi256_si128(total),
        _mm256_extracti128_si256::<1>(total),
    );
    let total = _mm_add_epi32(total, _mm_shuffle_epi32::<0b01_00_11_10>(total));
    let sum = _mm_cvtsi128_si32(_mm_add_epi32(
        total,
        _mm_shuffle_epi32::<0b10_11_00_01>(total),
    ));
    // packs work within 128-bit lanes: the dwords come out in the order 0, 4, 1, 5, 2, 6, 3, 7.
    let bytes = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let mut block = BlockQ8::default();
    // SAFETY: 32 bytes; unaligned store.
    unsafe { _mm256_storeu_si256(block.qs.as_mut_ptr().cast(), bytes) };
    block.with_scales(d, sum)
}

/// The lane sums of eight vectors, as one vector (lane `j` = the sum of `v[j]`'s lanes).
#[inline]
#[target_feature(enable = "avx2")]
fn sum_each(v: [__m256; 8]) -> __m256 {
    let pairs = [
        _mm256_hadd_ps(v[0], v[1]),
        _mm256_hadd_ps(v[2], v[3]),
        _mm256_hadd_ps(v[4], v[5]),
        _mm256_hadd_ps(v[6], v[7]),
    ];
    // Each 128-bit half now holds four partial sums of v[0..4] and of v[4..8].
    let (a, b) = (
        _mm256_hadd_ps(pairs[0], pairs[1]),
        _mm256_hadd_ps(pairs[2], pairs[3]),
    );
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x31>(a, b),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn max_lanes(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// Eight results of an interleaved kernel into `dst[..8]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn store8(dst: &mut [f32], v: &__m256) {
    assert!(dst.len() >= 8);
    // SAFETY: 8 floats checked above; unaligned store.
    unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), *v) };
}

/// Head dimensions the AVX2 attention holds in registers (as f32 query vectors).
const MAX_HEAD: usize = 256;

/// As `generic::attend`, with the query widened once and no call per cached position: scores
/// eight positions at a time (eight running sums reduced together), the weights rounded to
/// f16 eight at a time, and the values summed 64 dimensions at a time in registers, in the
/// order `axpy_f16` adds them.
#[target_feature(enable = "avx2,fma,f16c")]
fn attend_avx2(
    q: &[f16],
    keys: &[f16],
    values: &[f16],
    stride: usize,
    positions: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    if !hd.is_multiple_of(8) || hd > MAX_HEAD || out.len() < hd {
        return generic::attend(q, keys, values, stride, positions, scores, out);
    }
    assert!(positions == 0 || (positions - 1) * stride + hd <= keys.len().min(values.len()));
    let chunks = hd / 8;
    let mut qv = [_mm256_setzero_ps(); MAX_HEAD / 8];
    for (c, v) in qv[..chunks].iter_mut().enumerate() {
        *v = load_f16(q, 8 * c);
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let scores = &mut scores[..positions];
    // p * stride + 8c + 8 <= p * stride + hd <= keys.len() (asserted above).
    let key = |p: usize, c: usize| load_f16(keys, p * stride + 8 * c);
    // Eight positions at a time: eight running sums, then one transposing reduction.
    let mut maxes = _mm256_set1_ps(f32::NEG_INFINITY);
    let whole = positions / 8 * 8;
    for p0 in (0..whole).step_by(8) {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (c, &qc) in qv[..chunks].iter().enumerate() {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(qc, key(p0 + j, c), *a);
            }
        }
        let s = _mm256_mul_ps(sum_each(acc), _mm256_set1_ps(scale));
        // SAFETY: p0 + 8 <= positions = scores.len(); unaligned store.
        unsafe { _mm256_storeu_ps(scores.as_mut_ptr().add(p0), s) };
        maxes = _mm256_max_ps(maxes, s);
    }
    let mut max = max_lanes(maxes);
    for (p, s) in scores.iter_mut().enumerate().skip(whole) {
        let mut acc = _mm256_setzero_ps();
        for (c, &qc) in qv[..chunks].iter().enumerate() {
            acc = _mm256_fmadd_ps(qc, key(p, c), acc);
        }
        *s = sum_lanes(acc) * scale;
        max = max.max(*s);
    }
    let inverse = (1.0 / softmax_exp_avx2(scores, max)) as f32;
    // The weights rounded to f16 (to nearest even, as `f16::from_f32`).
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= positions = scores.len(); unaligned load and store.
        unsafe {
            let p = scores.as_mut_ptr().add(i);
            let w = _mm256_mul_ps(_mm256_loadu_ps(p), _mm256_set1_ps(inverse));
            let rounded = _mm256_cvtph_ps(_mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(w));
            _mm256_storeu_ps(p, rounded);
        }
    }
    for s in &mut scores[whole..] {
        *s = f16::from_f32(*s * inverse).to_f32();
    }
    for start in (0..chunks).step_by(8) {
        let width = (chunks - start).min(8);
        let mut acc = [_mm256_setzero_ps(); 8];
        for (p, &w) in scores.iter().enumerate() {
            let (w, row) = (_mm256_set1_ps(w), p * stride + 8 * start);
            for (c, a) in acc[..width].iter_mut().enumerate() {
                // row + 8c + 8 <= p * stride + hd <= values.len() (asserted above).
                *a = _mm256_fmadd_ps(w, load_f16(values, row + 8 * c), *a);
            }
        }
        for (c, a) in acc[..width].iter().enumerate() {
            // SAFETY: 8 (start + c) + 8 <= hd <= out.len(); unaligned store.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * (start + c)), *a) };
        }
    }
}

// Safe entry points for the dispatch table. SAFETY (all): only `kernels` hands them out, and
// only for an `Avx2` token, which `Avx2::detect` makes after finding every feature.

fn quantize(xs: &[f32]) -> BlockQ8 {
    unsafe { quantize_avx2(xs) }
}

fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q8_0_avx2(w, x) }
}

fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4_0_avx2(w, x) }
}

fn dot_iq4_nl(w: &[BlockIQ4NL], x: &[BlockQ8]) -> f32 {
    unsafe { dot_iq4_nl_avx2(w, x) }
}

fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4_1_avx2(w, x) }
}

fn dot_q5_0(w: &[BlockQ5_0], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q5_0_avx2(w, x) }
}

fn dot_q5_1(w: &[BlockQ5_1], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q5_1_avx2(w, x) }
}

fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    unsafe { dot_f32_avx2(w, x) }
}

fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    unsafe { dot_f16_avx2(a, b) }
}

fn axpy_f16(w: f32, x: &[f16], y: &mut [f32]) {
    unsafe { axpy_f16_avx2(w, x, y) }
}

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

fn dot_f16_f32(w: &[f16], x: &[f32]) -> f32 {
    unsafe { dot_f16_f32_avx2(w, x) }
}

fn dot_bf16_f32(w: &[bf16], x: &[f32]) -> f32 {
    unsafe { dot_bf16_f32_avx2(w, x) }
}

fn silu_mul(gate: &mut [f32], up: &[f32]) {
    unsafe { silu_mul_avx2(gate, up) }
}

fn softmax_exp(scores: &mut [f32], max: f32) -> f64 {
    unsafe { softmax_exp_avx2(scores, max) }
}

fn attend(
    q: &[f16],
    keys: &[f16],
    values: &[f16],
    stride: usize,
    positions: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    unsafe { attend_avx2(q, keys, values, stride, positions, scores, out) }
}
