//! The block formats the kernels read, in GGUF's layouts (one block = 32 weights of a row),
//! and the 8-bit block activations are quantized to once per product.
//!
//! - q8_0: `d: f16`, `qs: [i8; 32]`; weight `i` = `d * qs[i]`.
//! - q4_0: `d: f16`, `qs: [u8; 16]`; weight `i` = `d * (nibble - 8)`, where weights 0..16
//!   are the low nibbles of `qs` and 16..32 the high ones.
//! - q4_1: `d: f16`, `m: f16`, `qs: [u8; 16]`; weight `i` = `d * nibble + m`, same nibble order.
//! - q5_0: `d: f16`, `qh: u32`, `qs: [u8; 16]`; weight `i` = `d * (nibble + 16 · bit i of qh - 16)`,
//!   q4_0's nibble order. q5_1: `d`, `m: f16`, `qh`, `qs`; weight `i` = `d * (nibble + 16 · bit) + m`.
//! - q4k (GGUF's q4_K): 256 weights in eight sub-blocks of 32, `d: f16`, `dmin: f16`,
//!   `scales: [u8; 12]` (each sub-block's 6-bit scale and min), `qs: [u8; 128]`; sub-block `j`'s
//!   weight = `d * scale_j * nibble - dmin * min_j`, sub-blocks `2c` and `2c + 1` the low and high
//!   nibbles of `qs[32c..32c + 32]`.
//! - q6k (GGUF's q6_K): 256 weights in sixteen groups of 16, `ql: [u8; 128]` (low 4 bits),
//!   `qh: [u8; 64]` (high 2 bits), `scales: [i8; 16]`, `d: f16`; weight = `d * scale_g * (q - 32)`
//!   with `q` in 0..64 (the layout: [`BlockQ6K::q`]).

mod kquants;

pub use kquants::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, QK_K};

use half::f16;

/// Weights (and activations) per block.
pub const QK: usize = 32;

/// A q8_0 block: 32 weights `d * qs[i]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// The block's scale.
    pub d: f16,
    /// The weights, one signed byte each.
    pub qs: [i8; QK],
}

/// A q4_0 block: 32 weights `d * (nibble - 8)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// The block's scale.
    pub d: f16,
    /// Weights 0..16 in the low nibbles, 16..32 in the high ones.
    pub qs: [u8; QK / 2],
}

/// A q4_1 block: 32 weights `d * nibble + m`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// The block's scale.
    pub d: f16,
    /// The offset every weight carries.
    pub m: f16,
    /// Weights 0..16 in the low nibbles, 16..32 in the high ones.
    pub qs: [u8; QK / 2],
}

/// A block of activations: `x[i] ≈ d * qs[i]`, and `s = d * Σ qs` (what q4_1's offset
/// multiplies). Internal to the kernels, so its scales are f32.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8 {
    /// The scale.
    pub d: f32,
    /// `d * Σ qs`.
    pub s: f32,
    /// `Σ qs`, exact (q4_0's offset of -8 takes it in integers).
    pub sum: i32,
    /// The values, one signed byte each.
    pub qs: [i8; QK],
}

impl Default for BlockQ8 {
    fn default() -> Self {
        Self {
            d: 0.0,
            s: 0.0,
            sum: 0,
            qs: [0; QK],
        }
    }
}

/// A weight block format: its size in a GGUF file, how to read one, and its weights as f32.
pub trait Block: Copy + Send + Sync + 'static {
    /// The format it stores.
    const FORMAT: crate::Format;
    /// Bytes per block in GGUF.
    const BYTES: usize;
    /// Weights per block: 32, or a k-quant super-block's 256 (eight 32-weight sub-blocks,
    /// each multiplied by one [`BlockQ8`] of activations).
    const WEIGHTS: usize = QK;
    /// The block's weights as f32: `[f32; WEIGHTS]`.
    type Values: AsRef<[f32]> + IntoIterator<Item = f32>;
    /// Reads one block from exactly [`Self::BYTES`] little-endian bytes.
    fn read(bytes: &[u8]) -> Self;
    /// The block's weights as f32.
    fn dequantize(&self) -> Self::Values;
    /// The offset every weight of the block carries (q4_1's `m`), which products take times
    /// the activations' stored sum `s` rather than weight by weight (0 for formats without
    /// one, and for k-quants, whose sub-blocks each have their own).
    fn offset(&self) -> f32 {
        0.0
    }
}

/// An f16 scale and 16 bytes of nibbles (q4_0's and iq4_nl's layout).
fn scale_and_nibbles(bytes: &[u8]) -> (f16, [u8; QK / 2]) {
    let mut qs = [0u8; QK / 2];
    qs.copy_from_slice(&bytes[2..2 + QK / 2]);
    (half_at(bytes, 0), qs)
}

fn half_at(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
}

impl Block for BlockQ8_0 {
    const FORMAT: crate::Format = crate::Format::Q8_0;
    const BYTES: usize = 2 + QK;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let mut qs = [0i8; QK];
        for (q, b) in qs.iter_mut().zip(&bytes[2..2 + QK]) {
            *q = *b as i8;
        }
        Self {
            d: half_at(bytes, 0),
            qs,
        }
    }
    fn dequantize(&self) -> [f32; QK] {
        let d = self.d.to_f32();
        self.qs.map(|q| d * q as f32)
    }
}

