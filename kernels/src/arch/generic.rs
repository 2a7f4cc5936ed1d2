//! Portable kernels: plain loops over the blocks, the level every CPU has. Also what the
//! SIMD levels are checked against, beside the dequantize-then-f32 reference in the tests.

use crate::blocks::{
    BlockIQ4NL, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8, BlockQ8_0, BlockQ8x8, QK,
};
use crate::dispatch::{Dense, Ops, Quant};
use crate::{Kernels, Level};
use half::{bf16, f16};

/// The portable level's kernels (every CPU runs them).
pub(crate) fn kernels() -> Kernels {
    Kernels {
        level: Level::Scalar,
        q8_0: Quant::rows(dot_q8_0),
        q4_0: Quant::rows(dot_q4_0),
        q4_1: Quant::rows(dot_q4_1),
        q5_0: Quant::rows(dot_q5_0),
        q5_1: Quant::rows(dot_q5_1),
        q2k: Quant::rows(rows_q2k),
        q3k: Quant::rows(rows_q3k),
        q4k: Quant::rows(rows_q4k),
        q5k: Quant::rows(rows_q5k),
        q6k: Quant::rows(rows_q6k),
        iq4_nl: Quant::rows(dot_iq4_nl),
        dense: Dense {
            f32: dot_f32,
            f16: dot_f16_f32,
            bf16: dot_bf16_f32,
            gemm: None,
        },
        ops: Ops {
            quantize: BlockQ8::quantize,
            silu_mul,
            softmax_exp,
            attend,
            dot_f16,
            axpy_f16,
        },
    }
}

pub fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let sum: i32 =
                w.qs.iter()
                    .zip(&x.qs)
                    .map(|(&a, &b)| a as i32 * b as i32)
                    .sum();
            w.d.to_f32() * x.d * sum as f32
        })
        .sum()
}

pub fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let mut sum = 0i32;
            for j in 0..QK / 2 {
                sum += ((w.qs[j] & 0x0F) as i32 - 8) * x.qs[j] as i32;
                sum += ((w.qs[j] >> 4) as i32 - 8) * x.qs[j + QK / 2] as i32;
            }
            w.d.to_f32() * x.d * sum as f32
        })
        .sum()
}

pub fn dot_iq4_nl(w: &[BlockIQ4NL], x: &[BlockQ8]) -> f32 {
    dot_signed(w, x)
}

pub fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let mut sum = 0i32;
            for j in 0..QK / 2 {
                sum += (w.qs[j] & 0x0F) as i32 * x.qs[j] as i32;
                sum += (w.qs[j] >> 4) as i32 * x.qs[j + QK / 2] as i32;
            }
            w.d.to_f32() * x.d * sum as f32 + w.m.to_f32() * x.s
        })
        .sum()
}

pub fn dot_q5_0(w: &[BlockQ5_0], x: &[BlockQ8]) -> f32 {
    dot_signed(w, x)
}

/// A 32-weight block of signed values with one scale and no offset (q5_0, iq4_nl).
trait SignedBlock {
    /// The block's scale.
    fn scale(&self) -> f32;
    /// Weight `i` before scaling.
    fn q(&self, i: usize) -> i8;
}

impl SignedBlock for BlockQ5_0 {
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
    fn q(&self, i: usize) -> i8 {
        BlockQ5_0::q(self, i)
    }
}

impl SignedBlock for BlockIQ4NL {
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
    fn q(&self, i: usize) -> i8 {
        BlockIQ4NL::q(self, i)
    }
}

/// A row of [`SignedBlock`]s by a token's 8-bit blocks: the integer sum of each block pair,
/// scaled by both scales.
fn dot_signed<B: SignedBlock>(w: &[B], x: &[BlockQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let sum: i32 = (0..QK).map(|i| w.q(i) as i32 * x.qs[i] as i32).sum();
            w.scale() * x.d * sum as f32
        })
        .sum()
}

pub fn dot_q5_1(w: &[BlockQ5_1], x: &[BlockQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let sum: i32 = (0..QK).map(|i| w.q(i) as i32 * x.qs[i] as i32).sum();
            w.d.to_f32() * x.d * sum as f32 + w.m.to_f32() * x.s
        })
        .sum()
}

