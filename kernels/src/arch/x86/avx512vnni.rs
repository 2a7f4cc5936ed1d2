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
    k.dense.gemm = Some(super::gemm::tile_avx512);
    k.q4_0.rows8 = Some(rows8::rows8_q4_0);
    k.q4_1.rows8 = Some(rows8::rows8_q4_1);
    k.q5_0.rows8 = Some(rows8::rows8_q5_0);
    k.q5_1.rows8 = Some(rows8::rows8_q5_1);
    k.q8_0.rows8 = Some(rows8::rows8_q8_0);
    k.q4_0.rows16 = Some(rows16::rows16_q4_0);
    k.q4_1.rows16 = Some(rows16::rows16_q4_1);
    k.q5_0.rows16 = Some(rows16::rows16_q5_0);
    k.q5_1.rows16 = Some(rows16::rows16_q5_1);
    k.q8_0.rows16 = Some(rows16::rows16_q8_0);
    k.q4k.row = q4k::rows;
    k.q5k.row = q4k::rows_q5k;
    k.q4k.rows8 = Some(q4k::rows8);
    k.q5k.rows8 = Some(q4k::rows8_q5k);
    k.q6k.rows8 = Some(q4k::rows8_q6k);
    k.q4_0.tiled = Some(crate::dispatch::Tiled {
        unpack: tiled::unpack_q4_0,
        multiply: tiled::multiply_q4_0,
    });
    k.q5_0.tiled = Some(crate::dispatch::Tiled {
        unpack: tiled::unpack_q5_0,
        multiply: tiled::multiply_q5_0,
    });
    k.q4k.tiled = Some(crate::dispatch::Tiled {
        unpack: tiled::unpack_q4k,
        multiply: tiled::multiply_q4k,
    });
    k.q5k.tiled = Some(crate::dispatch::Tiled {
        unpack: tiled::unpack_q5k,
        multiply: tiled::multiply_q5k,
    });
    k.q6k.tiled = Some(crate::dispatch::Tiled {
        unpack: tiled::unpack_q6k,
        multiply: tiled::multiply_q6k,
    });
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
    rows8_q4k!(
        rows8_q5k,
        rows8_q5k_body,
        BlockQ5Kx8,
        weights_q5k_x8,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        |acc, q, x| _mm256_dpbusd_epi32(acc, q, x)
    );
    rows8_q6k!(
        rows8_q6k,
        rows8_q6k_body,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        |s| _mm256_cvtepi8_epi32(s),
        |q, x, sc| {
            let sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q[0], x[0]);
            let sums = _mm256_dpbusd_epi32(sums, q[1], x[1]);
            let sums = _mm256_dpbusd_epi32(sums, q[2], x[2]);
            _mm256_mullo_epi32(_mm256_dpbusd_epi32(sums, q[3], x[3]), sc)
        }
    );
}

/// k-quant groups by tiles of sixteen tokens: the weights unpacked once per group to a band of
/// bytes, then per tile a micro-kernel of eight rows by sixteen tokens in 512-bit `vpdpbusd`
/// (four weights of a row broadcast, four values of each token in its lane), summing the same
/// integers as the row kernels:
/// - q6k: weights unpacked signed (`q - 32`) against activations made unsigned (`x + 128`, one
///   XOR per load), each 16-weight group's sum times its scale in integers, per 32-weight block
///   and row the `128 · Σ scale · Σ (q - 32)` unpacked with the band taken off and the block's
///   `d_x · d` applied in one FMA;
/// - q4k and q5k: per 32-weight block and row the sum times `d_x · d · scale` in one FMA and
///   the mins' `dmin · min · d_x · Σ x` in another, both factors of the row unpacked with the
///   band;
/// - q4_0 and q5_0 (interleaved groups): per block and row
///   the offset of 8 or 16 (`8 · Σ x`, `16 · Σ x`) in integers, then `d_x · d` in one FMA.
mod tiled {
    use crate::arch::x86::avx2::kquants::{scales_mins_x8, weights_q6k_x8};
    use crate::repack::{BlockQ4Kx8, BlockQ4_0x8, BlockQ5Kx8, BlockQ5_0x8, BlockQ6Kx8, Nibbles};
    use crate::tiles::{band_len, split_band, Group, Tile, BAND, TILE};
    use std::arch::x86_64::*;

