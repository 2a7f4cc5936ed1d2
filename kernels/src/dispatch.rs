//! The dispatch table: one level's kernels as plain function pointers, chosen once per process
//! (no feature test per call), one entry per format as ggml-cpu's type traits are.

use crate::blocks::{
    BlockIQ4NL, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8, BlockQ8_0, BlockQ8x8,
};
use crate::level::{self, Level};
use crate::repack::{
    BlockQ4Kx8, BlockQ4_0x8, BlockQ4_1x8, BlockQ5Kx8, BlockQ5_0x8, BlockQ5_1x8, BlockQ6Kx8,
    BlockQ8_0x8,
};
use crate::tiles::{Group, Tile};
use crate::Result;
use half::{bf16, f16};
use std::ops::Range;

/// The kernels of one level.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The level they belong to.
    pub level: Level,
    /// q8_0 rows, and interleaved groups of them.
    pub q8_0: Quant<BlockQ8_0, Dot<BlockQ8_0>, BlockQ8_0x8>,
    /// q4_0 rows, and interleaved groups of them (by tiles for prompts on `avx512vnni`).
    pub q4_0: Quant<BlockQ4_0, Dot<BlockQ4_0>, BlockQ4_0x8>,
    /// q4_1 rows, and interleaved groups of them.
    pub q4_1: Quant<BlockQ4_1, Dot<BlockQ4_1>, BlockQ4_1x8>,
    /// q5_0 rows, and interleaved groups of them on the x86 levels and `neondot` (by tiles
    /// for prompts on `avx512vnni` and `i8mm`).
    pub q5_0: Quant<BlockQ5_0, Dot<BlockQ5_0>, BlockQ5_0x8>,
    /// q5_1 rows, and interleaved groups of them on the x86 levels and `neondot`.
    pub q5_1: Quant<BlockQ5_1, Dot<BlockQ5_1>, BlockQ5_1x8>,
    /// q2k rows.
    pub q2k: Quant<BlockQ2K, KRow<BlockQ2K>>,
    /// q3k rows.
    pub q3k: Quant<BlockQ3K, KRow<BlockQ3K>>,
    /// q4k rows (several tokens at once), and interleaved groups of them on the x86 levels.
    pub q4k: Quant<BlockQ4K, KRow<BlockQ4K>, BlockQ4Kx8>,
    /// q5k rows (several tokens at once), and interleaved groups of them on the x86 levels.
    pub q5k: Quant<BlockQ5K, KRow<BlockQ5K>, BlockQ5Kx8>,
    /// q6k rows (several tokens at once), and interleaved groups of them on the x86 levels
    /// (by activations grouped by super-block).
    pub q6k: Quant<BlockQ6K, KRow<BlockQ6K>, BlockQ6Kx8, BlockQ8x8>,
    /// iq4_nl rows.
    pub iq4_nl: Quant<BlockIQ4NL, Dot<BlockIQ4NL>>,
    /// Dense weights by f32 activations.
    pub dense: Dense,
    /// The feed-forward's activation and attention's steps.
    pub ops: Ops,
}

/// One block format's kernels: `row`, one row by a run of tokens' activations; `rows8` and
/// `rows16`, eight interleaved rows (`repack`) and pairs of such groups, on levels that have
/// them, by activations `X` (8-bit blocks, or [`BlockQ8x8`] groups for formats whose groups
/// need more of the activations' sums); `tiled`, groups of eight rows (`T`: interleaved
/// blocks, or eight rows' row-major blocks) by tiles of tokens. Where `rows8` is `None`,
/// matrices keep GGUF's row-major blocks; where `rows16` is, groups are stored one by one.
pub struct Quant<B, R, I = NotInterleaved, X = BlockQ8, T = I> {
    /// One row (whole blocks) by activations: [`Dot`] for 32-weight blocks, [`KRow`] for
    /// k-quant super-blocks.
    pub row: R,
    /// Eight interleaved rows by a run of tokens.
    pub rows8: Option<Rows8<I, X>>,
    /// Two groups of eight interleaved rows stored together (`repack::Repacked::pair`).
    pub rows16: Option<Rows16<I, X>>,
    /// Groups of eight interleaved rows by tiles of sixteen tokens (prompts and large
    /// batches), on levels with such a micro-kernel.
    pub tiled: Option<Tiled<T>>,
    /// The block type the kernels read.
    pub block: std::marker::PhantomData<fn(&B)>,
}

impl<B, R: Copy, I, X, T> Clone for Quant<B, R, I, X, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B, R: Copy, I, X, T> Copy for Quant<B, R, I, X, T> {}

impl<B, R, I, X, T> Quant<B, R, I, X, T> {
    /// A format with only row-major rows on this level.
    pub const fn rows(row: R) -> Self {
        Quant {
            row,
            rows8: None,
            rows16: None,
            tiled: None,
            block: std::marker::PhantomData,
        }
    }

    /// A format whose rows also come in interleaved groups of eight on this level.
    pub const fn grouped(row: R, rows8: Rows8<I, X>) -> Self {
        Quant {
            row,
            rows8: Some(rows8),
            rows16: None,
            tiled: None,
            block: std::marker::PhantomData,
        }
    }
}

