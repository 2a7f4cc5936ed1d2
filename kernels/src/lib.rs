//! llm-bench's tuned engine's kernels: quantized dot products over GGUF's block
//! layouts and the matrix-vector product of decode, written with `std::arch` intrinsics and
//! chosen once per process from the CPU's features, so one binary runs the best code the
//! machine has without `-C target-cpu=native`.
//!
//! Levels, lowest first: `scalar` (every CPU), `avx2` (x86-64 with AVX2, FMA and F16C),
//! `avxvnni` (AVX2's kernels, with AVX-VNNI's `vpdpbusd` for interleaved rows; `vnni`),
//! `avx512` (AVX-512 F and BW: interleaved rows sixteen at a time in 512-bit vectors;
//! `avx512`), `avx512vnni` (the same with `vpdpbusd`, eight-row groups left over in 256-bit
//! `vpdpbusd`); on aarch64 `neon` (every aarch64 CPU: NEON row-major quantized dots, dense
//! dots and attention; `neon/`) and `neondot` (NEON with the dot-product extension: `neon`'s
//! kernels, and `sdot` for interleaved rows; `neon`).
//! `LLM_BENCH_KERNELS=scalar` forces a lower level than the CPU offers (tests run every level
//! the machine has; a level the CPU lacks is refused, never run).

/// Runs `$kernel::<$I, N>` (or `$kernel::<N>`; `$rows` interleaved rows, eight unless given,
/// by `N ≤ 4` tokens, each token's row results in the level's vector type) over the run
/// `$tokens` of tokens, four at a time, `$store`-ing token `t`'s results at
/// `$out[(t - start) * $rows..]`. Each token's activations are `$blocks` elements of `$x` per
/// element of `$w` (one unless given: a k-quant super-block takes eight 8-bit blocks). One
/// driver for every multi-token kernel of every level.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! four_tokens_at_a_time {
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path) => {
        four_tokens_at_a_time!($kernel $(::<$($I),*>)?, $w, $x, $tokens, $out, $store, ROWS, 1)
    };
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path, $rows:expr) => {
        four_tokens_at_a_time!($kernel $(::<$($I),*>)?, $w, $x, $tokens, $out, $store, $rows, 1)
    };
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path, $rows:expr, $blocks:expr) => {{
        let (w, x, tokens, out) = ($w, $x, $tokens, $out);
        let per = w.len() * $blocks;
        let token = |t: usize| &x[t * per..(t + 1) * per];
        let mut t = tokens.start;
        while t < tokens.end {
            let n = (tokens.end - t).min(4);
            let results = match n {
                4 => $kernel::<$($($I,)*)? 4>(w, [token(t), token(t + 1), token(t + 2), token(t + 3)]),
                3 => {
                    let r = $kernel::<$($($I,)*)? 3>(w, [token(t), token(t + 1), token(t + 2)]);
                    [r[0], r[1], r[2], r[2]]
                }
                2 => {
                    let r = $kernel::<$($($I,)*)? 2>(w, [token(t), token(t + 1)]);
                    [r[0], r[1], r[1], r[1]]
                }
                _ => [$kernel::<$($($I,)*)? 1>(w, [token(t)])[0]; 4],
            };
            let o = &mut out[(t - tokens.start) * $rows..(t - tokens.start + n) * $rows];
            for (v, dst) in results.iter().zip(o.chunks_exact_mut($rows)) {
                $store(dst, v);
            }
            t += n;
        }
    }};
}

pub mod arena;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod blocks;
mod error;
pub mod matrix;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod ops;
pub mod pool;
pub mod repack;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod vnni;

pub use arena::{Arena, WeightVec};
use blocks::{
    Block, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8, BlockQ8_0,
    BlockQ8x8, QK,
};
pub use error::{Error, Result};
pub use pool::Pool;