impl Block for BlockQ4_0 {
    const FORMAT: crate::Format = crate::Format::Q4_0;
    const BYTES: usize = 2 + QK / 2;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let (d, qs) = scale_and_nibbles(bytes);
        Self { d, qs }
    }
    fn dequantize(&self) -> [f32; QK] {
        let d = self.d.to_f32();
        let mut out = [0f32; QK];
        for (j, &b) in self.qs.iter().enumerate() {
            out[j] = d * ((b & 0x0F) as i32 - 8) as f32;
            out[j + QK / 2] = d * ((b >> 4) as i32 - 8) as f32;
        }
        out
    }
}

/// An iq4_nl block: 32 weights `d * IQ4NL_VALUES[index]`, the indices in q4_0's nibble
/// order (llama.cpp's `block_iq4_nl`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockIQ4NL {
    /// The block's scale.
    pub d: f16,
    /// Indices 0..16 of weights 0..16 in the low nibbles, 16..32 in the high ones.
    pub qs: [u8; QK / 2],
}

/// llama.cpp's `kvalues_iq4nl`: the values iq4_nl's indices stand for.
pub const IQ4NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

impl BlockIQ4NL {
    /// Weight `i`'s value before the scale.
    pub fn q(&self, i: usize) -> i8 {
        let byte = self.qs[i % (QK / 2)];
        IQ4NL_VALUES[(if i < QK / 2 { byte & 0x0F } else { byte >> 4 }) as usize]
    }
}

impl Block for BlockIQ4NL {
    const FORMAT: crate::Format = crate::Format::IQ4NL;
    const BYTES: usize = 2 + QK / 2;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let (d, qs) = scale_and_nibbles(bytes);
        Self { d, qs }
    }
    fn dequantize(&self) -> [f32; QK] {
        let d = self.d.to_f32();
        std::array::from_fn(|i| d * self.q(i) as f32)
    }
}

impl Block for BlockQ4_1 {
    const FORMAT: crate::Format = crate::Format::Q4_1;
    const BYTES: usize = 4 + QK / 2;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&bytes[4..4 + QK / 2]);
        Self {
            d: half_at(bytes, 0),
            m: half_at(bytes, 2),
            qs,
        }
    }
    fn offset(&self) -> f32 {
        self.m.to_f32()
    }
    fn dequantize(&self) -> [f32; QK] {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        let mut out = [0f32; QK];
        for (j, &b) in self.qs.iter().enumerate() {
            out[j] = d * (b & 0x0F) as f32 + m;
            out[j + QK / 2] = d * (b >> 4) as f32 + m;
        }
        out
    }
}

/// A q5_0 block: 32 weights `d * (q - 16)`, `q` a nibble and a fifth bit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// The block's scale.
    pub d: f16,
    /// Bit `i` is weight `i`'s fifth bit.
    pub qh: u32,
    /// The low four bits: weights 0..16 in the low nibbles, 16..32 in the high ones.
    pub qs: [u8; QK / 2],
}

/// A q5_1 block: 32 weights `d * q + m`, `q` a nibble and a fifth bit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// The block's scale.
    pub d: f16,
    /// The offset every weight carries.
    pub m: f16,
    /// Bit `i` is weight `i`'s fifth bit.
    pub qh: u32,
    /// The low four bits, in q5_0's order.
    pub qs: [u8; QK / 2],
}

/// Weight `i`'s 5-bit value, 0..32: its nibble (low nibbles of `qs` for 0..16, high ones for
/// 16..32, as q4_0's) with bit `i` of `qh` above it.
fn five_bits(qs: &[u8; QK / 2], qh: u32, i: usize) -> u8 {
    let nibble = if i < QK / 2 {
        qs[i] & 0x0F
    } else {
        qs[i - QK / 2] >> 4
    };
    nibble | ((((qh >> i) & 1) as u8) << 4)
}

impl BlockQ5_0 {
    /// Weight `i` before scaling: -16..16.
    pub fn q(&self, i: usize) -> i8 {
        five_bits(&self.qs, self.qh, i) as i8 - 16
    }
}

impl BlockQ5_1 {
    /// Weight `i` before scaling and offset: 0..32.
    pub fn q(&self, i: usize) -> u8 {
        five_bits(&self.qs, self.qh, i)
    }
}

fn word_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Block for BlockQ5_0 {
    const FORMAT: crate::Format = crate::Format::Q5_0;
    const BYTES: usize = 6 + QK / 2;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&bytes[6..6 + QK / 2]);
        Self {
            d: half_at(bytes, 0),
            qh: word_at(bytes, 2),
            qs,
        }
    }
    fn dequantize(&self) -> [f32; QK] {
        let d = self.d.to_f32();
        std::array::from_fn(|i| self.q(i) as f32 * d)
    }
}

