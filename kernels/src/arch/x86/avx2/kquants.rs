//! k-quant rows (256-weight super-blocks) by 8-bit activations in AVX2, one 32-weight
//! sub-block per activation block, as the portable kernels define them (`generic::rows_q4k`,
//! ..., `generic::rows_q2k`): 2-, 3-, 4- or 6-bit weights are unsigned bytes, so `vpmaddubsw`
//! takes them as they are (or, for q4k on the VNNI levels, `vpdpbusd`); sub-block scales
//! multiply in f32 (q4k, q5k) or as 16-bit integers over each 16-weight group (q6k, q3k, q2k).
//! Activations come grouped eight blocks to a super-block (`BlockQ8x8`): a super-block's eight
//! activation scales are one aligned load. Prompts take up to four tokens per pass over a row
//! (`four_tokens_at_a_time!`): its weights are unpacked (and q4k's scales decoded) once for them.

use super::{half_to_f32, sum_lanes};
use crate::blocks::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8x8, QK};
use std::arch::x86_64::*;
use std::ops::Range;

/// Block `j`'s 32 activation bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn block(x: &BlockQ8x8, j: usize) -> __m256i {
    let qs = &x.qs[QK * j..QK * (j + 1)];
    // SAFETY: 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) }
}

/// The eight f32 lanes of `v` (aligned: `BlockQ8x8` is).
#[inline]
#[target_feature(enable = "avx")]
pub(in crate::arch::x86) fn lanes(v: &[f32; 8]) -> __m256 {
    // SAFETY: eight f32 at a 32-byte aligned address (`BlockQ8x8`'s `d` and `dsum`).
    unsafe { _mm256_load_ps(v.as_ptr()) }
}

/// Eight bytes as eight f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn bytes_f32(b: &[u8; 8]) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi64x(
        0,
        i64::from_le_bytes(*b),
    )))
}

/// Lane `j` = the sum of `v[j]`'s eight lanes (exact: integers).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn sum_each_i32(v: &[__m256i; 8]) -> __m256i {
    let pairs = [
        _mm256_hadd_epi32(v[0], v[1]),
        _mm256_hadd_epi32(v[2], v[3]),
        _mm256_hadd_epi32(v[4], v[5]),
        _mm256_hadd_epi32(v[6], v[7]),
    ];
    // Each 128-bit half now holds four partial sums of v[0..4] and of v[4..8].
    let (a, b) = (
        _mm256_hadd_epi32(pairs[0], pairs[1]),
        _mm256_hadd_epi32(pairs[2], pairs[3]),
    );
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(a, b),
        _mm256_permute2x128_si256::<0x31>(a, b),
    )
}

/// One token's result into `dst[0]` (the row kernels' store for `four_tokens_at_a_time!`).
pub(in crate::arch::x86) fn store1(dst: &mut [f32], v: &f32) {
    dst[0] = *v;
}