    /// A q4k or q5k group's weights into a band, as `weights` unpacks each piece `p` of chunk
    /// `c` (four weights of sub-blocks `2c` and `2c + 1`); then each block's eight `d · scale`
    /// and eight `dmin · min`.
    macro_rules! unpack_k4 {
        ($name:ident, $group:ident, $weights:ident) => {
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            fn $name(w: Group<$group>, band: &mut [u8]) {
                use crate::arch::x86::avx2::kquants::$weights;
                let cols = w.len() * 256;
                let (codes, factors) = split_band(band, cols);
                for (sb, g) in w.iter().enumerate() {
                    for c in 0..4 {
                        for p in 0..8 {
                            for (h, q) in $weights(g, c, p).iter().enumerate() {
                                let piece = 64 * sb + 8 * (2 * c + h) + p;
                                let to = &mut codes[32 * piece..32 * piece + 32];
                                // SAFETY: 32 bytes, checked by the slice above.
                                unsafe { _mm256_storeu_si256(to.as_mut_ptr().cast(), *q) };
                            }
                        }
                    }
                    // SAFETY: eight f16 (16 bytes) each.
                    let (d, dmin) = unsafe {
                        (
                            _mm256_cvtph_ps(_mm_loadu_si128(g.d.as_ptr().cast())),
                            _mm256_cvtph_ps(_mm_loadu_si128(g.dmin.as_ptr().cast())),
                        )
                    };
                    for j in 0..8 {
                        let b = 8 * sb + j;
                        let (scale, min) = scales_mins_x8(&g.scales, j);
                        let (scales, mins) = factors.split_at_mut(cols);
                        // SAFETY: 32 bytes at 32b < cols in each half, checked by the slices.
                        unsafe {
                            let to = &mut scales[32 * b..32 * b + 32];
                            _mm256_storeu_ps(to.as_mut_ptr().cast(), _mm256_mul_ps(d, scale));
                            let to = &mut mins[32 * b..32 * b + 32];
                            _mm256_storeu_ps(to.as_mut_ptr().cast(), _mm256_mul_ps(dmin, min));
                        }
                    }
                }
            }
        };
    }

    unpack_k4!(unpack_q4k_body, BlockQ4Kx8, weights_q4k_x8);
    unpack_k4!(unpack_q5k_body, BlockQ5Kx8, weights_q5k_x8);

