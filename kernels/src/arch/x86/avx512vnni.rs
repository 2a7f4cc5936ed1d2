//! AVX-512 F, BW, VL and VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later): AVX2's kernels,
//! with `vpdpbusd` (EVEX-encoded) for interleaved rows eight at a time on 256-bit vectors
//! (`vnni`'s body), sixteen at a time on 512-bit ones (`wide`'s), and for q4k rows (AVX2's
//! bodies). Every one sums the same integers as AVX2 and scales them alike, so the level
//! gives AVX2's results to the bit.

use super::{avx2, Avx512Vnni};
use crate::{Kernels, Level};

/// The `avx512vnni` level's kernels.
pub(crate) fn kernels(token: Avx512Vnni) -> Kernels {
    let mut k = avx2::kernels(token.avx2());
    k.level = Level::Avx512Vnni;
    k.q4_0.rows8 = Some(rows8::rows8_q4_0);
    k.q4_1.rows8 = Some(rows8::rows8_q4_1);
    k.q8_0.rows8 = Some(rows8::rows8_q8_0);
    k.q4_0.rows16 = Some(rows16::rows16_q4_0);
    k.q4_1.rows16 = Some(rows16::rows16_q4_1);
    k.q8_0.rows16 = Some(rows16::rows16_q8_0);
    k.q4k.row = q4k::rows;
    k.q5k.row = q4k::rows_q5k;
    k.q4k.rows8 = Some(q4k::rows8);
    k
}

/// Eight interleaved rows at a time in 256-bit `vpdpbusd`: `vnni`'s body.
mod rows8 {
    vnni_kernels!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        _mm256_dpbusd_epi32
    );
}

/// Sixteen interleaved rows at a time: `wide`'s body over this level's integer steps.
mod rows16 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn nibble_products(
        sums: __m512i,
        lo: __m512i,
        hi: __m512i,
        xl: __m512i,
        xh: __m512i,
    ) -> __m512i {
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sums, lo, xl), hi, xh)
    }

    #[inline]
    fn nibble_whole(sums: __m512i) -> __m512i {
        sums
    }

    /// The weights made unsigned by adding 128 (one XOR for all tokens): each lane sums
    /// (w + 128) · x = w · x + 128 x, and 128 Σx comes off in [`q8_whole`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn q8_weights(w: __m512i) -> (__m512i, __mmask64) {
        (_mm512_xor_si512(w, _mm512_set1_epi8(-128)), 0)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn q8_products(sums: __m512i, (shifted, _): (__m512i, __mmask64), xs: __m512i) -> __m512i {
        _mm512_dpbusd_epi32(sums, shifted, xs)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn q8_whole(sums: __m512i, xsum: i32) -> __m512i {
        _mm512_sub_epi32(sums, _mm512_set1_epi32(128 * xsum))
    }

    wide_kernels!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");
}

/// q4k and q5k rows and interleaved q4k rows: AVX2's bodies, each sub-block's byte products summed by
/// `vpdpbusd` in one instruction.
mod q4k {
    rows_k4!(
        rows,
        rows_body,
        BlockQ4K,
        weights_q4k,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        |q, x| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, x)
    );
    rows_k4!(
        rows_q5k,
        rows_q5k_body,
        BlockQ5K,
        weights_q5k,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        |q, x| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, x)
    );
    rows8_q4k!(
        rows8,
        rows8_body,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        |acc, q, x| _mm256_dpbusd_epi32(acc, q, x)
    );
}
