//! The interleaved 4-bit (and q5_0) and q8_0 rows of `repack` on 512-bit vectors: two groups of eight
//! rows at a time, so one vector holds sixteen rows' sums. The groups are the 256-bit levels'
//! (group `2p`'s 32-byte piece in the low half, group `2p + 1`'s in the high half), stored as
//! pairs whose blocks alternate (`Repacked::pair`), so the two are read as one stream; four
//! activation bytes are broadcast once for sixteen rows, and the scaling is one 16-lane FMA.
//! A matrix's last group, when its rows are not a multiple of 16, runs the level's eight-row
//! kernel.
//!
//! Two levels, one body (`wide_kernels!`) over five small integer steps each level defines:
//! - `avx512` (AVX-512 F and BW without VNNI: Skylake-SP/X), with AVX2's
//!   `vpmaddubsw`/`vpmaddwd` scheme widened to 512 bits;
//! - `avx512vnni` (Ice Lake, Sapphire Rapids, Zen 4 and later): `vpdpbusd` on 512 bits.
//!
//! Both sum the same integers as AVX2 and scale each row's sum by the same operations in the
//! same order, so every level gives the same results to the bit (the tests check it).
//!
//! Expanded in a private module of each level's file (`avx512`, `avx512vnni`), beside that
//! level's steps; the level's table alone hands the safe entry points out.

/// A pair of groups stored together (`Repacked::pair`): their blocks alternate.
#[derive(Clone, Copy)]
pub(in crate::arch::x86) struct Pair<'a, I>(&'a [I]);

impl<'a, I> Pair<'a, I> {
    /// A pair's blocks (an even number: each block of the two groups in turn).
    pub(in crate::arch::x86) fn new(blocks: &'a [I]) -> Self {
        assert!(blocks.len().is_multiple_of(2), "a pair's blocks");
        Pair(blocks)
    }

    /// Blocks per row.
    pub(in crate::arch::x86) fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// Block `b` of both groups, each block in turn.
    pub(in crate::arch::x86) fn blocks(&self) -> impl Iterator<Item = (&I, &I)> {
        self.0.chunks_exact(2).map(|two| (&two[0], &two[1]))
    }
}