/// A q4k or q5k row kernel for one level: `$block` and `$weights`, the format and its
/// unpacking of a super-block into eight sub-blocks of 32 unsigned weight bytes
/// ([`weights_q4k`], [`weights_q5k`]); `$features` (a `target_feature` list) and `$sum`, that
/// level's sum of a sub-block's 32 unsigned weight bytes (`$q`) times its 32 activation bytes
/// (`$x`) into eight 32-bit lanes. Per super-block and token: the eight sub-blocks' integer
/// sums reduced into one vector (lane `j` = sub-block `j`, exact), scaled by
/// `d · scale_j · d_x(j)` in one FMA; the mins' term `dmin · min_j · d_x(j) · Σ x(j)` in
/// another, subtracted once at the end. Every level sums the same integers, so all give the
/// same result to the bit, for any number of tokens at once.
macro_rules! rows_k4 {
    ($entry:ident, $name:ident, $block:ident, $weights:ident, $features:literal, |$q:ident, $x:ident| $sum:expr) => {
        #[target_feature(enable = $features)]
        fn $name(
            w: &[$crate::blocks::$block],
            x: &[$crate::blocks::BlockQ8x8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            use std::arch::x86_64::*;
            use $crate::arch::x86::avx2::kquants::$weights;
            use $crate::arch::x86::avx2::kquants::{block, bytes_f32, lanes, store1, sum_each_i32};
            use $crate::arch::x86::avx2::{half_to_f32, sum_lanes};
            use $crate::blocks::{$block, BlockQ8x8};
            /// The row by `N` tokens' activations.
            #[target_feature(enable = $features)]
            fn tile<const N: usize>(w: &[$block], x: [&[BlockQ8x8]; N]) -> [f32; N] {
                let (mut acc, mut mins) = ([_mm256_setzero_ps(); N], [_mm256_setzero_ps(); N]);
                for (b, w) in w.iter().enumerate() {
                    let q = $weights(w);
                    let (scales, mins_of) = w.scales_mins();
                    let d = _mm256_mul_ps(_mm256_set1_ps(half_to_f32(w.d)), bytes_f32(&scales));
                    let m = _mm256_mul_ps(_mm256_set1_ps(half_to_f32(w.dmin)), bytes_f32(&mins_of));
                    for i in 0..N {
                        let x = &x[i][b];
                        let mut sums = [_mm256_setzero_si256(); 8];
                        for j in 0..8 {
                            let ($q, $x) = (q[j], block(x, j));
                            sums[j] = $sum;
                        }
                        let sums = _mm256_cvtepi32_ps(sum_each_i32(&sums));
                        acc[i] = _mm256_fmadd_ps(sums, _mm256_mul_ps(d, lanes(&x.d)), acc[i]);
                        mins[i] = _mm256_fmadd_ps(m, lanes(&x.dsum), mins[i]);
                    }
                }
                std::array::from_fn(|i| sum_lanes(acc[i]) - sum_lanes(mins[i]))
            }
            four_tokens_at_a_time!(tile, w, x, tokens, out, store1, 1)
        }

        // The safe entry point for the level's table. SAFETY: only the table hands it out,
        // for the token the level's detection of `$features` makes.
        pub(super) fn $entry(
            w: &[$crate::blocks::$block],
            x: &[$crate::blocks::BlockQ8x8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { $name(w, x, tokens, out) }
        }
    };
}

/// A q4k super-block's weights: sub-blocks `2c` and `2c + 1` are the low and high nibbles of
/// its bytes `32c..32c + 32`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn weights_q4k(w: &BlockQ4K) -> [__m256i; 8] {
    nibbles(&w.qs)
}

/// A q5k super-block's weights: q4k's nibbles with bit `j` of `qh` as sub-block `j`'s fifth bit
/// (`(qh >> j) & 1` per byte: a 16-bit shift moves no set bit across bytes once masked).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn weights_q5k(w: &BlockQ5K) -> [__m256i; 8] {
    let mut q = nibbles(&w.qs);
    // SAFETY: 32 readable bytes; unaligned load.
    let high = unsafe { _mm256_loadu_si256(w.qh.as_ptr().cast()) };
    let one = _mm256_set1_epi8(1);
    for (j, q) in q.iter_mut().enumerate() {
        let bit = _mm256_and_si256(_mm256_srl_epi16(high, _mm_cvtsi32_si128(j as i32)), one);
        *q = _mm256_or_si256(*q, _mm256_slli_epi16::<4>(bit));
    }
    q
}

/// 128 bytes of nibbles as eight vectors of 32 bytes: low then high nibbles of each 32.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles(qs: &[u8; 128]) -> [__m256i; 8] {
    let low = _mm256_set1_epi8(0x0F);
    let mut q = [_mm256_setzero_si256(); 8];
    for c in 0..4 {
        // SAFETY: 32 bytes of the 128 at 32c.
        let packed = unsafe { _mm256_loadu_si256(qs[32 * c..32 * c + 32].as_ptr().cast()) };
        q[2 * c] = _mm256_and_si256(packed, low);
        q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
    }
    q
}

rows_k4!(
    rows_q4k,
    rows_q4k_avx2,
    BlockQ4K,
    weights_q4k,
    "avx2,fma,f16c",
    |q, x| _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1))
);
rows_k4!(
    rows_q5k,
    rows_q5k_avx2,
    BlockQ5K,
    weights_q5k,
    "avx2,fma,f16c",
    |q, x| _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1))
);

