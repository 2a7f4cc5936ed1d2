//! Tiles of sixteen tokens' 8-bit activations laid out for an integer GEMM micro-kernel: the
//! activations are the vector operand (one token per 32-bit lane, four consecutive values
//! each), the weights the broadcast one, so one 512-bit `vpdpbusd` multiplies four weights of
//! a row by sixteen tokens. A band of eight rows unpacked once to bytes serves every tile of
//! a prompt (`dispatch::Tiled`).
//!
//! The activations are the same 8-bit blocks every product reads ([`BlockQ8`]: a scale per
//! 32 values), so a tile's products sum the same integers as the row and group kernels.

use crate::blocks::{BlockQ8, QK};

/// Tokens per tile.
pub const TILE: usize = 16;

/// Rows per band (one interleaved group).
pub const BAND: usize = 8;

/// One tile of [`TILE`] tokens' activations, `cols` wide.
#[derive(Clone, Copy)]
pub struct Tile<'a> {
    /// Piece `p` (values `4p..4p + 4` of every token's row) at `64p`: token `i`'s four bytes
    /// at `64p + 4i`. `cols × 16` bytes.
    pub codes: &'a [i8],
    /// Block `b`'s scale of token `i` at `16b + i` (0 for the padding after the last token).
    pub d: &'a [f32],
    /// Block `b`'s exact sum of its values, of token `i` at `16b + i` (`BlockQ8::sum`).
    pub sums: &'a [i32],
    /// Block `b`'s scale times the exact sum of its values, of token `i` at `16b + i` (what
    /// q4k's and q5k's mins multiply: `BlockQ8x8::dsum`).
    pub dsum: &'a [f32],
}

/// Bytes of a band for rows `cols` wide: the eight rows' weights as bytes (`8 · cols`), then,
/// for formats with per-block factors, each 32-weight block's eight scales and eight mins as
/// f32 (`cols` bytes each).
pub const fn band_len(cols: usize) -> usize {
    (BAND + 2) * cols
}

/// A band for rows `cols` wide split into its weights (`BAND · cols` bytes) and its factors
/// (what follows), for an unpacking to fill; panics if `band` is shorter than [`band_len`].
pub fn split_band(band: &mut [u8], cols: usize) -> (&mut [u8], &mut [u8]) {
    assert!(
        band.len() >= band_len(cols),
        "a band holds the group's weights"
    );
    band.split_at_mut(BAND * cols)
}

/// One group of eight rows as a band's unpacking reads it: its blocks `blocks[0]`,
/// `blocks[step]`, `blocks[2 · step]`, … (step 1 for a group stored alone, 2 for one of a pair
/// stored block by block, `repack::Repacked::pair`).
pub struct Group<'a, I> {
    blocks: &'a [I],
    step: usize,
}

impl<I> Clone for Group<'_, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for Group<'_, I> {}

impl<'a, I> Group<'a, I> {
    /// Every `step`-th block of `blocks`, from the first.
    pub fn strided(blocks: &'a [I], step: usize) -> Self {
        assert!(step > 0, "a step of at least one block");
        Group { blocks, step }
    }

    /// Blocks in the group.
    pub fn len(&self) -> usize {
        self.blocks.len().div_ceil(self.step)
    }

    /// Whether the group has no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Block `b`.
    pub fn get(&self, b: usize) -> &'a I {
        &self.blocks[b * self.step]
    }

    /// The blocks in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a I> {
        self.blocks.iter().step_by(self.step)
    }
}

impl<'a, I> From<&'a [I]> for Group<'a, I> {
    fn from(blocks: &'a [I]) -> Self {
        Group::strided(blocks, 1)
    }
}

/// Every tile of a run of tokens' activations (the last padded with zeros), made once per
/// operation and read by every thread.
#[derive(Default)]
pub struct Tiles {
    cols: usize,
    count: usize,
    codes: Vec<i8>,
    d: Vec<f32>,
    sums: Vec<i32>,
    dsum: Vec<f32>,
}

impl Tiles {
    /// Lays out `tokens` tokens of 8-bit blocks (`cols / 32` per token, one token after
    /// another). Buffers are kept: no allocation once they have grown to the largest prompt.
    pub fn set(&mut self, q8: &[BlockQ8], tokens: usize, cols: usize) {
        assert!(cols.is_multiple_of(QK), "whole blocks");
        let per = cols / QK;
        assert_eq!(q8.len(), tokens * per, "every token's blocks");
        self.cols = cols;
        self.count = tokens.div_ceil(TILE);
        self.codes.clear();
        self.codes.resize(self.count * TILE * cols, 0);
        self.d.clear();
        self.d.resize(self.count * TILE * per, 0.0);
        self.sums.clear();
        self.sums.resize(self.count * TILE * per, 0);
        self.dsum.clear();
        self.dsum.resize(self.count * TILE * per, 0.0);
        for t in 0..tokens {
            let (tile, i) = (t / TILE, t % TILE);
            let codes = &mut self.codes[tile * TILE * cols..(tile + 1) * TILE * cols];
            let d = &mut self.d[tile * TILE * per..(tile + 1) * TILE * per];
            let sums = &mut self.sums[tile * TILE * per..(tile + 1) * TILE * per];
            let dsum = &mut self.dsum[tile * TILE * per..(tile + 1) * TILE * per];
            for (b, block) in q8[t * per..(t + 1) * per].iter().enumerate() {
                for (g, piece) in block.qs.chunks_exact(4).enumerate() {
                    let at = 64 * (8 * b + g) + 4 * i;
                    codes[at..at + 4].copy_from_slice(piece);
                }
                d[TILE * b + i] = block.d;
                dsum[TILE * b + i] = block.d * block.sum as f32;
                sums[TILE * b + i] = block.sum;
            }
        }
    }

    /// Tiles.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Tile `n` (tokens `16n..16n + 16`).
    pub fn tile(&self, n: usize) -> Tile<'_> {
        let (cols, per) = (self.cols, self.cols / QK);
        Tile {
            codes: &self.codes[n * TILE * cols..(n + 1) * TILE * cols],
            d: &self.d[n * TILE * per..(n + 1) * TILE * per],
            sums: &self.sums[n * TILE * per..(n + 1) * TILE * per],
            dsum: &self.dsum[n * TILE * per..(n + 1) * TILE * per],
        }
    }
}
