//! The k-quant formats: 256-weight super-blocks of sub-blocks with their own scales, as
//! GGUF stores them (ggml's `block_q2_K` ... `block_q6_K`, `dequantize_row_q*_K`).
//!
//! - q2k: `scales: [u8; 16]` (a 4-bit scale and a 4-bit min per 16 weights), `qs: [u8; 64]`,
//!   `d`, `dmin`; weight = `d * (sc & 15) * q - dmin * (sc >> 4)`, `q` 2 bits.
//! - q3k: `hmask: [u8; 32]`, `qs: [u8; 64]`, `scales: [u8; 12]` (a 6-bit signed scale per 16
//!   weights), `d`; weight = `d * (scale - 32) * (q - 4 · !high bit)`, `q` 2 bits.
//! - q4k, q5k: eight sub-blocks of 32 with 6-bit scales and mins; q5k adds each weight's fifth
//!   bit in `qh`.
//! - q6k: sixteen groups of 16 with 8-bit scales, 6-bit weights centred on 32.
//!
//! q2k and q3k place weights alike: weight `e = 128h + 32j + 16k + l` is bits `2j..2j + 2` of
//! `qs[32h + 16k + l]`, in group `e / 16`.

use super::{half_at, Block, QK};
use half::f16;

/// Weights per k-quant super-block.
pub const QK_K: usize = 256;

/// A q4k super-block: 256 weights in eight sub-blocks of 32 with 6-bit scales and mins.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4K {
    /// The scale of the sub-block scales.
    pub d: f16,
    /// The scale of the sub-block mins.
    pub dmin: f16,
    /// Each sub-block's 6-bit scale and min, packed (`BlockQ4K::scale_min`).
    pub scales: [u8; 12],
    /// The 4-bit weights: sub-blocks `2c` and `2c + 1` in the low and high nibbles of
    /// `qs[32c..32c + 32]`.
    pub qs: [u8; QK_K / 2],
}

/// Sub-block `j`'s 6-bit scale and min in q4k's and q5k's 12 bytes (ggml's
/// `get_scale_min_k4`): sub-blocks 0-3 in the low 6 bits of bytes 0-3 and 4-7; 4-7 in the
/// nibbles of bytes 8-11, their top two bits in the spare high bits of bytes 0-3 (scales)
/// and 4-7 (mins).
fn scale_min_k4(q: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Every sub-block's scale and min at once, as [`scale_min_k4`] gives them one by one:
/// `(scales, mins)`, unpacked in 32-bit words as ggml's kernels do.
fn scales_mins_k4(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3F3F_3F3F;
    const LOW4: u32 = 0x0F0F_0F0F;
    const TOP2: u32 = 0x0303_0303;
    let word = |i: usize| u32::from_le_bytes(scales[4 * i..4 * i + 4].try_into().unwrap());
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let scales = [w0 & LOW6, (w2 & LOW4) | (((w0 >> 6) & TOP2) << 4)];
    let mins = [w1 & LOW6, ((w2 >> 4) & LOW4) | (((w1 >> 6) & TOP2) << 4)];
    let bytes = |v: [u32; 2]| {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&v[0].to_le_bytes());
        out[4..].copy_from_slice(&v[1].to_le_bytes());
        out
    };
    (bytes(scales), bytes(mins))
}

impl BlockQ4K {
    /// Sub-block `j`'s 6-bit scale and min ([`scale_min_k4`]).
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        scale_min_k4(&self.scales, j)
    }

    /// Weight `e`'s nibble, 0..16: sub-blocks `2c` and `2c + 1` are the low and high nibbles of
    /// `qs[32c..32c + 32]`.
    pub fn q(&self, e: usize) -> u8 {
        let (j, l) = (e / QK, e % QK);
        let byte = self.qs[QK * (j / 2) + l];
        if j % 2 == 0 {
            byte & 0x0F
        } else {
            byte >> 4
        }
    }

    /// Every sub-block's scale and min at once ([`scales_mins_k4`]).
    pub fn scales_mins(&self) -> ([u8; 8], [u8; 8]) {
        scales_mins_k4(&self.scales)
    }
}