/// An interleaved q4k or q5k kernel (eight rows, `BlockQ4Kx8` or `$group`, whose pieces of
/// weights `$weights` unpacks: [`weights_q4k_x8`], [`weights_q5k_x8`]) for one level: `$step` adds to the
/// eight 32-bit lanes `$acc` the products of four unsigned weight bytes per lane (`$q`, one
/// row per lane) by four activation bytes broadcast to every lane (`$x`). Per sub-block and
/// token the eight rows' integer sums come out in one vector, scaled by `d · scale_j · d_x(j)`
/// (per row, per row, per token) in one FMA; the mins' term `dmin · min_j · d_x(j) · Σ x(j)`
/// likewise, subtracted at the end. Up to four tokens share each load of weights; every level
/// sums the same integers, so all give the same results to the bit.
macro_rules! rows8_q4k {
    ($entry:ident, $name:ident, $features:literal, |$acc:ident, $q:ident, $x:ident| $step:expr) => {
        rows8_q4k!(
            $entry,
            $name,
            BlockQ4Kx8,
            weights_q4k_x8,
            $features,
            |$acc, $q, $x| $step
        );
    };
    ($entry:ident, $name:ident, $group:ident, $weights:ident, $features:literal, |$acc:ident, $q:ident, $x:ident| $step:expr) => {
        #[target_feature(enable = $features)]
        fn $name(
            w: &[$crate::repack::$group],
            x: &[$crate::blocks::BlockQ8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            use std::arch::x86_64::*;
            use $crate::arch::x86::avx2::kquants::{scales_mins_x8, $weights};
            use $crate::arch::x86::avx2::store8;
            use $crate::blocks::BlockQ8;
            use $crate::repack::{$group, ROWS};
            /// The eight rows by `N` tokens' activations (eight blocks per super-block).
            #[target_feature(enable = $features)]
            fn tile<const N: usize>(w: &[$group], x: [&[BlockQ8]; N]) -> [__m256; N] {
                let (mut acc, mut mins) = ([_mm256_setzero_ps(); N], [_mm256_setzero_ps(); N]);
                for (b, g) in w.iter().enumerate() {
                    let blocks: [&[BlockQ8]; N] = std::array::from_fn(|i| &x[i][8 * b..8 * b + 8]);
                    // SAFETY: eight f16 (16 bytes) each.
                    let (d, dmin) = unsafe {
                        (
                            _mm256_cvtph_ps(_mm_loadu_si128(g.d.as_ptr().cast())),
                            _mm256_cvtph_ps(_mm_loadu_si128(g.dmin.as_ptr().cast())),
                        )
                    };
                    for c in 0..4 {
                        let mut sums = [[_mm256_setzero_si256(); 2]; N];
                        for p in 0..8 {
                            let q = $weights(g, c, p);
                            for i in 0..N {
                                for h in 0..2 {
                                    let piece = &blocks[i][2 * c + h].qs[4 * p..4 * p + 4];
                                    let ($acc, $q, $x) = (
                                        sums[i][h],
                                        q[h],
                                        _mm256_set1_epi32(i32::from_le_bytes([
                                            piece[0] as u8,
                                            piece[1] as u8,
                                            piece[2] as u8,
                                            piece[3] as u8,
                                        ])),
                                    );
                                    sums[i][h] = $step;
                                }
                            }
                        }
                        for h in 0..2 {
                            let j = 2 * c + h;
                            let (scale, min) = scales_mins_x8(&g.scales, j);
                            let (scale, min) = (_mm256_mul_ps(d, scale), _mm256_mul_ps(dmin, min));
                            for i in 0..N {
                                let xb = &blocks[i][j];
                                acc[i] = _mm256_fmadd_ps(
                                    _mm256_cvtepi32_ps(sums[i][h]),
                                    _mm256_mul_ps(scale, _mm256_set1_ps(xb.d)),
                                    acc[i],
                                );
                                let dsum = _mm256_set1_ps(xb.d * xb.sum as f32);
                                mins[i] = _mm256_fmadd_ps(min, dsum, mins[i]);
                            }
                        }
                    }
                }
                std::array::from_fn(|i| _mm256_sub_ps(acc[i], mins[i]))
            }
            four_tokens_at_a_time!(tile, w, x, tokens, out, store8, ROWS, 8)
        }

        // The safe entry point for the level's table. SAFETY: only the table hands it out,
        // for the token the level's detection of `$features` makes.
        pub(super) fn $entry(
            w: &[$crate::repack::$group],
            x: &[$crate::blocks::BlockQ8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { $name(w, x, tokens, out) }
        }
    };
}

/// Piece `p` of chunk `c` of eight interleaved q4k or q5k rows' nibbles (`qs`): four weights
/// of each row of sub-block `2c` (low nibbles) and `2c + 1` (high ones) as bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles_x8(qs: &[u8; 1024], c: usize, p: usize) -> [__m256i; 2] {
    let (at, low) = (256 * c + 32 * p, _mm256_set1_epi8(0x0F));
    // SAFETY: 32 bytes of the 1024 at `at` (c < 4, p < 8).
    let v = unsafe { _mm256_loadu_si256(qs[at..at + 32].as_ptr().cast()) };
    [
        _mm256_and_si256(v, low),
        _mm256_and_si256(_mm256_srli_epi16::<4>(v), low),
    ]
}

/// Piece `p` of chunk `c` of eight interleaved q4k rows ([`nibbles_x8`]).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn weights_q4k_x8(
    g: &crate::repack::BlockQ4Kx8,
    c: usize,
    p: usize,
) -> [__m256i; 2] {
    nibbles_x8(&g.qs, c, p)
}

