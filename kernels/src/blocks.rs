//! The block formats the kernels read, in GGUF's layouts (one block = 32 weights of a row),
//! and the 8-bit block activations are quantized to once per product.
//!
//! - q8_0: `d: f16`, `qs: [i8; 32]`; weight `i` = `d * qs[i]`.
//! - q4_0: `d: f16`, `qs: [u8; 16]`; weight `i` = `d * (nibble - 8)`, where weights 0..16
//!   are the low nibbles of `qs` and 16..32 the high ones.
//! - q4_1: `d: f16`, `m: f16`, `qs: [u8; 16]`; weight `i` = `d * nibble + m`, same nibble order.

use half::f16;

/// Weights (and activations) per block.
pub const QK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK],
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 2],
}

/// A block of activations: `x[i] ≈ d * qs[i]`, and `s = d * Σ qs` (what q4_1's offset
/// multiplies). Internal to the kernels, so its scales are f32.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8 {
    pub d: f32,
    pub s: f32,
    /// `Σ qs`, exact (q4_0's offset of -8 takes it in integers).
    pub sum: i32,
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
    const NAME: &'static str;
    /// Bytes per block in GGUF.
    const BYTES: usize;
    /// Reads one block from exactly [`Self::BYTES`] little-endian bytes.
    fn read(bytes: &[u8]) -> Self;
    fn dequantize(&self) -> [f32; QK];
    /// The offset every weight of the block carries (q4_1's `m`), which products take times
    /// the activations' stored sum `s` rather than weight by weight.
    fn offset(&self) -> f32 {
        0.0
    }
}

fn half_at(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
}

impl Block for BlockQ8_0 {
    const NAME: &'static str = "q8_0";
    const BYTES: usize = 2 + QK;
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
    const NAME: &'static str = "q4_0";
    const BYTES: usize = 2 + QK / 2;
    fn read(bytes: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&bytes[2..2 + QK / 2]);
        Self {
            d: half_at(bytes, 0),
            qs,
        }
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

impl Block for BlockQ4_1 {
    const NAME: &'static str = "q4_1";
    const BYTES: usize = 4 + QK / 2;
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

/// Quantizes activations to 8-bit blocks ([`BlockQ8::quantize`] each 32): `x.len()` must be a
/// multiple of 32 and `out` hold `x.len() / 32`.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    assert_eq!(x.len(), out.len() * QK, "activations fill whole blocks");
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        *block = BlockQ8::quantize(xs);
    }
}

impl BlockQ8 {
    /// 32 activations as an 8-bit block (round to nearest, ties away from zero, scales in f16
    /// precision: ggml's reference quantizer).
    pub fn quantize(xs: &[f32]) -> BlockQ8 {
        assert_eq!(xs.len(), QK, "a block is 32 activations");
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut block = BlockQ8::default();
        let mut sum = 0i32;
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        // Scales rounded to f16 as ggml's q8_0/q8_1 activations store them, so that products
        // match llama.cpp's to the last bit where the integer sums agree.
        block.d = f16::from_f32(d).to_f32();
        block.s = f16::from_f32(d * sum as f32).to_f32();
        block.sum = sum;
        block
    }

    pub fn dequantize(&self) -> [f32; QK] {
        self.qs.map(|q| self.d * q as f32)
    }
}
