//! A weight matrix in whichever format its file stores it, and the products a forward pass
//! makes with it: several matrices by the same activations in one pool operation (q/k/v,
//! gate/up). Three paths:
//! - interleaved groups of eight rows (`repack`, q8_0/q4_0/q4_1 on SIMD levels, q4k on x86):
//!   the level's group kernel by activations quantized to 8 bits, four tokens per pass, decode
//!   and prefill;
//! - dot products (decode and short prompts otherwise; k-quant prompts too): one row by one
//!   token's activations (8-bit for block formats, f32 for f32/f16/bf16), each row reused for
//!   a tile of tokens while it is in cache (the k-quant kernels take four tokens per pass);
//! - GEMM (prefill, the remaining matrices): each thread widens tiles of its rows to f32 (f32
//!   weights are used in place) and multiplies them by every token's f32 activations with the
//!   `gemm` crate's register-tiled kernels, picked at run time by CPU features.

use super::blocks::{
    group_q8, Block, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8,
    BlockQ8_0, BlockQ8x8, QK, QK_K,
};
use super::repack::{
    BlockQ4Kx8, BlockQ4_0x8, BlockQ4_1x8, BlockQ8_0x8, Interleaved, Repacked, ROWS,
};
use super::{ops, Acts, F32Matrix, Kernels, Pool, QMatrix, QuantBlock, Rows16, Rows8, SharedOut};
use super::{Arena, Error, Result, WeightVec};
use half::{bf16, f16};

/// The storage types a [`Matrix`] holds, by GGUF's type names.
pub const FORMATS: &[&str] = &[
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4k", "q6k",
];

/// A matrix of half-precision weights (`f16` or `bf16`), row-major, kept in its format.
pub struct HalfMatrix<H> {
    pub rows: usize,
    pub cols: usize,
    pub data: WeightVec<H>,
}

