//! aarch64 with the 8-bit matrix-multiply extension (Armv8.6 `i8mm`: Graviton 3 and 4,
//! Neoverse V1/V2/N2, Apple M2 and later): `neondot`'s kernels, and prompts of 16 tokens or
//! more multiplied by tiles (`crate::tiles`, as `avx512vnni` does) with `usmmla`, which
//! multiplies a 2 × 8 block of unsigned bytes by a 2 × 8 block of signed ones (transposed)
//! into a 2 × 2 block of 32-bit sums: 32 multiply-adds per instruction, twice `sdot`'s.
//!
//! A band here holds each 32-weight block's eight rows as four runs of eight weights (one per
//! `usmmla` operand): run `j` of rows `2i` and `2i + 1` in the 16 bytes at `256b + 64j + 16i`,
//! the row's eight weights `8j..8j + 8` one after the other; then the block's eight scales
//! (and eight mins) as f32, as every band keeps them. A tile's activations come in 4-byte
//! pieces per token (`Tile::codes`): two pieces zipped give two tokens' eight values.
//! q4_0, q5_0, q4k and q5k groups have tiles by `usmmla` (their weights unsigned), q6k groups
//! by `smmla` (signed by signed: its weights `q - 32` as they are, so no offset to take off).
//! Tested under QEMU's `max` CPU (`scripts/test-aarch64`); its speed is unmeasured (the
//! project's machine has no such CPU).

use super::neondot::kquants::{nibbles, scales_mins, weights_q5k, weights_q6k, Factors};
use super::neondot::{fifth_bits, halves};
use super::{neondot, I8mm};
use crate::dispatch::Tiled;
use crate::repack::{BlockQ4Kx8, BlockQ4_0x8, BlockQ5Kx8, BlockQ5_0x8, BlockQ6Kx8, Nibbles};
use crate::tiles::{band_len, split_band, Group, Tile, BAND, TILE};
use crate::{Kernels, Level};
use std::arch::aarch64::*;

/// The `i8mm` level's kernels: `neondot`'s, with tiles for q4_0, q5_0, q4k, q5k and q6k
/// groups.
pub(crate) fn kernels(token: I8mm) -> Kernels {
    let mut k = neondot::kernels(token.neondot());
    k.level = Level::I8mm;
    k.q4_0.tiled = Some(Tiled {
        unpack: unpack_q4_0,
        multiply: multiply_q4_0,
    });
    k.q5_0.tiled = Some(Tiled {
        unpack: unpack_q5_0,
        multiply: multiply_q5_0,
    });
    k.q4k.tiled = Some(Tiled {
        unpack: unpack_q4k,
        multiply: multiply_k4,
    });
    k.q5k.tiled = Some(Tiled {
        unpack: unpack_q5k,
        multiply: multiply_k4,
    });
    k.q6k.tiled = Some(Tiled {
        unpack: unpack_q6k,
        multiply: multiply_q6k,
    });
    k
}

accumulate_bytes!(
    /// `acc += a · bᵀ`: `a` two rows of eight unsigned bytes, `b` two rows of eight signed
    /// ones, `acc` the 2 × 2 sums row-major (`a` row 0 by `b` rows 0 and 1, then `a` row 1).
    usmmla,
    "usmmla",
    "neon,i8mm",
    uint8x16_t
);

accumulate_bytes!(
    /// `acc += a · bᵀ` as [`usmmla`], both operands signed.
    smmla,
    "smmla",
    "neon,i8mm",
    int8x16_t
);

/// Two pieces of four weights of rows 0-3 (or 4-7), `first` and `second` (each row's four
/// bytes in its 32-bit lane), as two `usmmla` operands: rows 0 and 1 with eight weights each,
/// then rows 2 and 3.
#[inline]
#[target_feature(enable = "neon")]
fn runs(first: uint8x16_t, second: uint8x16_t) -> [uint8x16_t; 2] {
    let (a, b) = (vreinterpretq_u32_u8(first), vreinterpretq_u32_u8(second));
    [
        vreinterpretq_u8_u32(vzip1q_u32(a, b)),
        vreinterpretq_u8_u32(vzip2q_u32(a, b)),
    ]
}

