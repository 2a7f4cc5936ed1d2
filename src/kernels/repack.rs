//! 4-bit weights repacked at load into groups of eight interleaved rows, for the SIMD levels.
//!
//! Block `b` of eight consecutive rows is stored together: the eight scales (and q4_1's eight
//! offsets), then the rows' nibbles in 4-byte pieces, piece `c` of row `k` at byte
//! `32 c + 4 k`. One 32-byte load so holds, in its 32-bit lane `k`, four weights of row `k`
//! in the low nibbles and the four 16 places further in the high ones: two masks turn it into
//! bytes for `vpmaddubsw` against four activations broadcast to every lane, and the eight
//! rows' sums come out in one vector's eight lanes. Per 32 weights of 8 rows that is 4 loads,
//! 8 byte products summed in 16 bits (8 × 2 × 15 × 127 < 32767: no overflow), one widening
//! and one scaling for all eight rows, where row-by-row dot products do the widening and
//! scaling for every row. The same pieces of weights serve up to four tokens at once
//! (prefill), loaded and unpacked once.
//!
//! The bytes of a piece are the original block's bytes (a GGUF q4 byte already holds weight
//! `j` low and `j + 16` high), so repacking only moves 4-byte pieces.

use super::blocks::{Block, BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};
use half::f16;

/// Rows per group.
pub const ROWS: usize = 8;

/// Block `b` of eight q4_0 rows.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_0x8 {
    pub d: [f16; ROWS],
    pub qs: [u8; QK / 2 * ROWS],
}

/// Block `b` of eight q4_1 rows.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1x8 {
    pub d: [f16; ROWS],
    pub m: [f16; ROWS],
    pub qs: [u8; QK / 2 * ROWS],
}

/// A group block of eight rows of `Self::Row` blocks.
pub trait Interleaved: Copy + Send + Sync + 'static {
    type Row: Block;
    /// Interleaves block `b` of eight rows.
    fn pack(rows: [&Self::Row; ROWS]) -> Self;
    /// Row `k`'s block back.
    fn unpack(&self, k: usize) -> Self::Row;
    fn scales(&self) -> &[f16; ROWS];
}

/// Eight interleaved 4-bit rows.
pub trait Nibbles: Interleaved {
    /// Whether the rows carry offsets `m` (q4_1) rather than q4_0's fixed -8.
    const OFFSETS: bool;
    /// q4_1's offsets (q4_0 has none: its scales stand in, unused).
    fn offsets(&self) -> &[f16; ROWS];
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS];
}

/// Block `b` of eight q8_0 rows: piece `c` (4 weights) of row `k` at byte `32 c + 4 k`, so
/// eight 32-byte loads hold the eight rows' 32 weights, a row per 32-bit lane.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0x8 {
    pub d: [f16; ROWS],
    pub qs: [i8; QK * ROWS],
}

impl Interleaved for BlockQ8_0x8 {
    type Row = BlockQ8_0;
    fn pack(rows: [&BlockQ8_0; ROWS]) -> Self {
        let mut qs = [0i8; QK * ROWS];
        for (k, row) in rows.iter().enumerate() {
            for c in 0..QK / 4 {
                qs[32 * c + 4 * k..32 * c + 4 * k + 4].copy_from_slice(&row.qs[4 * c..4 * c + 4]);
            }
        }
        Self {
            d: rows.map(|r| r.d),
            qs,
        }
    }
    fn unpack(&self, k: usize) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        for c in 0..QK / 4 {
            qs[4 * c..4 * c + 4].copy_from_slice(&self.qs[32 * c + 4 * k..32 * c + 4 * k + 4]);
        }
        BlockQ8_0 { d: self.d[k], qs }
    }
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
}

fn interleave(rows: [&[u8; QK / 2]; ROWS]) -> [u8; QK / 2 * ROWS] {
    let mut qs = [0u8; QK / 2 * ROWS];
    for (k, row) in rows.iter().enumerate() {
        for c in 0..4 {
            qs[32 * c + 4 * k..32 * c + 4 * k + 4].copy_from_slice(&row[4 * c..4 * c + 4]);
        }
    }
    qs
}

fn deinterleave(qs: &[u8; QK / 2 * ROWS], k: usize) -> [u8; QK / 2] {
    let mut row = [0u8; QK / 2];
    for c in 0..4 {
        row[4 * c..4 * c + 4].copy_from_slice(&qs[32 * c + 4 * k..32 * c + 4 * k + 4]);
    }
    row
}

impl Interleaved for BlockQ4_0x8 {
    type Row = BlockQ4_0;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ4_0; ROWS]) -> Self {
        Self {
            d: rows.map(|r| r.d),
            qs: interleave(rows.map(|r| &r.qs)),
        }
    }
    fn unpack(&self, k: usize) -> BlockQ4_0 {
        BlockQ4_0 {
            d: self.d[k],
            qs: deinterleave(&self.qs, k),
        }
    }
}