impl<H: Copy + Into<f32>> HalfMatrix<H> {
    fn row(&self, r: usize) -> &[H] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r` widened to f32.
    fn row_into(&self, r: usize, out: &mut [f32]) {
        for (o, &v) in out.iter_mut().zip(self.row(r)) {
            *o = v.into();
        }
    }
}

pub enum Matrix {
    F32(F32Matrix),
    F16(HalfMatrix<f16>),
    BF16(HalfMatrix<bf16>),
    Q8_0(QMatrix<BlockQ8_0>),
    Q4_0(QMatrix<BlockQ4_0>),
    Q4_1(QMatrix<BlockQ4_1>),
    Q5_0(QMatrix<BlockQ5_0>),
    Q5_1(QMatrix<BlockQ5_1>),
    Q4K(QMatrix<BlockQ4K>),
    Q6K(QMatrix<BlockQ6K>),
    /// Rows repacked in groups of eight (on levels with such kernels).
    Q4_0x8(Repacked<BlockQ4_0x8>),
    Q4_1x8(Repacked<BlockQ4_1x8>),
    Q4Kx8(Repacked<BlockQ4Kx8>),
    Q8_0x8(Repacked<BlockQ8_0x8>),
}

/// Hands each chunk of a tensor's bytes, in order, to its argument (`Matrix::read`).
type Chunks<'a, E> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<(), E> + 'a;

/// Tokens whose activations one pass over a weight row multiplies: few enough that their
/// quantized activations stay in the L1/L2 cache beside the row.
const TOKEN_TILE: usize = 16;

/// Rows read from the file at a time when loading (a multiple of 16: whole pairs of groups).
const CHUNK_ROWS: usize = 64;

/// Rows of a block-format matrix one GEMM tile dequantizes (64 rows of 4096 f32: 1 MiB).
const GEMM_ROWS: usize = 64;

impl Matrix {
    /// Bytes a `rows × cols` matrix in `format` takes in a GGUF file; refuses shapes the
    /// format cannot hold (rows not whole blocks) and sizes that overflow.
    pub fn gguf_bytes(name: &str, format: &str, rows: usize, cols: usize) -> Result<usize> {
        let bad = |problem: String| Error::BadField {
            path: name.into(),
            field: "shape".into(),
            problem,
        };
        let (per, block) = match format {
            "f32" => (1, 4),
            "f16" | "bf16" => (1, 2),
            "q8_0" => (QK, BlockQ8_0::BYTES),
            "q4_0" => (QK, BlockQ4_0::BYTES),
            "q4_1" => (QK, BlockQ4_1::BYTES),
            "q5_0" => (QK, BlockQ5_0::BYTES),
            "q5_1" => (QK, BlockQ5_1::BYTES),
            "q4k" => (QK_K, BlockQ4K::BYTES),
            "q6k" => (QK_K, BlockQ6K::BYTES),
            other => {
                return Err(Error::BadField {
                    path: name.into(),
                    field: "type".into(),
                    problem: format!("is {other}; the tuned kernels read {}", FORMATS.join(", ")),
                })
            }
        };
        if rows == 0 || cols == 0 || !cols.is_multiple_of(per) {
            return Err(bad(format!(
                "{rows} rows of {cols} weights: {format} needs a positive row length that is a multiple of {per}"
            )));
        }
        rows.checked_mul(cols / per)
            .and_then(|n| n.checked_mul(block))
            .ok_or_else(|| bad(format!("{rows} x {cols} overflows")))
    }

    /// Reads a `rows × cols` matrix in `format`, its GGUF bytes fetched a chunk of whole row
    /// groups at a time by `fill` (which fills its buffer with the tensor's next bytes): loading
    /// holds the matrix being built and one chunk, never a second copy of the tensor. `fill`'s
    /// errors (the caller's: a file's) pass through; the kernels' own become `E`.
    pub fn read<E: From<Error>>(
        name: &str,
        format: &str,
        rows: usize,
        cols: usize,
        kernels: &Kernels,
        arena: &mut Arena,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<Matrix, E> {
        let total = Matrix::gguf_bytes(name, format, rows, cols)?;
        let row_bytes = total / rows;
        let groups = rows.is_multiple_of(ROWS);
        let mut chunk = Vec::new();
        // Calls `take` with each chunk of up to 64 rows (whole groups of eight).
        let mut chunks = |take: &mut dyn FnMut(&[u8])| -> Result<(), E> {
            for start in (0..rows).step_by(CHUNK_ROWS) {
                chunk.resize(CHUNK_ROWS.min(rows - start) * row_bytes, 0);
                fill(&mut chunk)?;
                take(&chunk);
            }
            Ok(())
        };
        /// A row-major block matrix, its blocks read from every chunk.
        fn plain<B: QuantBlock, E>(
            arena: &mut Arena,
            rows: usize,
            cols: usize,
            chunks: &mut Chunks<E>,
        ) -> Result<QMatrix<B>, E> {
            let mut blocks = arena.vec(rows * cols / B::WEIGHTS);
            chunks(&mut |b| blocks.extend(b.chunks_exact(B::BYTES).map(B::read)))?;
            Ok(QMatrix { rows, cols, blocks })
        }
        /// Rows interleaved in groups of eight (paired where the level multiplies pairs).
        fn grouped<I: Interleaved, E>(
            arena: &mut Arena,
            rows: usize,
            cols: usize,
            paired: bool,
            chunks: &mut Chunks<E>,
        ) -> Result<Repacked<I>, E> {
            let mut m = Repacked::with_capacity(arena, rows, cols, paired);
            chunks(&mut |b| m.extend_from_gguf_bytes(b))?;
            Ok(m)
        }
        Ok(match format {
            "f32" => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(
                        b.chunks_exact(4)
                            .map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]])),
                    )
                })?;
                Matrix::F32(F32Matrix { rows, cols, data })
            }
            "f16" => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(b.chunks_exact(2).map(|v| f16::from_le_bytes([v[0], v[1]])))
                })?;
                Matrix::F16(HalfMatrix { rows, cols, data })
            }
            "bf16" => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(b.chunks_exact(2).map(|v| bf16::from_le_bytes([v[0], v[1]])))
                })?;
                Matrix::BF16(HalfMatrix { rows, cols, data })
            }
            "q8_0" if groups && kernels.rows8_q8_0.is_some() => {
                let paired = kernels.rows16_q8_0.is_some();
                Matrix::Q8_0x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            "q4_0" if groups && kernels.rows8_q4_0.is_some() => {
                let paired = kernels.rows16_q4_0.is_some();
                Matrix::Q4_0x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            "q4_1" if groups && kernels.rows8_q4_1.is_some() => {
                let paired = kernels.rows16_q4_1.is_some();
                Matrix::Q4_1x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            "q4k" if groups && kernels.rows8_q4k.is_some() => {
                Matrix::Q4Kx8(grouped(arena, rows, cols, false, &mut chunks)?)
            }
            "q8_0" => Matrix::Q8_0(plain(arena, rows, cols, &mut chunks)?),
            "q4_0" => Matrix::Q4_0(plain(arena, rows, cols, &mut chunks)?),
            "q4_1" => Matrix::Q4_1(plain(arena, rows, cols, &mut chunks)?),
            "q5_0" => Matrix::Q5_0(plain(arena, rows, cols, &mut chunks)?),
            "q5_1" => Matrix::Q5_1(plain(arena, rows, cols, &mut chunks)?),
            "q4k" => Matrix::Q4K(plain(arena, rows, cols, &mut chunks)?),
            "q6k" => Matrix::Q6K(plain(arena, rows, cols, &mut chunks)?),
            other => unreachable!("gguf_bytes refused {other} above"),
        })
    }

    pub fn rows(&self) -> usize {
        match self {
            Matrix::F32(m) => m.rows,
            Matrix::F16(m) => m.rows,
            Matrix::BF16(m) => m.rows,
            Matrix::Q8_0(m) => m.rows,
            Matrix::Q4_0(m) => m.rows,
            Matrix::Q4_1(m) => m.rows,
            Matrix::Q5_0(m) => m.rows,
            Matrix::Q5_1(m) => m.rows,
            Matrix::Q4K(m) => m.rows,
            Matrix::Q6K(m) => m.rows,
            Matrix::Q4_0x8(m) => m.rows,
            Matrix::Q4_1x8(m) => m.rows,
            Matrix::Q4Kx8(m) => m.rows,
            Matrix::Q8_0x8(m) => m.rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Matrix::F32(m) => m.cols,
            Matrix::F16(m) => m.cols,
            Matrix::BF16(m) => m.cols,
            Matrix::Q8_0(m) => m.cols,
            Matrix::Q4_0(m) => m.cols,
            Matrix::Q4_1(m) => m.cols,
            Matrix::Q5_0(m) => m.cols,
            Matrix::Q5_1(m) => m.cols,
            Matrix::Q4K(m) => m.cols,
            Matrix::Q6K(m) => m.cols,
            Matrix::Q4_0x8(m) => m.cols,
            Matrix::Q4_1x8(m) => m.cols,
            Matrix::Q4Kx8(m) => m.cols,
            Matrix::Q8_0x8(m) => m.cols,
        }
    }

    /// Bytes the weights take.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(m) => m.data.len() * 4,
            Matrix::F16(m) => m.data.len() * 2,
            Matrix::BF16(m) => m.data.len() * 2,
            Matrix::Q8_0(m) => m.blocks.len() * std::mem::size_of::<BlockQ8_0>(),
            Matrix::Q4_0(m) => m.blocks.len() * std::mem::size_of::<BlockQ4_0>(),
            Matrix::Q4_1(m) => m.blocks.len() * std::mem::size_of::<BlockQ4_1>(),
            Matrix::Q5_0(m) => m.blocks.len() * std::mem::size_of::<BlockQ5_0>(),
            Matrix::Q5_1(m) => m.blocks.len() * std::mem::size_of::<BlockQ5_1>(),
            Matrix::Q4K(m) => m.blocks.len() * std::mem::size_of::<BlockQ4K>(),
            Matrix::Q6K(m) => m.blocks.len() * std::mem::size_of::<BlockQ6K>(),
            Matrix::Q4_0x8(m) => m.groups.len() * std::mem::size_of::<BlockQ4_0x8>(),
            Matrix::Q4_1x8(m) => m.groups.len() * std::mem::size_of::<BlockQ4_1x8>(),
            Matrix::Q4Kx8(m) => m.groups.len() * std::mem::size_of::<BlockQ4Kx8>(),
            Matrix::Q8_0x8(m) => m.groups.len() * std::mem::size_of::<BlockQ8_0x8>(),
        }
    }

    /// Whether products read the activations quantized to 8 bits (every block format).
    pub fn quantized(&self) -> bool {
        !matches!(self, Matrix::F32(_) | Matrix::F16(_) | Matrix::BF16(_))
    }

    /// Row `r` as f32 (an embedding lookup: only the rows looked up are ever dequantized).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        fn blocks<B: QuantBlock>(m: &QMatrix<B>, r: usize, out: &mut [f32]) {
            let per_row = m.cols / B::WEIGHTS;
            for (b, o) in m.blocks[r * per_row..(r + 1) * per_row]
                .iter()
                .zip(out.chunks_exact_mut(B::WEIGHTS))
            {
                o.copy_from_slice(b.dequantize().as_ref());
            }
        }
        match self {
            Matrix::F32(m) => out.copy_from_slice(&m.data[r * m.cols..(r + 1) * m.cols]),
            Matrix::F16(m) => m.row_into(r, out),
            Matrix::BF16(m) => m.row_into(r, out),
            Matrix::Q8_0(m) => blocks(m, r, out),
            Matrix::Q4_0(m) => blocks(m, r, out),
            Matrix::Q4_1(m) => blocks(m, r, out),
            Matrix::Q5_0(m) => blocks(m, r, out),
            Matrix::Q5_1(m) => blocks(m, r, out),
            Matrix::Q4K(m) => blocks(m, r, out),
            Matrix::Q6K(m) => blocks(m, r, out),
            Matrix::Q4_0x8(m) => m.row_into(r, out),
            Matrix::Q4_1x8(m) => m.row_into(r, out),
            Matrix::Q4Kx8(m) => m.row_into(r, out),
            Matrix::Q8_0x8(m) => m.row_into(r, out),
        }
    }

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
        fn groups<I: Interleaved>(
            m: &Repacked<I>,
            (eight, sixteen): (Rows8<I>, Option<Rows16<I>>),
            rows: std::ops::Range<usize>,
            x: &Activations,
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
                    kernel(m.pair(g / 2), &x.q8, tokens.clone(), results);
                    2 * ROWS
                } else {
                    let results = &mut results[..tokens.len() * ROWS];
                    eight(m.group(g), &x.q8, tokens.clone(), results);
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
                let kernels = (k.rows8_q4_0.expect(missing), k.rows16_q4_0);
                groups(m, kernels, rows, x, tokens, out)
            }
            Matrix::Q4_1x8(m) => {
                let kernels = (k.rows8_q4_1.expect(missing), k.rows16_q4_1);
                groups(m, kernels, rows, x, tokens, out)
            }
            Matrix::Q8_0x8(m) => {
                let kernels = (k.rows8_q8_0.expect(missing), k.rows16_q8_0);
                groups(m, kernels, rows, x, tokens, out)
            }
            Matrix::Q4Kx8(m) => {
                let kernels = (k.rows8_q4k.expect(missing), None);
                groups(m, kernels, rows, x, tokens, out)
            }
            _ => return false,
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
                    out(t, (k.dot_f32)(row, x.f32_row(t)));
                }
            }
            Matrix::F16(m) => {
                for t in tokens {
                    out(t, (k.dot_f16_f32)(m.row(r), x.f32_row(t)));
                }
            }
            Matrix::BF16(m) => {
                for t in tokens {
                    out(t, (k.dot_bf16_f32)(m.row(r), x.f32_row(t)));
                }
            }
            Matrix::Q8_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_1(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q5_0(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q5_1(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q6K(m) => blocks(m, k, r, x, tokens, &mut out),
            Matrix::Q4_0x8(_) | Matrix::Q4_1x8(_) | Matrix::Q8_0x8(_) | Matrix::Q4Kx8(_) => {
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
            Matrix::Q4Kx8(m) => m.unit(),
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
                | Matrix::Q8_0x8(_)
                | Matrix::Q4Kx8(_)
                | Matrix::Q4K(_)
                | Matrix::Q6K(_)
        )
    }

    /// Whether its products read the activations grouped by super-block ([`Acts::groups`]).
    fn grouped(&self) -> bool {
        matches!(self, Matrix::Q4K(_) | Matrix::Q6K(_))
    }
}

/// The activations of `tokens` tokens, `cols` wide, in f32 and (for block formats) quantized
/// to 8-bit blocks once per operation. Buffers are kept and reused: no allocation per step
/// once they have grown to the largest operation.
#[derive(Default)]
pub struct Activations {
    pub cols: usize,
    pub tokens: usize,
    f32: Vec<f32>,
    q8: Vec<BlockQ8>,
    /// `q8` grouped eight blocks to a super-block, for k-quant rows: made by the first
    /// product that needs them after each `set`.
    groups: Vec<BlockQ8x8>,
    grouped: bool,
    /// `q8` holds these activations.
    quantized: bool,
    /// Products run as GEMMs on f32 activations.
    gemm: bool,
    /// Each thread's tile of dequantized weights (GEMM path).
    tiles: Vec<f32>,
}

/// RMSNorm (`ops::rms_norm`) applied to activations as they are taken.
#[derive(Clone, Copy)]
pub struct RmsNorm<'a> {
    pub weight: &'a [f32],
    pub eps: f32,
}

/// How the next products read their activations.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// Normed first (the products right after a layer's norm), or taken as they are.
    pub norm: Option<RmsNorm<'a>>,
    /// Quantized to 8-bit blocks, for block-format weights.
    pub quantize: bool,
    /// Run as GEMMs on f32 activations; block-format weights then see them rounded through
    /// 8 bits, as the dot-product path and llama.cpp's products do, so a prompt computes the
    /// same model either way.
    pub gemm: bool,
}

/// From this many tokens the pool's threads take the activations, a run of tokens each.
const PARALLEL_TOKENS: usize = 4;

impl Activations {
    /// Takes `tokens × cols` activations from `x` (row-major) as `input` says, in one pass: a
    /// token's RMSNorm factor first, then block by block its normed values, their 8-bit block
    /// (quantized while the 32 values are still in L1) and, for GEMMs of block formats, the
    /// block's values back. Prompts share the tokens among the pool's threads.
    pub fn set(&mut self, pool: &mut Pool, x: &[f32], tokens: usize, cols: usize, input: Input) {
        assert_eq!(x.len(), tokens * cols, "tokens × cols activations");
        if let Some(norm) = input.norm {
            assert_eq!(norm.weight.len(), cols, "one norm weight per column");
        }
        self.cols = cols;
        self.tokens = tokens;
        self.gemm = input.gemm;
        self.quantized = input.quantize;
        self.grouped = false;
        self.f32.resize(tokens * cols, 0.0);
        let per = if input.quantize {
            assert!(cols.is_multiple_of(QK), "block formats need whole blocks");
            self.q8.resize(tokens * cols / QK, BlockQ8::default());
            cols / QK
        } else {
            0
        };
        if tokens < PARALLEL_TOKENS || pool.threads() == 1 {
            for t in 0..tokens {
                take_token(
                    &x[t * cols..(t + 1) * cols],
                    &input,
                    &mut self.f32[t * cols..(t + 1) * cols],
                    &mut self.q8[t * per..(t + 1) * per],
                );
            }
            return;
        }
        let (f32s, q8s) = (
            SharedOut(self.f32.as_mut_ptr()),
            SharedOut(self.q8.as_mut_ptr()),
        );
        let chunk = tokens.div_ceil(pool.threads());
        pool.run(&|thread| {
            for t in (thread * chunk).min(tokens)..((thread + 1) * chunk).min(tokens) {
                // SAFETY: token t's f32 row and blocks belong to this thread alone, within the
                // buffers sized above, which outlive `run`.
                let (f, q) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(f32s.at(t * cols), cols),
                        std::slice::from_raw_parts_mut(q8s.at(t * per), per),
                    )
                };
                take_token(&x[t * cols..(t + 1) * cols], &input, f, q);
            }
        });
    }

    fn f32_row(&self, t: usize) -> &[f32] {
        &self.f32[t * self.cols..(t + 1) * self.cols]
    }

    fn acts(&self) -> Acts<'_> {
        let blocks = if self.quantized {
            self.tokens * self.cols / QK
        } else {
            0
        };
        Acts {
            q8: &self.q8[..blocks],
            groups: &self.groups[..if self.grouped { blocks / 8 } else { 0 }],
        }
    }

    /// Groups the quantized activations by super-block ([`BlockQ8x8`]), once per `set`.
    fn group(&mut self) {
        if !self.grouped {
            let blocks = self.tokens * self.cols / QK;
            assert!(
                self.quantized && self.cols.is_multiple_of(QK_K),
                "k-quant rows read quantized activations in whole super-blocks"
            );
            self.groups.resize(blocks / 8, BlockQ8x8::default());
            group_q8(&self.q8[..blocks], &mut self.groups);
            self.grouped = true;
        }
    }
}

/// One token's activations `x` into `f32` (and `q8`, when quantizing), as `input` says.
fn take_token(x: &[f32], input: &Input, f32: &mut [f32], q8: &mut [BlockQ8]) {
    let norm = input.norm.map(|n| (n.weight, ops::rms_scale(x, n.eps)));
    for (b, (xs, out)) in x.chunks(QK).zip(f32.chunks_mut(QK)).enumerate() {
        match norm {
            Some((weight, scale)) => ops::rms_apply(xs, scale, &weight[b * QK..], out),
            None => out.copy_from_slice(xs),
        }
        if input.quantize {
            q8[b] = BlockQ8::quantize(out);
            if input.gemm {
                out.copy_from_slice(&q8[b].dequantize());
            }
        }
    }
}

/// One product of an operation: `out[t * rows + r] = matrix row r · x[t]` for every token.
pub struct Product<'a> {
    pub matrix: &'a Matrix,
    pub out: &'a mut [f32],
}

/// What each thread does with its rows once its products are done, in the same operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
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
    let tile = GEMM_ROWS * x.cols;
    if x.gemm {
        x.tiles.resize(tile * threads, 0.0);
    }
    let tiles = SharedOut(x.tiles.as_mut_ptr());
    if parts.iter().flatten().any(|(m, _)| m.grouped()) {
        x.group();
    }
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
                if !matrix.integer_prefill() {
                    gemm_rows(matrix, rows_of(matrix.rows()), x, out, tile);
                }
            }
        }
        for tile in (0..x.tokens).step_by(TOKEN_TILE) {
            let tokens = tile..(tile + TOKEN_TILE).min(x.tokens);
            for (matrix, out) in parts.iter().flatten() {
                if x.gemm && !matrix.integer_prefill() {
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
                (k.silu_mul)(gate, up);
            }
        }
    });
}

/// `out[t * rows + r] = row r · x[t]` for `rows` of `matrix` and every token, as GEMMs over
/// tiles of rows (dequantized into `tile` for block formats).
fn gemm_rows(
    matrix: &Matrix,
    rows: std::ops::Range<usize>,
    x: &Activations,
    out: &SharedOut,
    tile: &mut [f32],
) {
    let (n, cols) = (matrix.rows(), x.cols);
    let mut r = rows.start;
    while r < rows.end {
        let (weights, count) = match matrix {
            Matrix::F32(m) => (m.data[r * cols..rows.end * cols].as_ptr(), rows.end - r),
            _ => {
                let count = GEMM_ROWS.min(rows.end - r);
                for (i, row) in tile.chunks_exact_mut(cols).take(count).enumerate() {
                    matrix.row_into(r + i, row);
                }
                (tile.as_ptr(), count)
            }
        };
        // out (tokens × count, row stride n) = x (tokens × cols) · weightsᵀ (cols × count).
        // SAFETY: the pointers cover tokens × cols activations, count × cols weights and the
        // outputs (t, r..r + count) of every token, which this thread alone writes.
        unsafe {
            gemm::gemm(
                x.tokens,
                count,
                cols,
                out.at(r),
                1,
                n as isize,
                false,
                x.f32.as_ptr(),
                1,
                cols as isize,
                weights,
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
        r += count;
    }
}

/// The most products one [`multiply`] runs (q, k and v).
pub const MAX_PRODUCTS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::quantize_q8;
    use crate::Level;

    /// On a level that multiplies pairs of groups, a matrix stored in pairs (with a last group
    /// alone when its rows are not a multiple of 16) gives, to the bit, what the same level
    /// gives on single groups, for every split of its rows over 1 to 3 threads.
    #[test]
    fn pairs_of_groups_give_what_single_groups_give_on_any_thread_count() {
        let levels: Vec<Kernels> = Level::available()
            .into_iter()
            .map(|l| Kernels::for_level(l).unwrap())
            .filter(|k| k.rows16_q4_0.is_some())
            .collect();
        if levels.is_empty() {
            eprintln!("no kernel level of this CPU multiplies pairs of groups");
        }
        let cols = 64;
        for (wide, rows) in levels.iter().flat_map(|k| [(*k, 24), (*k, 40), (*k, 48)]) {
            let narrow = Kernels {
                rows16_q4_0: None,
                ..wide
            };
            let bytes: Vec<u8> = (0..rows * cols / QK)
                .flat_map(|i| {
                    let d = f16::from_f32(0.01 + (i % 7) as f32 * 0.003);
                    let qs = (0..QK / 2).map(move |j| ((i * 31 + j * 17) % 256) as u8);
                    d.to_le_bytes().into_iter().chain(qs)
                })
                .collect();
            let read = |k: &Kernels| {
                let mut at = 0;
                Matrix::read::<crate::Error>(
                    "w",
                    "q4_0",
                    rows,
                    cols,
                    k,
                    &mut Arena::default(),
                    &mut |buf| {
                        buf.copy_from_slice(&bytes[at..at + buf.len()]);
                        at += buf.len();
                        Ok(())
                    },
                )
                .unwrap()
            };
            let (paired, single) = (read(&wide), read(&narrow));
            assert!(matches!(&paired, Matrix::Q4_0x8(m) if m.paired));
            assert!(matches!(&single, Matrix::Q4_0x8(m) if !m.paired));
            for threads in [1, 2, 3] {
                let mut pool = Pool::new(threads);
                for tokens in [1, 5] {
                    let x: Vec<f32> = (0..tokens * cols)
                        .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.1)
                        .collect();
                    let mut acts = Activations::default();
                    let input = Input {
                        norm: None,
                        quantize: true,
                        gemm: false,
                    };
                    acts.set(&mut pool, &x, tokens, cols, input);
                    let mut outputs = [vec![0f32; rows * tokens], vec![0f32; rows * tokens]];
                    let [a, b] = &mut outputs;
                    for (matrix, kernels, out) in [(&paired, &wide, a), (&single, &narrow, b)] {
                        let product = Product { matrix, out };
                        multiply(&mut pool, kernels, &mut acts, &mut [product], Then::Nothing);
                    }
                    assert_eq!(
                        outputs[0],
                        outputs[1],
                        "{}: {rows} rows, {threads} threads, {tokens} tokens",
                        wide.level.name()
                    );
                }
            }
        }
    }

    /// Taking activations normed and quantized in one pass gives, to the bit, what normalizing
    /// them (`ops::rms_norm`) and then quantizing them (`quantize_q8`) gives, on one thread and
    /// on two (prompts share tokens among threads), for dot products and GEMMs.
    #[test]
    fn activations_normed_and_quantized_in_one_pass_match_the_two_steps() {
        let (tokens, cols) = (7, 96);
        let x: Vec<f32> = (0..tokens * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let weight: Vec<f32> = (0..cols).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
        let eps = 1e-5;
        let mut normed = vec![0f32; x.len()];
        for (x, o) in x.chunks_exact(cols).zip(normed.chunks_exact_mut(cols)) {
            ops::rms_norm(x, &weight, eps, o);
        }
        let mut blocks = vec![BlockQ8::default(); x.len() / QK];
        quantize_q8(&normed, &mut blocks);
        let dequantized: Vec<f32> = blocks.iter().flat_map(|b| b.dequantize()).collect();
        for threads in [1, 2] {
            let mut pool = Pool::new(threads);
            for gemm in [false, true] {
                let mut acts = Activations::default();
                let norm = Some(RmsNorm {
                    weight: &weight,
                    eps,
                });
                let input = Input {
                    norm,
                    quantize: true,
                    gemm,
                };
                acts.set(&mut pool, &x, tokens, cols, input);
                assert_eq!(acts.q8, blocks, "{threads} threads, gemm {gemm}");
                let want = if gemm { &dequantized } else { &normed };
                assert_eq!(&acts.f32, want, "{threads} threads, gemm {gemm}");
                // As they are, in f32 (f32 weights).
                let input = Input {
                    norm: None,
                    quantize: false,
                    gemm,
                };
                acts.set(&mut pool, &x, tokens, cols, input);
                assert_eq!(acts.f32, x);
                assert!(!acts.quantized);
            }
        }
    }
}
