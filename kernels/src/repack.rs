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
//! `j` low and `j + 16` high), so repacking only moves 4-byte pieces; q5_0's and q5_1's fifth
//! bits (`BlockQ5_0x8`, `BlockQ5_1x8`) are regrouped to match, one 32-bit word per 32-byte
//! load. q8_0 rows and q4k
//! q5k and q6k super-blocks (`BlockQ4Kx8`, `BlockQ5Kx8`, `BlockQ6Kx8`, on the x86 levels) are
//! interleaved in the same 4-byte pieces.

use super::blocks::{
    Block, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8_0, QK,
    QK_K,
};
use crate::tiles::Group;
use crate::WeightVec;
use half::f16;

/// Rows per group.
pub const ROWS: usize = 8;

/// Block `b` of eight q4_0 rows.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_0x8 {
    /// The eight rows' scales.
    pub d: [f16; ROWS],
    /// The eight rows' nibbles, interleaved.
    pub qs: [u8; QK / 2 * ROWS],
}

/// Block `b` of eight q5_0 rows: q4_0's interleaved nibbles, and their fifth bits in the same
/// order (bit `4k + i` of `qh[c]` is row `k`'s weight `4c + i`, of `qh[4 + c]` its weight
/// `16 + 4c + i`: the nibbles of byte `4k + i` of chunk `c`), so a 32-bit word spreads onto
/// its chunk's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_0x8 {
    /// The eight rows' scales.
    pub d: [f16; ROWS],
    /// The fifth bits of each chunk's low nibbles (`qh[c]`) and high ones (`qh[4 + c]`).
    pub qh: [u32; 8],
    /// The eight rows' nibbles, interleaved.
    pub qs: [u8; QK / 2 * ROWS],
}

/// Block `b` of eight q5_1 rows: q4_1's layout with q5_0's fifth bits.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_1x8 {
    /// The eight rows' scales.
    pub d: [f16; ROWS],
    /// The eight rows' offsets.
    pub m: [f16; ROWS],
    /// The fifth bits, as [`BlockQ5_0x8::qh`].
    pub qh: [u32; 8],
    /// The eight rows' nibbles, interleaved.
    pub qs: [u8; QK / 2 * ROWS],
}

/// Block `b` of eight q4_1 rows.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1x8 {
    /// The eight rows' scales.
    pub d: [f16; ROWS],
    /// The eight rows' offsets.
    pub m: [f16; ROWS],
    /// The eight rows' nibbles, interleaved.
    pub qs: [u8; QK / 2 * ROWS],
}

/// A group block of eight rows of `Self::Row` blocks.
pub trait Interleaved: Copy + Send + Sync + 'static {
    /// The row-major block it interleaves.
    type Row: Block;
    /// Interleaves block `b` of eight rows.
    fn pack(rows: [&Self::Row; ROWS]) -> Self;
    /// Row `k`'s block back.
    fn unpack(&self, k: usize) -> Self::Row;
    /// The eight rows' scales.
    fn scales(&self) -> &[f16; ROWS];
}

/// Eight interleaved 4-bit rows (with a fifth bit per weight for q5_0).
pub trait Nibbles: Interleaved {
    /// Whether the rows carry offsets `m` (q4_1) rather than a fixed centre.
    const OFFSETS: bool;
    /// Without offsets, the weights are `q - CENTRE`: q4_0's 8, q5_0's 16.
    const CENTRE: i32;
    /// Whether the weights have a fifth bit (q5_0: [`Nibbles::fifth`]).
    const FIFTH: bool;
    /// q5_0's fifth bits ([`BlockQ5_0x8::qh`]; zeros for the 4-bit formats).
    fn fifth(&self) -> &[u32; 8] {
        &[0; 8]
    }
    /// q4_1's offsets (q4_0 has none: its scales stand in, unused).
    fn offsets(&self) -> &[f16; ROWS];
    /// The eight rows' nibbles, interleaved.
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS];
}

/// Block `b` of eight q8_0 rows: piece `c` (4 weights) of row `k` at byte `32 c + 4 k`, so
/// eight 32-byte loads hold the eight rows' 32 weights, a row per 32-bit lane.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0x8 {
    /// The eight rows' scales.
    pub d: [f16; ROWS],
    /// The eight rows' weights, interleaved four bytes at a time.
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
    const CENTRE: i32 = 8;
    const FIFTH: bool = false;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
}