/// Stores the four runs of rows `4 half..4 half + 4` of one 8-weight run `j` of block `b`.
#[inline]
#[target_feature(enable = "neon")]
fn store_runs(
    codes: &mut [u8],
    b: usize,
    j: usize,
    half: usize,
    first: uint8x16_t,
    second: uint8x16_t,
) {
    for (i, run) in runs(first, second).into_iter().enumerate() {
        let at = 256 * b + 64 * j + 16 * (2 * half + i);
        let to = &mut codes[at..at + 16];
        // SAFETY: 16 bytes, checked by the slice.
        unsafe { vst1q_u8(to.as_mut_ptr(), run) };
    }
}

/// Eight f32 at `8b` of `factors` (a band's scales or mins), from two vectors.
#[inline]
#[target_feature(enable = "neon")]
fn store_factors(factors: &mut [u8], b: usize, v: [float32x4_t; 2]) {
    let to = &mut factors[32 * b..32 * b + 32];
    // SAFETY: 32 bytes, checked by the slice: two stores of four f32.
    unsafe {
        vst1q_f32(to.as_mut_ptr().cast(), v[0]);
        vst1q_f32(to.as_mut_ptr().add(16).cast(), v[1]);
    }
}

/// An interleaved q4_0 or q5_0 group into a band: chunk `c` of a block holds weights
/// `4c..4c + 4` of every row in its low nibbles (q5_0's fifth bits ORed in) and `16 + 4c..`
/// in its high ones, so runs `0` and `1` zip chunks 0 and 1, then 2 and 3, of the low nibbles,
/// runs `2` and `3` the same of the high ones; then the block's eight scales.
// The chunks and halves index several arrays each, as in `neondot`'s kernels.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "neon")]
fn unpack_nibbles_body<I: Nibbles>(w: Group<I>, band: &mut [u8]) {
    const {
        assert!(!I::OFFSETS, "q4_1's offsets have no tile kernel");
    }
    let cols = w.len() * 32;
    let (codes, factors) = split_band(band, cols);
    for (b, g) in w.iter().enumerate() {
        // [low or high nibbles][chunk][rows 0-3 or 4-7]
        let mut q = [[[vdupq_n_u8(0); 2]; 4]; 2];
        for c in 0..4 {
            for half in 0..2 {
                let at = 32 * c + 16 * half;
                // SAFETY: 16 bytes at `at` + 16 <= 128.
                let v = unsafe { vld1q_u8(g.nibbles()[at..at + 16].as_ptr()) };
                let (mut lo, mut hi) = (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v));
                if I::FIFTH {
                    lo = vorrq_u8(lo, fifth_bits(g.fifth()[c], half));
                    hi = vorrq_u8(hi, fifth_bits(g.fifth()[4 + c], half));
                }
                q[0][c][half] = lo;
                q[1][c][half] = hi;
            }
        }
        for j in 0..4 {
            let (nibble, c) = (j / 2, 2 * (j % 2));
            for half in 0..2 {
                store_runs(
                    codes,
                    b,
                    j,
                    half,
                    q[nibble][c][half],
                    q[nibble][c + 1][half],
                );
            }
        }
        store_factors(factors, b, halves(g.scales()));
    }
}

/// A q4k or q5k group into a band: block `b` is sub-block `b % 8` of super-block `b / 8`, whose
/// run `j` zips pieces `2j` and `2j + 1` of its chunk (`weights`); then each block's eight
/// `d · scale` and eight `dmin · min`.
#[target_feature(enable = "neon")]
fn unpack_k4_body<G>(
    w: Group<G>,
    band: &mut [u8],
    factors_of: impl Fn(&G) -> Factors<'_>,
    weights: impl Fn(&G, usize, usize) -> [[int8x16_t; 2]; 2],
) {
    let cols = w.len() * 256;
    let (codes, factors) = split_band(band, cols);
    let (scales_out, mins_out) = factors.split_at_mut(cols);
    for (sb, g) in w.iter().enumerate() {
        for c in 0..4 {
            for j in 0..4 {
                let (first, second) = (weights(g, c, 2 * j), weights(g, c, 2 * j + 1));
                for h in 0..2 {
                    for half in 0..2 {
                        let (a, b) = (first[h][half], second[h][half]);
                        let (a, b) = (vreinterpretq_u8_s8(a), vreinterpretq_u8_s8(b));
                        store_runs(codes, 8 * sb + 2 * c + h, j, half, a, b);
                    }
                }
            }
        }
        let (d, dmin, packed) = factors_of(g);
        let (d, dmin) = (halves(d), halves(dmin));
        for j in 0..8 {
            let (scale, min) = scales_mins(packed, j);
            let times = |a: [float32x4_t; 2], b: [float32x4_t; 2]| {
                [vmulq_f32(a[0], b[0]), vmulq_f32(a[1], b[1])]
            };
            store_factors(scales_out, 8 * sb + j, times(d, scale));
            store_factors(mins_out, 8 * sb + j, times(dmin, min));
        }
    }
}