/// q4k's and q5k's layout: eight 32-weight sub-blocks, each with a 6-bit scale and min.
trait ScaledSubBlocks {
    /// The block's scales of the scales and of the mins.
    fn d_dmin(&self) -> (f32, f32);
    /// Sub-block `j`'s scale and min.
    fn scale_min(&self, j: usize) -> (u8, u8);
    /// Weight `e`'s unsigned value.
    fn q(&self, e: usize) -> u8;
}

impl ScaledSubBlocks for BlockQ4K {
    fn d_dmin(&self) -> (f32, f32) {
        (self.d.to_f32(), self.dmin.to_f32())
    }
    fn scale_min(&self, j: usize) -> (u8, u8) {
        BlockQ4K::scale_min(self, j)
    }
    fn q(&self, e: usize) -> u8 {
        BlockQ4K::q(self, e)
    }
}

impl ScaledSubBlocks for BlockQ5K {
    fn d_dmin(&self) -> (f32, f32) {
        (self.d.to_f32(), self.dmin.to_f32())
    }
    fn scale_min(&self, j: usize) -> (u8, u8) {
        BlockQ5K::scale_min(self, j)
    }
    fn q(&self, e: usize) -> u8 {
        BlockQ5K::q(self, e)
    }
}

/// A q4k or q5k row by 8-bit activations: each 32-weight sub-block by one activation block,
/// its scale on the integer sum and its min on the activations' exact sum (`dsum = d · Σ qs`).
fn dot_sub_blocks<B: ScaledSubBlocks>(w: &[B], x: &[BlockQ8x8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let (d, dmin) = w.d_dmin();
            let mut sum = 0f32;
            for j in 0..8 {
                let (scale, min) = w.scale_min(j);
                let isum: i32 = (0..QK)
                    .map(|l| w.q(QK * j + l) as i32 * x.qs[QK * j + l] as i32)
                    .sum();
                sum += d * scale as f32 * x.d[j] * isum as f32 - dmin * min as f32 * x.dsum[j];
            }
            sum
        })
        .sum()
}

/// The integer sums of a 16-weight group by its activations: `Σ q x` and `Σ x`.
fn group_sums(q: impl Fn(usize) -> i32, x: &BlockQ8x8, group: usize) -> (i32, i32) {
    (16 * group..16 * group + 16).fold((0, 0), |(qx, xs), e| {
        let v = x.qs[e] as i32;
        (qx + q(e) * v, xs + v)
    })
}

/// A q3k row by 8-bit activations: each activation block covers two 16-weight groups, whose
/// integer sums take their own scales before the block's scales multiply them.
fn dot_q3k(w: &[BlockQ3K], x: &[BlockQ8x8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let d = w.d.to_f32();
            let mut sum = 0f32;
            for j in 0..8 {
                let isum: i32 = (2 * j..2 * j + 2)
                    .map(|g| w.scale(g) as i32 * group_sums(|e| w.q(e) as i32, x, g).0)
                    .sum();
                sum += d * x.d[j] * isum as f32;
            }
            sum
        })
        .sum()
}

/// A q2k row by 8-bit activations: per 16-weight group its scale on `Σ q x` and its min on
/// `Σ x`, both in integers, then the block's scales.
fn dot_q2k(w: &[BlockQ2K], x: &[BlockQ8x8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let (d, dmin) = (w.d.to_f32(), w.dmin.to_f32());
            let mut sum = 0f32;
            for j in 0..8 {
                let (mut scaled, mut mins) = (0i32, 0i32);
                for g in 2 * j..2 * j + 2 {
                    let (qx, xs) = group_sums(|e| w.q(e) as i32, x, g);
                    let sc = w.scales[g] as i32;
                    scaled += (sc & 0x0F) * qx;
                    mins += (sc >> 4) * xs;
                }
                sum += x.d[j] * (d * scaled as f32 - dmin * mins as f32);
            }
            sum
        })
        .sum()
}