/// Eight rows' fifth bits (`qh`, bit `i` weight `i`) regrouped as [`BlockQ5_0x8::qh`].
fn regroup_fifth(rows: [u32; ROWS]) -> [u32; 8] {
    let mut qh = [0u32; 8];
    for (k, row) in rows.iter().enumerate() {
        for c in 0..4 {
            for i in 0..4 {
                let (lo, hi) = (4 * c + i, 16 + 4 * c + i);
                qh[c] |= (row >> lo & 1) << (4 * k + i);
                qh[4 + c] |= (row >> hi & 1) << (4 * k + i);
            }
        }
    }
    qh
}

/// Row `k`'s fifth bits back from [`regroup_fifth`]'s words.
fn fifth_of(qh: &[u32; 8], k: usize) -> u32 {
    let mut row = 0u32;
    for c in 0..4 {
        for i in 0..4 {
            let (lo, hi) = (4 * c + i, 16 + 4 * c + i);
            row |= (qh[c] >> (4 * k + i) & 1) << lo;
            row |= (qh[4 + c] >> (4 * k + i) & 1) << hi;
        }
    }
    row
}

impl Interleaved for BlockQ5_0x8 {
    type Row = BlockQ5_0;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ5_0; ROWS]) -> Self {
        Self {
            d: rows.map(|r| r.d),
            qh: regroup_fifth(rows.map(|r| r.qh)),
            qs: interleave(rows.map(|r| &r.qs)),
        }
    }
    fn unpack(&self, k: usize) -> BlockQ5_0 {
        BlockQ5_0 {
            d: self.d[k],
            qh: fifth_of(&self.qh, k),
            qs: deinterleave(&self.qs, k),
        }
    }
}

impl Nibbles for BlockQ5_0x8 {
    const OFFSETS: bool = false;
    const CENTRE: i32 = 16;
    const FIFTH: bool = true;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
    fn fifth(&self) -> &[u32; 8] {
        &self.qh
    }
}

impl Interleaved for BlockQ5_1x8 {
    type Row = BlockQ5_1;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ5_1; ROWS]) -> Self {
        Self {
            d: rows.map(|r| r.d),
            m: rows.map(|r| r.m),
            qh: regroup_fifth(rows.map(|r| r.qh)),
            qs: interleave(rows.map(|r| &r.qs)),
        }
    }
    fn unpack(&self, k: usize) -> BlockQ5_1 {
        BlockQ5_1 {
            d: self.d[k],
            m: self.m[k],
            qh: fifth_of(&self.qh, k),
            qs: deinterleave(&self.qs, k),
        }
    }
}

impl Nibbles for BlockQ5_1x8 {
    const OFFSETS: bool = true;
    const CENTRE: i32 = 0;
    const FIFTH: bool = true;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.m
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
    fn fifth(&self) -> &[u32; 8] {
        &self.qh
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
    const CENTRE: i32 = 0;
    const FIFTH: bool = false;
    fn offsets(&self) -> &[f16; ROWS] {
        &self.m
    }
    fn nibbles(&self) -> &[u8; QK / 2 * ROWS] {
        &self.qs
    }
}

/// Super-block `b` of eight q4k rows, laid out for the same 4-byte pieces: the rows' `d` and
/// `dmin`, their 12 bytes of 6-bit scales and mins (byte `i` of row `k` at `8 i + k`, so a
/// sub-block's eight scales unpack in one 8-byte vector), then the nibbles: piece `p` (bytes
/// `4p..4p + 4`) of chunk `c` (the 32 bytes whose low nibbles are sub-block `2c` and high
/// nibbles `2c + 1`) of row `k` at byte `256 c + 32 p + 4 k`. One 32-byte load holds four
/// weights of each row for two sub-blocks; the eight rows' sums of a sub-block come out in
/// one vector's lanes, with no horizontal sum. As many bytes as the eight rows' blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4Kx8 {
    /// The eight rows' scales of their sub-block scales.
    pub d: [f16; ROWS],
    /// The eight rows' scales of their sub-block mins.
    pub dmin: [f16; ROWS],
    /// The eight rows' packed 6-bit scales and mins, byte `i` of row `k` at `8i + k`.
    pub scales: [u8; 12 * ROWS],
    /// The eight rows' nibbles, interleaved.
    pub qs: [u8; QK_K / 2 * ROWS],
}

impl Interleaved for BlockQ4Kx8 {
    type Row = BlockQ4K;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ4K; ROWS]) -> Self {
        let (mut scales, mut qs) = ([0; 12 * ROWS], [0; QK_K / 2 * ROWS]);
        for (k, row) in rows.iter().enumerate() {
            for (i, &byte) in row.scales.iter().enumerate() {
                scales[8 * i + k] = byte;
            }
            pack_pieces(&row.qs, &mut qs, k);
        }
        Self {
            d: rows.map(|r| r.d),
            dmin: rows.map(|r| r.dmin),
            scales,
            qs,
        }
    }
    fn unpack(&self, k: usize) -> BlockQ4K {
        let mut qs = [0u8; QK_K / 2];
        unpack_pieces(&self.qs, &mut qs, k);
        BlockQ4K {
            d: self.d[k],
            dmin: self.dmin[k],
            scales: std::array::from_fn(|i| self.scales[8 * i + k]),
            qs,
        }
    }
}

