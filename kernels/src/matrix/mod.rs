//! A weight matrix in whichever format its file stores it, and the products a forward pass
//! makes with it: several matrices by the same activations in one pool operation (q/k/v,
//! gate/up). Four paths:
//! - tiles (`crate::tiles`, k-quant, q4_0 and q5_0 groups on `avx512vnni`, prompts and batches
//!   of 16 tokens or more): eight rows unpacked once to bytes, then by sixteen tokens per pass;
//! - interleaved groups of eight rows (`repack`, q8_0/q4_0/q4_1 on SIMD levels, q5_0, q5_1,
//!   q4k, q5k and q6k on x86 and `neondot`): the level's group kernel by activations quantized to 8 bits,
//!   four tokens per pass, decode and prefill;
//! - dot products (decode and short prompts otherwise; k-quant prompts too): one row by one
//!   token's activations (8-bit for block formats, f32 for f32/f16/bf16), each row reused for
//!   a tile of tokens while it is in cache (the k-quant kernels take four tokens per pass);
//! - GEMM (prefill, the remaining matrices): each thread widens tiles of its rows to f32 (f32
//!   weights are used in place) and multiplies them by every token's f32 activations, with the
//!   level's GEMM tiles (x86: `dispatch::GemmTile`) or the `gemm` crate's register-tiled
//!   kernels (the other levels).

mod activations;
mod multiply;
mod plain;
#[cfg(test)]
mod tests;

pub use activations::{Activations, Input, RmsNorm};
pub use multiply::{multiply, Product, Then, MAX_PRODUCTS};
pub use plain::{Acts, F32Matrix, QMatrix, QuantBlock};

use crate::blocks::{
    BlockIQ4NL, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8_0,
};
use crate::repack::{
    BlockQ4Kx8, BlockQ4_0x8, BlockQ4_1x8, BlockQ5Kx8, BlockQ5_0x8, BlockQ5_1x8, BlockQ6Kx8,
    BlockQ8_0x8, Interleaved, Repacked, ROWS,
};
use crate::{Arena, Error, Format, Kernels, Result, WeightVec};
use half::{bf16, f16};