/// Tokens `4 quarter..4 quarter + 4` of a tile's pieces `piece` and `piece + 1`, as two
/// `mmla` operands: tokens 0 and 1 with eight values each, then tokens 2 and 3.
#[inline]
#[target_feature(enable = "neon")]
fn token_pairs(x: Tile, piece: usize, quarter: usize) -> [int8x16_t; 2] {
    let at = |p: usize| 64 * p + 16 * quarter;
    let (first, second) = (
        &x.codes[at(piece)..at(piece) + 16],
        &x.codes[at(piece + 1)..at(piece + 1) + 16],
    );
    // SAFETY: 16 bytes each, checked by the slices.
    let (first, second) = unsafe {
        (
            vreinterpretq_u32_s8(vld1q_s8(first.as_ptr())),
            vreinterpretq_u32_s8(vld1q_s8(second.as_ptr())),
        )
    };
    [
        vreinterpretq_s8_u32(vzip1q_u32(first, second)),
        vreinterpretq_s8_u32(vzip2q_u32(first, second)),
    ]
}

/// Four tokens' values at `at` (a tile's `d`, `sums` or `dsum`) as the 2 × 2 sums hold
/// tokens: `[v0, v1, v0, v1]` and `[v2, v3, v2, v3]`.
#[inline]
fn tile_pairs<T: Copy>(v: &[T], at: usize) -> [[T; 4]; 2] {
    let v = &v[at..at + 4];
    [[v[0], v[1], v[0], v[1]], [v[2], v[3], v[2], v[3]]]
}

/// Each of four rows' values twice, as the 2 × 2 sums hold rows: `[r0, r0, r1, r1]` and
/// `[r2, r2, r3, r3]`.
#[inline]
#[target_feature(enable = "neon")]
fn row_pairs(v: float32x4_t) -> [float32x4_t; 2] {
    [vzip1q_f32(v, v), vzip2q_f32(v, v)]
}

/// The 2 × 2 sums of tokens `4 quarter..4 quarter + 4` (`acc[i][p]`: rows `2i` and `2i + 1` by
/// tokens `4 quarter + 2p` and the next) into a tile's results, `out[16r + token]`.
#[inline]
#[target_feature(enable = "neon")]
fn store_quarter(out: &mut [f32; 128], quarter: usize, acc: &[[float32x4_t; 2]; 4]) {
    for (i, a) in acc.iter().enumerate() {
        for (p, v) in a.iter().enumerate() {
            let mut lanes = [0f32; 4];
            // SAFETY: four f32 into a four-element array.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), *v) };
            let token = 4 * quarter + 2 * p;
            for (l, value) in lanes.into_iter().enumerate() {
                out[TILE * (2 * i + l / 2) + token + l % 2] = value;
            }
        }
    }
}

/// Eight f32 at `8b` of a band's factors.
#[inline]
#[target_feature(enable = "neon")]
fn load_factors(factors: &[u8], b: usize) -> [float32x4_t; 2] {
    let v = &factors[32 * b..32 * b + 32];
    // SAFETY: 32 bytes, checked by the slice: two loads of four f32.
    unsafe {
        [
            vld1q_f32(v.as_ptr().cast()),
            vld1q_f32(v.as_ptr().add(16).cast()),
        ]
    }
}