/// Super-block `b` of eight q5k rows: [`BlockQ4Kx8`]'s layout, with the rows' fifth bits
/// `qh` in the same 4-byte pieces (piece `p` of row `k` at `32p + 4k`): one load holds, in
/// bit `j` of each byte, sub-block `j`'s fifth bit of four weights of every row.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5Kx8 {
    /// The eight rows' scales of their sub-block scales.
    pub d: [f16; ROWS],
    /// The eight rows' scales of their sub-block mins.
    pub dmin: [f16; ROWS],
    /// The eight rows' packed 6-bit scales and mins, byte `i` of row `k` at `8i + k`.
    pub scales: [u8; 12 * ROWS],
    /// The eight rows' fifth bits, interleaved.
    pub qh: [u8; QK * ROWS],
    /// The eight rows' low four bits, interleaved as q4k's.
    pub qs: [u8; QK_K / 2 * ROWS],
}

impl Interleaved for BlockQ5Kx8 {
    type Row = BlockQ5K;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ5K; ROWS]) -> Self {
        let mut m = Self {
            d: rows.map(|r| r.d),
            dmin: rows.map(|r| r.dmin),
            scales: [0; 12 * ROWS],
            qh: [0; QK * ROWS],
            qs: [0; QK_K / 2 * ROWS],
        };
        for (k, row) in rows.iter().enumerate() {
            for (i, &byte) in row.scales.iter().enumerate() {
                m.scales[8 * i + k] = byte;
            }
            pack_pieces(&row.qh, &mut m.qh, k);
            pack_pieces(&row.qs, &mut m.qs, k);
        }
        m
    }
    fn unpack(&self, k: usize) -> BlockQ5K {
        let mut row = BlockQ5K {
            d: self.d[k],
            dmin: self.dmin[k],
            scales: std::array::from_fn(|i| self.scales[8 * i + k]),
            qh: [0; QK],
            qs: [0; QK_K / 2],
        };
        unpack_pieces(&self.qh, &mut row.qh, k);
        unpack_pieces(&self.qs, &mut row.qs, k);
        row
    }
}

/// Super-block `b` of eight q6k rows in 4-byte pieces: the rows' `d`, their sixteen group
/// scales (group `g` of row `k` at `8g + k`, so a group's eight scales are one 8-byte load),
/// then `ql` and `qh` cut into 32-byte chunks (`ql[32c..32c + 32]`, `qh[32h..32h + 32]`), piece
/// `p` (bytes `4p..4p + 4`) of chunk `c` of row `k` at byte `256c + 32p + 4k`. One load of
/// each holds four weights of every row: `ql` chunk `2h + s % 2` gives sub-block `4h + s`'s
/// low bits (low nibbles for `s < 2`, high ones above), `qh` chunk `h` their top two bits
/// (bits `2s..2s + 2`), as GGUF's q6_K lays one row out ([`BlockQ6K::q`]). As many bytes as
/// the eight rows' blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ6Kx8 {
    /// The eight rows' scales of their group scales.
    pub d: [f16; ROWS],
    /// The eight rows' group scales, group `g` of row `k` at `8g + k`.
    pub scales: [i8; QK_K / 16 * ROWS],
    /// The eight rows' low four bits, interleaved.
    pub ql: [u8; QK_K / 2 * ROWS],
    /// The eight rows' high two bits, interleaved.
    pub qh: [u8; QK_K / 4 * ROWS],
}

/// Row `k`'s bytes (whole 32-byte chunks) into an interleaved array: piece `p` of chunk `c`
/// at `256c + 32p + 4k`.
fn pack_pieces(row: &[u8], packed: &mut [u8], k: usize) {
    for (c, chunk) in row.chunks_exact(32).enumerate() {
        for (p, piece) in chunk.chunks_exact(4).enumerate() {
            let at = 256 * c + 32 * p + 4 * k;
            packed[at..at + 4].copy_from_slice(piece);
        }
    }
}