impl Block for BlockQ4K {
    const FORMAT: crate::Format = crate::Format::Q4K;
    const BYTES: usize = 4 + 12 + QK_K / 2;
    const WEIGHTS: usize = QK_K;
    type Values = [f32; QK_K];
    fn read(bytes: &[u8]) -> Self {
        let mut scales = [0u8; 12];
        scales.copy_from_slice(&bytes[4..16]);
        let mut qs = [0u8; QK_K / 2];
        qs.copy_from_slice(&bytes[16..16 + QK_K / 2]);
        Self {
            d: half_at(bytes, 0),
            dmin: half_at(bytes, 2),
            scales,
            qs,
        }
    }
    fn dequantize(&self) -> [f32; QK_K] {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let mut out = [0f32; QK_K];
        for (j, sub) in out.chunks_exact_mut(QK).enumerate() {
            let (scale, min) = self.scale_min(j);
            let (scale, min) = (d * scale as f32, dmin * min as f32);
            for (l, o) in sub.iter_mut().enumerate() {
                *o = scale * self.q(QK * j + l) as f32 - min;
            }
        }
        out
    }
}

/// A q6k super-block: 256 weights in sixteen groups of 16 with 8-bit scales.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ6K {
    /// The low four bits of each weight.
    pub ql: [u8; QK_K / 2],
    /// The high two bits of each weight.
    pub qh: [u8; QK_K / 4],
    /// Each 16-weight group's scale.
    pub scales: [i8; QK_K / 16],
    /// The scale of the group scales.
    pub d: f16,
}

impl BlockQ6K {
    /// Weight `e`'s 6-bit value, 0..64 (ggml's `dequantize_row_q6_K`): in each half of 128
    /// weights, quarter `k` (32 weights) takes the low nibbles (k = 0, 1) or high nibbles
    /// (k = 2, 3) of `ql[64h..64h + 32]` (k even) or `ql[64h + 32..64h + 64]` (k odd), and
    /// bits `2k..2k + 2` of `qh[32h..32h + 32]` above them.
    pub fn q(&self, e: usize) -> u8 {
        let (h, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = self.ql[64 * h + 32 * (k % 2) + l];
        let low = if k < 2 { low & 0x0F } else { low >> 4 };
        let high = (self.qh[32 * h + l] >> (2 * k)) & 3;
        low | (high << 4)
    }
}

impl Block for BlockQ6K {
    const FORMAT: crate::Format = crate::Format::Q6K;
    const BYTES: usize = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;
    const WEIGHTS: usize = QK_K;
    type Values = [f32; QK_K];
    fn read(bytes: &[u8]) -> Self {
        let mut block = Self {
            ql: [0; QK_K / 2],
            qh: [0; QK_K / 4],
            scales: [0; QK_K / 16],
            d: half_at(bytes, 208),
        };
        block.ql.copy_from_slice(&bytes[..128]);
        block.qh.copy_from_slice(&bytes[128..192]);
        for (s, &b) in block.scales.iter_mut().zip(&bytes[192..208]) {
            *s = b as i8;
        }
        block
    }
    fn dequantize(&self) -> [f32; QK_K] {
        let d = self.d.to_f32();
        std::array::from_fn(|e| d * self.scales[e / 16] as f32 * (self.q(e) as i32 - 32) as f32)
    }
}

/// Where q2k's and q3k's weight `e` is: its byte in `qs`, the shift of its two bits, and the
/// `hmask` bit (q3k) of its high bit.
fn low_bits_at(e: usize) -> (usize, usize, usize) {
    let (h, j, k, l) = (e / 128, (e % 128) / 32, (e % 32) / 16, e % 16);
    (32 * h + 16 * k + l, 2 * j, 4 * h + j)
}

/// A q5k super-block: q4k's layout with each weight's fifth bit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ5K {
    /// The scale of the sub-block scales.
    pub d: f16,
    /// The scale of the sub-block mins.
    pub dmin: f16,
    /// Each sub-block's 6-bit scale and min, packed as q4k's.
    pub scales: [u8; 12],
    /// Bit `j` of `qh[l]`: the fifth bit of weight `l` of sub-block `j`.
    pub qh: [u8; QK],
    /// The low four bits, in q4k's order.
    pub qs: [u8; QK_K / 2],
}

impl BlockQ5K {
    /// Sub-block `j`'s 6-bit scale and min ([`scale_min_k4`]).
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        scale_min_k4(&self.scales, j)
    }

    /// Every sub-block's scale and min at once ([`scales_mins_k4`]).
    pub fn scales_mins(&self) -> ([u8; 8], [u8; 8]) {
        scales_mins_k4(&self.scales)
    }

    /// Weight `e`'s 5-bit value, 0..32.
    pub fn q(&self, e: usize) -> u8 {
        let (j, l) = (e / QK, e % QK);
        let byte = self.qs[QK * (j / 2) + l];
        let low = if j % 2 == 0 { byte & 0x0F } else { byte >> 4 };
        low | (((self.qh[l] >> j) & 1) << 4)
    }
}