/// A matrix of half-precision weights (`f16` or `bf16`), row-major, kept in its format.
pub struct HalfMatrix<H> {
    /// Rows.
    pub rows: usize,
    /// Weights per row.
    pub cols: usize,
    /// The weights, row-major.
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

/// A weight matrix in its storage format: row-major as GGUF stores it, or repacked in
/// interleaved groups of eight rows where the level has kernels for them.
pub enum Matrix {
    /// f32 weights.
    F32(F32Matrix),
    /// f16 weights.
    F16(HalfMatrix<f16>),
    /// bf16 weights.
    BF16(HalfMatrix<bf16>),
    /// q8_0 rows.
    Q8_0(QMatrix<BlockQ8_0>),
    /// q4_0 rows.
    Q4_0(QMatrix<BlockQ4_0>),
    /// q4_1 rows.
    Q4_1(QMatrix<BlockQ4_1>),
    /// q5_0 rows.
    Q5_0(QMatrix<BlockQ5_0>),
    /// q5_1 rows.
    Q5_1(QMatrix<BlockQ5_1>),
    /// q2k rows.
    Q2K(QMatrix<BlockQ2K>),
    /// q3k rows.
    Q3K(QMatrix<BlockQ3K>),
    /// q4k rows.
    Q4K(QMatrix<BlockQ4K>),
    /// q5k rows.
    Q5K(QMatrix<BlockQ5K>),
    /// q6k rows.
    Q6K(QMatrix<BlockQ6K>),
    /// iq4_nl rows.
    IQ4NL(QMatrix<BlockIQ4NL>),
    /// Rows repacked in groups of eight (on levels with such kernels).
    Q4_0x8(Repacked<BlockQ4_0x8>),
    /// q4_1 rows in groups of eight.
    Q4_1x8(Repacked<BlockQ4_1x8>),
    /// q5_0 rows in groups of eight.
    Q5_0x8(Repacked<BlockQ5_0x8>),
    /// q5_1 rows in groups of eight.
    Q5_1x8(Repacked<BlockQ5_1x8>),
    /// q4k rows in groups of eight.
    Q4Kx8(Repacked<BlockQ4Kx8>),
    /// q8_0 rows in groups of eight.
    Q8_0x8(Repacked<BlockQ8_0x8>),
    /// q5k rows in groups of eight.
    Q5Kx8(Repacked<BlockQ5Kx8>),
    /// q6k rows in groups of eight.
    Q6Kx8(Repacked<BlockQ6Kx8>),
}

/// Hands each chunk of a tensor's bytes, in order, to its argument (`Matrix::read`).
type Chunks<'a, E> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<(), E> + 'a;

/// Rows read from the file at a time when loading (a multiple of 16: whole pairs of groups).
const CHUNK_ROWS: usize = 64;

impl Matrix {
    /// Reads a `rows × cols` matrix in `format`, its GGUF bytes fetched a chunk of whole row
    /// groups at a time by `fill` (which fills its buffer with the tensor's next bytes): loading
    /// holds the matrix being built and one chunk, never a second copy of the tensor. `fill`'s
    /// errors (the caller's: a file's) pass through; the kernels' own become `E`.
    pub fn read<E: From<Error>>(
        name: &str,
        format: Format,
        rows: usize,
        cols: usize,
        kernels: &Kernels,
        arena: &mut Arena,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<Matrix, E> {
        let total = format.gguf_bytes(name, rows, cols)?;
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
            Format::F32 => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(
                        b.chunks_exact(4)
                            .map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]])),
                    )
                })?;
                Matrix::F32(F32Matrix { rows, cols, data })
            }
            Format::F16 => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(b.chunks_exact(2).map(|v| f16::from_le_bytes([v[0], v[1]])))
                })?;
                Matrix::F16(HalfMatrix { rows, cols, data })
            }
            Format::BF16 => {
                let mut data = arena.vec(rows * cols);
                chunks(&mut |b| {
                    data.extend(b.chunks_exact(2).map(|v| bf16::from_le_bytes([v[0], v[1]])))
                })?;
                Matrix::BF16(HalfMatrix { rows, cols, data })
            }
            Format::Q8_0 if groups && kernels.q8_0.rows8.is_some() => {
                let paired = kernels.q8_0.rows16.is_some();
                Matrix::Q8_0x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            Format::Q4_0 if groups && kernels.q4_0.rows8.is_some() => {
                let paired = kernels.q4_0.rows16.is_some();
                Matrix::Q4_0x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            Format::Q4_1 if groups && kernels.q4_1.rows8.is_some() => {
                let paired = kernels.q4_1.rows16.is_some();
                Matrix::Q4_1x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            Format::Q5_0 if groups && kernels.q5_0.rows8.is_some() => {
                let paired = kernels.q5_0.rows16.is_some();
                Matrix::Q5_0x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            Format::Q5_1 if groups && kernels.q5_1.rows8.is_some() => {
                let paired = kernels.q5_1.rows16.is_some();
                Matrix::Q5_1x8(grouped(arena, rows, cols, paired, &mut chunks)?)
            }
            Format::Q4K if groups && kernels.q4k.rows8.is_some() => {
                Matrix::Q4Kx8(grouped(arena, rows, cols, false, &mut chunks)?)
            }
            Format::Q5K if groups && kernels.q5k.rows8.is_some() => {
                Matrix::Q5Kx8(grouped(arena, rows, cols, false, &mut chunks)?)
            }
            Format::Q6K if groups && kernels.q6k.rows8.is_some() => {
                Matrix::Q6Kx8(grouped(arena, rows, cols, false, &mut chunks)?)
            }
            Format::Q8_0 => Matrix::Q8_0(plain(arena, rows, cols, &mut chunks)?),
            Format::Q4_0 => Matrix::Q4_0(plain(arena, rows, cols, &mut chunks)?),
            Format::Q4_1 => Matrix::Q4_1(plain(arena, rows, cols, &mut chunks)?),
            Format::Q5_0 => Matrix::Q5_0(plain(arena, rows, cols, &mut chunks)?),
            Format::Q5_1 => Matrix::Q5_1(plain(arena, rows, cols, &mut chunks)?),
            Format::Q2K => Matrix::Q2K(plain(arena, rows, cols, &mut chunks)?),
            Format::Q3K => Matrix::Q3K(plain(arena, rows, cols, &mut chunks)?),
            Format::Q4K => Matrix::Q4K(plain(arena, rows, cols, &mut chunks)?),
            Format::Q5K => Matrix::Q5K(plain(arena, rows, cols, &mut chunks)?),
            Format::Q6K => Matrix::Q6K(plain(arena, rows, cols, &mut chunks)?),
            Format::IQ4NL => Matrix::IQ4NL(plain(arena, rows, cols, &mut chunks)?),
        })
    }

    /// [`Matrix::read`] from a tensor's GGUF bytes held whole (benchmarks and tests; the
    /// engine reads files a chunk at a time), the byte count checked against the shape.
    pub fn from_gguf(
        name: &str,
        format: Format,
        (rows, cols): (usize, usize),
        kernels: &Kernels,
        bytes: &[u8],
    ) -> Result<Matrix> {
        plain::check_bytes(format, name, rows, cols, bytes)?;
        let mut rest = bytes;
        let mut fill = |buf: &mut [u8]| {
            let (head, tail) = rest.split_at(buf.len());
            buf.copy_from_slice(head);
            rest = tail;
            Ok(())
        };
        Matrix::read(
            name,
            format,
            rows,
            cols,
            kernels,
            &mut Arena::default(),
            &mut fill,
        )
    }

    /// Rows (outputs per token).
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
            Matrix::Q2K(m) => m.rows,
            Matrix::Q3K(m) => m.rows,
            Matrix::Q4K(m) => m.rows,
            Matrix::Q5K(m) => m.rows,
            Matrix::Q6K(m) => m.rows,
            Matrix::IQ4NL(m) => m.rows,
            Matrix::Q4_0x8(m) => m.rows,
            Matrix::Q5_0x8(m) => m.rows,
            Matrix::Q5_1x8(m) => m.rows,
            Matrix::Q4_1x8(m) => m.rows,
            Matrix::Q4Kx8(m) => m.rows,
            Matrix::Q5Kx8(m) => m.rows,
            Matrix::Q6Kx8(m) => m.rows,
            Matrix::Q8_0x8(m) => m.rows,
        }
    }

    /// Weights per row (activations per token).
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
            Matrix::Q2K(m) => m.cols,
            Matrix::Q3K(m) => m.cols,
            Matrix::Q4K(m) => m.cols,
            Matrix::Q5K(m) => m.cols,
            Matrix::Q6K(m) => m.cols,
            Matrix::IQ4NL(m) => m.cols,
            Matrix::Q4_0x8(m) => m.cols,
            Matrix::Q5_0x8(m) => m.cols,
            Matrix::Q5_1x8(m) => m.cols,
            Matrix::Q4_1x8(m) => m.cols,
            Matrix::Q4Kx8(m) => m.cols,
            Matrix::Q5Kx8(m) => m.cols,
            Matrix::Q6Kx8(m) => m.cols,
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
            Matrix::Q2K(m) => m.blocks.len() * std::mem::size_of::<BlockQ2K>(),
            Matrix::Q3K(m) => m.blocks.len() * std::mem::size_of::<BlockQ3K>(),
            Matrix::Q4K(m) => m.blocks.len() * std::mem::size_of::<BlockQ4K>(),
            Matrix::Q5K(m) => m.blocks.len() * std::mem::size_of::<BlockQ5K>(),
            Matrix::Q6K(m) => m.blocks.len() * std::mem::size_of::<BlockQ6K>(),
            Matrix::IQ4NL(m) => m.blocks.len() * std::mem::size_of::<BlockIQ4NL>(),
            Matrix::Q4_0x8(m) => m.groups.len() * std::mem::size_of::<BlockQ4_0x8>(),
            Matrix::Q5_0x8(m) => m.groups.len() * std::mem::size_of::<BlockQ5_0x8>(),
            Matrix::Q5_1x8(m) => m.groups.len() * std::mem::size_of::<BlockQ5_1x8>(),
            Matrix::Q4_1x8(m) => m.groups.len() * std::mem::size_of::<BlockQ4_1x8>(),
            Matrix::Q4Kx8(m) => m.groups.len() * std::mem::size_of::<BlockQ4Kx8>(),
            Matrix::Q5Kx8(m) => m.groups.len() * std::mem::size_of::<BlockQ5Kx8>(),
            Matrix::Q6Kx8(m) => m.groups.len() * std::mem::size_of::<BlockQ6Kx8>(),
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
            Matrix::Q2K(m) => blocks(m, r, out),
            Matrix::Q3K(m) => blocks(m, r, out),
            Matrix::Q4K(m) => blocks(m, r, out),
            Matrix::Q5K(m) => blocks(m, r, out),
            Matrix::Q6K(m) => blocks(m, r, out),
            Matrix::IQ4NL(m) => blocks(m, r, out),
            Matrix::Q4_0x8(m) => m.row_into(r, out),
            Matrix::Q5_0x8(m) => m.row_into(r, out),
            Matrix::Q5_1x8(m) => m.row_into(r, out),
            Matrix::Q4_1x8(m) => m.row_into(r, out),
            Matrix::Q4Kx8(m) => m.row_into(r, out),
            Matrix::Q5Kx8(m) => m.row_into(r, out),
            Matrix::Q6Kx8(m) => m.row_into(r, out),
            Matrix::Q8_0x8(m) => m.row_into(r, out),
        }
    }
}