/// Lowers the kernel level: `scalar`, `avx2`, `avxvnni`, `avx512`, `avx512vnni`, `neon` or
/// `neondot`.
pub const LEVEL_ENV: &str = "LLM_BENCH_KERNELS";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    AvxVnni,
    Avx512,
    Avx512Vnni,
    Neon,
    NeonDot,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::Scalar,
        Level::Avx2,
        Level::AvxVnni,
        Level::Avx512,
        Level::Avx512Vnni,
        Level::Neon,
        Level::NeonDot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::AvxVnni => "avxvnni",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
            Level::Neon => "neon",
            Level::NeonDot => "neondot",
        }
    }

    fn supported(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => avx2::detected(),
            #[cfg(target_arch = "x86_64")]
            Level::AvxVnni => vnni::avxvnni::detected(),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => avx512::bw::detected(),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni => vnni::avx512::detected(),
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx2 | Level::AvxVnni | Level::Avx512 | Level::Avx512Vnni => false,
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Level::NeonDot => neon::detected(),
            #[cfg(not(target_arch = "aarch64"))]
            Level::Neon | Level::NeonDot => false,
        }
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        Level::ALL.into_iter().filter(|l| l.supported()).collect()
    }

    /// The best level this CPU runs, or the one `LLM_BENCH_KERNELS` names (which must be one
    /// the CPU runs).
    pub fn chosen() -> Result<Level> {
        match std::env::var(LEVEL_ENV) {
            Ok(name) if !name.trim().is_empty() => Level::named(name.trim()),
            _ => Ok(*Level::available()
                .last()
                .expect("scalar is always available")),
        }
    }

    /// The level called `name`, if this CPU runs it.
    pub fn named(name: &str) -> Result<Level> {
        let bad = |problem: &str| Error::KernelLevel {
            value: name.into(),
            problem: problem.into(),
            available: Level::available()
                .iter()
                .map(|l| l.name())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let level = Level::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| bad("not a kernel level"))?;
        if !level.supported() {
            return Err(bad("this CPU lacks the features that level needs"));
        }
        Ok(level)
    }
}

/// The kernels of one level, as plain function pointers (chosen once; no feature test per call).
#[derive(Clone, Copy)]
pub struct Kernels {
    pub level: Level,
    pub dot_q8_0: fn(&[BlockQ8_0], &[BlockQ8]) -> f32,
    pub dot_q4_0: fn(&[BlockQ4_0], &[BlockQ8]) -> f32,
    pub dot_q4_1: fn(&[BlockQ4_1], &[BlockQ8]) -> f32,
    pub dot_q5_0: fn(&[BlockQ5_0], &[BlockQ8]) -> f32,
    pub dot_q5_1: fn(&[BlockQ5_1], &[BlockQ8]) -> f32,
    /// k-quant rows (256-weight super-blocks) by a run of tokens, each sub-block of 32 weights
    /// by one 8-bit activation block (eight grouped per super-block: [`KRow`]).
    pub rows_q4k: KRow<BlockQ4K>,
    pub rows_q6k: KRow<BlockQ6K>,
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// Half-precision weights by f32 activations.
    pub dot_f16_f32: fn(&[half::f16], &[f32]) -> f32,
    pub dot_bf16_f32: fn(&[half::bf16], &[f32]) -> f32,
    /// Attention's steps one cached position at a time: a query (rounded to f16) by a key,
    /// and a value row added to the output with its weight. The engine calls [`Self::attend`];
    /// these are what the tests check each level's one-pass `attend` against.
    pub dot_f16: fn(&[half::f16], &[half::f16]) -> f32,
    pub axpy_f16: fn(f32, &[half::f16], &mut [f32]),
    /// `gate = silu(gate) * up` in place (the feed-forward's activation).
    pub silu_mul: fn(&mut [f32], &[f32]),
    /// `s = e^(s - max)` in place, returning the sum (the softmax's numerators).
    pub softmax_exp: fn(&mut [f32], f32) -> f64,
    /// One query head over the f16 KV cache (`scalar::attend` says the precision).
    pub attend: Attend,
    /// Eight interleaved 4-bit rows by a run of tokens (`repack`), on levels that have them;
    /// where `None`, matrices keep GGUF's row-major blocks.
    pub rows8_q4_0: Option<Rows8<repack::BlockQ4_0x8>>,
    pub rows8_q4_1: Option<Rows8<repack::BlockQ4_1x8>>,
    pub rows8_q8_0: Option<Rows8<repack::BlockQ8_0x8>>,
    /// Eight interleaved q4k rows (256-weight super-blocks; activations eight blocks per
    /// super-block), on the x86 levels.
    pub rows8_q4k: Option<Rows8<repack::BlockQ4Kx8>>,
    /// Two groups at once (sixteen rows in 512-bit vectors), on levels that have them: their
    /// matrices store groups in pairs (`repack::Repacked::pair`); a last group of eight takes
    /// `rows8`.
    pub rows16_q4_0: Option<Rows16<repack::BlockQ4_0x8>>,
    pub rows16_q4_1: Option<Rows16<repack::BlockQ4_1x8>>,
    pub rows16_q8_0: Option<Rows16<repack::BlockQ8_0x8>>,
}

/// `(q, keys, values, stride, positions, scores, out)`: the query head, its KV head's keys and
/// values from their first row (row `p` at `p * stride`), the cached positions, scratch for
/// their scores, and the head's output.
pub type Attend =
    fn(&[half::f16], &[half::f16], &[half::f16], usize, usize, &mut [f32], &mut [f32]);

