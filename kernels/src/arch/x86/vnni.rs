//! The interleaved 4-bit and q8_0 rows of `repack` with `vpdpbusd`, which multiplies unsigned
//! by signed bytes and adds each four products into a 32-bit lane in one instruction, where
//! AVX2 needs `vpmaddubsw`, a 16-bit sum and a widening `vpmaddwd`. On 256-bit vectors, so
//! the layout and the tiling are AVX2's, and every other kernel of these levels is AVX2's.
//! Two levels have the instruction on 256-bit vectors, with one encoding each:
//! - `avx512vnni` (Ice Lake, Zen 4 and later): AVX-512 VNNI with AVX-512VL, EVEX-encoded.
//! - `avxvnni` (Alder Lake, Sapphire Rapids' VEX form, Zen 5): AVX-VNNI, VEX-encoded, on
//!   CPUs without AVX-512 (Intel's client cores) or beside it.
//!
//! Both are written once, in `vnni_kernels!`, and expanded per level with its features and
//! its intrinsic; they sum the same integers as AVX2 and scale them alike, so every level
//! gives the same results to the bit (`tests/it/tuned.rs` checks the levels this CPU runs).
//!
//! Expanded in a private module of each level's file (`avxvnni`, `avx512vnni`), whose table
//! alone hands the safe entry points out, for the level's detected token.

/// The `rows8` kernels of one VNNI level: `$features` (a `target_feature` list) and
/// `$dpbusd`, that level's `u8 × i8` four-way dot product accumulated into 32-bit lanes.
macro_rules! vnni_kernels {
    ($features:literal, $dpbusd:ident) => {
        use std::arch::x86_64::*;
        use std::ops::Range;
        use $crate::blocks::{BlockQ8, QK};
        use $crate::repack::{
            BlockQ4_0x8, BlockQ4_1x8, BlockQ5_0x8, BlockQ5_1x8, BlockQ8_0x8, Nibbles, ROWS,
        };

        /// As AVX2's `rows8_tokens`, with the byte products summed straight into 32-bit lanes
        /// (q5_0's too: no 16-bit sums to overflow).
        #[inline]
        #[target_feature(enable = $features)]
        fn rows8_tokens<I: Nibbles, const N: usize>(w: &[I], x: [&[BlockQ8]; N]) -> [__m256; N] {
            let low = _mm256_set1_epi8(0x0F);
            let mut acc = [_mm256_setzero_ps(); N];
            for (b, block) in w.iter().enumerate() {
                let mut sums = [_mm256_setzero_si256(); N];
                for c in 0..4 {
                    // SAFETY: 32 bytes at 32c of the 128 nibble bytes; unaligned load.
                    let packed =
                        unsafe { _mm256_loadu_si256(block.nibbles().as_ptr().add(32 * c).cast()) };
                    let mut lo = _mm256_and_si256(packed, low);
                    let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
                    if I::FIFTH {
                        use $crate::arch::x86::avx2::fifth_bits;
                        lo = _mm256_or_si256(lo, fifth_bits(block.fifth()[c]));
                        hi = _mm256_or_si256(hi, fifth_bits(block.fifth()[4 + c]));
                    }
                    for t in 0..N {
                        let qs = x[t][b].qs.as_ptr();
                        // SAFETY: bytes 4c..4c + 4 and 16 + 4c..20 + 4c of the 32; unaligned reads.
                        let (xl, xh) = unsafe {
                            (
                                _mm256_set1_epi32(qs.add(4 * c).cast::<i32>().read_unaligned()),
                                _mm256_set1_epi32(
                                    qs.add(16 + 4 * c).cast::<i32>().read_unaligned(),
                                ),
                            )
                        };
                        sums[t] = $dpbusd($dpbusd(sums[t], lo, xl), hi, xh);
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

        /// Eight interleaved q8_0 rows by `N` tokens with `vpdpbusd`: the weights are made unsigned
        /// by adding 128 (one XOR for all tokens), so each lane sums
        /// (w + 128) · x = w · x + 128 x,
        /// and 128 Σx comes off in integers afterwards.
        #[inline]
        #[target_feature(enable = $features)]
        fn rows8_q8_tokens<const N: usize>(w: &[BlockQ8_0x8], x: [&[BlockQ8]; N]) -> [__m256; N] {
            let flip = _mm256_set1_epi8(-128);
            let mut acc = [_mm256_setzero_ps(); N];
            for (b, block) in w.iter().enumerate() {
                let mut sums = [_mm256_setzero_si256(); N];
                for c in 0..QK / 4 {
                    // SAFETY: 32 bytes at 32c of the 256; unaligned load.
                    let weights =
                        unsafe { _mm256_loadu_si256(block.qs.as_ptr().add(32 * c).cast()) };
                    let shifted = _mm256_xor_si256(weights, flip);
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
                        sums[t] = $dpbusd(sums[t], shifted, xs);
                    }
                }
                // SAFETY: eight halves, 16 bytes; unaligned load.
                let d = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(block.d.as_ptr().cast()) });
                for t in 0..N {
                    let xb = &x[t][b];
                    let whole = _mm256_sub_epi32(sums[t], _mm256_set1_epi32(128 * xb.sum));
                    let scale = _mm256_mul_ps(d, _mm256_set1_ps(xb.d));
                    acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(whole), acc[t]);
                }
            }
            acc
        }

        #[target_feature(enable = $features)]
        fn rows8<I: Nibbles>(w: &[I], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
            four_tokens_at_a_time!(
                rows8_tokens::<I>,
                w,
                x,
                tokens,
                out,
                $crate::arch::x86::avx2::store8
            )
        }

        #[target_feature(enable = $features)]
        fn rows8_q8(w: &[BlockQ8_0x8], x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
            four_tokens_at_a_time!(
                rows8_q8_tokens,
                w,
                x,
                tokens,
                out,
                $crate::arch::x86::avx2::store8
            )
        }

        // Safe entry points for the level's table. SAFETY (all): only the level's `kernels`
        // hands them out, for the token its detection of these features makes.

        pub(super) fn rows8_q4_0(
            w: &[BlockQ4_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows8(w, x, tokens, out) }
        }

        pub(super) fn rows8_q4_1(
            w: &[BlockQ4_1x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows8(w, x, tokens, out) }
        }

        pub(super) fn rows8_q5_0(
            w: &[BlockQ5_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows8(w, x, tokens, out) }
        }

        pub(super) fn rows8_q5_1(
            w: &[BlockQ5_1x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows8(w, x, tokens, out) }
        }

        pub(super) fn rows8_q8_0(
            w: &[BlockQ8_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows8_q8(w, x, tokens, out) }
        }
    };
}