/// Piece `p` of chunk `c` of eight interleaved q5k rows: their nibbles with their fifth bits,
/// bits `2c` and `2c + 1` of the rows' `qh` piece `p`, moved to bit 4.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn weights_q5k_x8(
    g: &crate::repack::BlockQ5Kx8,
    c: usize,
    p: usize,
) -> [__m256i; 2] {
    let q = nibbles_x8(&g.qs, c, p);
    // SAFETY: 32 bytes at 32p (p < 8) of 256.
    let high = unsafe { _mm256_loadu_si256(g.qh[32 * p..32 * p + 32].as_ptr().cast()) };
    let one = _mm256_set1_epi8(1);
    let bit = |j: usize| {
        let b = _mm256_and_si256(_mm256_srl_epi16(high, _mm_cvtsi32_si128(j as i32)), one);
        _mm256_slli_epi16::<4>(b)
    };
    [
        _mm256_or_si256(q[0], bit(2 * c)),
        _mm256_or_si256(q[1], bit(2 * c + 1)),
    ]
}

/// Sub-block `j`'s eight rows' 6-bit scales and mins as f32 lanes, from `BlockQ4Kx8`'s
/// interleaved 12-byte layouts (`BlockQ4K::scale_min` per row, eight rows at once): for
/// `j < 4` the low six bits of bytes `j` and `j + 4`; for `j ≥ 4` the nibbles of byte `j + 4`
/// with the top two bits of bytes `j - 4` (scales) and `j` (mins) above them.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn scales_mins_x8(s: &[u8; 96], j: usize) -> (__m256, __m256) {
    let (scales, mins) = if j < 4 {
        (masked(row8(s, j), 63), masked(row8(s, j + 4), 63))
    } else {
        let low = row8(s, j + 4);
        (
            _mm_or_si128(masked(low, 0x0F), top_two(row8(s, j - 4))),
            _mm_or_si128(masked(_mm_srli_epi16::<4>(low), 0x0F), top_two(row8(s, j))),
        )
    };
    (
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scales)),
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mins)),
    )
}

/// Bytes `8i..8i + 8` (byte `i` of the eight rows' scales).
#[inline]
#[target_feature(enable = "avx2")]
fn row8(s: &[u8; 96], i: usize) -> __m128i {
    // SAFETY: eight bytes at 8i (i < 12) of 96.
    unsafe { _mm_loadl_epi64(s[8 * i..8 * i + 8].as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn masked(v: __m128i, m: i8) -> __m128i {
    _mm_and_si128(v, _mm_set1_epi8(m))
}

/// `(q >> 6) << 4` of each byte: its top two bits moved to bits 4-5.
#[inline]
#[target_feature(enable = "avx2")]
fn top_two(v: __m128i) -> __m128i {
    masked(_mm_srli_epi16::<2>(v), 0x30)
}

rows8_q4k!(rows8_q4k, rows8_q4k_avx2, "avx2,fma,f16c", |acc, q, x| {
    _mm256_add_epi32(
        acc,
        _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1)),
    )
});
rows8_q4k!(
    rows8_q5k,
    rows8_q5k_avx2,
    BlockQ5Kx8,
    weights_q5k_x8,
    "avx2,fma,f16c",
    |acc, q, x| {
        _mm256_add_epi32(
            acc,
            _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1)),
        )
    }
);