/// `out[t - tokens.start]` = one k-quant row (`row.len()` super-blocks) · token `t` of the
/// activations (each token `row.len()` groups of eight blocks, one after another).
pub type KRow<B> = fn(&[B], &[BlockQ8x8], std::ops::Range<usize>, &mut [f32]);

/// `out[(t - tokens.start) * 8 + k]` = row `k` of one group of interleaved rows · token `t`
/// of the activations (each token `group.len()` blocks, one after another).
pub type Rows8<I> = fn(&[I], &[BlockQ8], std::ops::Range<usize>, &mut [f32]);

/// As [`Rows8`] for a pair of groups stored together (`repack::Repacked::pair`):
/// `out[(t - tokens.start) * 16 + k]`, rows `k < 8` of the first group, `k ≥ 8` of the second.
pub type Rows16<I> = fn(&[I], &[BlockQ8], std::ops::Range<usize>, &mut [f32]);

impl Kernels {
    /// The kernels of `level`; a level this CPU cannot run is refused.
    pub fn for_level(level: Level) -> Result<Kernels> {
        Level::named(level.name())?;
        Ok(match level {
            Level::Scalar => Kernels {
                level,
                dot_q8_0: scalar::dot_q8_0,
                dot_q4_0: scalar::dot_q4_0,
                dot_q4_1: scalar::dot_q4_1,
                dot_q5_0: scalar::dot_q5_0,
                dot_q5_1: scalar::dot_q5_1,
                rows_q4k: scalar::rows_q4k,
                rows_q6k: scalar::rows_q6k,
                dot_f32: scalar::dot_f32,
                dot_f16_f32: scalar::dot_f16_f32,
                dot_bf16_f32: scalar::dot_bf16_f32,
                dot_f16: scalar::dot_f16,
                axpy_f16: scalar::axpy_f16,
                silu_mul: scalar::silu_mul,
                softmax_exp: scalar::softmax_exp,
                attend: scalar::attend,
                rows8_q4_0: None,
                rows8_q4_1: None,
                rows8_q8_0: None,
                rows8_q4k: None,
                rows16_q4_0: None,
                rows16_q4_1: None,
                rows16_q8_0: None,
            },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => Kernels {
                level,
                dot_q8_0: avx2::dot_q8_0,
                dot_q4_0: avx2::dot_q4_0,
                dot_q4_1: avx2::dot_q4_1,
                dot_q5_0: avx2::dot_q5_0,
                dot_q5_1: avx2::dot_q5_1,
                rows_q4k: avx2::rows_q4k,
                rows_q6k: avx2::rows_q6k,
                dot_f32: avx2::dot_f32,
                dot_f16_f32: avx2::dot_f16_f32,
                dot_bf16_f32: avx2::dot_bf16_f32,
                dot_f16: avx2::dot_f16,
                axpy_f16: avx2::axpy_f16,
                silu_mul: avx2::silu_mul,
                softmax_exp: avx2::softmax_exp,
                attend: avx2::attend,
                rows8_q4_0: Some(avx2::rows8_q4_0),
                rows8_q4_1: Some(avx2::rows8_q4_1),
                rows8_q8_0: Some(avx2::rows8_q8_0),
                rows8_q4k: Some(avx2::rows8_q4k),
                rows16_q4_0: None,
                rows16_q4_1: None,
                rows16_q8_0: None,
            },
            #[cfg(target_arch = "x86_64")]
            Level::AvxVnni => Kernels {
                level,
                rows_q4k: avx2::rows_q4k_avxvnni,
                rows8_q4k: Some(avx2::rows8_q4k_avxvnni),
                rows8_q4_0: Some(vnni::avxvnni::rows8_q4_0),
                rows8_q4_1: Some(vnni::avxvnni::rows8_q4_1),
                rows8_q8_0: Some(vnni::avxvnni::rows8_q8_0),
                ..Kernels::for_level(Level::Avx2)?
            },
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => Kernels {
                level,
                rows16_q4_0: Some(avx512::bw::rows16_q4_0),
                rows16_q4_1: Some(avx512::bw::rows16_q4_1),
                rows16_q8_0: Some(avx512::bw::rows16_q8_0),
                ..Kernels::for_level(Level::Avx2)?
            },
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni => Kernels {
                level,
                rows_q4k: avx2::rows_q4k_avx512vnni,
                rows8_q4k: Some(avx2::rows8_q4k_avx512vnni),
                rows8_q4_0: Some(vnni::avx512::rows8_q4_0),
                rows8_q4_1: Some(vnni::avx512::rows8_q4_1),
                rows8_q8_0: Some(vnni::avx512::rows8_q8_0),
                rows16_q4_0: Some(avx512::vnni::rows16_q4_0),
                rows16_q4_1: Some(avx512::vnni::rows16_q4_1),
                rows16_q8_0: Some(avx512::vnni::rows16_q8_0),
                ..Kernels::for_level(Level::Avx2)?
            },
            #[cfg(target_arch = "aarch64")]
            Level::Neon => Kernels {
                level,
                dot_q8_0: neon::dot_q8_0,
                dot_q4_0: neon::dot_q4_0,
                dot_q4_1: neon::dot_q4_1,
                dot_q5_0: neon::dot_q5_0,
                dot_q5_1: neon::dot_q5_1,
                rows_q4k: neon::rows_q4k,
                rows_q6k: neon::rows_q6k,
                dot_f32: neon::dot_f32,
                dot_f16_f32: neon::dot_f16_f32,
                dot_bf16_f32: neon::dot_bf16_f32,
                dot_f16: neon::dot_f16,
                axpy_f16: neon::axpy_f16,
                silu_mul: neon::silu_mul,
                softmax_exp: neon::softmax_exp,
                attend: neon::attend,
                ..Kernels::for_level(Level::Scalar)?
            },
            #[cfg(target_arch = "aarch64")]
            Level::NeonDot => Kernels {
                level,
                rows8_q4_0: Some(neon::rows8_q4_0),
                rows8_q4_1: Some(neon::rows8_q4_1),
                rows8_q8_0: Some(neon::rows8_q8_0),
                ..Kernels::for_level(Level::Neon)?
            },
            #[cfg(not(target_arch = "aarch64"))]
            Level::Neon | Level::NeonDot => {
                unreachable!("refused above: not supported off aarch64")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx2 | Level::AvxVnni | Level::Avx512 | Level::Avx512Vnni => {
                unreachable!("refused above: not supported off x86-64")
            }
        })
    }

    /// The kernels [`Level::chosen`] names.
    pub fn chosen() -> Result<Kernels> {
        Kernels::for_level(Level::chosen()?)
    }
}

/// Quantized activations as the kernels read them: `q8`, every token's 8-bit blocks, one
/// token after another; `groups`, the same blocks grouped eight by eight ([`BlockQ8x8`]) for
/// k-quant rows (empty where no k-quant row reads them).
#[derive(Clone, Copy)]
pub struct Acts<'a> {
    pub q8: &'a [BlockQ8],
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
    ($block:ty, $dot:ident) => {
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
                    *o = (k.$dot)(row, &x.q8[t * per..(t + 1) * per]);
                }
            }
        }
    };
}