/// A q6k row by 8-bit activations: each activation block covers two 16-weight groups, whose
/// integer sums take their own scales before the block's scales multiply them.
fn dot_q6k(w: &[BlockQ6K], x: &[BlockQ8x8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(w, x)| {
            let d = w.d.to_f32();
            let mut sum = 0f32;
            for j in 0..8 {
                let mut isum = 0i32;
                for half in 0..2 {
                    let part: i32 = (0..16)
                        .map(|l| {
                            let e = 32 * j + 16 * half + l;
                            (w.q(e) as i32 - 32) * x.qs[e] as i32
                        })
                        .sum();
                    isum += w.scales[2 * j + half] as i32 * part;
                }
                sum += d * x.d[j] * isum as f32;
            }
            sum
        })
        .sum()
}

/// Each token's product by a one-token k-quant dot (`KRow`'s layout).
pub(crate) fn each_token<B>(
    dot: impl Fn(&[B], &[BlockQ8x8]) -> f32,
    w: &[B],
    x: &[BlockQ8x8],
    tokens: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let per = w.len();
    for (o, t) in out.iter_mut().zip(tokens) {
        *o = dot(w, &x[t * per..(t + 1) * per]);
    }
}

pub fn rows_q4k(w: &[BlockQ4K], x: &[BlockQ8x8], tokens: std::ops::Range<usize>, out: &mut [f32]) {
    each_token(dot_sub_blocks, w, x, tokens, out)
}

pub fn rows_q2k(w: &[BlockQ2K], x: &[BlockQ8x8], tokens: std::ops::Range<usize>, out: &mut [f32]) {
    each_token(dot_q2k, w, x, tokens, out)
}

pub fn rows_q3k(w: &[BlockQ3K], x: &[BlockQ8x8], tokens: std::ops::Range<usize>, out: &mut [f32]) {
    each_token(dot_q3k, w, x, tokens, out)
}

pub fn rows_q5k(w: &[BlockQ5K], x: &[BlockQ8x8], tokens: std::ops::Range<usize>, out: &mut [f32]) {
    each_token(dot_sub_blocks, w, x, tokens, out)
}

pub fn rows_q6k(w: &[BlockQ6K], x: &[BlockQ8x8], tokens: std::ops::Range<usize>, out: &mut [f32]) {
    each_token(dot_q6k, w, x, tokens, out)
}

pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

pub fn axpy_f16(w: f32, x: &[f16], y: &mut [f32]) {
    for (o, v) in y.iter_mut().zip(x) {
        *o += w * v.to_f32();
    }
}

pub fn dot_f16_f32(w: &[f16], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(a, b)| a.to_f32() * b).sum()
}

pub fn dot_bf16_f32(w: &[bf16], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(a, b)| a.to_f32() * b).sum()
}

/// `gate = silu(gate) * up`, in place.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `s = e^(s - max)` in place; returns the sum.
pub fn softmax_exp(scores: &mut [f32], max: f32) -> f64 {
    let mut sum = 0f64;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s as f64;
    }
    sum
}

/// One query head's attention over `positions` cached rows (row `p` of the keys and values at
/// `p * stride`), in llama.cpp's precision: the cache holds f16, the query is f16 for `q·k`,
/// the softmax runs in f32 (its sum in f64) and its weights are rounded to f16 before they
/// scale the values. `scores`: scratch of at least `positions`.
pub fn attend(
    q: &[f16],
    keys: &[f16],
    values: &[f16],
    stride: usize,
    positions: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    let scale = 1.0 / (hd as f32).sqrt();
    let scores = &mut scores[..positions];
    let mut max = f32::NEG_INFINITY;
    for (p, s) in scores.iter_mut().enumerate() {
        *s = dot_f16(q, &keys[p * stride..p * stride + hd]) * scale;
        max = max.max(*s);
    }
    let inverse = (1.0 / softmax_exp(scores, max)) as f32;
    out.fill(0.0);
    for (p, &s) in scores.iter().enumerate() {
        let w = f16::from_f32(s * inverse).to_f32();
        axpy_f16(w, &values[p * stride..p * stride + hd], out);
    }
}