/// An interleaved q6k kernel (eight rows, `BlockQ6Kx8`) for one level, by activations grouped
/// by super-block (`BlockQ8x8`, for their sums of 16). `$scale` turns a group's eight scale
/// bytes (`$s`, row `k` in byte `k`) into the form `$group` takes (`$sc`); `$group` gives, in
/// row `k`'s 32-bit lane, `scale_k · Σ q x` over the group's 16 weights: four vectors of
/// unsigned 6-bit weights (`$q`, four of each row per lane) by four of activation bytes
/// broadcast to every lane (`$x`). Per sub-block and token the offset of 32 comes off in
/// integers (`32 · Σ_g scale_g · Σ_g x`, from the activations' sums of 16), the block's `d_x`
/// multiplies in one FMA, the rows' `d` in one per super-block. Up to eight tokens share each
/// load and unpacking of weights; every level sums the same integers, so all give the same
/// results to the bit.
macro_rules! rows8_q6k {
    ($entry:ident, $name:ident, $features:literal, |$s:ident| $scale:expr, |$q:ident, $x:ident, $sc:ident| $group:expr) => {
        #[target_feature(enable = $features)]
        fn $name(
            w: &[$crate::repack::BlockQ6Kx8],
            x: &[$crate::blocks::BlockQ8x8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            use std::arch::x86_64::*;
            use $crate::arch::x86::avx2::kquants::weights_q6k_x8;
            use $crate::arch::x86::avx2::store8;
            use $crate::blocks::BlockQ8x8;
            use $crate::repack::{BlockQ6Kx8, ROWS};
            /// The eight rows by `N` tokens' activations (one group of eight blocks per
            /// super-block).
            #[target_feature(enable = $features)]
            fn tile<const N: usize>(w: &[BlockQ6Kx8], x: [&[BlockQ8x8]; N]) -> [__m256; N] {
                let mut acc = [_mm256_setzero_ps(); N];
                for (b, g) in w.iter().enumerate() {
                    let xs: [&BlockQ8x8; N] = std::array::from_fn(|i| &x[i][b]);
                    // SAFETY: eight f16 (16 bytes).
                    let d = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(g.d.as_ptr().cast())) };
                    let mut blocks = [_mm256_setzero_ps(); N];
                    for j in 0..8 {
                        let mut sums = [_mm256_setzero_si256(); N];
                        for half in 0..2 {
                            let group = 2 * j + half;
                            // SAFETY: eight bytes of the 128 at 8 · group (< 16).
                            let $s = unsafe {
                                _mm_loadl_epi64(g.scales[8 * group..8 * group + 8].as_ptr().cast())
                            };
                            let $sc = $scale;
                            let $q = weights_q6k_x8(g, j, half);
                            for i in 0..N {
                                let at = 32 * j + 16 * half;
                                let $x: [__m256i; 4] = std::array::from_fn(|p| {
                                    let v = &xs[i].qs[at + 4 * p..at + 4 * p + 4];
                                    _mm256_set1_epi32(i32::from_le_bytes([
                                        v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8,
                                    ]))
                                });
                                sums[i] = _mm256_add_epi32(sums[i], $group);
                            }
                        }
                        // Lane k: row k's scales of groups 2j and 2j + 1 as a 16-bit pair.
                        // SAFETY: sixteen bytes at 16j (< 128).
                        let pairs = unsafe {
                            let both =
                                _mm_loadu_si128(g.scales[16 * j..16 * j + 16].as_ptr().cast());
                            _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(both, _mm_srli_si128::<8>(both)))
                        };
                        for i in 0..N {
                            let [a, b] = [xs[i].bsums[2 * j], xs[i].bsums[2 * j + 1]];
                            let sums16 = (a as u16 as u32 | (b as u16 as u32) << 16) as i32;
                            let offset = _mm256_madd_epi16(pairs, _mm256_set1_epi32(sums16));
                            let exact = _mm256_sub_epi32(sums[i], _mm256_slli_epi32::<5>(offset));
                            blocks[i] = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(exact),
                                _mm256_set1_ps(xs[i].d[j]),
                                blocks[i],
                            );
                        }
                    }
                    for i in 0..N {
                        acc[i] = _mm256_fmadd_ps(blocks[i], d, acc[i]);
                    }
                }
                acc
            }
            // Eight tokens per pass where there are eight (a prompt's tile of 16: each
            // unpacking of weights serves twice as many tokens as four would), then 4, 2, 1.
            let per = w.len();
            let token = |t: usize| &x[t * per..(t + 1) * per];
            let mut t = tokens.start;
            while t < tokens.end {
                let left = tokens.end - t;
                let o = &mut out[(t - tokens.start) * ROWS..];
                let n = match left {
                    8.. => store(o, tile::<8>(w, std::array::from_fn(|i| token(t + i)))),
                    4.. => store(o, tile::<4>(w, std::array::from_fn(|i| token(t + i)))),
                    2.. => store(o, tile::<2>(w, std::array::from_fn(|i| token(t + i)))),
                    _ => store(o, tile::<1>(w, [token(t)])),
                };
                t += n;
            }
            /// Each token's eight rows into `o`, token by token; the tokens stored.
            #[target_feature(enable = $features)]
            fn store<const N: usize>(o: &mut [f32], v: [__m256; N]) -> usize {
                for (dst, v) in o.chunks_exact_mut(ROWS).zip(&v) {
                    store8(dst, v);
                }
                N
            }
        }

        // The safe entry point for the level's table. SAFETY: only the table hands it out,
        // for the token the level's detection of `$features` makes.
        pub(super) fn $entry(
            w: &[$crate::repack::BlockQ6Kx8],
            x: &[$crate::blocks::BlockQ8x8],
            tokens: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            unsafe { $name(w, x, tokens, out) }
        }
    };
}