/// The `rows16` kernels of one 512-bit level, written over that level's integer steps (in
/// scope where the macro is expanded, with `std::arch::x86_64::*`):
/// - `nibble_products(sums, lo, hi, xl, xh)`: adds `lo · xl + hi · xh` (unsigned nibbles by
///   signed activation bytes, four-way) into the block's running sums;
/// - `nibble_whole(sums)`: those running sums as 32-bit lanes;
/// - `q8_weights(w)`: signed weight bytes prepared once for every token;
/// - `q8_products(sums, prepared, xs)`: adds `w · xs` into 32-bit lanes;
/// - `q8_whole(sums, xsum)`: the exact `Σ w x` of each lane.
macro_rules! wide_kernels {
    ($features:literal) => {
        use std::ops::Range;
        use $crate::arch::x86::wide::Pair;
        use $crate::blocks::{BlockQ8, QK};
        use $crate::repack::{
            BlockQ4_0x8, BlockQ4_1x8, BlockQ5_0x8, BlockQ5_1x8, BlockQ8_0x8, Nibbles,
        };

        /// The 32 bytes at `first` and at `second` as one vector (`first` low).
        #[inline]
        #[target_feature(enable = $features)]
        fn load_pair(first: *const u8, second: *const u8) -> __m512i {
            // SAFETY (callers): 32 readable bytes at each pointer; unaligned loads.
            unsafe {
                _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(_mm256_loadu_si256(first.cast())),
                    _mm256_loadu_si256(second.cast()),
                )
            }
        }

        /// The two groups' eight halves each as sixteen f32 lanes.
        #[inline]
        #[target_feature(enable = $features)]
        fn halves_pair(first: &[half::f16; 8], second: &[half::f16; 8]) -> __m512 {
            // SAFETY: 16 bytes each; unaligned loads.
            unsafe {
                _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm_loadu_si128(first.as_ptr().cast())),
                    _mm_loadu_si128(second.as_ptr().cast()),
                ))
            }
        }

        /// Sixteen interleaved 4-bit rows (two groups) by `N` tokens: lane `k` of result `t`
        /// is row `k` (group `g` for `k < 8`) · token `t`.
        #[inline]
        #[target_feature(enable = $features)]
        fn rows16_tokens<I: Nibbles, const N: usize>(
            w: Pair<I>,
            x: [&[BlockQ8]; N],
        ) -> [__m512; N] {
            let (low, fifth) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(0x10));
            let mut acc = [_mm512_setzero_ps(); N];
            for (b, (first, second)) in w.blocks().enumerate() {
                let mut sums = [_mm512_setzero_si512(); N];
                for c in 0..4 {
                    // SAFETY: 32 bytes at 32c of each group's 128 nibble bytes.
                    let packed = unsafe {
                        load_pair(
                            first.nibbles().as_ptr().add(32 * c),
                            second.nibbles().as_ptr().add(32 * c),
                        )
                    };
                    let mut lo = _mm512_and_si512(packed, low);
                    let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(packed), low);
                    if I::FIFTH {
                        // Bit j of the mask, the fifth bit of byte j (the first group's
                        // word low, the second's high), as 0x10.
                        let (one, two) = (first.fifth(), second.fifth());
                        let mask = |c: usize| one[c] as u64 | (two[c] as u64) << 32;
                        lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(mask(c), fifth));
                        hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(mask(4 + c), fifth));
                    }
                    for t in 0..N {
                        let qs = x[t][b].qs.as_ptr();
                        // SAFETY: bytes 4c..4c + 4 and 16 + 4c..20 + 4c of the 32; unaligned.
                        let (xl, xh) = unsafe {
                            (
                                _mm512_set1_epi32(qs.add(4 * c).cast::<i32>().read_unaligned()),
                                _mm512_set1_epi32(
                                    qs.add(16 + 4 * c).cast::<i32>().read_unaligned(),
                                ),
                            )
                        };
                        sums[t] = if I::FIFTH {
                            // q5_0's products may overflow a level's 16-bit running sums
                            // over a block: widened per chunk.
                            let chunk = nibble_products(_mm512_setzero_si512(), lo, hi, xl, xh);
                            _mm512_add_epi32(sums[t], nibble_whole(chunk))
                        } else {
                            nibble_products(sums[t], lo, hi, xl, xh)
                        };
                    }
                }
                let d = halves_pair(first.scales(), second.scales());
                let m = if I::OFFSETS {
                    halves_pair(first.offsets(), second.offsets())
                } else {
                    _mm512_setzero_ps()
                };
                for t in 0..N {
                    let xb = &x[t][b];
                    let mut whole = if I::FIFTH {
                        sums[t]
                    } else {
                        nibble_whole(sums[t])
                    };
                    if !I::OFFSETS {
                        // The weights are q - CENTRE: CENTRE · Σx comes off in integers.
                        whole = _mm512_sub_epi32(whole, _mm512_set1_epi32(I::CENTRE * xb.sum));
                    }
                    let scale = _mm512_mul_ps(d, _mm512_set1_ps(xb.d));
                    acc[t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(whole), acc[t]);
                    if I::OFFSETS {
                        acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(xb.s), acc[t]);
                    }
                }
            }
            acc
        }

        /// Sixteen interleaved q8_0 rows (two groups) by `N` tokens.
        #[inline]
        #[target_feature(enable = $features)]
        fn rows16_q8_tokens<const N: usize>(
            w: Pair<BlockQ8_0x8>,
            x: [&[BlockQ8]; N],
        ) -> [__m512; N] {
            let mut acc = [_mm512_setzero_ps(); N];
            for (b, (first, second)) in w.blocks().enumerate() {
                let mut sums = [_mm512_setzero_si512(); N];
                for c in 0..QK / 4 {
                    // SAFETY: 32 bytes at 32c of each group's 256.
                    let weights = unsafe {
                        load_pair(
                            first.qs.as_ptr().add(32 * c).cast(),
                            second.qs.as_ptr().add(32 * c).cast(),
                        )
                    };
                    let prepared = q8_weights(weights);
                    for t in 0..N {
                        // SAFETY: bytes 4c..4c + 4 of the 32; unaligned read.
                        let xs = unsafe {
                            _mm512_set1_epi32(
                                x[t][b]
                                    .qs
                                    .as_ptr()
                                    .add(4 * c)
                                    .cast::<i32>()
                                    .read_unaligned(),
                            )
                        };
                        sums[t] = q8_products(sums[t], prepared, xs);
                    }
                }
                let d = halves_pair(&first.d, &second.d);
                for t in 0..N {
                    let xb = &x[t][b];
                    let whole = q8_whole(sums[t], xb.sum);
                    let scale = _mm512_mul_ps(d, _mm512_set1_ps(xb.d));
                    acc[t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(whole), acc[t]);
                }
            }
            acc
        }

        /// Sixteen results into `dst[..16]`.
        #[inline]
        #[target_feature(enable = $features)]
        fn store16(dst: &mut [f32], v: &__m512) {
            assert!(dst.len() >= 16);
            // SAFETY: 16 floats checked above; unaligned store.
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), *v) };
        }

        #[target_feature(enable = $features)]
        fn rows16<I: Nibbles>(w: Pair<I>, x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
            four_tokens_at_a_time!(rows16_tokens::<I>, w, x, tokens, out, store16, 16)
        }

        #[target_feature(enable = $features)]
        fn rows16_q8(w: Pair<BlockQ8_0x8>, x: &[BlockQ8], tokens: Range<usize>, out: &mut [f32]) {
            four_tokens_at_a_time!(rows16_q8_tokens, w, x, tokens, out, store16, 16)
        }

        // Safe entry points for the level's table. SAFETY (all): only the level's `kernels`
        // hands them out, for the token its detection of these features makes.

        pub(super) fn rows16_q4_0(
            w: &[BlockQ4_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows16(Pair::new(w), x, tokens, out) }
        }

        pub(super) fn rows16_q4_1(
            w: &[BlockQ4_1x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows16(Pair::new(w), x, tokens, out) }
        }

        pub(super) fn rows16_q5_0(
            w: &[BlockQ5_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows16(Pair::new(w), x, tokens, out) }
        }

        pub(super) fn rows16_q5_1(
            w: &[BlockQ5_1x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows16(Pair::new(w), x, tokens, out) }
        }

        pub(super) fn rows16_q8_0(
            w: &[BlockQ8_0x8],
            x: &[BlockQ8],
            tokens: Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { rows16_q8(Pair::new(w), x, tokens, out) }
        }
    };
}
