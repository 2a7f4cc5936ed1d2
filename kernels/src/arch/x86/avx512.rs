//! AVX-512 F and BW without VNNI (Skylake-SP/X): AVX2's kernels, and interleaved rows
//! sixteen at a time in 512-bit vectors (`wide`'s body), with AVX2's `vpmaddubsw`/`vpmaddwd`
//! scheme widened to 512 bits.

use super::{avx2, Avx512};
use crate::{Kernels, Level};

/// The `avx512` level's kernels.
pub(crate) fn kernels(token: Avx512) -> Kernels {
    let mut k = avx2::kernels(token.avx2());
    k.level = Level::Avx512;
    k.dense.gemm = Some(super::gemm::tile_avx512);
    k.q4_0.rows16 = Some(rows16::rows16_q4_0);
    k.q4_1.rows16 = Some(rows16::rows16_q4_1);
    k.q5_0.rows16 = Some(rows16::rows16_q5_0);
    k.q5_1.rows16 = Some(rows16::rows16_q5_1);
    k.q8_0.rows16 = Some(rows16::rows16_q8_0);
    k
}

/// Sixteen interleaved rows at a time: `wide`'s body over this level's integer steps.
mod rows16 {
    use std::arch::x86_64::*;

    /// Byte pairs summed in 16 bits over a block, as AVX2 does (8 × 3810 < 32767).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn nibble_products(
        sums: __m512i,
        lo: __m512i,
        hi: __m512i,
        xl: __m512i,
        xh: __m512i,
    ) -> __m512i {
        let pair = _mm512_add_epi16(_mm512_maddubs_epi16(lo, xl), _mm512_maddubs_epi16(hi, xh));
        _mm512_add_epi16(sums, pair)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn nibble_whole(sums: __m512i) -> __m512i {
        _mm512_madd_epi16(sums, _mm512_set1_epi16(1))
    }

    /// |w| and w's sign bits: `vpmaddubsw` needs one unsigned operand, so the sign moves onto
    /// the activations (AVX-512 has no `vpsignb`: negated under the mask instead).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn q8_weights(w: __m512i) -> (__m512i, __mmask64) {
        (_mm512_abs_epi8(w), _mm512_movepi8_mask(w))
    }

    /// Pairs reach 2 · 128 · 127 < 32767; each product is widened before the next is added.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn q8_products(
        sums: __m512i,
        (magnitudes, negative): (__m512i, __mmask64),
        xs: __m512i,
    ) -> __m512i {
        let signed = _mm512_mask_sub_epi8(xs, negative, _mm512_setzero_si512(), xs);
        let pairs = _mm512_maddubs_epi16(magnitudes, signed);
        _mm512_add_epi32(sums, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)))
    }

    #[inline]
    fn q8_whole(sums: __m512i, _xsum: i32) -> __m512i {
        sums
    }

    wide_kernels!("avx2,fma,f16c,avx512f,avx512bw");
}