/// Row `k`'s bytes back from an interleaved array ([`pack_pieces`]).
fn unpack_pieces(packed: &[u8], row: &mut [u8], k: usize) {
    for (c, chunk) in row.chunks_exact_mut(32).enumerate() {
        for (p, piece) in chunk.chunks_exact_mut(4).enumerate() {
            let at = 256 * c + 32 * p + 4 * k;
            piece.copy_from_slice(&packed[at..at + 4]);
        }
    }
}

impl Interleaved for BlockQ6Kx8 {
    type Row = BlockQ6K;
    fn scales(&self) -> &[f16; ROWS] {
        &self.d
    }
    fn pack(rows: [&BlockQ6K; ROWS]) -> Self {
        let mut m = Self {
            d: rows.map(|r| r.d),
            scales: [0; QK_K / 16 * ROWS],
            ql: [0; QK_K / 2 * ROWS],
            qh: [0; QK_K / 4 * ROWS],
        };
        for (k, row) in rows.iter().enumerate() {
            for (g, &s) in row.scales.iter().enumerate() {
                m.scales[8 * g + k] = s;
            }
            pack_pieces(&row.ql, &mut m.ql, k);
            pack_pieces(&row.qh, &mut m.qh, k);
        }
        m
    }
    fn unpack(&self, k: usize) -> BlockQ6K {
        let mut row = BlockQ6K {
            ql: [0; QK_K / 2],
            qh: [0; QK_K / 4],
            scales: std::array::from_fn(|g| self.scales[8 * g + k]),
            d: self.d[k],
        };
        unpack_pieces(&self.ql, &mut row.ql, k);
        unpack_pieces(&self.qh, &mut row.qh, k);
        row
    }
}

/// A matrix whose rows (a multiple of eight) are interleaved in groups of eight: each group's
/// blocks one after another, or, where `paired` (for the levels that multiply two groups at
/// once), two groups' blocks alternating, so that they are read as one stream (two streams
/// run at half the memory's speed, measured); a last group then stands alone when the rows
/// are not a multiple of sixteen.
pub struct Repacked<I> {
    /// Rows.
    pub rows: usize,
    /// Weights per row.
    pub cols: usize,
    /// The groups' blocks.
    pub groups: WeightVec<I>,
    /// Whether groups are stored in pairs (`Repacked::pair`).
    pub paired: bool,
}

impl<I: Interleaved> Repacked<I> {
    /// Repacks row-major blocks (`rows` a multiple of 8); loading repacks from the file's
    /// bytes instead ([`Self::extend_from_gguf_bytes`]).
    #[cfg(test)]
    pub fn new(rows: usize, cols: usize, blocks: &[I::Row], paired: bool) -> Self {
        let per_row = cols / I::Row::WEIGHTS;
        assert_eq!(blocks.len(), rows * per_row, "rows × cols / WEIGHTS blocks");
        let mut m = Self::with_capacity(&mut crate::Arena::default(), rows, cols, paired);
        m.push_groups(rows / ROWS, |g, k, b| blocks[(g * ROWS + k) * per_row + b]);
        m
    }

    /// An empty matrix of `rows × cols` to fill with [`Self::extend_from_gguf_bytes`].
    pub fn with_capacity(arena: &mut crate::Arena, rows: usize, cols: usize, paired: bool) -> Self {
        assert!(rows.is_multiple_of(ROWS), "whole groups of {ROWS} rows");
        Self {
            rows,
            cols,
            groups: arena.vec(rows / ROWS * (cols / I::Row::WEIGHTS)),
            paired,
        }
    }

    /// Repacks the next rows (whole groups of eight; whole pairs of groups but at the end of
    /// a paired matrix) from their GGUF bytes (row-major blocks), so that loading holds the
    /// repacked matrix and one chunk of the file, never a second copy of the tensor.
    pub fn extend_from_gguf_bytes(&mut self, bytes: &[u8]) {
        let per_row = self.cols / I::Row::WEIGHTS;
        let size = <I::Row as Block>::BYTES;
        let group_bytes = ROWS * per_row * size;
        assert!(
            bytes.len().is_multiple_of(group_bytes),
            "whole groups of {ROWS} rows"
        );
        self.push_groups(bytes.len() / group_bytes, |g, k, b| {
            let at = ((g * ROWS + k) * per_row + b) * size;
            I::Row::read(&bytes[at..at + size])
        });
    }