impl Block for BlockQ5_1 {
    const FORMAT: crate::Format = crate::Format::Q5_1;
    const BYTES: usize = 8 + QK / 2;
    type Values = [f32; QK];
    fn read(bytes: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&bytes[8..8 + QK / 2]);
        Self {
            d: half_at(bytes, 0),
            m: half_at(bytes, 2),
            qh: word_at(bytes, 4),
            qs,
        }
    }
    fn offset(&self) -> f32 {
        self.m.to_f32()
    }
    fn dequantize(&self) -> [f32; QK] {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        std::array::from_fn(|i| self.q(i) as f32 * d + m)
    }
}

/// Quantizes activations to 8-bit blocks ([`BlockQ8::quantize`] each 32): `x.len()` must be a
/// multiple of 32 and `out` hold `x.len() / 32`.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    assert_eq!(x.len(), out.len() * QK, "activations fill whole blocks");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        *block = BlockQ8::quantize(xs);
    }
}

/// Eight 8-bit activation blocks (256 activations: a k-quant super-block's worth) as the
/// k-quant kernels read them: each block's scale and `d · Σ qs` side by side (one vector
/// load for the eight), then the values. Made from [`BlockQ8`]s by [`group_q8`], so k-quant
/// rows multiply the activations every other format does, to the bit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub struct BlockQ8x8 {
    /// Block `j`'s scale, `BlockQ8::d`.
    pub d: [f32; 8],
    /// `d[j] · Σ qs` of block `j`, rounded to f32 (its exact sum times its scale).
    pub dsum: [f32; 8],
    /// Block `j`'s values at `qs[32j..32j + 32]`.
    pub qs: [i8; QK_K],
    /// The exact sum of each 16 values (`qs[16g..16g + 16]`): what q6k's offset of 32
    /// multiplies, one group scale at a time.
    pub bsums: [i16; QK_K / 16],
}

impl Default for BlockQ8x8 {
    fn default() -> Self {
        Self {
            d: [0.0; 8],
            dsum: [0.0; 8],
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
        }
    }
}

/// Groups 8-bit blocks eight by eight as [`BlockQ8x8`]: `x.len()` must be `8 · out.len()`.
pub fn group_q8(x: &[BlockQ8], out: &mut [BlockQ8x8]) {
    assert_eq!(x.len(), 8 * out.len(), "eight blocks per group");
    for (group, x) in out.iter_mut().zip(x.chunks_exact(8)) {
        for (j, b) in x.iter().enumerate() {
            group.d[j] = b.d;
            group.dsum[j] = b.d * b.sum as f32;
            group.qs[QK * j..QK * (j + 1)].copy_from_slice(&b.qs);
            for (h, half) in b.qs.chunks_exact(QK / 2).enumerate() {
                group.bsums[2 * j + h] = half.iter().map(|&q| q as i16).sum();
            }
        }
    }
}

/// `x` clamped to ±127 and rounded to the nearest integer, ties away from zero
/// (`f32::round`); NaN gives 0 (as `f32::round(x) as i8` saturates). Within ±127 the fraction
/// left by truncation is exact, and decides the step away from zero.
#[inline]
fn round_away(x: f32) -> i8 {
    if x.is_nan() {
        return 0;
    }
    let x = x.clamp(-127.0, 127.0);
    let t = x as i32;
    let frac = x - t as f32;
    (t + (frac >= 0.5) as i32 - (frac <= -0.5) as i32) as i8
}

impl BlockQ8 {
    /// 32 activations as an 8-bit block (round to nearest, ties away from zero, scales in f16
    /// precision: ggml's reference quantizer; values clamped to ±127, which matters only where
    /// the scale's reciprocal overflows, for subnormal activations).
    ///
    /// The portable level's quantizer (`dispatch::Ops::quantize`), and what the others are
    /// checked against.
    pub fn quantize(xs: &[f32]) -> BlockQ8 {
        let xs: &[f32; QK] = xs.try_into().expect("a block is 32 activations");
        // The largest magnitude, eight lanes at a time (a NaN is passed over, as `f32::max`
        // passes it over).
        let mut lanes = [0f32; 8];
        for chunk in xs.chunks_exact(8) {
            for (m, v) in lanes.iter_mut().zip(chunk) {
                let a = v.abs();
                *m = if a > *m { a } else { *m };
            }
        }
        let amax = lanes.iter().fold(0f32, |m, &v| m.max(v));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut block = BlockQ8::default();
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = round_away(v * id);
        }
        let sum = block.qs.iter().map(|&q| q as i32).sum();
        block.with_scales(d, sum)
    }

    /// The block with its scale `d` and its values' sum: both scales rounded to f16 as ggml's
    /// q8_0/q8_1 activations store them, so that products match llama.cpp's to the last bit
    /// where the integer sums agree.
    #[inline]
    pub fn with_scales(mut self, d: f32, sum: i32) -> BlockQ8 {
        self.d = f16::from_f32(d).to_f32();
        self.s = f16::from_f32(d * sum as f32).to_f32();
        self.sum = sum;
        self
    }

    /// The block's 32 values as f32 (`d * qs[i]`).
    pub fn dequantize(&self) -> [f32; QK] {
        self.qs.map(|q| self.d * q as f32)
    }
}
