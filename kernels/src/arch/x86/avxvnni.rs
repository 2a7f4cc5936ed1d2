//! AVX2 with AVX-VNNI (Alder Lake and later client cores, Sapphire Rapids' VEX form, Zen 5):
//! AVX2's kernels, with VEX-encoded `vpdpbusd` for interleaved rows eight at a time
//! (`vnni`'s body) and for q4k rows (AVX2's bodies), on CPUs without AVX-512 or beside it.
//! Every one sums the same integers as AVX2 and scales them alike, so the level gives AVX2's
//! results to the bit.

use super::{avx2, AvxVnni};
use crate::{Kernels, Level};

/// The `avxvnni` level's kernels.
pub(crate) fn kernels(token: AvxVnni) -> Kernels {
    let mut k = avx2::kernels(token.avx2());
    k.level = Level::AvxVnni;
    k.q4_0.rows8 = Some(rows8::rows8_q4_0);
    k.q4_1.rows8 = Some(rows8::rows8_q4_1);
    k.q5_0.rows8 = Some(rows8::rows8_q5_0);
    k.q5_1.rows8 = Some(rows8::rows8_q5_1);
    k.q8_0.rows8 = Some(rows8::rows8_q8_0);
    k.q4k.row = q4k::rows;
    k.q5k.row = q4k::rows_q5k;
    k.q4k.rows8 = Some(q4k::rows8);
    k.q5k.rows8 = Some(q4k::rows8_q5k);
    k.q6k.rows8 = Some(q4k::rows8_q6k);
    k
}

/// Eight interleaved rows at a time in 256-bit `vpdpbusd`: `vnni`'s body.
mod rows8 {
    vnni_kernels!("avx2,fma,f16c,avxvnni", _mm256_dpbusd_avx_epi32);
}

/// q4k and q5k rows and interleaved q4k rows: AVX2's bodies, each sub-block's byte products summed by
/// `vpdpbusd` in one instruction.
mod q4k {
    rows_k4!(
        rows,
        rows_body,
        BlockQ4K,
        weights_q4k,
        "avx2,fma,f16c,avxvnni",
        |q, x| _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), q, x)
    );
    rows_k4!(
        rows_q5k,
        rows_q5k_body,
        BlockQ5K,
        weights_q5k,
        "avx2,fma,f16c,avxvnni",
        |q, x| _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), q, x)
    );
    rows8_q4k!(rows8, rows8_body, "avx2,fma,f16c,avxvnni", |acc, q, x| {
        _mm256_dpbusd_avx_epi32(acc, q, x)
    });
    rows8_q4k!(
        rows8_q5k,
        rows8_q5k_body,
        BlockQ5Kx8,
        weights_q5k_x8,
        "avx2,fma,f16c,avxvnni",
        |acc, q, x| _mm256_dpbusd_avx_epi32(acc, q, x)
    );
    rows8_q6k!(
        rows8_q6k,
        rows8_q6k_body,
        "avx2,fma,f16c,avxvnni",
        |s| _mm256_cvtepi8_epi32(s),
        |q, x, sc| {
            let sums = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), q[0], x[0]);
            let sums = _mm256_dpbusd_avx_epi32(sums, q[1], x[1]);
            let sums = _mm256_dpbusd_avx_epi32(sums, q[2], x[2]);
            _mm256_mullo_epi32(_mm256_dpbusd_avx_epi32(sums, q[3], x[3]), sc)
        }
    );
}