dot_products!(BlockQ8_0, dot_q8_0);
dot_products!(BlockQ4_0, dot_q4_0);
dot_products!(BlockQ4_1, dot_q4_1);
dot_products!(BlockQ5_0, dot_q5_0);
dot_products!(BlockQ5_1, dot_q5_1);

/// A k-quant format: its row kernel, several tokens at once, on the grouped activations.
macro_rules! grouped_products {
    ($block:ty, $rows:ident) => {
        impl QuantBlock for $block {
            const GROUPED: bool = true;
            fn products(
                k: &Kernels,
                row: &[Self],
                x: Acts,
                tokens: std::ops::Range<usize>,
                out: &mut [f32],
            ) {
                (k.$rows)(row, x.groups, tokens, out)
            }
        }
    };
}

grouped_products!(BlockQ4K, rows_q4k);
grouped_products!(BlockQ6K, rows_q6k);

/// Checks that `bytes` hold `rows × cols` weights in whole `B` blocks (rows of a positive
/// multiple of 32), without overflow.
fn check_blocks<B: Block>(name: &str, rows: usize, cols: usize, bytes: &[u8]) -> Result<()> {
    let expected = matrix::Matrix::gguf_bytes(name, B::NAME, rows, cols)?;
    if bytes.len() != expected {
        return Err(Error::BadField {
            path: name.into(),
            field: "shape".into(),
            problem: format!(
                "{rows} x {cols} in {} is {expected} bytes, found {}",
                B::NAME,
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// A weight matrix in a block format: `rows` rows of `cols` weights, row-major, as GGUF
/// stores a 2-D tensor (`cols` is GGUF's first dimension).
pub struct QMatrix<B> {
    pub rows: usize,
    pub cols: usize,
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
    pub rows: usize,
    pub cols: usize,
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
        let (dot, cols) = (kernels.dot_f32, self.cols);
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

/// An output buffer the pool's threads fill in disjoint parts.
pub struct SharedOut<T = f32>(pub *mut T);

impl<T> SharedOut<T> {
    pub fn at(&self, offset: usize) -> *mut T {
        // SAFETY (for callers): offset is within the buffer.
        self.0.wrapping_add(offset)
    }
}

// SAFETY: each thread writes a disjoint range (see `each_row`, and every other user).
unsafe impl<T: Send> Sync for SharedOut<T> {}

#[cfg(test)]
mod tests;