    /// Eight rows of `blocks` 32-weight blocks each (unpacked in `band`: weights as unsigned
    /// bytes, each block's eight scales and, for q4k and q5k, eight mins) by one tile. A
    /// `CENTRE` (q4_0: 8, q5_0: 16): the weights are `q - CENTRE`, the offset taken off with the
    /// tile's sums; 0 (q4k, q5k): the mins' term is.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn multiply_blocks<const CENTRE: i32>(
        blocks: usize,
        band: &[u8],
        x: Tile,
        out: &mut [f32; 128],
    ) {
        let cols = blocks * 32;
        assert!(
            band.len() >= band_len(cols)
                && x.codes.len() >= cols * TILE
                && x.d.len() >= blocks * TILE
                && x.sums.len() >= blocks * TILE
                && x.dsum.len() >= blocks * TILE,
            "a band and a tile as wide as the group's rows"
        );
        let (codes, scales, mins) = (
            band.as_ptr(),
            band[BAND * cols..].as_ptr().cast::<f32>(),
            band[(BAND + 1) * cols..].as_ptr().cast::<f32>(),
        );
        let mut acc = [_mm512_setzero_ps(); BAND];
        for b in 0..blocks {
            let mut sums = [_mm512_setzero_si512(); BAND];
            for p in 0..8 {
                let piece = 8 * b + p;
                // SAFETY: 64 bytes at 64 · piece < 16 · cols, and four at 32 · piece + 4r
                // < 8 · cols, checked above.
                unsafe {
                    let xs = _mm512_loadu_si512(x.codes.as_ptr().add(64 * piece).cast());
                    for (r, s) in sums.iter_mut().enumerate() {
                        let at = codes.add(32 * piece + 4 * r).cast::<i32>();
                        *s = _mm512_dpbusd_epi32(*s, _mm512_set1_epi32(at.read_unaligned()), xs);
                    }
                }
            }
            // SAFETY: sixteen values at 16b within the tile, and the band's factors 8b + r < 8 · blocks of each kind, checked above.
            unsafe {
                let dx = _mm512_loadu_ps(x.d.as_ptr().add(TILE * b));
                if CENTRE != 0 {
                    let xsum = _mm512_loadu_si512(x.sums.as_ptr().add(TILE * b).cast());
                    let offset = _mm512_mullo_epi32(xsum, _mm512_set1_epi32(CENTRE));
                    for (r, (a, s)) in acc.iter_mut().zip(sums).enumerate() {
                        let scale = _mm512_set1_ps(scales.add(8 * b + r).read_unaligned());
                        let exact = _mm512_sub_epi32(s, offset);
                        *a = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(exact),
                            _mm512_mul_ps(dx, scale),
                            *a,
                        );
                    }
                } else {
                    let dsum = _mm512_loadu_ps(x.dsum.as_ptr().add(TILE * b));
                    for (r, (a, s)) in acc.iter_mut().zip(sums).enumerate() {
                        let scale = _mm512_set1_ps(scales.add(8 * b + r).read_unaligned());
                        let min = _mm512_set1_ps(mins.add(8 * b + r).read_unaligned());
                        *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dx, scale), *a);
                        *a = _mm512_fnmadd_ps(min, dsum, *a);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: sixteen f32 at 16r (r < 8) of 128.
            unsafe { _mm512_storeu_ps(out[TILE * r..].as_mut_ptr(), *a) };
        }
    }

    /// An interleaved q4_0 or q5_0 group into a band: chunk `c` of a block (row `k`'s bytes
    /// `4c..4c + 4` at `4k`) holds weights `4c..4c + 4` of every row in its low nibbles and
    /// `16 + 4c..` in its high ones, already in the band's order (pieces `c` and `4 + c`),
    /// q5_0's fifth bits ORed in; then the block's eight scales.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn unpack_nibbles_body<I: Nibbles>(w: Group<I>, band: &mut [u8]) {
        use crate::arch::x86::avx2::fifth_bits;
        const {
            assert!(!I::OFFSETS, "q4_1's offsets have no tile kernel");
        }
        let cols = w.len() * 32;
        let (codes, factors) = split_band(band, cols);
        let low = _mm256_set1_epi8(0x0f);
        for (b, g) in w.iter().enumerate() {
            for (c, chunk) in g.nibbles().chunks_exact(32).enumerate() {
                // SAFETY: 32 bytes.
                let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
                let mut lo = _mm256_and_si256(v, low);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
                if I::FIFTH {
                    lo = _mm256_or_si256(lo, fifth_bits(g.fifth()[c]));
                    hi = _mm256_or_si256(hi, fifth_bits(g.fifth()[4 + c]));
                }
                for (p, q) in [(c, lo), (4 + c, hi)] {
                    let piece = 8 * b + p;
                    let to = &mut codes[32 * piece..32 * piece + 32];
                    // SAFETY: 32 bytes, checked by the slice.
                    unsafe { _mm256_storeu_si256(to.as_mut_ptr().cast(), q) };
                }
            }
            let to = &mut factors[32 * b..32 * b + 32];
            // SAFETY: eight f16 (16 bytes) in, eight f32 (32 bytes, checked by the slice) out.
            unsafe {
                let d = _mm256_cvtph_ps(_mm_loadu_si128(g.scales().as_ptr().cast()));
                _mm256_storeu_ps(to.as_mut_ptr().cast(), d);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn unpack_body(w: Group<BlockQ6Kx8>, band: &mut [u8]) {
        let cols = w.len() * 256;
        let (codes, factors) = split_band(band, cols);
        let (centre, ones) = (_mm256_set1_epi8(32), _mm256_set1_epi8(1));
        for (sb, g) in w.iter().enumerate() {
            for j in 0..8 {
                let mut bias = _mm256_setzero_si256();
                for half in 0..2 {
                    let mut sum = _mm256_setzero_si256();
                    for (pp, v) in weights_q6k_x8(g, j, half).iter().enumerate() {
                        let signed = _mm256_sub_epi8(*v, centre);
                        let pairs = _mm256_maddubs_epi16(ones, signed);
                        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
                        let at = 32 * (64 * sb + 8 * j + 4 * half + pp);
                        let to = &mut codes[at..at + 32];
                        // SAFETY: 32 bytes, checked by the slice.
                        unsafe { _mm256_storeu_si256(to.as_mut_ptr().cast(), signed) };
                    }
                    let group = 2 * j + half;
                    // SAFETY: eight bytes at 8 · group (< 16) of 128.
                    let scales = unsafe {
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64(
                            g.scales[8 * group..8 * group + 8].as_ptr().cast(),
                        ))
                    };
                    bias = _mm256_add_epi32(bias, _mm256_mullo_epi32(sum, scales));
                }
                // Row r's 128 · Σ_g scale_g · Σ (q - 32) over block b's two groups.
                let b = 8 * sb + j;
                let to = &mut factors[32 * b..32 * b + 32];
                // SAFETY: 32 bytes, checked by the slice.
                unsafe {
                    _mm256_storeu_si256(to.as_mut_ptr().cast(), _mm256_slli_epi32::<7>(bias))
                };
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn multiply_body(w: Group<BlockQ6Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        let blocks = w.len() * 8;
        let cols = blocks * 32;
        assert!(
            band.len() >= band_len(cols)
                && x.codes.len() >= cols * TILE
                && x.d.len() >= blocks * TILE,
            "a band and a tile as wide as the group's rows"
        );
        let (codes, biases) = (band.as_ptr(), band[BAND * cols..].as_ptr().cast::<i32>());
        let flip = _mm512_set1_epi8(-128);
        let mut acc = [_mm512_setzero_ps(); BAND];
        for (sb, g) in w.iter().enumerate() {
            let d: [f32; BAND] = g.d.map(|h| h.to_f32());
            for j in 0..8 {
                let b = 8 * sb + j;
                let mut total = [_mm512_setzero_si512(); BAND];
                for half in 0..2 {
                    let mut sums = [_mm512_setzero_si512(); BAND];
                    for pp in 0..4 {
                        let piece = 8 * b + 4 * half + pp;
                        // SAFETY: 64 bytes at 64 · piece < 16 · cols, and four at
                        // 32 · piece + 4r < 8 · cols, checked above.
                        unsafe {
                            // The activations made unsigned (x + 128), the weights signed
                            // (q - 32): 128 Σ (q - 32) comes off with the band's biases.
                            let xs = _mm512_xor_si512(
                                _mm512_loadu_si512(x.codes.as_ptr().add(64 * piece).cast()),
                                flip,
                            );
                            for (r, s) in sums.iter_mut().enumerate() {
                                let at = codes.add(32 * piece + 4 * r).cast::<i32>();
                                let weights = _mm512_set1_epi32(at.read_unaligned());
                                *s = _mm512_dpbusd_epi32(*s, xs, weights);
                            }
                        }
                    }
                    for (r, (t, s)) in total.iter_mut().zip(sums).enumerate() {
                        let scale = _mm512_set1_epi32(g.scales[8 * (2 * j + half) + r] as i32);
                        *t = _mm512_add_epi32(*t, _mm512_mullo_epi32(s, scale));
                    }
                }
                // SAFETY: sixteen f32 at 16b < blocks · 16, and the band's biases 8b + r
                // < 8 · blocks, checked above.
                unsafe {
                    let dx = _mm512_loadu_ps(x.d.as_ptr().add(TILE * b));
                    for (r, (a, t)) in acc.iter_mut().zip(total).enumerate() {
                        let bias = _mm512_set1_epi32(biases.add(8 * b + r).read_unaligned());
                        let exact = _mm512_sub_epi32(t, bias);
                        let scale = _mm512_mul_ps(dx, _mm512_set1_ps(d[r]));
                        *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), scale, *a);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: sixteen f32 at 16r (r < 8) of 128.
            unsafe { _mm512_storeu_ps(out[TILE * r..].as_mut_ptr(), *a) };
        }
    }

    // The safe entry points for the level's table. SAFETY: only the table hands them out,
    // for the token the level's detection of its features makes.
    pub(super) fn unpack_q6k(w: Group<BlockQ6Kx8>, band: &mut [u8]) {
        unsafe { unpack_body(w, band) }
    }

    pub(super) fn multiply_q6k(w: Group<BlockQ6Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        unsafe { multiply_body(w, band, x, out) }
    }

    pub(super) fn unpack_q4k(w: Group<BlockQ4Kx8>, band: &mut [u8]) {
        unsafe { unpack_q4k_body(w, band) }
    }

    pub(super) fn unpack_q5k(w: Group<BlockQ5Kx8>, band: &mut [u8]) {
        unsafe { unpack_q5k_body(w, band) }
    }

    pub(super) fn multiply_q4k(w: Group<BlockQ4Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        unsafe { multiply_blocks::<0>(8 * w.len(), band, x, out) }
    }

    pub(super) fn multiply_q5k(w: Group<BlockQ5Kx8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        unsafe { multiply_blocks::<0>(8 * w.len(), band, x, out) }
    }

    pub(super) fn unpack_q5_0(w: Group<BlockQ5_0x8>, band: &mut [u8]) {
        unsafe { unpack_nibbles_body(w, band) }
    }

    pub(super) fn multiply_q5_0(w: Group<BlockQ5_0x8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        unsafe { multiply_blocks::<16>(w.len(), band, x, out) }
    }

    pub(super) fn unpack_q4_0(w: Group<BlockQ4_0x8>, band: &mut [u8]) {
        unsafe { unpack_nibbles_body(w, band) }
    }

    pub(super) fn multiply_q4_0(w: Group<BlockQ4_0x8>, band: &[u8], x: Tile, out: &mut [f32; 128]) {
        unsafe { multiply_blocks::<8>(w.len(), band, x, out) }
    }
}