/// Eight rows of `blocks` 32-weight blocks each (unpacked in `band`) by one tile, four tokens
/// at a time: per block, each run of eight weights of two rows by each pair of tokens in one
/// `usmmla`, then the sums scaled. A `CENTRE` (q4_0: 8, q5_0: 16): the weights are
/// `q - CENTRE`, the offset taken off with the tile's sums; 0 (q4k, q5k): the mins' term is.
#[target_feature(enable = "neon,i8mm")]
fn multiply_blocks<const CENTRE: i32>(blocks: usize, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    let cols = blocks * 32;
    assert!(
        band.len() >= band_len(cols)
            && x.codes.len() >= cols * TILE
            && x.d.len() >= blocks * TILE
            && x.sums.len() >= blocks * TILE
            && x.dsum.len() >= blocks * TILE,
        "a band and a tile as wide as the group's rows"
    );
    let (codes, factors) = band.split_at(BAND * cols);
    let (scales, mins) = factors.split_at(cols);
    for quarter in 0..TILE / 4 {
        // acc[rows 2i, 2i + 1][tokens 4 quarter + 2p, + 1]
        let mut acc = [[vdupq_n_f32(0.0); 2]; 4];
        for b in 0..blocks {
            let mut sums = [[vdupq_n_s32(0); 2]; 4];
            for j in 0..4 {
                let tokens = token_pairs(x, 8 * b + 2 * j, quarter);
                for (i, row_sums) in sums.iter_mut().enumerate() {
                    let at = 256 * b + 64 * j + 16 * i;
                    // SAFETY: 16 bytes at `at` < 8 · cols (checked above).
                    let w = unsafe { vld1q_u8(codes[at..at + 16].as_ptr()) };
                    for (p, s) in row_sums.iter_mut().enumerate() {
                        *s = usmmla(*s, w, tokens[p]);
                    }
                }
            }
            let at = TILE * b + 4 * quarter;
            let (dx, xsum) = (tile_pairs(x.d, at), tile_pairs(x.sums, at));
            // SAFETY: four values from four-element arrays.
            let (dx, offset) = unsafe {
                (
                    dx.map(|v| vld1q_f32(v.as_ptr())),
                    xsum.map(|v| vmulq_n_s32(vld1q_s32(v.as_ptr()), CENTRE)),
                )
            };
            let scale = load_factors(scales, b);
            for (i, (a, s)) in acc.iter_mut().zip(&sums).enumerate() {
                let scale = row_pairs(scale[i / 2])[i % 2];
                for p in 0..2 {
                    let exact = vcvtq_f32_s32(vsubq_s32(s[p], offset[p]));
                    a[p] = vfmaq_f32(a[p], exact, vmulq_f32(dx[p], scale));
                }
            }
            if CENTRE == 0 {
                // SAFETY: four values from four-element arrays.
                let dsum = unsafe { tile_pairs(x.dsum, at).map(|v| vld1q_f32(v.as_ptr())) };
                let min = load_factors(mins, b);
                for (i, a) in acc.iter_mut().enumerate() {
                    let min = row_pairs(min[i / 2])[i % 2];
                    for p in 0..2 {
                        a[p] = vfmsq_f32(a[p], min, dsum[p]);
                    }
                }
            }
        }
        store_quarter(out, quarter, &acc);
    }
}

/// A q6k group into a band: block `b` is sub-block `b % 8` of super-block `b / 8`; runs 0 and
/// 1 its first 16-weight group, 2 and 3 its second, as signed bytes `q - 32`; then each
/// block's eight first-group scales where the scales go, its second-group ones where the mins
/// go (as i32).
#[target_feature(enable = "neon")]
fn unpack_q6k_body(w: Group<BlockQ6Kx8>, band: &mut [u8]) {
    let cols = w.len() * 256;
    let (codes, factors) = split_band(band, cols);
    let (first_scales, second_scales) = factors.split_at_mut(cols);
    let centre = vdupq_n_s8(32);
    for (sb, g) in w.iter().enumerate() {
        for j in 0..8 {
            let b = 8 * sb + j;
            for half in 0..2 {
                let pieces = weights_q6k(g, j, half).map(|p| p.map(|v| vsubq_s8(v, centre)));
                for m in 0..2 {
                    let (first, second) = (pieces[2 * m], pieces[2 * m + 1]);
                    for (rows, (a, c)) in first.into_iter().zip(second).enumerate() {
                        let (a, c) = (vreinterpretq_u8_s8(a), vreinterpretq_u8_s8(c));
                        store_runs(codes, b, 2 * half + m, rows, a, c);
                    }
                }
                let group = 2 * j + half;
                let scales: [i32; 8] = std::array::from_fn(|r| g.scales[8 * group + r] as i32);
                let to = if half == 0 {
                    &mut first_scales[32 * b..32 * b + 32]
                } else {
                    &mut second_scales[32 * b..32 * b + 32]
                };
                for (bytes, s) in to.chunks_exact_mut(4).zip(scales) {
                    bytes.copy_from_slice(&s.to_le_bytes());
                }
            }
        }
    }
}