/// Sub-block `j`'s group `half` (its 16 weights) of eight interleaved q6k rows as four vectors
/// of unsigned 6-bit values, four weights of row `k` in 32-bit lane `k` of each.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::arch::x86) fn weights_q6k_x8(
    g: &crate::repack::BlockQ6Kx8,
    j: usize,
    half: usize,
) -> [__m256i; 4] {
    let (h, s) = (j / 4, j % 4);
    let (low, top) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
    std::array::from_fn(|pp| {
        let p = 4 * half + pp;
        let (l, t) = (256 * (2 * h + s % 2) + 32 * p, 256 * h + 32 * p);
        // SAFETY: 32 bytes of `ql` (l + 32 ≤ 1024) and of `qh` (t + 32 ≤ 512).
        let (ql, qh) = unsafe {
            (
                _mm256_loadu_si256(g.ql[l..l + 32].as_ptr().cast()),
                _mm256_loadu_si256(g.qh[t..t + 32].as_ptr().cast()),
            )
        };
        let ql = if s < 2 {
            ql
        } else {
            _mm256_srli_epi16::<4>(ql)
        };
        // Bits 2s..2s + 2 of each byte moved to bits 4..6.
        let qh = match s {
            0 => _mm256_slli_epi16::<4>(qh),
            1 => _mm256_slli_epi16::<2>(qh),
            2 => qh,
            _ => _mm256_srli_epi16::<2>(qh),
        };
        _mm256_or_si256(_mm256_and_si256(ql, low), _mm256_and_si256(qh, top))
    })
}

rows8_q6k!(
    rows8_q6k,
    rows8_q6k_avx2,
    "avx2,fma,f16c",
    |s| _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s, s)),
    |q, x, sc| {
        // Pairs of byte products (at most 2 · 63 · 127) summed twice stay within 16 bits.
        let first = _mm256_add_epi16(
            _mm256_maddubs_epi16(q[0], x[0]),
            _mm256_maddubs_epi16(q[1], x[1]),
        );
        let second = _mm256_add_epi16(
            _mm256_maddubs_epi16(q[2], x[2]),
            _mm256_maddubs_epi16(q[3], x[3]),
        );
        _mm256_add_epi32(_mm256_madd_epi16(first, sc), _mm256_madd_epi16(second, sc))
    }
);