    /// Appends `groups` groups of eight rows, block `b` of row `k` of group `g` (counted from
    /// the first appended) given by `block`: in pairs while two are left on a paired matrix.
    fn push_groups(&mut self, groups: usize, block: impl Fn(usize, usize, usize) -> I::Row) {
        let per_row = self.cols / I::Row::WEIGHTS;
        let pack = |g: usize, b: usize| {
            let rows: [I::Row; ROWS] = std::array::from_fn(|k| block(g, k, b));
            I::pack(std::array::from_fn(|k| &rows[k]))
        };
        let mut g = 0;
        if self.paired {
            assert!(
                self.groups.len().is_multiple_of(2 * per_row),
                "a group of eight stands alone only at the end of a paired matrix"
            );
            while g + 2 <= groups {
                for b in 0..per_row {
                    self.groups.push(pack(g, b));
                    self.groups.push(pack(g + 1, b));
                }
                g += 2;
            }
        }
        for g in g..groups {
            for b in 0..per_row {
                self.groups.push(pack(g, b));
            }
        }
    }

    /// Pairs of groups stored together (none unless `paired`).
    pub fn pairs(&self) -> usize {
        if self.paired {
            self.rows / (2 * ROWS)
        } else {
            0
        }
    }

    /// Rows a thread's share of the matrix is a multiple of: whole groups, whole pairs of
    /// them where they are stored together.
    pub fn unit(&self) -> usize {
        if self.paired {
            2 * ROWS
        } else {
            ROWS
        }
    }

    /// Pair `p`'s blocks (groups `2p` and `2p + 1`, block by block).
    pub fn pair(&self, p: usize) -> &[I] {
        assert!(p < self.pairs(), "pair {p} of {}", self.pairs());
        let per_row = self.cols / I::Row::WEIGHTS;
        &self.groups[2 * p * per_row..2 * (p + 1) * per_row]
    }

    /// Group `g`'s blocks, for a group not stored in a pair.
    pub fn group(&self, g: usize) -> &[I] {
        assert!(g >= 2 * self.pairs(), "group {g} is stored in a pair");
        let per_row = self.cols / I::Row::WEIGHTS;
        &self.groups[g * per_row..(g + 1) * per_row]
    }

    /// Group `g`'s blocks, stored alone or in a pair.
    pub fn blocks_of(&self, g: usize) -> Group<'_, I> {
        if g < 2 * self.pairs() {
            Group::strided(&self.pair(g / 2)[g % 2..], 2)
        } else {
            Group::from(self.group(g))
        }
    }

    /// Row `r` as f32.
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let (g, per_row) = (r / ROWS, self.cols / I::Row::WEIGHTS);
        let (start, step) = if g < 2 * self.pairs() {
            (g / 2 * 2 * per_row + g % 2, 2)
        } else {
            (g * per_row, 1)
        };
        let blocks = self.groups[start..].iter().step_by(step).take(per_row);
        for (block, o) in blocks.zip(out.chunks_exact_mut(I::Row::WEIGHTS)) {
            o.copy_from_slice(block.unpack(r % ROWS).dequantize().as_ref());
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
        let m = Repacked::<BlockQ4_1x8>::new(16, 32, &blocks, false);
        assert_eq!(m.groups.len(), 2);
        // Piece 1 of row 2 (bytes 4..8 of its block) sits at 32 + 8.
        assert_eq!(&m.groups[0].qs[40..44], &blocks[2].qs[4..8]);
        for (r, block) in blocks.iter().enumerate() {
            assert_eq!(m.group(r / 8)[0].unpack(r % 8), *block);
        }
    }

    #[test]
    fn paired_groups_alternate_block_by_block_and_a_last_group_stands_alone() {
        // 24 rows of two blocks each: groups 0 and 1 paired, group 2 alone.
        let blocks: Vec<BlockQ4_0> = (0..48u8)
            .map(|i| BlockQ4_0 {
                d: f16::from_f32(i as f32),
                qs: [i; QK / 2],
            })
            .collect();
        let m = Repacked::<BlockQ4_0x8>::new(24, 64, &blocks, true);
        assert_eq!((m.pairs(), m.unit()), (1, 16));
        // Row r's block b is blocks[2r + b]: pair 0 holds g0 b0, g1 b0, g0 b1, g1 b1.
        let pair = m.pair(0);
        assert_eq!(pair[0].unpack(3), blocks[6]);
        assert_eq!(pair[1].unpack(3), blocks[2 * 11]);
        assert_eq!(pair[2].unpack(3), blocks[7]);
        assert_eq!(pair[3].unpack(0), blocks[2 * 8 + 1]);
        assert_eq!(m.group(2)[1].unpack(7), blocks[2 * 23 + 1]);
        let mut row = [0f32; 64];
        for r in 0..24 {
            m.row_into(r, &mut row);
            let want: Vec<f32> =
                [blocks[2 * r].dequantize(), blocks[2 * r + 1].dequantize()].concat();
            assert_eq!(row.to_vec(), want, "row {r}");
        }
    }
}