/// A group of eight interleaved rows by tiles of sixteen tokens ([`crate::tiles`]): `unpack`
/// writes the group's weights as bytes into a band ([`crate::tiles::band_len`] bytes: the
/// weights in the level's order, on `avx512vnni` weights `4p..4p + 4` of row `k` at
/// `32p + 4k`, on `i8mm` runs of eight per row, then the format's per-block factors), once for
/// all the tiles; `multiply`, the same level's, gives the eight rows by one tile,
/// `out[16k + i]` = row `k` · the tile's token `i`.
pub struct Tiled<I> {
    /// The group's weights into a band of bytes.
    pub unpack: fn(Group<I>, &mut [u8]),
    /// The group (its scales) and its band by one tile.
    pub multiply: fn(Group<I>, &[u8], Tile, &mut [f32; 128]),
}

impl<I> Clone for Tiled<I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for Tiled<I> {}

/// A format without interleaved groups (no value of it exists).
#[derive(Clone, Copy)]
pub enum NotInterleaved {}

/// Dense weights by f32 activations: one row by one token, and (on levels that have it) rows
/// by a tile of tokens for prompts.
#[derive(Clone, Copy)]
pub struct Dense {
    /// f32 weights.
    pub f32: fn(&[f32], &[f32]) -> f32,
    /// Half-precision weights.
    pub f16: fn(&[f16], &[f32]) -> f32,
    /// bfloat16 weights.
    pub bf16: fn(&[bf16], &[f32]) -> f32,
    /// f32 rows by a tile of tokens (prompts' GEMMs); where `None`, the `gemm` crate's.
    pub gemm: Option<GemmTile>,
}

/// Tokens in one tile of activations laid out for [`GemmTile`].
pub const GEMM_TOKENS: usize = 32;

/// Rows one [`GemmTile`] call multiplies.
pub const GEMM_ROWS: usize = 12;

/// `(xt, w, tokens, out)`: `out[32i + j]` = row `i` of `w` · token `j` of a tile of
/// activations laid out token-minor (value `k` of token `j` at `xt[32k + j]`, so
/// `xt.len()` = 32 × `cols`), for the tile's first `tokens` tokens and each of `w`'s rows (1 to
/// 12, row-major, `cols` each). Every output is one chain of FMAs over `k` in order, from zero:
/// each level that has the kernel gives the same bits, whatever its vectors' width.
pub type GemmTile = fn(&[f32], &[f32], usize, &mut [f32; GEMM_ROWS * GEMM_TOKENS]);

/// The steps between products: quantizing activations, SiLU gating and attention over the
/// f16 KV cache.
#[derive(Clone, Copy)]
pub struct Ops {
    /// 32 activations as an 8-bit block: on every level the same bits as
    /// [`BlockQ8::quantize`], the portable level's.
    pub quantize: fn(&[f32]) -> BlockQ8,
    /// `gate = silu(gate) * up` in place (the feed-forward's activation).
    pub silu_mul: fn(&mut [f32], &[f32]),
    /// `s = e^(s - max)` in place, returning the sum (the softmax's numerators).
    pub softmax_exp: fn(&mut [f32], f32) -> f64,
    /// One query head over the f16 KV cache (`arch::generic::attend` says the precision).
    pub attend: Attend,
    /// Attention's steps one cached position at a time: a query (rounded to f16) by a key.
    /// The engine calls [`Ops::attend`]; this and [`Ops::axpy_f16`] are what the tests check
    /// each level's one-pass `attend` against.
    pub dot_f16: fn(&[f16], &[f16]) -> f32,
    /// A value row added to the output with its weight.
    pub axpy_f16: fn(f32, &[f16], &mut [f32]),
}

/// One row of 32-weight blocks by one token's 8-bit activation blocks.
pub type Dot<B> = fn(&[B], &[BlockQ8]) -> f32;

/// `(q, keys, values, stride, positions, scores, out)`: the query head, its KV head's keys and
/// values from their first row (row `p` at `p * stride`), the cached positions, scratch for
/// their scores, and the head's output.
pub type Attend = fn(&[f16], &[f16], &[f16], usize, usize, &mut [f32], &mut [f32]);

/// `out[t - tokens.start]` = one k-quant row (`row.len()` super-blocks) · token `t` of the
/// activations (each token `row.len()` groups of eight blocks, one after another).
pub type KRow<B> = fn(&[B], &[BlockQ8x8], Range<usize>, &mut [f32]);

/// `out[(t - tokens.start) * 8 + k]` = row `k` of one group of interleaved rows · token `t`
/// of the activations (each token as many activation blocks as the group's row has, one
/// after another).
pub type Rows8<I, X = BlockQ8> = fn(&[I], &[X], Range<usize>, &mut [f32]);

/// As [`Rows8`] for a pair of groups stored together (`repack::Repacked::pair`):
/// `out[(t - tokens.start) * 16 + k]`, rows `k < 8` of the first group, `k ≥ 8` of the second.
pub type Rows16<I, X = BlockQ8> = fn(&[I], &[X], Range<usize>, &mut [f32]);

impl Kernels {
    /// The kernels of `level`; a level this CPU cannot run is refused.
    pub fn for_level(level: Level) -> Result<Kernels> {
        crate::arch::kernels(level).ok_or_else(|| level::refusal(level.name(), level::LACKING))
    }

    /// The kernels [`Level::chosen`] names.
    pub fn chosen() -> Result<Kernels> {
        Kernels::for_level(Level::chosen()?)
    }
}
