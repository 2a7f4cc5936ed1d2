//! Row-major matrices of one block format (or f32) and their products one row at a time:
//! what every format can do on every level, and what the interleaved layouts are checked
//! against.

use crate::blocks::{
    self, Block, BlockIQ4NL, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K,
    BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8, BlockQ8_0, BlockQ8x8, QK,
};
use crate::runtime::SharedOut;
use crate::{Arena, Error, Format, Kernels, Pool, Result, WeightVec};

/// Quantized activations as the kernels read them: `q8`, every token's 8-bit blocks, one
/// token after another; `groups`, the same blocks grouped eight by eight ([`BlockQ8x8`]) for
/// k-quant rows (empty where no k-quant row reads them).
#[derive(Clone, Copy)]
pub struct Acts<'a> {
    /// Every token's 8-bit blocks, one token after another.
    pub q8: &'a [BlockQ8],
    /// The same blocks grouped eight to a super-block.
    pub groups: &'a [BlockQ8x8],
}

/// A block format the kernels multiply by quantized activations.
pub trait QuantBlock: Block {
    /// Whether its rows read [`Acts::groups`] (k-quants) rather than [`Acts::q8`].
    const GROUPED: bool = false;
    /// `out[t - tokens.start]` = `row` (whole blocks) · token `t` of `x`.
    fn products(
        kernels: &Kernels,
        row: &[Self],
        x: Acts,
        tokens: std::ops::Range<usize>,
        out: &mut [f32],
    );
}

/// A format of 32-weight blocks: each token's product by its dot kernel.
macro_rules! dot_products {
    ($block:ty, $format:ident) => {
        impl QuantBlock for $block {
            fn products(
                k: &Kernels,
                row: &[Self],
                x: Acts,
                tokens: std::ops::Range<usize>,
                out: &mut [f32],
            ) {
                let per = row.len();
                for (o, t) in out.iter_mut().zip(tokens) {
                    *o = (k.$format.row)(row, &x.q8[t * per..(t + 1) * per]);
                }
            }
        }
    };
}

dot_products!(BlockQ8_0, q8_0);
dot_products!(BlockQ4_0, q4_0);
dot_products!(BlockQ4_1, q4_1);
dot_products!(BlockQ5_0, q5_0);
dot_products!(BlockQ5_1, q5_1);
dot_products!(BlockIQ4NL, iq4_nl);

/// A k-quant format: its row kernel, several tokens at once, on the grouped activations.
macro_rules! grouped_products {
    ($block:ty, $format:ident) => {
        impl QuantBlock for $block {
            const GROUPED: bool = true;
            fn products(
                k: &Kernels,
                row: &[Self],
                x: Acts,
                tokens: std::ops::Range<usize>,
                out: &mut [f32],
            ) {
                (k.$format.row)(row, x.groups, tokens, out)
            }
        }
    };
}

grouped_products!(BlockQ2K, q2k);
grouped_products!(BlockQ3K, q3k);
grouped_products!(BlockQ4K, q4k);
grouped_products!(BlockQ5K, q5k);
grouped_products!(BlockQ6K, q6k);

/// Checks that `bytes` hold `rows × cols` weights in whole `B` blocks (rows of a positive
/// multiple of 32), without overflow.
fn check_blocks<B: Block>(name: &str, rows: usize, cols: usize, bytes: &[u8]) -> Result<()> {
    check_bytes(B::FORMAT, name, rows, cols, bytes)
}

