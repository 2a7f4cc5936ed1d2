//! The `neon` and `neondot` levels' kernels over dense weights and the f16 KV cache, in NEON (the aarch64
//! baseline, so nothing here needs detecting): f32, f16 and bf16 weights by f32 activations
//! (decode of unquantized formats), activations quantized to 8-bit blocks, the SiLU and
//! softmax exponentials, and one query head's attention in one pass. They follow AVX2's (`arch/x86/avx2.rs`) in four-lane vectors.
//!
//! Halves are widened and rounded with `fcvtl`/`fcvtn`, which Armv8.0's Advanced SIMD has
//! (exact, RNE, as `half` does): written as inline assembly because Rust's f16 vector types
//! are not stable yet (`stdarch_neon_f16`). Tested under QEMU (`scripts/test-aarch64`).

use crate::blocks::{BlockQ8, QK};
use half::{bf16, f16};
use std::arch::aarch64::*;
use std::arch::asm;

/// Four halves from `x[i..i + 4]` as f32.
#[inline]
#[target_feature(enable = "neon")]
fn load_f16(x: &[f16], i: usize) -> float32x4_t {
    assert!(i + 4 <= x.len());
    // SAFETY: i + 4 ≤ x.len(): four u16 readable.
    let h = unsafe { vld1_u16(x.as_ptr().add(i).cast()) };
    let wide: float32x4_t;
    // SAFETY: one register-only Advanced SIMD instruction.
    unsafe {
        asm!(
            "fcvtl {0:v}.4s, {1:v}.4h",
            out(vreg) wide,
            in(vreg) h,
            options(pure, nomem, nostack)
        )
    };
    wide
}

/// Each lane rounded to the nearest f16 (ties to even) and back, as
/// `f16::from_f32(v).to_f32()` does one at a time.
#[inline]
#[target_feature(enable = "neon")]
fn round_to_f16(v: float32x4_t) -> float32x4_t {
    let mut v = v;
    // SAFETY: two register-only Advanced SIMD instructions.
    unsafe {
        asm!(
            "fcvtn {0:v}.4h, {0:v}.4s",
            "fcvtl {0:v}.4s, {0:v}.4h",
            inout(vreg) v,
            options(pure, nomem, nostack)
        )
    };
    v
}

/// Four f32 from `x[i..i + 4]`.
#[inline]
#[target_feature(enable = "neon")]
fn load(x: &[f32], i: usize) -> float32x4_t {
    assert!(i + 4 <= x.len());
    // SAFETY: i + 4 ≤ x.len().
    unsafe { vld1q_f32(x.as_ptr().add(i)) }
}

/// Weights widened four at a time to f32 by `widen(w, i)` by f32 activations, eight
/// accumulators of four lanes (an FMA's latency is about four cycles, and cores such as
/// Neoverse V1 start two to four a cycle).
#[inline]
#[target_feature(enable = "neon")]
fn dot_widened<H: Copy>(
    w: &[H],
    x: &[f32],
    widen: impl Fn(&[H], usize) -> float32x4_t,
    tail: impl Fn(H) -> f32,
) -> f32 {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let mut acc = [vdupq_n_f32(0.0); 8];
    let mut i = 0;
    while i + 32 <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = vfmaq_f32(*a, widen(w, i + 4 * j), load(x, i + 4 * j));
        }
        i += 32;
    }
    while i + 4 <= n {
        acc[0] = vfmaq_f32(acc[0], widen(w, i), load(x, i));
        i += 4;
    }
    let quads = [
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
        vaddq_f32(acc[4], acc[5]),
        vaddq_f32(acc[6], acc[7]),
    ];
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(quads[0], quads[1]),
        vaddq_f32(quads[2], quads[3]),
    ));
    for k in i..n {
        sum += tail(w[k]) * x[k];
    }
    sum
}

#[target_feature(enable = "neon")]
fn dot_f32_neon(w: &[f32], x: &[f32]) -> f32 {
    dot_widened(w, x, |w, i| load(w, i), |v| v)
}

#[target_feature(enable = "neon")]
fn dot_f16_f32_neon(w: &[f16], x: &[f32]) -> f32 {
    dot_widened(w, x, |w, i| load_f16(w, i), f16::to_f32)
}

#[target_feature(enable = "neon")]
fn dot_bf16_f32_neon(w: &[bf16], x: &[f32]) -> f32 {
    dot_widened(
        w,
        x,
        |w, i| {
            assert!(i + 4 <= w.len());
            // SAFETY: i + 4 ≤ w.len(); a bf16 is the top half of an f32.
            let bits = unsafe { vld1_u16(w.as_ptr().add(i).cast()) };
            vreinterpretq_f32_u32(vshll_n_u16::<16>(bits))
        },
        bf16::to_f32,
    )
}

