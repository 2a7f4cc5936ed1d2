//! Dense f32 rows by tiles of 32 tokens (`dispatch::GemmTile`): prompts' GEMMs on f32, f16
//! and bf16 weights. The activations come laid out token-minor, so one vector holds one value
//! of 8 (AVX2) or 16 (AVX-512) tokens, and each weight is broadcast from its row as it is:
//! the rows need no packing. Each output is one chain of FMAs over the row in order, from zero,
//! whatever the vectors' width, so `avx2` and the AVX-512 levels give the same bits.
//!
//! `avx2` runs six rows by sixteen tokens at a time (twelve accumulators of sixteen
//! registers); the AVX-512 levels twelve rows by 32 tokens (24 of 32).

use crate::dispatch::{GEMM_ROWS, GEMM_TOKENS};
use std::arch::x86_64::*;

type Out = [f32; GEMM_ROWS * GEMM_TOKENS];

/// The first weight of each of `w`'s rows; rows past the last repeat it (their outputs are
/// computed and not read).
fn row_starts(xt: &[f32], w: &[f32]) -> (usize, [*const f32; GEMM_ROWS]) {
    let cols = xt.len() / GEMM_TOKENS;
    assert!(
        cols > 0 && xt.len() == cols * GEMM_TOKENS,
        "a tile of activations"
    );
    let rows = w.len() / cols;
    assert!(
        (1..=GEMM_ROWS).contains(&rows) && w.len() == rows * cols,
        "1 to {GEMM_ROWS} whole rows"
    );
    (
        cols,
        std::array::from_fn(|i| w[i.min(rows - 1) * cols..].as_ptr()),
    )
}

/// Six rows by sixteen tokens: `out[32i + j]` for rows `i < 6` and tokens `j < 16` of the
/// tile at `xt` (its row stride 32).
///
/// # Safety
/// `xt` holds `32 × cols` floats from the first token, each row `cols`, `out` 6 × 32.
#[target_feature(enable = "avx2,fma")]
unsafe fn six_by_sixteen(xt: *const f32, rows: &[*const f32], cols: usize, out: *mut f32) {
    let rows: &[*const f32; 6] = rows.try_into().expect("six rows");
    let mut acc = [[_mm256_setzero_ps(); 2]; 6];
    for k in 0..cols {
        // SAFETY: k < cols; the caller's bounds.
        let x = unsafe {
            [
                _mm256_loadu_ps(xt.add(GEMM_TOKENS * k)),
                _mm256_loadu_ps(xt.add(GEMM_TOKENS * k + 8)),
            ]
        };
        for (acc, row) in acc.iter_mut().zip(rows) {
            // SAFETY: as above.
            let w = _mm256_set1_ps(unsafe { *row.add(k) });
            acc[0] = _mm256_fmadd_ps(x[0], w, acc[0]);
            acc[1] = _mm256_fmadd_ps(x[1], w, acc[1]);
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: the caller's bounds.
        unsafe {
            _mm256_storeu_ps(out.add(GEMM_TOKENS * i), acc[0]);
            _mm256_storeu_ps(out.add(GEMM_TOKENS * i + 8), acc[1]);
        }
    }
}

/// Twelve rows by `16 × V` tokens.
///
/// # Safety
/// As [`six_by_sixteen`], `out` 12 × 32, and the AVX-512 F feature.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn twelve_by<const V: usize>(
    xt: *const f32,
    rows: &[*const f32; GEMM_ROWS],
    cols: usize,
    out: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; GEMM_ROWS];
    for k in 0..cols {
        // SAFETY: k < cols; the caller's bounds.
        let x: [__m512; V] =
            std::array::from_fn(|v| unsafe { _mm512_loadu_ps(xt.add(GEMM_TOKENS * k + 16 * v)) });
        for (acc, row) in acc.iter_mut().zip(rows) {
            // SAFETY: as above.
            let w = _mm512_set1_ps(unsafe { *row.add(k) });
            for (a, x) in acc.iter_mut().zip(x) {
                *a = _mm512_fmadd_ps(x, w, *a);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: the caller's bounds.
            unsafe { _mm512_storeu_ps(out.add(GEMM_TOKENS * i + 16 * v), *a) };
        }
    }
}

/// The `avx2` level's tile: six rows by sixteen tokens at a time, skipping halves without
/// rows or tokens.
pub(in crate::arch::x86) fn tile_avx2(xt: &[f32], w: &[f32], tokens: usize, out: &mut Out) {
    let (cols, rows) = row_starts(xt, w);
    assert!(tokens <= GEMM_TOKENS, "a tile's tokens");
    // Both halves of the rows by one half of the tile while it is in L1.
    for part in 0..tokens.div_ceil(16) {
        for half in 0..(w.len() / cols).div_ceil(6) {
            // SAFETY: only the avx2 table (made from a detected token) hands this out; the tile
            // is 32 × cols, each row cols, and out 12 × 32 (row 6 × half, token 16 × part).
            unsafe {
                six_by_sixteen(
                    xt.as_ptr().add(16 * part),
                    &rows[6 * half..6 * half + 6],
                    cols,
                    out.as_mut_ptr().add(GEMM_TOKENS * 6 * half + 16 * part),
                )
            }
        }
    }
}

/// The AVX-512 levels' tile: twelve rows by 32 tokens, or by 16 where the tile has no more.
pub(in crate::arch::x86) fn tile_avx512(xt: &[f32], w: &[f32], tokens: usize, out: &mut Out) {
    let (cols, rows) = row_starts(xt, w);
    assert!(tokens <= GEMM_TOKENS, "a tile's tokens");
    // SAFETY: only the AVX-512 levels' tables (made from detected tokens) hand this out; the
    // tile is 32 × cols, each row cols, and out 12 × 32.
    unsafe {
        if tokens > 16 {
            twelve_by::<2>(xt.as_ptr(), &rows, cols, out.as_mut_ptr())
        } else {
            twelve_by::<1>(xt.as_ptr(), &rows, cols, out.as_mut_ptr())
        }
    }
}