impl Nibbles for BlockQ4_0x8 {
    const OFFSETS: bool = false;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
}

impl Interleaved for BlockQ4_1x8 {
    type Row = BlockQ4_1;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ4_1; ROWS]) -> Self {
        Self {
            d: rows.map(|r| r.d),
            m: rows.map(|r| r.m),
            qs: interleave(rows.map(|r| &r.qs)),
        }
    }
    fn unpack(&self, k: usize) -> BlockQ4_1 {
        BlockQ4_1 {
            d: self.d[k],
            m: self.m[k],
            qs: deinterleave(&self.qs, k),
        }
    }
}

impl Nibbles for BlockQ4_1x8 {
    const OFFSETS: bool = true;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.m
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
}

/// A matrix whose rows (a multiple of 8) are stored in interleaved groups: group `g`'s block
/// `b` at `g * cols / 32 + b`.
pub struct Repacked<I> {
    pub rows: usize,
    pub cols: usize,
    pub groups: Vec<I>,
}

impl<I: Interleaved> Repacked<I> {
    /// Repacks row-major blocks (`rows` a multiple of 8); loading repacks from the file's
    /// bytes instead ([`Self::extend_from_gguf_bytes`]).
    #[cfg(test)]
    pub fn new(rows: usize, cols: usize, blocks: &[I::Row]) -> Self {
        let per_row = cols / QK;
        assert!(rows.is_multiple_of(ROWS), "whole groups of {ROWS} rows");
        assert_eq!(blocks.len(), rows * per_row, "rows × cols / 32 blocks");
        let mut groups = Vec::with_capacity(rows / ROWS * per_row);
        for g in 0..rows / ROWS {
            for b in 0..per_row {
                let row = |k: usize| &blocks[(g * ROWS + k) * per_row + b];
                groups.push(I::pack(std::array::from_fn(row)));
            }
        }
        Self { rows, cols, groups }
    }

    /// An empty matrix of `rows × cols` to fill with [`Self::extend_from_gguf_bytes`].
    pub fn with_capacity(rows: usize, cols: usize) -> Self {
        assert!(rows.is_multiple_of(ROWS), "whole groups of {ROWS} rows");
        Self {
            rows,
            cols,
            groups: Vec::with_capacity(rows / ROWS * (cols / QK)),
        }
    }

    /// Repacks the next rows (whole groups of eight) from their GGUF bytes (row-major blocks),
    /// so that loading holds the repacked matrix and one chunk of the file, never a second
    /// copy of the tensor.
    pub fn extend_from_gguf_bytes(&mut self, bytes: &[u8]) {
        let per_row = self.cols / QK;
        let size = <I::Row as Block>::BYTES;
        assert!(
            bytes.len().is_multiple_of(ROWS * per_row * size),
            "whole groups of {ROWS} rows"
        );
        for group in bytes.chunks_exact(ROWS * per_row * size) {
            for b in 0..per_row {
                let rows: [I::Row; ROWS] = std::array::from_fn(|k| {
                    let at = (k * per_row + b) * size;
                    I::Row::read(&group[at..at + size])
                });
                self.groups.push(I::pack(std::array::from_fn(|k| &rows[k])));
            }
        }
    }

    /// Group `g`'s blocks.
    pub fn group(&self, g: usize) -> &[I] {
        let per_row = self.cols / QK;
        &self.groups[g * per_row..(g + 1) * per_row]
    }

    /// Row `r` as f32.
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        for (block, o) in self.group(r / ROWS).iter().zip(out.chunks_exact_mut(QK)) {
            o.copy_from_slice(&block.unpack(r % ROWS).dequantize());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_moves_four_byte_pieces_and_unpacks_to_the_same_blocks() {
        let blocks: Vec<BlockQ4_1> = (0..16u8)
            .map(|i| BlockQ4_1 {
                d: f16::from_f32(i as f32),
                m: f16::from_f32(-(i as f32)),
                qs: std::array::from_fn(|j| i * 16 + j as u8),
            })
            .collect();
        // 16 rows of one block each: two groups.
        let m = Repacked::<BlockQ4_1x8>::new(16, 32, &blocks);
        assert_eq!(m.groups.len(), 2);
        // Piece 1 of row 2 (bytes 4..8 of its block) sits at 32 + 8.
        assert_eq!(&m.groups[0].qs[40..44], &blocks[2].qs[4..8]);
        for (r, block) in blocks.iter().enumerate() {
            assert_eq!(m.group(r / 8)[0].unpack(r % 8), *block);
        }
    }
}