impl Block for BlockQ5K {
    const FORMAT: crate::Format = crate::Format::Q5K;
    const BYTES: usize = 4 + 12 + QK + QK_K / 2;
    const WEIGHTS: usize = QK_K;
    type Values = [f32; QK_K];
    fn read(bytes: &[u8]) -> Self {
        let mut block = Self {
            d: half_at(bytes, 0),
            dmin: half_at(bytes, 2),
            scales: [0; 12],
            qh: [0; QK],
            qs: [0; QK_K / 2],
        };
        block.scales.copy_from_slice(&bytes[4..16]);
        block.qh.copy_from_slice(&bytes[16..48]);
        block.qs.copy_from_slice(&bytes[48..176]);
        block
    }
    fn dequantize(&self) -> [f32; QK_K] {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        std::array::from_fn(|e| {
            let (scale, min) = self.scale_min(e / QK);
            d * scale as f32 * self.q(e) as f32 - dmin * min as f32
        })
    }
}

/// A q3k super-block: 256 3-bit weights in sixteen groups of 16 with 6-bit signed scales.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ3K {
    /// Each weight's high bit (set: no offset; clear: minus 4).
    pub hmask: [u8; QK],
    /// Each weight's low two bits.
    pub qs: [u8; QK_K / 4],
    /// The sixteen 6-bit scales, packed ([`BlockQ3K::scale`]).
    pub scales: [u8; 12],
    /// The scale of the group scales.
    pub d: f16,
}

impl BlockQ3K {
    /// Group `i`'s scale, -32..32: its low four bits in the low (groups 0-7) or high (8-15)
    /// nibbles of bytes 0-7, its top two in bits `2 (i / 4)..` of byte `8 + i % 4`.
    pub fn scale(&self, i: usize) -> i8 {
        let sc = &self.scales;
        let low = if i < 8 { sc[i] & 0x0F } else { sc[i - 8] >> 4 };
        let high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        (low | (high << 4)) as i8 - 32
    }

    /// Weight `e`'s value, -4..4.
    pub fn q(&self, e: usize) -> i8 {
        let (byte, shift, bit) = low_bits_at(e);
        let low = ((self.qs[byte] >> shift) & 3) as i8;
        let high = (self.hmask[e % QK] >> bit) & 1;
        low - if high == 1 { 0 } else { 4 }
    }
}

impl Block for BlockQ3K {
    const FORMAT: crate::Format = crate::Format::Q3K;
    const BYTES: usize = QK + QK_K / 4 + 12 + 2;
    const WEIGHTS: usize = QK_K;
    type Values = [f32; QK_K];
    fn read(bytes: &[u8]) -> Self {
        let mut block = Self {
            hmask: [0; QK],
            qs: [0; QK_K / 4],
            scales: [0; 12],
            d: half_at(bytes, 108),
        };
        block.hmask.copy_from_slice(&bytes[..32]);
        block.qs.copy_from_slice(&bytes[32..96]);
        block.scales.copy_from_slice(&bytes[96..108]);
        block
    }
    fn dequantize(&self) -> [f32; QK_K] {
        let d = self.d.to_f32();
        std::array::from_fn(|e| d * self.scale(e / 16) as f32 * self.q(e) as f32)
    }
}

/// A q2k super-block: 256 2-bit weights in sixteen groups of 16, each with a 4-bit scale and
/// a 4-bit min.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ2K {
    /// Group `i`'s scale (low nibble) and min (high nibble).
    pub scales: [u8; QK_K / 16],
    /// Each weight's two bits.
    pub qs: [u8; QK_K / 4],
    /// The scale of the group scales.
    pub d: f16,
    /// The scale of the group mins.
    pub dmin: f16,
}

impl BlockQ2K {
    /// Weight `e`'s value, 0..4.
    pub fn q(&self, e: usize) -> u8 {
        let (byte, shift, _) = low_bits_at(e);
        (self.qs[byte] >> shift) & 3
    }
}

impl Block for BlockQ2K {
    const FORMAT: crate::Format = crate::Format::Q2K;
    const BYTES: usize = QK_K / 16 + QK_K / 4 + 4;
    const WEIGHTS: usize = QK_K;
    type Values = [f32; QK_K];
    fn read(bytes: &[u8]) -> Self {
        let mut block = Self {
            scales: [0; QK_K / 16],
            qs: [0; QK_K / 4],
            d: half_at(bytes, 80),
            dmin: half_at(bytes, 82),
        };
        block.scales.copy_from_slice(&bytes[..16]);
        block.qs.copy_from_slice(&bytes[16..80]);
        block
    }
    fn dequantize(&self) -> [f32; QK_K] {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        std::array::from_fn(|e| {
            let sc = self.scales[e / 16];
            d * (sc & 0x0F) as f32 * self.q(e) as f32 - dmin * (sc >> 4) as f32
        })
    }
}