/// Adds one sub-block (`j` of super-block `b`) of a row whose weights are `code - CENTRE` by
/// each token's activations into `acc[token][j % 2]`: `vpmaddubsw` pairs of `q` (the codes, as
/// unsigned bytes) by the activations, less `CENTRE` times the activations' pairs, each
/// 16-weight group's scale (`scales`, as [`group_scales`] lays them out) in `vpmaddwd`, then
/// `d · d_x(j)` in one FMA (q6k, q3k and q2k).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn add_sub_block<const CENTRE: i8, const N: usize>(
    acc: &mut [[__m256; 2]; N],
    x: &[&[BlockQ8x8]; N],
    (b, j): (usize, usize),
    q: __m256i,
    scales: __m256i,
    d: f32,
) {
    for (i, acc) in acc.iter_mut().enumerate() {
        let x = &x[i][b];
        let xs = block(x, j);
        let mut pairs = _mm256_maddubs_epi16(q, xs);
        if CENTRE != 0 {
            let offset = _mm256_maddubs_epi16(_mm256_set1_epi8(CENTRE), xs);
            pairs = _mm256_sub_epi16(pairs, offset);
        }
        let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, scales));
        acc[j % 2] = _mm256_fmadd_ps(sums, _mm256_set1_ps(d * x.d[j]), acc[j % 2]);
    }
}

/// q6k rows: per sub-block and token, `Σ (q - 32) x` per pair in 16 bits (at most
/// 2 · 63 · 127 + 2 · 32 · 127), each 16-weight group's scale on its pairs in `vpmaddwd`, the
/// block's `d · d_x` in one FMA into one of two accumulators (alternate sub-blocks).
#[target_feature(enable = "avx2,fma,f16c")]
fn rows_q6k_avx2(w: &[BlockQ6K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    /// The row by `N` tokens' activations.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn tile<const N: usize>(w: &[BlockQ6K], x: [&[BlockQ8x8]; N]) -> [f32; N] {
        let (low, two) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
        let mut acc = [[_mm256_setzero_ps(); 2]; N];
        for (b, w) in w.iter().enumerate() {
            let d = half_to_f32(w.d);
            for j in 0..8 {
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
                let scales = group_scales(w.scales[2 * j] as i16, w.scales[2 * j + 1] as i16);
                add_sub_block::<32, N>(&mut acc, &x, (b, j), q, scales, d);
            }
        }
        acc.map(|acc| sum_lanes(_mm256_add_ps(acc[0], acc[1])))
    }
    four_tokens_at_a_time!(tile, w, x, tokens, out, store1, 1)
}

/// The two-bit codes of sub-block `j` of q2k's or q3k's `qs` (bits `2 (j % 4)` of bytes
/// `32 (j / 4)..`), one byte per weight. A 16-bit shift brings no bits of the next byte below
/// bit 2.
#[inline]
#[target_feature(enable = "avx2")]
fn two_bits(qs: &[u8; 64], j: usize) -> __m256i {
    let (h, k) = (j / 4, j % 4);
    // SAFETY: 32 bytes at 32h (h < 2) of 64; unaligned load.
    let ql = unsafe { _mm256_loadu_si256(qs[32 * h..32 * h + 32].as_ptr().cast()) };
    let shifted = _mm256_srl_epi16(ql, _mm_cvtsi32_si128(2 * k as i32));
    _mm256_and_si256(shifted, _mm256_set1_epi8(3))
}

/// Each 16-weight group's scale of sub-block `j` on its pairs' lanes (`vpmaddwd`'s operand):
/// lanes 0-7 are weights 0-15 (group `2j`), lanes 8-15 weights 16-31.
#[inline]
#[target_feature(enable = "avx2")]
fn group_scales(first: i16, second: i16) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(second), _mm_set1_epi16(first))
}

/// q3k rows: per sub-block its weights as unsigned codes (`q + 4`: the two low bits and the
/// high bit, 0..8), per pair `Σ code · x - 4 Σ x` in 16 bits (at most 2 · 7 · 127 + 2 · 4 ·
/// 127), each 16-weight group's scale on its pairs in `vpmaddwd`, the block's `d · d_x` in one
/// FMA into one of two accumulators (alternate sub-blocks).
#[target_feature(enable = "avx2,fma,f16c")]
fn rows_q3k_avx2(w: &[BlockQ3K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    /// The row by `N` tokens' activations.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn tile<const N: usize>(w: &[BlockQ3K], x: [&[BlockQ8x8]; N]) -> [f32; N] {
        let one = _mm256_set1_epi8(1);
        let mut acc = [[_mm256_setzero_ps(); 2]; N];
        for (b, w) in w.iter().enumerate() {
            let d = half_to_f32(w.d);
            // SAFETY: 32 bytes; unaligned load.
            let hmask = unsafe { _mm256_loadu_si256(w.hmask.as_ptr().cast()) };
            for j in 0..8 {
                let high =
                    _mm256_and_si256(_mm256_srl_epi16(hmask, _mm_cvtsi32_si128(j as i32)), one);
                let q = _mm256_or_si256(two_bits(&w.qs, j), _mm256_slli_epi16::<2>(high));
                let scales = group_scales(w.scale(2 * j) as i16, w.scale(2 * j + 1) as i16);
                add_sub_block::<4, N>(&mut acc, &x, (b, j), q, scales, d);
            }
        }
        acc.map(|acc| sum_lanes(_mm256_add_ps(acc[0], acc[1])))
    }
    four_tokens_at_a_time!(tile, w, x, tokens, out, store1, 1)
}