/// Checks that `bytes` hold `rows × cols` weights in `format` ([`Format::gguf_bytes`]).
pub(super) fn check_bytes(
    format: Format,
    name: &str,
    rows: usize,
    cols: usize,
    bytes: &[u8],
) -> Result<()> {
    let expected = format.gguf_bytes(name, rows, cols)?;
    if bytes.len() != expected {
        return Err(Error::BadField {
            path: name.into(),
            field: "shape".into(),
            problem: format!(
                "{rows} x {cols} in {format} is {expected} bytes, found {}",
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// A weight matrix in a block format: `rows` rows of `cols` weights, row-major, as GGUF
/// stores a 2-D tensor (`cols` is GGUF's first dimension).
pub struct QMatrix<B> {
    /// Rows.
    pub rows: usize,
    /// Weights per row.
    pub cols: usize,
    /// The blocks, row-major.
    pub blocks: WeightVec<B>,
}

impl<B: QuantBlock> QMatrix<B> {
    /// Reads a matrix from GGUF tensor bytes, checking the shape against the byte count.
    pub fn from_gguf(name: &str, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        check_blocks::<B>(name, rows, cols, bytes)?;
        let mut blocks = Arena::default().vec(bytes.len() / B::BYTES);
        blocks.extend(bytes.chunks_exact(B::BYTES).map(B::read));
        Ok(Self { rows, cols, blocks })
    }

    /// `y = W x` for activations already quantized to `x` (`cols / 32` blocks). Rows are split
    /// across the pool's threads in contiguous chunks, one per thread. (k-quant rows first
    /// group `x` into a new buffer; the engine's products keep theirs: `matrix::multiply`.)
    pub fn gemv(&self, kernels: &Kernels, pool: &mut Pool, x: &[BlockQ8], y: &mut [f32]) {
        let per_row = self.cols / B::WEIGHTS;
        assert_eq!(x.len(), self.cols / QK, "activation blocks for one row");
        assert_eq!(y.len(), self.rows, "one output per row");
        let mut groups = vec![BlockQ8x8::default(); if B::GROUPED { x.len() / 8 } else { 0 }];
        if B::GROUPED {
            blocks::group_q8(x, &mut groups);
        }
        let x = Acts {
            q8: x,
            groups: &groups,
        };
        each_row(pool, y, |r| {
            let mut out = [0f32];
            B::products(
                kernels,
                &self.blocks[r * per_row..(r + 1) * per_row],
                x,
                0..1,
                &mut out,
            );
            out[0]
        });
    }
}

/// An f32 weight matrix, `rows` rows of `cols` weights, row-major.
pub struct F32Matrix {
    /// Rows.
    pub rows: usize,
    /// Weights per row.
    pub cols: usize,
    /// The weights, row-major.
    pub data: WeightVec<f32>,
}

impl F32Matrix {
    /// Reads a matrix from GGUF's little-endian f32 tensor bytes, checking the byte count.
    pub fn from_gguf(name: &str, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        let expected = rows.checked_mul(cols).and_then(|n| n.checked_mul(4));
        if rows == 0 || cols == 0 || expected != Some(bytes.len()) {
            return Err(Error::BadField {
                path: name.into(),
                field: "shape".into(),
                problem: format!(
                    "{rows} x {cols} in f32 is {} bytes, found {}",
                    expected.map_or("more than memory holds".into(), |n| n.to_string()),
                    bytes.len()
                ),
            });
        }
        let mut data = Arena::default().vec(rows * cols);
        data.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        Ok(Self { rows, cols, data })
    }

    /// `y = W x`, rows split across the pool's threads as [`QMatrix::gemv`] does.
    pub fn gemv(&self, kernels: &Kernels, pool: &mut Pool, x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), self.cols, "one input per column");
        assert_eq!(y.len(), self.rows, "one output per row");
        let (dot, cols) = (kernels.dense.f32, self.cols);
        each_row(pool, y, |r| dot(&self.data[r * cols..(r + 1) * cols], x));
    }
}

/// `y[r] = row(r)` for every row, the rows split across the pool's threads in contiguous
/// chunks, one per thread (each thread streams only its own slice of the weights).
fn each_row(pool: &mut Pool, y: &mut [f32], row: impl Fn(usize) -> f32 + Sync) {
    let n = y.len();
    let chunk = n.div_ceil(pool.threads());
    let out = SharedOut(y.as_mut_ptr());
    pool.run(&|t| {
        let rows = (t * chunk).min(n)..((t + 1) * chunk).min(n);
        // SAFETY: thread t writes only rows t*chunk..(t+1)*chunk of `y`, disjoint from every
        // other thread's, and `y` outlives `run`.
        let y = unsafe { std::slice::from_raw_parts_mut(out.at(rows.start), rows.len()) };
        for (o, r) in y.iter_mut().zip(rows) {
            *o = row(r);
        }
    });
}