#[target_feature(enable = "neon")]
fn dot_f16_neon(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            *s = vfmaq_f32(*s, load_f16(a, i + 4 * j), load_f16(b, i + 4 * j));
        }
        i += 16;
    }
    while i + 4 <= n {
        acc[0] = vfmaq_f32(acc[0], load_f16(a, i), load_f16(b, i));
        i += 4;
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    for k in i..n {
        sum += a[k].to_f32() * b[k].to_f32();
    }
    sum
}

#[target_feature(enable = "neon")]
fn axpy_f16_neon(w: f32, x: &[f16], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let mut i = 0;
    while i + 4 <= n {
        let sum = vfmaq_n_f32(load(y, i), load_f16(x, i), w);
        // SAFETY: i + 4 ≤ n ≤ y.len().
        unsafe { vst1q_f32(y.as_mut_ptr().add(i), sum) };
        i += 4;
    }
    for k in i..n {
        y[k] += w * x[k].to_f32();
    }
}

/// `e^x` in four lanes: AVX2's `exp8` (Cephes' `expf`, within 4e-7 relative for x in
/// [-87, 88], x clamped to that range) in NEON.
#[inline]
#[target_feature(enable = "neon")]
fn exp4(x: float32x4_t) -> float32x4_t {
    let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0)), vdupq_n_f32(88.0));
    // To the nearest integer, ties to even (as AVX2's `_mm256_round_ps`).
    let n = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
    let r = vfmsq_f32(x, n, vdupq_n_f32(0.693_359_4));
    let r = vfmsq_f32(r, n, vdupq_n_f32(-2.121_944_4e-4));
    let mut p = vdupq_n_f32(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = vfmaq_f32(vdupq_n_f32(c), p, r);
    }
    let p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0)), p, vmulq_f32(r, r));
    // n is a whole number in [-126, 127]: 2^n in the exponent bits.
    let two_n = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
    vmulq_f32(p, vreinterpretq_f32_s32(two_n))
}

#[target_feature(enable = "neon")]
fn silu_mul_neon(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        let (g, u) = (load(gate, i), load(up, i));
        let e = exp4(vnegq_f32(g));
        let s = vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0), e));
        // SAFETY: i + 4 ≤ n ≤ gate.len().
        unsafe { vst1q_f32(gate.as_mut_ptr().add(i), vmulq_f32(s, u)) };
    }
    crate::arch::generic::silu_mul(&mut gate[whole..n], &up[whole..n]);
}

#[target_feature(enable = "neon")]
fn softmax_exp_neon(scores: &mut [f32], max: f32) -> f64 {
    let whole = scores.len() / 4 * 4;
    let mut sum = vdupq_n_f32(0.0);
    for i in (0..whole).step_by(4) {
        let e = exp4(vsubq_f32(load(scores, i), vdupq_n_f32(max)));
        // SAFETY: i + 4 ≤ scores.len().
        unsafe { vst1q_f32(scores.as_mut_ptr().add(i), e) };
        sum = vaddq_f32(sum, e);
    }
    vaddvq_f32(sum) as f64 + crate::arch::generic::softmax_exp(&mut scores[whole..], max)
}

/// Head dimensions the attention holds in registers (as f32 query vectors).
const MAX_HEAD: usize = 256;