/// q2k rows: per sub-block its two-bit codes by the activations in `vpmaddubsw` (pairs at most
/// 2 · 3 · 127), each 16-weight group's 4-bit scale on its pairs in `vpmaddwd` (the scales
/// spread once per super-block, one `vpshufb` per sub-block), the block's `d · d_x` in one FMA;
/// the groups' 4-bit mins by the activations' exact 16-value sums (`BlockQ8x8::bsums`) in one
/// `vpmaddwd` per super-block, times `dmin · d_x`, taken off once at the end.
#[target_feature(enable = "avx2,fma,f16c")]
fn rows_q2k_avx2(w: &[BlockQ2K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    /// The row by `N` tokens' activations.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn tile<const N: usize>(w: &[BlockQ2K], x: [&[BlockQ8x8]; N]) -> [f32; N] {
        // Byte pairs (scale, 0) of group 0 in the low half, of group 1 in the high half: plus
        // 2j, group 2j's and 2j + 1's scales as 16-bit lanes (0x80 and above give zero).
        let spread = _mm256_setr_epi8(
            0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 1, -128, 1,
            -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128,
        );
        let nibble = _mm_set1_epi8(0x0F);
        let mut acc = [[_mm256_setzero_ps(); 2]; N];
        let mut mins = [_mm256_setzero_ps(); N];
        for (b, w) in w.iter().enumerate() {
            let (d, dmin) = (half_to_f32(w.d), half_to_f32(w.dmin));
            // SAFETY: 16 bytes; unaligned load.
            let packed = unsafe { _mm_loadu_si128(w.scales.as_ptr().cast()) };
            let scales = _mm256_broadcastsi128_si256(_mm_and_si128(packed, nibble));
            let group_mins =
                _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(packed), nibble));
            for j in 0..8 {
                let q = two_bits(&w.qs, j);
                let pick = _mm256_add_epi8(spread, _mm256_set1_epi8(2 * j as i8));
                let scales = _mm256_shuffle_epi8(scales, pick);
                add_sub_block::<0, N>(&mut acc, &x, (b, j), q, scales, d);
            }
            for (i, m) in mins.iter_mut().enumerate() {
                let x = &x[i][b];
                // SAFETY: sixteen i16 (32 bytes); unaligned load.
                let bsums = unsafe { _mm256_loadu_si256(x.bsums.as_ptr().cast()) };
                // Lane j: min(2j) · Σx(2j) + min(2j + 1) · Σx(2j + 1), exact.
                let per_block = _mm256_cvtepi32_ps(_mm256_madd_epi16(group_mins, bsums));
                let factor = _mm256_mul_ps(lanes(&x.d), _mm256_set1_ps(dmin));
                *m = _mm256_fmadd_ps(per_block, factor, *m);
            }
        }
        std::array::from_fn(|i| sum_lanes(_mm256_add_ps(acc[i][0], acc[i][1])) - sum_lanes(mins[i]))
    }
    four_tokens_at_a_time!(tile, w, x, tokens, out, store1, 1)
}

// The safe entry points for AVX2's table (the q4k ones come with their macros). SAFETY: only
// `super::kernels` hands them out, for an `Avx2` token (made after `Avx2::detect` found every
// feature).

pub(super) fn rows_q2k(w: &[BlockQ2K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows_q2k_avx2(w, x, tokens, out) }
}

pub(super) fn rows_q3k(w: &[BlockQ3K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows_q3k_avx2(w, x, tokens, out) }
}

pub(super) fn rows_q6k(w: &[BlockQ6K], x: &[BlockQ8x8], tokens: Range<usize>, out: &mut [f32]) {
    unsafe { rows_q6k_avx2(w, x, tokens, out) }
}