/// Eight q6k rows (unpacked in `band`) by one tile, four tokens at a time: per block, each
/// 16-weight group's two runs by each pair of tokens in `smmla`, the group's sums times its
/// scale in integers, then the block's sum times `d_x · d` in one FMA.
#[target_feature(enable = "neon,i8mm")]
fn multiply_q6k_body(w: Group<BlockQ6Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    let blocks = w.len() * 8;
    let cols = blocks * 32;
    assert!(
        band.len() >= band_len(cols) && x.codes.len() >= cols * TILE && x.d.len() >= blocks * TILE,
        "a band and a tile as wide as the group's rows"
    );
    let (codes, factors) = band.split_at(BAND * cols);
    for quarter in 0..TILE / 4 {
        let mut acc = [[vdupq_n_f32(0.0); 2]; 4];
        for (sb, g) in w.iter().enumerate() {
            let d = halves(&g.d);
            for j in 0..8 {
                let b = 8 * sb + j;
                let mut total = [[vdupq_n_s32(0); 2]; 4];
                for half in 0..2 {
                    let mut sums = [[vdupq_n_s32(0); 2]; 4];
                    for m in 0..2 {
                        let run = 2 * half + m;
                        let tokens = token_pairs(x, 8 * b + 2 * run, quarter);
                        for (i, row_sums) in sums.iter_mut().enumerate() {
                            let at = 256 * b + 64 * run + 16 * i;
                            // SAFETY: 16 bytes at `at` < 8 · cols (checked above).
                            let w = unsafe { vld1q_s8(codes[at..at + 16].as_ptr().cast()) };
                            for (p, s) in row_sums.iter_mut().enumerate() {
                                *s = smmla(*s, w, tokens[p]);
                            }
                        }
                    }
                    let at = half * cols + 32 * b;
                    let scales = &factors[at..at + 32];
                    // SAFETY: 32 bytes, checked by the slice: two loads of four i32.
                    let scales = unsafe {
                        [
                            vld1q_s32(scales.as_ptr().cast()),
                            vld1q_s32(scales.as_ptr().add(16).cast()),
                        ]
                    };
                    for (i, (t, s)) in total.iter_mut().zip(&sums).enumerate() {
                        let scale = scales[i / 2];
                        let scale = [vzip1q_s32(scale, scale), vzip2q_s32(scale, scale)][i % 2];
                        for p in 0..2 {
                            t[p] = vmlaq_s32(t[p], s[p], scale);
                        }
                    }
                }
                // SAFETY: four values from four-element arrays.
                let dx = unsafe {
                    tile_pairs(x.d, TILE * b + 4 * quarter).map(|v| vld1q_f32(v.as_ptr()))
                };
                for (i, (a, t)) in acc.iter_mut().zip(&total).enumerate() {
                    let dw = row_pairs(d[i / 2])[i % 2];
                    for p in 0..2 {
                        a[p] = vfmaq_f32(a[p], vcvtq_f32_s32(t[p]), vmulq_f32(dx[p], dw));
                    }
                }
            }
        }
        store_quarter(out, quarter, &acc);
    }
}

// Safe entry points for the table. SAFETY (all): only `kernels` hands them out, for an
// `I8mm` token (made after detecting `i8mm` and `dotprod`).

fn unpack_q4_0(w: Group<BlockQ4_0x8>, band: &mut [u8]) {
    unsafe { unpack_nibbles_body(w, band) }
}

fn unpack_q5_0(w: Group<BlockQ5_0x8>, band: &mut [u8]) {
    unsafe { unpack_nibbles_body(w, band) }
}

fn unpack_q4k(w: Group<BlockQ4Kx8>, band: &mut [u8]) {
    unsafe {
        unpack_k4_body(
            w,
            band,
            |g| (&g.d, &g.dmin, &g.scales),
            |g, c, p| nibbles(&g.qs, c, p),
        )
    }
}

fn unpack_q5k(w: Group<BlockQ5Kx8>, band: &mut [u8]) {
    unsafe {
        unpack_k4_body(
            w,
            band,
            |g| (&g.d, &g.dmin, &g.scales),
            |g, c, p| weights_q5k(g, c, p),
        )
    }
}

fn multiply_q4_0(w: Group<BlockQ4_0x8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    unsafe { multiply_blocks::<8>(w.len(), band, x, out) }
}

fn multiply_q5_0(w: Group<BlockQ5_0x8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    unsafe { multiply_blocks::<16>(w.len(), band, x, out) }
}

fn multiply_k4<G>(w: Group<G>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    unsafe { multiply_blocks::<0>(8 * w.len(), band, x, out) }
}

fn unpack_q6k(w: Group<BlockQ6Kx8>, band: &mut [u8]) {
    unsafe { unpack_q6k_body(w, band) }
}

fn multiply_q6k(w: Group<BlockQ6Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
    unsafe { multiply_q6k_body(w, band, x, out) }
}