/// As `generic::attend`, with the query widened once and no call per cached position: scores
/// four positions at a time (four running sums reduced together), the weights rounded to f16
/// four at a time, and the values summed 64 dimensions at a time in registers, in the order
/// `axpy_f16` adds them.
#[target_feature(enable = "neon")]
fn attend_neon(
    q: &[f16],
    keys: &[f16],
    values: &[f16],
    stride: usize,
    positions: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    if !hd.is_multiple_of(4) || hd > MAX_HEAD || out.len() < hd {
        return crate::arch::generic::attend(q, keys, values, stride, positions, scores, out);
    }
    assert!(positions == 0 || (positions - 1) * stride + hd <= keys.len().min(values.len()));
    let chunks = hd / 4;
    let mut qv = [vdupq_n_f32(0.0); MAX_HEAD / 4];
    for (c, v) in qv[..chunks].iter_mut().enumerate() {
        *v = load_f16(q, 4 * c);
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let scores = &mut scores[..positions];
    let key = |p: usize, c: usize| load_f16(keys, p * stride + 4 * c);
    // Four positions at a time: four running sums, then pairwise additions into one vector.
    let mut maxes = vdupq_n_f32(f32::NEG_INFINITY);
    let whole = positions / 4 * 4;
    for p0 in (0..whole).step_by(4) {
        let mut acc = [vdupq_n_f32(0.0); 4];
        for (c, &qc) in qv[..chunks].iter().enumerate() {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = vfmaq_f32(*a, qc, key(p0 + j, c));
            }
        }
        let summed = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
        let s = vmulq_n_f32(summed, scale);
        // SAFETY: p0 + 4 ≤ positions = scores.len().
        unsafe { vst1q_f32(scores.as_mut_ptr().add(p0), s) };
        maxes = vmaxq_f32(maxes, s);
    }
    let mut max = vmaxvq_f32(maxes);
    for (p, s) in scores.iter_mut().enumerate().skip(whole) {
        let mut acc = vdupq_n_f32(0.0);
        for (c, &qc) in qv[..chunks].iter().enumerate() {
            acc = vfmaq_f32(acc, qc, key(p, c));
        }
        *s = vaddvq_f32(acc) * scale;
        max = max.max(*s);
    }
    let inverse = (1.0 / softmax_exp_neon(scores, max)) as f32;
    for i in (0..whole).step_by(4) {
        let w = round_to_f16(vmulq_n_f32(load(scores, i), inverse));
        // SAFETY: i + 4 ≤ positions = scores.len().
        unsafe { vst1q_f32(scores.as_mut_ptr().add(i), w) };
    }
    for s in &mut scores[whole..] {
        *s = f16::from_f32(*s * inverse).to_f32();
    }
    for start in (0..chunks).step_by(16) {
        let width = (chunks - start).min(16);
        let mut acc = [vdupq_n_f32(0.0); 16];
        for (p, &w) in scores.iter().enumerate() {
            let row = p * stride + 4 * start;
            for (c, a) in acc[..width].iter_mut().enumerate() {
                *a = vfmaq_n_f32(*a, load_f16(values, row + 4 * c), w);
            }
        }
        for (c, a) in acc[..width].iter().enumerate() {
            assert!(4 * (start + c) + 4 <= out.len());
            // SAFETY: 4 (start + c) + 4 ≤ out.len(), checked above.
            unsafe { vst1q_f32(out.as_mut_ptr().add(4 * (start + c)), *a) };
        }
    }
}

/// As [`BlockQ8::quantize`], four lanes at a time: `fmaxnm` passes over NaN, and `fcvtas`
/// rounds ties away from zero, saturating, NaN to 0; the clamp to ±127 after rounding gives
/// what clamping first does.
#[target_feature(enable = "neon")]
fn quantize_neon(xs: &[f32]) -> BlockQ8 {
    let xs: &[f32; QK] = xs.try_into().expect("a block is 32 activations");
    let v: [float32x4_t; 8] = std::array::from_fn(|i| load(xs, 4 * i));
    let amax = vmaxnmvq_f32(
        v.iter()
            .fold(vdupq_n_f32(0.0), |m, &x| vmaxnmq_f32(vabsq_f32(x), m)),
    );
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let (lo, hi) = (vdupq_n_s32(-127), vdupq_n_s32(127));
    let q = v.map(|x| vminq_s32(vmaxq_s32(vcvtaq_s32_f32(vmulq_n_f32(x, id)), lo), hi));
    let sum = q.iter().map(|&q| vaddvq_s32(q)).sum();
    let halves: [int16x8_t; 4] =
        std::array::from_fn(|i| vcombine_s16(vmovn_s32(q[2 * i]), vmovn_s32(q[2 * i + 1])));
    let mut block = BlockQ8::default();
    for (i, pair) in halves.chunks_exact(2).enumerate() {
        let bytes = vcombine_s8(vmovn_s16(pair[0]), vmovn_s16(pair[1]));
        // SAFETY: bytes 16i..16i + 16 of the block's 32.
        unsafe { vst1q_s8(block.qs.as_mut_ptr().add(16 * i), bytes) };
    }
    block.with_scales(d, sum)
}

// Safe entry points for the level's table. SAFETY (all): only `super::kernels` hands them
// out, for a `Neon` token (made after detecting NEON, every aarch64 CPU's baseline).

pub(super) fn quantize(xs: &[f32]) -> BlockQ8 {
    unsafe { quantize_neon(xs) }
}

pub(super) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    unsafe { dot_f32_neon(w, x) }
}

pub(super) fn dot_f16_f32(w: &[f16], x: &[f32]) -> f32 {
    unsafe { dot_f16_f32_neon(w, x) }
}

pub(super) fn dot_bf16_f32(w: &[bf16], x: &[f32]) -> f32 {
    unsafe { dot_bf16_f32_neon(w, x) }
}

pub(super) fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    unsafe { dot_f16_neon(a, b) }
}

pub(super) fn axpy_f16(w: f32, x: &[f16], y: &mut [f32]) {
    unsafe { axpy_f16_neon(w, x, y) }
}

pub(super) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    unsafe { silu_mul_neon(gate, up) }
}

pub(super) fn softmax_exp(scores: &mut [f32], max: f32) -> f64 {
    unsafe { softmax_exp_neon(scores, max) }
}

pub(super) fn attend(
    q: &[f16],
    keys: &[f16],
    values: &[f16],
    stride: usize,
    positions: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    unsafe { attend_neon(q, keys, values, stride, positions, scores, out) }
}
