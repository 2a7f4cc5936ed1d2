//! The activations a product reads: f32, and quantized to 8-bit blocks (grouped by
//! super-block for k-quant rows) once per operation, normed on the way in.

use crate::blocks::{group_q8, BlockQ8, BlockQ8x8, QK, QK_K};
use crate::dispatch::GEMM_TOKENS;
use crate::runtime::SharedOut;
use crate::tiles::Tiles;
use crate::{ops, Kernels, Pool};

use super::Acts;

/// The activations of `tokens` tokens, `cols` wide, in f32 and (for block formats) quantized
/// to 8-bit blocks once per operation. Buffers are kept and reused: no allocation per step
/// once they have grown to the largest operation.
#[derive(Default)]
pub struct Activations {
    /// Activations per token.
    pub cols: usize,
    /// Tokens.
    pub tokens: usize,
    pub(super) f32: Vec<f32>,
    pub(super) q8: Vec<BlockQ8>,
    /// `q8` grouped eight blocks to a super-block, for k-quant rows: made by the first
    /// product that needs them after each `set`.
    groups: Vec<BlockQ8x8>,
    grouped: bool,
    /// `q8` holds these activations.
    pub(super) quantized: bool,
    /// Products run as GEMMs on f32 activations.
    pub(super) gemm: bool,
    /// Each thread's tile of dequantized weights (GEMM path).
    pub(super) tiles: Vec<f32>,
    /// `q8` in tiles of sixteen tokens, for groups multiplied by tiles: made by the first
    /// product that needs them after each `set`.
    token_tiles: Tiles,
    tiled: bool,
    /// Each thread's band of unpacked weights (tiled path).
    pub(super) bands: Vec<u8>,
    /// `f32` in tiles of [`GEMM_TOKENS`] tokens laid out token-minor, for GEMM tiles
    /// (`dispatch::GemmTile`): made by the first product that needs them after each `set`.
    transposed: Vec<f32>,
    is_transposed: bool,
}

/// RMSNorm (`ops::rms_norm`) applied to activations as they are taken.
#[derive(Clone, Copy)]
pub struct RmsNorm<'a> {
    /// The norm's weights, one per column.
    pub weight: &'a [f32],
    /// The epsilon under the square root.
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
    /// block's values back (quantized by `k`'s level). Prompts share the tokens among the
    /// pool's threads.
    pub fn set(
        &mut self,
        pool: &mut Pool,
        k: &Kernels,
        x: &[f32],
        tokens: usize,
        cols: usize,
        input: Input,
    ) {
        assert_eq!(x.len(), tokens * cols, "tokens × cols activations");
        if let Some(norm) = input.norm {
            assert_eq!(norm.weight.len(), cols, "one norm weight per column");
        }
        self.cols = cols;
        self.tokens = tokens;
        self.gemm = input.gemm;
        self.quantized = input.quantize;
        self.grouped = false;
        self.tiled = false;
        self.is_transposed = false;
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
                    k,
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
                take_token(k, &x[t * cols..(t + 1) * cols], &input, f, q);
            }
        });
    }

    pub(super) fn f32_row(&self, t: usize) -> &[f32] {
        &self.f32[t * self.cols..(t + 1) * self.cols]
    }

    pub(super) fn acts(&self) -> Acts<'_> {
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

    /// Lays the quantized activations out in tiles of sixteen tokens, once per `set`.
    pub(super) fn tile(&mut self) {
        if !self.tiled {
            assert!(self.quantized, "tiles of quantized activations");
            let blocks = self.tokens * self.cols / QK;
            self.token_tiles
                .set(&self.q8[..blocks], self.tokens, self.cols);
            self.tiled = true;
        }
    }

    /// The tiles [`Self::tile`] made.
    pub(super) fn tiles(&self) -> &Tiles {
        assert!(self.tiled, "tiles made before the products that read them");
        &self.token_tiles
    }

    /// Lays the f32 activations out in tiles of [`GEMM_TOKENS`] tokens, token-minor (value `k`
    /// of the tile's token `j` at `32k + j`; a last tile's missing tokens are zeros), once per
    /// `set`.
    pub(super) fn transpose(&mut self) {
        if self.is_transposed {
            return;
        }
        let cols = self.cols;
        let tile = GEMM_TOKENS * cols;
        self.transposed.clear();
        self.transposed
            .resize(self.tokens.div_ceil(GEMM_TOKENS) * tile, 0.0);
        for (t, x) in self.f32.chunks_exact(cols).take(self.tokens).enumerate() {
            let to = &mut self.transposed[t / GEMM_TOKENS * tile + t % GEMM_TOKENS..];
            for (k, &v) in x.iter().enumerate() {
                to[GEMM_TOKENS * k] = v;
            }
        }
        self.is_transposed = true;
    }

    /// Tile `i` of the activations [`Self::transpose`] laid out, and its tokens.
    pub(super) fn transposed(&self, i: usize) -> (&[f32], usize) {
        assert!(
            self.is_transposed,
            "activations laid out before the tiles that read them"
        );
        let tile = GEMM_TOKENS * self.cols;
        (
            &self.transposed[i * tile..(i + 1) * tile],
            GEMM_TOKENS.min(self.tokens - i * GEMM_TOKENS),
        )
    }

    /// Groups the quantized activations by super-block ([`BlockQ8x8`]), once per `set`.
    pub(super) fn group(&mut self) {
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
fn take_token(k: &Kernels, x: &[f32], input: &Input, f32: &mut [f32], q8: &mut [BlockQ8]) {
    let norm = input.norm.map(|n| (n.weight, ops::rms_scale(x, n.eps)));
    for (b, (xs, out)) in x.chunks(QK).zip(f32.chunks_mut(QK)).enumerate() {
        match norm {
            Some((weight, scale)) => ops::rms_apply(xs, scale, &weight[b * QK..], out),
            None => out.copy_from_slice(xs),
        }
        if input.quantize {
            q8[b] = (k.ops.quantize)(out);
            if input.gemm {
                out.copy_from_slice(&q8[b].dequantize());
            }
        }
    }
}
