//! Products: several matrices by the same activations in one pool operation (q/k/v,
//! gate/up), each thread streaming its own rows of every matrix once; by interleaved groups,
//! row by row, or as GEMMs on dequantized tiles.

use super::{Activations, Matrix, QMatrix, QuantBlock};
use crate::dispatch::{GemmTile, Rows16, Rows8, Tiled, GEMM_ROWS, GEMM_TOKENS};
use crate::repack::{Interleaved, Repacked, ROWS};
use crate::runtime::SharedOut;
use crate::tiles::{band_len, BAND, TILE};
use crate::{Kernels, Pool};

/// Tokens whose activations one pass over a weight row multiplies: few enough that their
/// quantized activations stay in the L1/L2 cache beside the row.
const TOKEN_TILE: usize = 16;

/// Rows of a block-format matrix dequantized at once for GEMMs (60 rows of 4096 f32: under
/// 1 MiB), a multiple of the GEMM tiles' rows.
const DEQUANTIZED_ROWS: usize = 5 * GEMM_ROWS;

impl Matrix {
    /// For interleaved matrices, the products of every group whose first row is in `rows`
    /// with `tokens` of `x` (so each group belongs to one thread); `false` for the others.
    fn group_products(
        &self,
        k: &Kernels,
        rows: std::ops::Range<usize>,
        x: &Activations,
        tokens: std::ops::Range<usize>,
        out: &SharedOut,
    ) -> bool {
        fn groups<I: Interleaved, X>(
            m: &Repacked<I>,
            (eight, sixteen): (Rows8<I, X>, Option<Rows16<I, X>>),
            rows: std::ops::Range<usize>,
            x: &[X],
            tokens: std::ops::Range<usize>,
            out: &SharedOut,
        ) {
            let mut results = [0f32; 2 * ROWS * TOKEN_TILE];
            let (mut g, end) = (rows.start.div_ceil(ROWS), rows.end.div_ceil(ROWS));
            while g < end {
                // A pair of groups at once where they are stored together (a thread's rows
                // start at a multiple of `unit`, so at a pair's first group).
                let n = if g < 2 * m.pairs() {
                    let results = &mut results[..tokens.len() * 2 * ROWS];
                    let kernel = sixteen.expect("pairs only where the level has the kernel");
                    kernel(m.pair(g / 2), x, tokens.clone(), results);
                    2 * ROWS
                } else {
                    let results = &mut results[..tokens.len() * ROWS];
                    eight(m.group(g), x, tokens.clone(), results);
                    ROWS
                };
                for (t, row) in tokens.clone().zip(results.chunks_exact(n)) {
                    // SAFETY: the rows of groups g.. (n of them) of every token belong to this
                    // thread alone; t * rows + 8g + n ≤ tokens × rows = out.len().
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            row.as_ptr(),
                            out.at(t * m.rows + g * ROWS),
                            n,
                        )
                    };
                }
                g += n / ROWS;
            }
        }
        let missing = "interleaved only where the level has the kernel";
        match self {
            Matrix::Q4_0x8(m) => {
                let kernels = (k.q4_0.rows8.expect(missing), k.q4_0.rows16);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q4_1x8(m) => {
                let kernels = (k.q4_1.rows8.expect(missing), k.q4_1.rows16);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q8_0x8(m) => {
                let kernels = (k.q8_0.rows8.expect(missing), k.q8_0.rows16);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q5_0x8(m) => {
                let kernels = (k.q5_0.rows8.expect(missing), k.q5_0.rows16);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q5_1x8(m) => {
                let kernels = (k.q5_1.rows8.expect(missing), k.q5_1.rows16);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q4Kx8(m) => {
                let kernels = (k.q4k.rows8.expect(missing), None);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q5Kx8(m) => {
                let kernels = (k.q5k.rows8.expect(missing), None);
                groups(m, kernels, rows, &x.q8, tokens, out)
            }
            Matrix::Q6Kx8(m) => {
                let kernels = (k.q6k.rows8.expect(missing), None);
                groups(m, kernels, rows, x.acts().groups, tokens, out)
            }
            _ => return false,
        }
        true
    }

    /// Whether prompts of at least a tile of tokens multiply this matrix by tiles.
    pub(super) fn tiled(&self, k: &Kernels) -> bool {
        match self {
            Matrix::Q4_0x8(_) => k.q4_0.tiled.is_some(),
            Matrix::Q5_0x8(_) => k.q5_0.tiled.is_some(),
            Matrix::Q4Kx8(_) => k.q4k.tiled.is_some(),
            Matrix::Q5Kx8(_) => k.q5k.tiled.is_some(),
            Matrix::Q6Kx8(_) => k.q6k.tiled.is_some(),
            _ => false,
        }
    }

    /// For matrices multiplied by tiles ([`Self::tiled`]), the products of every group whose
    /// first row is in `rows` with every token, each group's weights unpacked once into
    /// `band`; `false` for the others.
    fn tiled_products(
        &self,
        k: &Kernels,
        rows: std::ops::Range<usize>,
        x: &Activations,
        band: &mut [u8],
        out: &SharedOut,
    ) -> bool {
        /// An interleaved matrix's groups (alone or in pairs) whose first row is in `rows`,
        /// by the level's tile kernels.
        fn interleaved<I: Interleaved>(
            m: &Repacked<I>,
            kernels: Option<Tiled<I>>,
            rows: std::ops::Range<usize>,
            x: &Activations,
            band: &mut [u8],
            out: &SharedOut,
        ) {
            let kernels = kernels.expect(MISSING);
            let tiles = x.tiles();
            let mut results = [0f32; BAND * TILE];
            for g in rows.start.div_ceil(ROWS)..rows.end.div_ceil(ROWS) {
                let group = m.blocks_of(g);
                (kernels.unpack)(group, band);
                for t0 in 0..tiles.count() {
                    (kernels.multiply)(group, band, tiles.tile(t0), &mut results);
                    for i in 0..TILE.min(x.tokens - t0 * TILE) {
                        let t = t0 * TILE + i;
                        for r in 0..BAND {
                            // SAFETY: the rows of group g of every token belong to this thread
                            // alone; t * rows + 8g + r < tokens × rows = out.len().
                            unsafe { *out.at(t * m.rows + g * ROWS + r) = results[TILE * r + i] };
                        }
                    }
                }
            }
        }
        const MISSING: &str = "tiled only where the level has the kernel";
        if !self.tiled(k) {
            return false;
        }
        match self {
            Matrix::Q4_0x8(m) => interleaved(m, k.q4_0.tiled, rows, x, band, out),
            Matrix::Q4Kx8(m) => interleaved(m, k.q4k.tiled, rows, x, band, out),
            Matrix::Q5Kx8(m) => interleaved(m, k.q5k.tiled, rows, x, band, out),
            Matrix::Q6Kx8(m) => interleaved(m, k.q6k.tiled, rows, x, band, out),
            Matrix::Q5_0x8(m) => interleaved(m, k.q5_0.tiled, rows, x, band, out),
            _ => unreachable!("`Matrix::tiled` names the matrices with tiles"),
        }
        true
    }

    /// `out[t] = row r · x[t]` for the tokens `tokens` of `x`.
    fn row_products(
        &self,
        k: &Kernels,
        r: usize,
        x: &Activations,
        tokens: std::ops::Range<usize>,
        mut out: impl FnMut(usize, f32),
    ) {
        fn blocks<B: QuantBlock>(
            m: &QMatrix<B>,
            k: &Kernels,
            r: usize,
            x: &Activations,
            tokens: std::ops::Range<usize>,
            out: &mut impl FnMut(usize, f32),
        ) {
            let per_row = m.cols / B::WEIGHTS;
            let row = &m.blocks[r * per_row..(r + 1) * per_row];
            let mut results = [0f32; TOKEN_TILE];
            let results = &mut results[..tokens.len()];
            B::products(k, row, x.acts(), tokens.clone(), results);
            for (t, &v) in tokens.zip(results.iter()) {
                out(t, v);
            }
        }
        match self {
            Matrix::F32(m) => {
                let row = &m.data[r * m.cols..(r + 1) * m.cols];
                for t in tokens {
                    out(t, (k.dense.f32)(row, x.f32_row(t)));
                }
            }
            Matrix::F16(m) => {
                for t in tokens {
                    out(t, (k.dense.f16)(m.row(r), x.f32_row(t)));
                }
            }
            Matrix::BF16(m) => {
                for t in tokens {
                    out(t, (k.dense.bf16)(m.row(r), x.f32_row(t)));
                }
            }
            Matrix::Q8_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_1(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q5_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q5_1(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q2K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q3K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q5K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q6K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::IQ4NL(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_0x8(_)
            | Matrix::Q4_1x8(_)
            | Matrix::Q5_0x8(_)
            | Matrix::Q5_1x8(_)
            | Matrix::Q8_0x8(_)
            | Matrix::Q4Kx8(_)
            | Matrix::Q5Kx8(_)
            | Matrix::Q6Kx8(_) => {
                unreachable!("interleaved matrices multiply by groups")
            }
        }
    }

    /// Rows a thread's share is a multiple of (whole groups, whole pairs of them where they
    /// are stored together).
    fn unit(&self) -> usize {
        match self {
            Matrix::Q4_0x8(m) => m.unit(),
            Matrix::Q4_1x8(m) => m.unit(),
            Matrix::Q5_0x8(m) => m.unit(),
            Matrix::Q5_1x8(m) => m.unit(),
            Matrix::Q4Kx8(m) => m.unit(),
            Matrix::Q5Kx8(m) => m.unit(),
            Matrix::Q6Kx8(m) => m.unit(),
            Matrix::Q8_0x8(m) => m.unit(),
            _ => ROWS,
        }
    }

    /// Whether prompts multiply this matrix's integers by 8-bit activations, several tokens
    /// per pass over its weights (interleaved rows and k-quant rows, four tokens at a time),
    /// rather than by GEMM on dequantized tiles.
    fn integer_prefill(&self) -> bool {
        matches!(
            self,
            Matrix::Q4_0x8(_)
                | Matrix::Q4_1x8(_)
                | Matrix::Q5_0x8(_)
                | Matrix::Q5_1x8(_)
                | Matrix::Q8_0x8(_)
                | Matrix::Q4Kx8(_)
                | Matrix::Q5Kx8(_)
                | Matrix::Q6Kx8(_)
                | Matrix::Q4K(_)
                | Matrix::Q5K(_)
                | Matrix::Q6K(_)
        )
    }

    /// Whether its products read the activations grouped by super-block ([`super::Acts::groups`]).
    fn grouped(&self) -> bool {
        matches!(
            self,
            Matrix::Q2K(_)
                | Matrix::Q3K(_)
                | Matrix::Q4K(_)
                | Matrix::Q5K(_)
                | Matrix::Q6K(_)
                | Matrix::Q6Kx8(_)
        )
    }
}

/// One product of an operation: `out[t * rows + r] = matrix row r · x[t]` for every token.
pub struct Product<'a> {
    /// The matrix.
    pub matrix: &'a Matrix,
    /// Its outputs, token-major: `out[t * rows + r]`.
    pub out: &'a mut [f32],
}

/// What each thread does with its rows once its products are done, in the same operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Nothing more.
    Nothing,
    /// `products[0] = silu(products[0]) * products[1]`, on the rows the thread computed (the
    /// feed-forward's gate and up: both must have as many rows).
    SiluMul,
}

/// Runs every product of `products` on the same activations in one pool operation (one
/// barrier): each matrix's rows are split across the threads in contiguous chunks of whole
/// interleaved groups, so each thread streams its own part of every matrix once, and owns the
/// same rows of every product (which [`Then`] relies on).
pub fn multiply(
    pool: &mut Pool,
    k: &Kernels,
    x: &mut Activations,
    products: &mut [Product],
    then: Then,
) {
    // Fixed-size bookkeeping: nothing is allocated per operation.
    assert!(
        products.len() <= MAX_PRODUCTS,
        "at most {MAX_PRODUCTS} products at once"
    );
    let mut parts: [Option<(&Matrix, SharedOut)>; MAX_PRODUCTS] = Default::default();
    for (part, p) in parts.iter_mut().zip(products.iter_mut()) {
        assert_eq!(p.matrix.cols(), x.cols, "activations as wide as the rows");
        assert!(
            x.quantized || !p.matrix.quantized(),
            "block formats read quantized activations"
        );
        assert_eq!(
            p.out.len(),
            p.matrix.rows() * x.tokens,
            "one output per row and token"
        );
        *part = Some((p.matrix, SharedOut(p.out.as_mut_ptr())));
    }
    if then == Then::SiluMul {
        assert!(
            products.len() == 2 && products[0].matrix.rows() == products[1].matrix.rows(),
            "silu(gate) * up needs two products of as many rows"
        );
    }
    let threads = pool.threads();
    // Each thread's rows start at a multiple of every matrix's unit (and so the same rows of
    // each product of as many rows, which `Then` relies on).
    let unit = parts
        .iter()
        .flatten()
        .map(|(m, _)| m.unit())
        .max()
        .unwrap_or(ROWS);
    if parts.iter().flatten().any(|(m, _)| m.grouped()) {
        x.group();
    }
    let tiled = x.tokens >= TILE && parts.iter().flatten().any(|(m, _)| m.tiled(k));
    if tiled {
        x.tile();
        x.bands.resize(band_len(x.cols) * threads, 0);
    }
    // Matrices whose prompts run as GEMMs on f32 activations.
    let on_f32 = x.gemm;
    let gemm = |m: &Matrix| on_f32 && !(m.integer_prefill() || (tiled && m.tiled(k)));
    let tile = DEQUANTIZED_ROWS * x.cols;
    if parts.iter().flatten().any(|(m, _)| gemm(m)) {
        x.tiles.resize(tile * threads, 0.0);
        if k.dense.gemm.is_some() {
            x.transpose();
        }
    }
    let tiles = SharedOut(x.tiles.as_mut_ptr());
    let bands = SharedOut(x.bands.as_mut_ptr());
    let x = &*x;
    pool.run(&|thread| {
        let rows_of = |n: usize| {
            let chunk = n.div_ceil(threads).div_ceil(unit) * unit;
            (thread * chunk).min(n)..((thread + 1) * chunk).min(n)
        };
        if x.gemm {
            // SAFETY: each thread has its own tile.
            let tile = unsafe { std::slice::from_raw_parts_mut(tiles.at(thread * tile), tile) };
            for (matrix, out) in parts.iter().flatten() {
                if gemm(matrix) {
                    gemm_rows(k, matrix, rows_of(matrix.rows()), x, out, tile);
                }
            }
        }
        if tiled {
            let size = band_len(x.cols);
            // SAFETY: each thread has its own band.
            let band = unsafe { std::slice::from_raw_parts_mut(bands.at(thread * size), size) };
            for (matrix, out) in parts.iter().flatten() {
                matrix.tiled_products(k, rows_of(matrix.rows()), x, band, out);
            }
        }
        for tile in (0..x.tokens).step_by(TOKEN_TILE) {
            let tokens = tile..(tile + TOKEN_TILE).min(x.tokens);
            for (matrix, out) in parts.iter().flatten() {
                if gemm(matrix) || (tiled && matrix.tiled(k)) {
                    continue;
                }
                let n = matrix.rows();
                let rows = rows_of(n);
                if matrix.group_products(k, rows.clone(), x, tokens.clone(), out) {
                    continue;
                }
                for r in rows {
                    matrix.row_products(k, r, x, tokens.clone(), |t, v| {
                        // SAFETY: row r of this product belongs to this thread alone, and
                        // t * n + r < tokens × rows = out.len().
                        unsafe { *out.at(t * n + r) = v };
                    });
                }
            }
        }
        if let (Then::SiluMul, [Some((gate, g)), Some((_, u)), ..]) = (then, &parts) {
            let (n, rows) = (gate.rows(), rows_of(gate.rows()));
            for t in 0..x.tokens {
                // SAFETY: these rows of both products are this thread's alone, written above
                // by this thread; t * n + rows.end <= tokens × rows = out.len().
                let (gate, up) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(g.at(t * n + rows.start), rows.len()),
                        std::slice::from_raw_parts(u.at(t * n + rows.start), rows.len()),
                    )
                };
                (k.ops.silu_mul)(gate, up);
            }
        }
    });
}

/// `out[t * rows + r] = row r · x[t]` for `rows` of `matrix` and every token, as GEMMs over
/// tiles of rows (dequantized into `tile` for block formats): the level's GEMM tiles where it
/// has them, the `gemm` crate's elsewhere.
fn gemm_rows(
    k: &Kernels,
    matrix: &Matrix,
    rows: std::ops::Range<usize>,
    x: &Activations,
    out: &SharedOut,
    tile: &mut [f32],
) {
    let cols = x.cols;
    let mut r = rows.start;
    while r < rows.end {
        let (weights, count) = match matrix {
            Matrix::F32(m) => (&m.data[r * cols..rows.end * cols], rows.end - r),
            _ => {
                let count = DEQUANTIZED_ROWS.min(rows.end - r);
                for (i, row) in tile.chunks_exact_mut(cols).take(count).enumerate() {
                    matrix.row_into(r + i, row);
                }
                (&tile[..count * cols], count)
            }
        };
        match k.dense.gemm {
            Some(kernel) => tiled_gemm(kernel, weights, r, matrix.rows(), x, out),
            None => crate_gemm(weights, r, matrix.rows(), x, out),
        }
        r += count;
    }
}

/// `weights` (rows `first..` of a matrix of `n` rows) by every token, through the level's
/// GEMM tiles: for each twelve rows, every tile of tokens.
fn tiled_gemm(
    kernel: GemmTile,
    weights: &[f32],
    first: usize,
    n: usize,
    x: &Activations,
    out: &SharedOut,
) {
    let mut results = [0f32; GEMM_ROWS * GEMM_TOKENS];
    for (b, rows) in weights.chunks(GEMM_ROWS * x.cols).enumerate() {
        let first = first + b * GEMM_ROWS;
        for i in 0..x.tokens.div_ceil(GEMM_TOKENS) {
            let (xt, tokens) = x.transposed(i);
            kernel(xt, rows, tokens, &mut results);
            for (r, row) in results
                .chunks_exact(GEMM_TOKENS)
                .take(rows.len() / x.cols)
                .enumerate()
            {
                for (j, &v) in row[..tokens].iter().enumerate() {
                    // SAFETY: these rows of every token are this thread's alone, and
                    // (t, first + r) lies within tokens × n = out.len().
                    unsafe { *out.at((i * GEMM_TOKENS + j) * n + first + r) = v };
                }
            }
        }
    }
}

/// `weights` (rows `first..` of a matrix of `n` rows) by every token, through the `gemm`
/// crate.
fn crate_gemm(weights: &[f32], first: usize, n: usize, x: &Activations, out: &SharedOut) {
    let cols = x.cols;
    let count = weights.len() / cols;
    // out (tokens × count, row stride n) = x (tokens × cols) · weightsᵀ (cols × count).
    // SAFETY: the pointers cover tokens × cols activations, count × cols weights and the
    // outputs (t, first..first + count) of every token, which this thread alone writes.
    unsafe {
        gemm::gemm(
            x.tokens,
            count,
            cols,
            out.at(first),
            1,
            n as isize,
            false,
            x.f32.as_ptr(),
            1,
            cols as isize,
            weights.as_ptr(),
            cols as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The most products one [`multiply`] runs (q, k and v).
pub const MAX_PRODUCTS: usize = 3;
