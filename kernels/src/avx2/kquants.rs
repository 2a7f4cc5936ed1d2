//! k-quant rows (q4k, q6k: 256-weight super-blocks) by 8-bit activations in AVX2, one
//! 32-weight sub-block per activation block, as the portable kernels define them
//! (`scalar::dot_q4k`, `scalar::dot_q6k`): 6-bit or 4-bit weights are unsigned bytes, so
//! `vpmaddubsw` takes them as they are (or, for q4k on the VNNI levels, `vpdpbusd`); sub-block
//! scales multiply in f32 (q4k) or as 16-bit integers over each 16-weight group (q6k).

use super::{half_to_f32, load_i8, sum_each, sum_lanes};
use crate::blocks::{BlockQ4K, BlockQ6K, BlockQ8};
use std::arch::x86_64::*;

/// 32 unsigned bytes (at most 63) by 32 signed activations, in 16 lanes of pair sums (at most
/// 2 · 63 · 127 < 32767: no saturation).
#[inline]
#[target_feature(enable = "avx2")]
fn pairs(q: __m256i, x: &BlockQ8) -> __m256i {
    _mm256_maddubs_epi16(q, load_i8(&x.qs))
}

/// Eight bytes as eight f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn bytes_f32(b: &[u8; 8]) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi64x(
        0,
        i64::from_le_bytes(*b),
    )))
}

/// A q4k dot product for one level: `$features` (a `target_feature` list) and `$sum`, that
/// level's sum of a sub-block's 32 unsigned weight bytes (`$q`) times its activation block
/// (`$x`) into eight 32-bit lanes. Per super-block: the eight sub-blocks' integer sums reduced
/// into one vector (lane `j` = sub-block `j`), scaled by `d · scale_j · d_x(j)` in one FMA; the
/// mins' term `dmin · min_j · d_x(j) · Σ x(j)` in another, subtracted once at the end. Every
/// level sums the same integers, so all give the same result to the bit.
macro_rules! dot_q4k {
    ($name:ident, $features:literal, |$q:ident, $x:ident| $sum:expr) => {
        #[target_feature(enable = $features)]
        fn $name(w: &[BlockQ4K], x: &[BlockQ8]) -> f32 {
            let low = _mm256_set1_epi8(0x0F);
            let (mut acc, mut mins) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for (w, x) in w.iter().zip(x.chunks_exact(8)) {
                let mut sums = [_mm256_setzero_ps(); 8];
                for c in 0..4 {
                    // SAFETY: 32 bytes of the 128 at 32c.
                    let packed =
                        unsafe { _mm256_loadu_si256(w.qs[32 * c..32 * c + 32].as_ptr().cast()) };
                    let halves = [
                        _mm256_and_si256(packed, low),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low),
                    ];
                    for (h, $q) in halves.into_iter().enumerate() {
                        let $x = &x[2 * c + h];
                        sums[2 * c + h] = _mm256_cvtepi32_ps($sum);
                    }
                }
                let xd = _mm256_setr_ps(
                    x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d,
                );
                let xsum = _mm256_cvtepi32_ps(_mm256_setr_epi32(
                    x[0].sum, x[1].sum, x[2].sum, x[3].sum, x[4].sum, x[5].sum, x[6].sum, x[7].sum,
                ));
                let (scales, mins_of) = w.scales_mins();
                let d = _mm256_mul_ps(_mm256_set1_ps(half_to_f32(w.d)), bytes_f32(&scales));
                acc = _mm256_fmadd_ps(sum_each(sums), _mm256_mul_ps(d, xd), acc);
                let m = _mm256_mul_ps(_mm256_set1_ps(half_to_f32(w.dmin)), bytes_f32(&mins_of));
                mins = _mm256_fmadd_ps(m, _mm256_mul_ps(xd, xsum), mins);
            }
            sum_lanes(acc) - sum_lanes(mins)
        }
    };
}

dot_q4k!(dot_q4k_avx2, "avx2,fma,f16c", |q, x| _mm256_madd_epi16(
    pairs(q, x),
    _mm256_set1_epi16(1)
));
// `vpdpbusd` sums the four byte products of each lane in one instruction.
dot_q4k!(
    dot_q4k_avx512vnni_body,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    |q, x| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, load_i8(&x.qs))
);
dot_q4k!(dot_q4k_avxvnni_body, "avx2,fma,f16c,avxvnni", |q, x| {
    _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), q, load_i8(&x.qs))
});

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q6k_avx2(w: &[BlockQ6K], x: &[BlockQ8]) -> f32 {
    let (low, two) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
    let offset = _mm256_set1_epi8(32);
    let mut acc = [_mm256_setzero_ps(); 2];
    for (w, x) in w.iter().zip(x.chunks_exact(8)) {
        let d = half_to_f32(w.d);
        for (j, xb) in x.iter().enumerate() {
            let (h, k) = (j / 4, j % 4);
            let at = 64 * h + 32 * (k % 2);
            // SAFETY: 32 bytes of `ql` (at + 32 ≤ 128) and of `qh` (32h + 32 ≤ 64).
            let (ql, qh) = unsafe {
                (
                    _mm256_loadu_si256(w.ql[at..at + 32].as_ptr().cast()),
                    _mm256_loadu_si256(w.qh[32 * h..32 * h + 32].as_ptr().cast()),
                )
            };
            let ql = if k < 2 {
                ql
            } else {
                _mm256_srli_epi16::<4>(ql)
            };
            let qh = match k {
                0 => qh,
                1 => _mm256_srli_epi16::<2>(qh),
                2 => _mm256_srli_epi16::<4>(qh),
                _ => _mm256_srli_epi16::<6>(qh),
            };
            let q = _mm256_or_si256(
                _mm256_and_si256(ql, low),
                _mm256_slli_epi16::<4>(_mm256_and_si256(qh, two)),
            );
            // Σ (q - 32) x per pair, in 16 bits (at most 2 · 63 · 127 + 2 · 32 · 127).
            let centred = _mm256_sub_epi16(pairs(q, xb), pairs(offset, xb));
            // Lanes 0-7 are weights 0-15 of the block (group 2j), lanes 8-15 weights 16-31.
            let scales = _mm256_set_m128i(
                _mm_set1_epi16(w.scales[2 * j + 1] as i16),
                _mm_set1_epi16(w.scales[2 * j] as i16),
            );
            let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(centred, scales));
            acc[j % 2] = _mm256_fmadd_ps(sums, _mm256_set1_ps(d * xb.d), acc[j % 2]);
        }
    }
    sum_lanes(_mm256_add_ps(acc[0], acc[1]))
}

// Safe entry points for the dispatch table. SAFETY (both): `Kernels::for_level` hands these
// out only after `super::detected()` returned true on this CPU.

pub(crate) fn dot_q4k(w: &[BlockQ4K], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4k_avx2(w, x) }
}

/// For the `avx512vnni` level only (its `detected` checks AVX-512 VNNI and VL).
pub(crate) fn dot_q4k_avx512vnni(w: &[BlockQ4K], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4k_avx512vnni_body(w, x) }
}

/// For the `avxvnni` level only (its `detected` checks AVX-VNNI).
pub(crate) fn dot_q4k_avxvnni(w: &[BlockQ4K], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q4k_avxvnni_body(w, x) }
}

pub(crate) fn dot_q6k(w: &[BlockQ6K], x: &[BlockQ8]) -> f32 {
    unsafe { dot_q6k_avx2(w, x) }
}
