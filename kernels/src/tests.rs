//! Every kernel on every level this CPU runs, against an independent reference: weights
//! quantized by ggml's reference algorithm written here (GGUF block layout, decoded byte by
//! byte), activations quantized
//! by `quantize_q8` and dequantized, multiplied in f64.

use super::blocks::{quantize_q8, Block, BlockQ4_0, BlockQ4_1, BlockQ8, BlockQ8_0, QK};
use super::{F32Matrix, Kernels, Level, Pool, QMatrix, QuantBlock};
use rand::{Rng, SeedableRng};

/// Awkward shapes: SmolLM2's 576 and 1536, Llama's 4096, odd row counts, rows not a multiple
/// of 256 (k-quant super-blocks) or of the thread count.
const SHAPES: &[(usize, usize)] = &[
    (1, 32),
    (3, 576),
    (7, 1536),
    (33, 4096),
    (5, 96),
    (2, 49152),
];

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Mostly small values with a few outliers, as real weights and activations have.
    (0..n)
        .map(|i| {
            let v: f32 = rng.random_range(-1.0..1.0);
            if i % 97 == 0 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

/// The GGUF block formats the weights are stored in, for the reference quantizer below.
#[derive(Clone, Copy, Debug)]
enum Dtype {
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
}

/// ggml's reference quantization (`quantize_row_*_ref`) of `rows x cols` weights, written
/// from the format's definition rather than this crate's code: (GGUF bytes, the values
/// those bytes decode to, read byte by byte). The harness's tests pin this crate's reading of
/// the same layouts to candle's quantizer (`tests/it/kernel_layouts.rs`).
fn ggml_quantized(values: &[f32], rows: usize, cols: usize, dtype: Dtype) -> (Vec<u8>, Vec<f32>) {
    use half::f16;
    assert_eq!(values.len(), rows * cols);
    let (mut bytes, mut back) = (Vec::new(), Vec::new());
    for x in values.chunks_exact(QK) {
        match dtype {
            Dtype::Q8_0 => {
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let d16 = f16::from_f32(d);
                bytes.extend(d16.to_le_bytes());
                for v in x {
                    let q = (v * id).round() as i8;
                    bytes.push(q as u8);
                    back.push(q as f32 * d16.to_f32());
                }
            }
            Dtype::Q4_0 => {
                // The value of largest magnitude, sign kept, maps to -8.
                let max = x
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let d16 = f16::from_f32(d);
                bytes.extend(d16.to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
                // Byte j holds element j in its low nibble and element j + 16 in its high one.
                bytes.extend((0..QK / 2).map(|j| q(x[j]) | (q(x[j + QK / 2]) << 4)));
                back.extend(x.iter().map(|&v| (q(v) as f32 - 8.0) * d16.to_f32()));
            }
            Dtype::Q4_1 => {
                let min = x.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let (d16, m16) = (f16::from_f32(d), f16::from_f32(min));
                bytes.extend(d16.to_le_bytes());
                bytes.extend(m16.to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
                bytes.extend((0..QK / 2).map(|j| q(x[j]) | (q(x[j + QK / 2]) << 4)));
                back.extend(x.iter().map(|&v| q(v) as f32 * d16.to_f32() + m16.to_f32()));
            }
            Dtype::Q5_0 | Dtype::Q5_1 => {
                // q5_0: the value of largest magnitude, sign kept, maps to -16; q5_1: min to max
                // over 31 steps. Five bits per weight: the nibble in `qs`, bit 4 in `qh`.
                type To = Box<dyn Fn(f32) -> u8>;
                type From = Box<dyn Fn(u8) -> f32>;
                let (q, back_of, head): (To, From, Vec<u8>) = if let Dtype::Q5_0 = dtype {
                    let max = x
                        .iter()
                        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                    let d = max / -16.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    let d16 = f16::from_f32(d);
                    (
                        Box::new(move |v| ((v * id + 16.5) as i8).min(31) as u8),
                        Box::new(move |q| (q as f32 - 16.0) * d16.to_f32()),
                        d16.to_le_bytes().to_vec(),
                    )
                } else {
                    let min = x.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let d = (max - min) / 31.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    let (d16, m16) = (f16::from_f32(d), f16::from_f32(min));
                    (
                        Box::new(move |v| (((v - min) * id + 0.5) as u8).min(31)),
                        Box::new(move |q| q as f32 * d16.to_f32() + m16.to_f32()),
                        [d16.to_le_bytes(), m16.to_le_bytes()].concat(),
                    )
                };
                let qs: Vec<u8> = x.iter().map(|&v| q(v)).collect();
                let mut qh = 0u32;
                for (i, &v) in qs.iter().enumerate() {
                    qh |= ((v as u32 >> 4) & 1) << i;
                }
                bytes.extend(head);
                bytes.extend(qh.to_le_bytes());
                bytes.extend((0..QK / 2).map(|j| (qs[j] & 0x0F) | ((qs[j + QK / 2] & 0x0F) << 4)));
                back.extend(qs.iter().map(|&v| back_of(v)));
            }
        }
    }
    (bytes, back)
}

fn activations(cols: usize, seed: u64) -> (Vec<BlockQ8>, Vec<f32>) {
    let x = random(cols, seed);
    let mut q = vec![BlockQ8::default(); cols / QK];
    quantize_q8(&x, &mut q);
    let back: Vec<f32> = q.iter().flat_map(|b| b.dequantize()).collect();
    (q, back)
}

fn reference(w: &[f32], x: &[f32]) -> (f64, f64) {
    let dot = w.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
    let scale = w
        .iter()
        .zip(x)
        .map(|(a, b)| (*a as f64 * *b as f64).abs())
        .sum();
    (dot, scale)
}

/// The product as ggml defines it for block formats: a block's offset (q4_1's `m`) times the
/// activations' stored sum `s` (kept in f16, as ggml keeps it), the rest weight by weight.
fn reference_blocks<B: Block>(w: &[f32], blocks: &[B], x: &[f32], xq: &[BlockQ8]) -> (f64, f64) {
    let (mut dot, mut scale) = (0f64, 0f64);
    for (((w, b), x), xq) in w.chunks(QK).zip(blocks).zip(x.chunks(QK)).zip(xq) {
        let m = b.offset() as f64;
        let without: Vec<f32> = w.iter().map(|v| (*v as f64 - m) as f32).collect();
        let (d, s) = reference(&without, x);
        dot += d + m * xq.s as f64;
        scale += s + (m * xq.s as f64).abs();
    }
    (dot, scale)
}

fn check_format<B: QuantBlock>(dtype: Dtype) {
    check_blocks::<B>(|rows, cols| ggml_quantized(&random(rows * cols, 7), rows, cols, dtype))
}

/// As [`check_format`], for matrices `make(rows, cols)` gives as GGUF bytes and the values the
/// format's definition gives them.
fn check_blocks<B: QuantBlock>(make: impl Fn(usize, usize) -> (Vec<u8>, Vec<f32>)) {
    for &(rows, cols) in SHAPES {
        let (bytes, want_values) = make(rows, cols);
        let matrix = QMatrix::<B>::from_gguf("w", rows, cols, &bytes).unwrap();
        // Our reading of the layout gives the reference's values exactly.
        let ours: Vec<f32> = matrix.blocks.iter().flat_map(|b| b.dequantize()).collect();
        assert_eq!(
            ours,
            want_values,
            "{} {rows}x{cols}: layout",
            B::FORMAT.name()
        );
        let (xq, x) = activations(cols, 11);
        for (level, threads) in Level::available()
            .into_iter()
            .flat_map(|l| [(l, 1), (l, 3)])
        {
            let kernels = Kernels::for_level(level).unwrap();
            let mut y = vec![f32::NAN; rows];
            matrix.gemv(&kernels, &mut Pool::new(threads), &xq, &mut y);
            for (r, &got) in y.iter().enumerate() {
                let row = &want_values[r * cols..(r + 1) * cols];
                let blocks = &matrix.blocks[r * cols / QK..(r + 1) * cols / QK];
                let (want, scale) = reference_blocks(row, blocks, &x, &xq);
                // f32 accumulation over `cols` products: a few ulps of the products' magnitude.
                let tolerance = 1e-5 * scale + 1e-6;
                assert!(
                    (got as f64 - want).abs() <= tolerance,
                    "{} on {threads} threads, {} {rows}x{cols} row {r}: {got} vs {want} (±{tolerance})",
                    level.name(),
                    B::FORMAT.name()
                );
            }
        }
    }
}

#[test]
fn q8_0_on_every_level_matches_the_dequantized_reference() {
    check_format::<BlockQ8_0>(Dtype::Q8_0);
}

#[test]
fn q4_0_on_every_level_matches_the_dequantized_reference() {
    check_format::<BlockQ4_0>(Dtype::Q4_0);
}

#[test]
fn q4_1_on_every_level_matches_the_dequantized_reference() {
    check_format::<BlockQ4_1>(Dtype::Q4_1);
}

#[test]
fn q5_0_on_every_level_matches_the_dequantized_reference() {
    check_format::<super::blocks::BlockQ5_0>(Dtype::Q5_0);
}

#[test]
fn q5_1_on_every_level_matches_the_dequantized_reference() {
    check_format::<super::blocks::BlockQ5_1>(Dtype::Q5_1);
}

#[test]
fn f32_dot_on_every_level_matches_f64_for_lengths_around_its_unrolling() {
    for n in [
        0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 576, 1537,
    ] {
        let (w, x) = (random(n, 3), random(n, 5));
        let (want, scale) = reference(&w, &x);
        for level in Level::available() {
            let got = (Kernels::for_level(level).unwrap().dense.f32)(&w, &x);
            assert!(
                (got as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                "{} n={n}: {got} vs {want}",
                level.name()
            );
        }
    }
}

/// Each level's GEMM tile gives, to the bit, one chain of FMAs per output over the row in
/// order from zero (written here with `f32::mul_add`), within f64's sum, for every count of
/// rows and tokens a tile takes and row lengths around the kernels' unrolling.
#[test]
fn gemm_tiles_on_every_level_are_in_order_fma_chains() {
    use super::dispatch::{GEMM_ROWS, GEMM_TOKENS};
    let levels: Vec<Kernels> = Level::available()
        .into_iter()
        .map(|l| Kernels::for_level(l).unwrap())
        .filter(|k| k.dense.gemm.is_some())
        .collect();
    if levels.is_empty() {
        eprintln!("no kernel level of this CPU has GEMM tiles");
    }
    for cols in [1, 3, 64, 576, 1537] {
        let xt = random(GEMM_TOKENS * cols, 21);
        for rows in [1, 5, 6, 7, 12] {
            let w = random(rows * cols, 23);
            for tokens in [1, 8, 16, 17, 32] {
                for k in &levels {
                    let mut out = [f32::NAN; GEMM_ROWS * GEMM_TOKENS];
                    (k.dense.gemm.unwrap())(&xt, &w, tokens, &mut out);
                    for (i, row) in w.chunks_exact(cols).enumerate() {
                        for j in 0..tokens {
                            let x: Vec<f32> = (0..cols).map(|c| xt[GEMM_TOKENS * c + j]).collect();
                            let chain = row.iter().zip(&x).fold(0f32, |a, (w, x)| x.mul_add(*w, a));
                            let (want, scale) = reference(row, &x);
                            let got = out[GEMM_TOKENS * i + j];
                            let at = format!(
                                "{} {rows}x{cols}, {tokens} tokens: ({i}, {j})",
                                k.level.name()
                            );
                            assert_eq!(got.to_bits(), chain.to_bits(), "{at}: {got} vs {chain}");
                            assert!((got as f64 - want).abs() <= 1e-5 * scale + 1e-6, "{at}");
                        }
                    }
                }
            }
        }
    }
}

/// k-quant super-blocks of random bytes (every bit pattern is a valid block) with small
/// random f16 scales, and the values GGUF's definition gives them, decoded here from the
/// bytes the way ggml's `dequantize_row_q2_K` ... `dequantize_row_q6_K` loop over them.
fn k_quant_blocks(blocks: usize, dtype: &str, seed: u64) -> (Vec<u8>, Vec<f32>) {
    use half::f16;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut bytes, mut values) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        let half = |rng: &mut rand::rngs::StdRng| {
            f16::from_f32(rng.random_range(0.0005f32..0.02)).to_le_bytes()
        };
        match dtype {
            "q4k" => {
                let (d, dmin) = (half(&mut rng), half(&mut rng));
                let mut b: Vec<u8> = [d, dmin].concat();
                b.extend((0..140).map(|_| rng.random::<u8>()));
                let (d, dmin) = (
                    f16::from_le_bytes(d).to_f32(),
                    f16::from_le_bytes(dmin).to_f32(),
                );
                let (sc, q) = (&b[4..16], &b[16..144]);
                let scale_min = |j: usize| -> (u8, u8) {
                    if j < 4 {
                        (sc[j] & 63, sc[j + 4] & 63)
                    } else {
                        (
                            (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4),
                            (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4),
                        )
                    }
                };
                for chunk in 0..4 {
                    let (s1, m1) = scale_min(2 * chunk);
                    let (s2, m2) = scale_min(2 * chunk + 1);
                    let q = &q[32 * chunk..32 * chunk + 32];
                    let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                    let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                    values.extend(q.iter().map(|&v| d1 * (v & 0xF) as f32 - m1));
                    values.extend(q.iter().map(|&v| d2 * (v >> 4) as f32 - m2));
                }
                bytes.extend(b);
            }
            "q5k" => {
                let (d, dmin) = (half(&mut rng), half(&mut rng));
                let mut b: Vec<u8> = [d, dmin].concat();
                b.extend((0..172).map(|_| rng.random::<u8>()));
                let (d, dmin) = (
                    f16::from_le_bytes(d).to_f32(),
                    f16::from_le_bytes(dmin).to_f32(),
                );
                let (sc, qh, ql) = (&b[4..16], &b[16..48], &b[48..176]);
                // ggml's get_scale_min_k4.
                let scale_min = |j: usize| -> (u8, u8) {
                    if j < 4 {
                        (sc[j] & 63, sc[j + 4] & 63)
                    } else {
                        (
                            (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4),
                            (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4),
                        )
                    }
                };
                let (mut u1, mut u2) = (1u8, 2u8);
                for (is, ql) in (0..8).step_by(2).zip(ql.chunks_exact(32)) {
                    let (s1, m1) = scale_min(is);
                    let (s2, m2) = scale_min(is + 1);
                    let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                    let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                    for l in 0..32 {
                        let high = if qh[l] & u1 != 0 { 16 } else { 0 };
                        values.push(d1 * ((ql[l] & 0xF) + high) as f32 - m1);
                    }
                    for l in 0..32 {
                        let high = if qh[l] & u2 != 0 { 16 } else { 0 };
                        values.push(d2 * ((ql[l] >> 4) + high) as f32 - m2);
                    }
                    u1 <<= 2;
                    u2 <<= 2;
                }
                bytes.extend(b);
            }
            "q3k" => {
                let mut b: Vec<u8> = (0..108).map(|_| rng.random::<u8>()).collect();
                let d16 = half(&mut rng);
                b.extend(d16);
                let d_all = f16::from_le_bytes(d16).to_f32();
                let (hm, q) = (&b[0..32], &b[32..96]);
                // ggml's unpacking of the twelve scale bytes in 32-bit words.
                let word =
                    |i: usize| u32::from_le_bytes(b[96 + 4 * i..100 + 4 * i].try_into().unwrap());
                let (kmask1, kmask2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
                let (a0, a1, tmp) = (word(0), word(1), word(2));
                let aux = [
                    (a0 & kmask2) | ((tmp & kmask1) << 4),
                    (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
                    ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4),
                    ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4),
                ];
                let scales: Vec<i8> = aux
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .map(|v| v as i8)
                    .collect();
                let (mut is, mut m) = (0, 1u8);
                for n in 0..2 {
                    let q = &q[32 * n..32 * n + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let dl = d_all * (scales[is] as i32 - 32) as f32;
                            is += 1;
                            for l in 16 * half..16 * half + 16 {
                                let low = ((q[l] >> shift) & 3) as i32;
                                let offset = if hm[l] & m != 0 { 0 } else { 4 };
                                values.push(dl * (low - offset) as f32);
                            }
                        }
                        m <<= 1;
                    }
                }
                bytes.extend(b);
            }
            "q2k" => {
                let mut b: Vec<u8> = (0..80).map(|_| rng.random::<u8>()).collect();
                let (d16, dmin16) = (half(&mut rng), half(&mut rng));
                b.extend(d16);
                b.extend(dmin16);
                let (d, min) = (
                    f16::from_le_bytes(d16).to_f32(),
                    f16::from_le_bytes(dmin16).to_f32(),
                );
                let (sc, q) = (&b[0..16], &b[16..80]);
                let mut is = 0;
                for n in 0..2 {
                    let q = &q[32 * n..32 * n + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let (dl, ml) = (d * (sc[is] & 0xF) as f32, min * (sc[is] >> 4) as f32);
                            is += 1;
                            for &byte in &q[16 * half..16 * half + 16] {
                                values.push(dl * ((byte >> shift) & 3) as f32 - ml);
                            }
                        }
                    }
                }
                bytes.extend(b);
            }
            _ => {
                let mut b: Vec<u8> = (0..208).map(|_| rng.random::<u8>()).collect();
                let d16 = half(&mut rng);
                b.extend(d16);
                let d = f16::from_le_bytes(d16).to_f32();
                let mut y = [0f32; 256];
                for n in 0..2 {
                    let (ql, qh) = (&b[64 * n..64 * n + 64], &b[128 + 32 * n..128 + 32 * n + 32]);
                    let sc = |i: usize| b[192 + 8 * n + i] as i8 as f32;
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        y[128 * n + l] = d * sc(is) * q1 as f32;
                        y[128 * n + l + 32] = d * sc(is + 2) * q2 as f32;
                        y[128 * n + l + 64] = d * sc(is + 4) * q3 as f32;
                        y[128 * n + l + 96] = d * sc(is + 6) * q4 as f32;
                    }
                }
                values.extend(y);
                bytes.extend(b);
            }
        }
    }
    (bytes, values)
}

/// q4k and q6k rows read from GGUF bytes decode to the format's values exactly, and their
/// products on every level and thread count match f64 (rows of one to 56 super-blocks: the
/// 8B model's 14336).
fn check_k_quant<B: QuantBlock>() {
    for (rows, cols) in [(1, 256), (3, 1536), (9, 4096), (2, 14336)] {
        let (bytes, values) = k_quant_blocks(rows * cols / 256, B::FORMAT.name(), rows as u64);
        let matrix = QMatrix::<B>::from_gguf("w", rows, cols, &bytes).unwrap();
        let ours: Vec<f32> = matrix.blocks.iter().flat_map(|b| b.dequantize()).collect();
        assert_eq!(ours, values, "{} {rows}x{cols}: layout", B::FORMAT.name());
        let (xq, x) = activations(cols, 29);
        // The x86 levels above AVX2 sum the same integers as AVX2 (`vpdpbusd` or not): the
        // same results to the bit.
        let mut x86: Option<Vec<f32>> = None;
        for level in Level::available() {
            let kernels = Kernels::for_level(level).unwrap();
            for threads in [1, 3] {
                let mut y = vec![f32::NAN; rows];
                matrix.gemv(&kernels, &mut Pool::new(threads), &xq, &mut y);
                if level >= Level::Avx2 && level <= Level::Avx512Vnni {
                    let first = x86.get_or_insert_with(|| y.clone());
                    assert_eq!(
                        first,
                        &y,
                        "{} on {threads} threads: not AVX2's bits",
                        level.name()
                    );
                }
                for (r, &got) in y.iter().enumerate() {
                    let (want, scale) = reference(&values[r * cols..(r + 1) * cols], &x);
                    let tolerance = 1e-5 * scale + 1e-6;
                    assert!(
                        (got as f64 - want).abs() <= tolerance,
                        "{} on {threads} threads, {} {rows}x{cols} row {r}: {got} vs {want} (±{tolerance})",
                        level.name(),
                        B::FORMAT.name()
                    );
                }
            }
        }
    }
    check_k_quant_tokens::<B>();
    // A row that is not whole super-blocks is refused, naming the format's block size.
    let err = QMatrix::<B>::from_gguf("blk.0.ffn_down.weight", 1, 576, &[0; 324])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("blk.0.ffn_down.weight") && err.contains("multiple of 256"),
        "{err}"
    );
}

/// A k-quant row by a run of 1 to 6 tokens at once (prompts: several tokens per pass over the
/// row, and every remainder of the kernels' tile) on every level: each token's product
/// matches f64 and equals, to the bit, the same level's product of that token alone, and the
/// x86 levels above AVX2 give AVX2's bits.
fn check_k_quant_tokens<B: QuantBlock>() {
    let (rows, cols) = (3, 1024);
    let (bytes, values) = k_quant_blocks(rows * cols / 256, B::FORMAT.name(), 11);
    let matrix = QMatrix::<B>::from_gguf("w", rows, cols, &bytes).unwrap();
    let per = cols / 256;
    let acts: Vec<(Vec<BlockQ8>, Vec<f32>)> =
        (0..6).map(|t| activations(cols, 200 + t as u64)).collect();
    let q8: Vec<BlockQ8> = acts.iter().flat_map(|(q, _)| q.clone()).collect();
    let groups = grouped(&q8);
    let x = crate::matrix::Acts {
        q8: &q8,
        groups: &groups,
    };
    let mut x86: Option<Vec<f32>> = None;
    for level in Level::available() {
        let kernels = Kernels::for_level(level).unwrap();
        let mut all = vec![];
        for r in 0..rows {
            let row = &matrix.blocks[r * per..(r + 1) * per];
            let alone: Vec<f32> = (0..6)
                .map(|t| {
                    let mut out = [f32::NAN];
                    B::products(&kernels, row, x, t..t + 1, &mut out);
                    out[0]
                })
                .collect();
            for start in 0..6 {
                for end in start + 1..=6 {
                    let mut out = vec![f32::NAN; end - start];
                    B::products(&kernels, row, x, start..end, &mut out);
                    assert_eq!(
                        out,
                        &alone[start..end],
                        "{} {}: tokens {start}..{end} at once, row {r}",
                        level.name(),
                        B::FORMAT.name()
                    );
                }
            }
            for (t, &got) in alone.iter().enumerate() {
                let (want, scale) = reference(&values[r * cols..(r + 1) * cols], &acts[t].1);
                let tolerance = 1e-5 * scale + 1e-6;
                assert!(
                    (got as f64 - want).abs() <= tolerance,
                    "{} {} row {r} token {t}: {got} vs {want} (±{tolerance})",
                    level.name(),
                    B::FORMAT.name()
                );
            }
            all.extend(alone);
        }
        if level >= Level::Avx2 && level <= Level::Avx512Vnni {
            let first = x86.get_or_insert_with(|| all.clone());
            assert_eq!(first, &all, "{}: not AVX2's bits", level.name());
        }
    }
}

/// k-quant rows interleaved eight at a time (`I`), on every level that multiplies them
/// (`kernel`), by activations `X` (made from 8-bit blocks by `to_x`): each row unpacks to its
/// values, and every run of 1 to 11 tokens at once (every pass the kernels make, and their
/// remainders) matches f64 for every row; the x86 levels give the same bits.
fn check_interleaved_k<I, X>(
    dtype: &str,
    kernel: fn(&Kernels) -> Option<super::dispatch::Rows8<I, X>>,
    to_x: fn(&[BlockQ8]) -> Vec<X>,
) where
    I: super::repack::Interleaved,
    I::Row: QuantBlock,
{
    use super::repack::Repacked;
    let mut checked = 0;
    for (rows, cols) in [(8, 256), (16, 1024), (8, 4096)] {
        let (bytes, values) = k_quant_blocks(rows * cols / 256, dtype, 40 + rows as u64);
        let plain = QMatrix::<I::Row>::from_gguf("w", rows, cols, &bytes).unwrap();
        let packed = Repacked::<I>::new(rows, cols, &plain.blocks, false);
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            packed.row_into(r, &mut row);
            assert_eq!(
                row,
                &values[r * cols..(r + 1) * cols],
                "{dtype} row {r} unpacks"
            );
        }
        let tokens = 11;
        let acts: Vec<(Vec<BlockQ8>, Vec<f32>)> = (0..tokens)
            .map(|t| activations(cols, 300 + t as u64))
            .collect();
        let q8: Vec<BlockQ8> = acts.iter().flat_map(|(q, _)| q.clone()).collect();
        let x = to_x(&q8);
        let mut x86: Option<Vec<f32>> = None;
        for level in Level::available() {
            let Some(kernel) = kernel(&Kernels::for_level(level).unwrap()) else {
                continue;
            };
            let mut all = vec![];
            for g in 0..rows / 8 {
                for start in 0..tokens {
                    for end in start + 1..=tokens {
                        let mut out = vec![f32::NAN; 8 * (end - start)];
                        kernel(packed.group(g), &x, start..end, &mut out);
                        for (i, t) in (start..end).enumerate() {
                            for k in 0..8 {
                                let r = 8 * g + k;
                                let (want, scale) =
                                    reference(&values[r * cols..(r + 1) * cols], &acts[t].1);
                                let got = out[8 * i + k];
                                assert!(
                                    (got as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                                    "{} {dtype} {rows}x{cols} row {r} token {t} (tokens {start}..{end}): {got} vs {want}",
                                    level.name()
                                );
                            }
                        }
                        if (start, end) == (0, tokens) {
                            all.extend(out);
                        }
                    }
                }
            }
            if level >= Level::Avx2 && level <= Level::Avx512Vnni {
                let first = x86.get_or_insert_with(|| all.clone());
                assert_eq!(first, &all, "{} {dtype}: not AVX2's bits", level.name());
            }
            checked += 1;
        }
    }
    if Level::available().contains(&Level::Avx2) {
        assert!(
            checked > 0,
            "an x86 level with AVX2 multiplies interleaved {dtype} rows"
        );
    }
}

/// A matrix of `rows × cols` weights whose values are `values` (`group(g)`: the blocks of rows
/// `8g..8g + 8`) by tiles of sixteen of `tokens` tokens, on every level that has the
/// micro-kernel (`kernel`): every token of every tile (a last tile padded) matches f64 for
/// every row, and the padding gives zeros. The levels checked.
fn check_tiles<'m, T: 'm>(
    name: &str,
    (rows, cols, tokens): (usize, usize, usize),
    values: &[f32],
    group: impl Fn(usize) -> super::tiles::Group<'m, T>,
    kernel: fn(&Kernels) -> Option<super::dispatch::Tiled<T>>,
) -> usize {
    use super::tiles::{band_len, Tiles, BAND, TILE};
    let acts: Vec<(Vec<BlockQ8>, Vec<f32>)> = (0..tokens)
        .map(|t| activations(cols, 500 + t as u64))
        .collect();
    let q8: Vec<BlockQ8> = acts.iter().flat_map(|(q, _)| q.clone()).collect();
    let mut tiles = Tiles::default();
    tiles.set(&q8, tokens, cols);
    assert_eq!(tiles.count(), tokens.div_ceil(TILE));
    let mut checked = 0;
    for level in Level::available() {
        let Some(tiled) = kernel(&Kernels::for_level(level).unwrap()) else {
            continue;
        };
        let mut band = vec![0u8; band_len(cols)];
        for g in 0..rows / 8 {
            (tiled.unpack)(group(g), &mut band);
            for n in 0..tiles.count() {
                let mut out = [f32::NAN; BAND * TILE];
                (tiled.multiply)(group(g), &band, tiles.tile(n), &mut out);
                for i in 0..TILE {
                    let t = n * TILE + i;
                    for k in 0..BAND {
                        let (r, got) = (8 * g + k, out[TILE * k + i]);
                        if t >= tokens {
                            assert_eq!(got, 0.0, "{name}: padding token {t}");
                            continue;
                        }
                        let (want, scale) =
                            reference(&values[r * cols..(r + 1) * cols], &acts[t].1);
                        assert!(
                            (got as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                            "{} {name} {rows}x{cols} row {r} token {t}: {got} vs {want}",
                            level.name()
                        );
                    }
                }
            }
        }
        checked += 1;
    }
    checked
}

/// The levels with tile kernels for groups.
const TILED: [Level; 2] = [Level::Avx512Vnni, Level::I8mm];

/// Whether this CPU runs one of `levels`.
fn runs_any(levels: &[Level]) -> bool {
    Level::available().iter().any(|l| levels.contains(l))
}

/// k-quant groups by tiles of sixteen tokens (`Tiled`), on every level that has the
/// micro-kernel ([`check_tiles`]).
fn check_tiled<I>(dtype: &str, kernel: fn(&Kernels) -> Option<super::dispatch::Tiled<I>>)
where
    I: super::repack::Interleaved,
    I::Row: QuantBlock,
{
    use super::repack::Repacked;
    let mut checked = 0;
    for (rows, cols, tokens) in [(8, 256, 16), (16, 1024, 20), (8, 3072, 35)] {
        let (bytes, values) = k_quant_blocks(rows * cols / 256, dtype, 70 + rows as u64);
        let plain = QMatrix::<I::Row>::from_gguf("w", rows, cols, &bytes).unwrap();
        let packed = Repacked::<I>::new(rows, cols, &plain.blocks, false);
        let group = |g: usize| packed.blocks_of(g);
        checked += check_tiles(dtype, (rows, cols, tokens), &values, group, kernel);
    }
    if runs_any(&TILED) {
        assert!(checked > 0, "{TILED:?} multiply {dtype} groups by tiles");
    }
}

#[test]
fn tiled_q4k_groups_match_the_format_definition() {
    check_tiled::<super::repack::BlockQ4Kx8>("q4k", |k| k.q4k.tiled);
}

#[test]
fn tiled_q5k_groups_match_the_format_definition() {
    check_tiled::<super::repack::BlockQ5Kx8>("q5k", |k| k.q5k.tiled);
}

#[test]
fn tiled_q6k_groups_match_the_format_definition() {
    check_tiled::<super::repack::BlockQ6Kx8>("q6k", |k| k.q6k.tiled);
}

/// Interleaved q5_0 groups by tiles of sixteen tokens, stored alone and in pairs, on every
/// level that has the micro-kernel ([`check_tiles`]).
#[test]
fn tiled_q5_0_groups_match_the_dequantized_reference() {
    use super::blocks::BlockQ5_0;
    use super::repack::{BlockQ5_0x8, Repacked};
    let mut checked = 0;
    for (rows, cols, tokens, paired) in [(8, 576, 16, false), (24, 1536, 21, true)] {
        let (bytes, values) = ggml_quantized(&random(rows * cols, 17), rows, cols, Dtype::Q5_0);
        let matrix = QMatrix::<BlockQ5_0>::from_gguf("w", rows, cols, &bytes).unwrap();
        let packed = Repacked::<BlockQ5_0x8>::new(rows, cols, &matrix.blocks, paired);
        assert_eq!(packed.pairs(), usize::from(paired));
        let group = |g: usize| packed.blocks_of(g);
        let shape = (rows, cols, tokens);
        checked += check_tiles("q5_0", shape, &values, group, |k| k.q5_0.tiled);
    }
    if runs_any(&TILED) {
        assert!(checked > 0, "{TILED:?} multiply q5_0 groups by tiles");
    }
}

/// Interleaved q4_0 groups by tiles of sixteen tokens, stored alone and in pairs (every
/// other block), on every level that has the micro-kernel ([`check_tiles`]).
#[test]
fn tiled_q4_0_groups_match_the_dequantized_reference() {
    use super::blocks::BlockQ4_0;
    use super::repack::{BlockQ4_0x8, Repacked};
    let mut checked = 0;
    for (rows, cols, tokens, paired) in [(8, 576, 16, false), (24, 1536, 21, true)] {
        let (bytes, values) = ggml_quantized(&random(rows * cols, 19), rows, cols, Dtype::Q4_0);
        let matrix = QMatrix::<BlockQ4_0>::from_gguf("w", rows, cols, &bytes).unwrap();
        let packed = Repacked::<BlockQ4_0x8>::new(rows, cols, &matrix.blocks, paired);
        assert_eq!(packed.pairs(), usize::from(paired));
        let group = |g: usize| packed.blocks_of(g);
        let shape = (rows, cols, tokens);
        checked += check_tiles("q4_0", shape, &values, group, |k| k.q4_0.tiled);
    }
    if runs_any(&TILED) {
        assert!(checked > 0, "{TILED:?} multiply q4_0 groups by tiles");
    }
}

/// The 8-bit blocks grouped by super-block, as k-quant kernels read them.
fn grouped(q8: &[BlockQ8]) -> Vec<super::blocks::BlockQ8x8> {
    let mut groups = vec![super::blocks::BlockQ8x8::default(); q8.len() / 8];
    super::blocks::group_q8(q8, &mut groups);
    groups
}

#[test]
fn interleaved_q4k_rows_match_the_format_definition() {
    check_interleaved_k::<super::repack::BlockQ4Kx8, _>("q4k", |k| k.q4k.rows8, |q8| q8.to_vec());
}

#[test]
fn interleaved_q5k_rows_match_the_format_definition() {
    check_interleaved_k::<super::repack::BlockQ5Kx8, _>("q5k", |k| k.q5k.rows8, |q8| q8.to_vec());
}

#[test]
fn interleaved_q6k_rows_match_the_format_definition() {
    check_interleaved_k::<super::repack::BlockQ6Kx8, _>("q6k", |k| k.q6k.rows8, grouped);
}

#[test]
fn q4k_scales_and_mins_unpack_the_same_one_at_a_time_and_all_at_once() {
    use super::blocks::{Block, BlockQ4K};
    let (bytes, _) = k_quant_blocks(64, "q4k", 3);
    for b in bytes.chunks_exact(BlockQ4K::BYTES).map(BlockQ4K::read) {
        let (scales, mins) = b.scales_mins();
        for j in 0..8 {
            assert_eq!(b.scale_min(j), (scales[j], mins[j]), "sub-block {j}");
        }
    }
}

/// iq4_nl blocks of random bytes with small random scales, and the values ggml's
/// `dequantize_row_iq4_nl` gives them: every level matches f64 over them.
#[test]
fn iq4_nl_on_every_level_matches_the_format_definition() {
    use half::f16;
    const KVALUES: [i8; 16] = [
        -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
    ];
    check_blocks::<super::blocks::BlockIQ4NL>(|rows, cols| {
        let mut rng = rand::rngs::StdRng::seed_from_u64((rows * cols) as u64);
        let (mut bytes, mut values) = (Vec::new(), Vec::new());
        for _ in 0..rows * cols / QK {
            let d16 = f16::from_f32(rng.random_range(0.0005f32..0.02));
            let qs: Vec<u8> = (0..QK / 2).map(|_| rng.random::<u8>()).collect();
            let d = d16.to_f32();
            values.extend(qs.iter().map(|&q| d * KVALUES[(q & 0xF) as usize] as f32));
            values.extend(qs.iter().map(|&q| d * KVALUES[(q >> 4) as usize] as f32));
            bytes.extend(d16.to_le_bytes());
            bytes.extend(qs);
        }
        (bytes, values)
    });
}

#[test]
fn q4k_on_every_level_matches_the_format_definition() {
    check_k_quant::<super::blocks::BlockQ4K>();
}

#[test]
fn q5k_on_every_level_matches_the_format_definition() {
    check_k_quant::<super::blocks::BlockQ5K>();
}

#[test]
fn q3k_on_every_level_matches_the_format_definition() {
    check_k_quant::<super::blocks::BlockQ3K>();
}

#[test]
fn q2k_on_every_level_matches_the_format_definition() {
    check_k_quant::<super::blocks::BlockQ2K>();
}

#[test]
fn q6k_on_every_level_matches_the_format_definition() {
    check_k_quant::<super::blocks::BlockQ6K>();
}

#[test]
fn f32_gemv_on_every_level_and_thread_count_matches_f64() {
    for &(rows, cols) in SHAPES {
        let w = random(rows * cols, 13);
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let matrix = F32Matrix::from_gguf("w", rows, cols, &bytes).unwrap();
        assert_eq!(&matrix.data[..], &w[..]);
        let x = random(cols, 17);
        for level in Level::available() {
            for threads in [1, 3] {
                let mut y = vec![f32::NAN; rows];
                let kernels = Kernels::for_level(level).unwrap();
                matrix.gemv(&kernels, &mut Pool::new(threads), &x, &mut y);
                for (r, &got) in y.iter().enumerate() {
                    let (want, scale) = reference(&w[r * cols..(r + 1) * cols], &x);
                    assert!(
                        (got as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                        "{} on {threads} threads, f32 {rows}x{cols} row {r}: {got} vs {want}",
                        level.name()
                    );
                }
            }
        }
    }
    let err = F32Matrix::from_gguf("output.weight", 2, 3, &[0; 20])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("output.weight") && err.contains("24 bytes, found 20"),
        "{err}"
    );
}

#[test]
fn extreme_blocks_do_not_saturate() {
    // Weights of -128 (a q8_0 file may hold them) against activations at ±127: the AVX2 path's
    // 16-bit pair sums must not saturate.
    let w = [BlockQ8_0 {
        d: half::f16::from_f32(1.0),
        qs: [-128; QK],
    }];
    let mut x = [BlockQ8::default()];
    quantize_q8(&[-1.0; QK], &mut x);
    assert_eq!(x[0].qs, [-127; QK]);
    let want = 128.0 * 127.0 * QK as f32 * x[0].d;
    for level in Level::available() {
        let kernels = Kernels::for_level(level).unwrap();
        let got = (kernels.q8_0.row)(&w, &x);
        assert_eq!(got, want, "{}", level.name());
        // The same block in all eight rows of an interleaved group.
        if let Some(rows8) = kernels.q8_0.rows8 {
            let packed = super::repack::Repacked::<super::repack::BlockQ8_0x8>::new(
                8, QK, &[w[0]; 8], false,
            );
            let mut out = [0f32; 8];
            rows8(packed.group(0), &x, 0..1, &mut out);
            assert_eq!(out, [want; 8], "{} interleaved", level.name());
        }
        // And in all sixteen rows of a pair of groups.
        if let Some(rows16) = kernels.q8_0.rows16 {
            let paired = super::repack::Repacked::<super::repack::BlockQ8_0x8>::new(
                16,
                QK,
                &[w[0]; 16],
                true,
            );
            let mut out = [0f32; 16];
            rows16(paired.pair(0), &x, 0..1, &mut out);
            assert_eq!(out, [want; 16], "{} sixteen rows", level.name());
        }
    }
}

/// q6k's extremes in interleaved rows and tiles: weights of 0 and 63 (the most negative and positive
/// after the offset of 32) with group scales of -128 and 127 against activations at ±127 stay
/// exact through the 16-bit pair sums and the integer scaling.
#[test]
fn extreme_q6k_groups_do_not_saturate() {
    use super::blocks::{BlockQ6K, QK_K};
    use super::repack::{BlockQ6Kx8, Repacked};
    let one = half::f16::from_f32(1.0);
    for (bits, scale, sign) in [(0u8, -128i8, -1.0f32), (0xFF, 127, 1.0), (0xFF, -128, 1.0)] {
        let w = BlockQ6K {
            ql: [bits; QK_K / 2],
            qh: [bits; QK_K / 4],
            scales: [scale; QK_K / 16],
            d: one,
        };
        let mut q8 = vec![BlockQ8::default(); QK_K / QK];
        quantize_q8(&[sign; QK_K], &mut q8);
        let x = grouped(&q8);
        let q = w.q(0) as f64 - 32.0;
        let want = QK_K as f64 * scale as f64 * q * 127.0 * sign as f64 * q8[0].d as f64;
        let packed = Repacked::<BlockQ6Kx8>::new(8, QK_K, &[w; 8], false);
        let mut tiles = super::tiles::Tiles::default();
        tiles.set(&q8, 1, QK_K);
        for level in Level::available() {
            let kernels = Kernels::for_level(level).unwrap();
            let mut outs = vec![];
            if let Some(rows8) = kernels.q6k.rows8 {
                let mut out = [0f32; 8];
                rows8(packed.group(0), &x, 0..1, &mut out);
                outs.extend(out);
            }
            if let Some(tiled) = kernels.q6k.tiled {
                let mut band = vec![0u8; super::tiles::band_len(QK_K)];
                (tiled.unpack)(packed.blocks_of(0), &mut band);
                let mut out = [0f32; 128];
                (tiled.multiply)(packed.blocks_of(0), &band, tiles.tile(0), &mut out);
                outs.extend(out.iter().step_by(16));
            }
            for got in outs {
                assert!(
                    (got as f64 - want).abs() <= 1e-6 * want.abs(),
                    "{} q = {q}, scale {scale}: {got} vs {want}",
                    level.name()
                );
            }
        }
    }
}

/// The quantizer gives, value for value, ggml's reference (`roundf(x · id)`, ties away from
/// zero, the largest magnitude passing over NaN; clamped to ±127) on random blocks, blocks
/// whose values land on ties, blocks with NaN and infinities, and subnormal blocks (whose
/// scale's reciprocal overflows); and every level's quantizer gives the same block, to the
/// bit.
#[test]
fn activation_quantization_matches_the_reference_formula_on_every_level() {
    let reference = |xs: &[f32]| -> Vec<i8> {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        xs.iter()
            .map(|&v| (v * id).round().clamp(-127.0, 127.0) as i8)
            .collect()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut blocks: Vec<Vec<f32>> = (0..2000)
        .map(|_| {
            let scale = 10f32.powi(rng.random_range(-6..4));
            (0..QK)
                .map(|_| rng.random_range(-1.0f32..1.0) * scale)
                .collect()
        })
        .collect();
    // Largest magnitude 127, so id = 1 and halves are ties.
    blocks.push(
        (0..QK)
            .map(|i| if i == 0 { 127.0 } else { i as f32 - 16.5 })
            .collect(),
    );
    blocks.push((0..QK).map(|i| [f32::NAN, 3.0, -2.5][i % 3]).collect());
    blocks.push((0..QK).map(|i| [f32::INFINITY, 1.0][i % 2]).collect());
    blocks.push(vec![f32::NAN; QK]);
    blocks.push((0..QK).map(|i| (i as f32 - 16.0) * 1e-42).collect());
    blocks.push((0..QK).map(|i| (i as f32 - 16.0) * 1e-39).collect());
    let levels: Vec<Kernels> = Level::available()
        .into_iter()
        .map(|l| Kernels::for_level(l).unwrap())
        .collect();
    let bits = |b: &BlockQ8| (b.d.to_bits(), b.s.to_bits(), b.sum, b.qs);
    for xs in &blocks {
        let mut q = [BlockQ8::default()];
        quantize_q8(xs, &mut q);
        assert_eq!(q[0].qs.to_vec(), reference(xs), "{xs:?}");
        let sum: i32 = q[0].qs.iter().map(|&v| v as i32).sum();
        assert_eq!(q[0].sum, sum);
        for k in &levels {
            let level = (k.ops.quantize)(xs);
            assert_eq!(bits(&level), bits(&q[0]), "{}: {xs:?}", k.level.name());
        }
    }
}

#[test]
fn activation_quantization_rounds_like_ggml_and_keeps_its_sum() {
    let x: Vec<f32> = (0..QK).map(|i| i as f32 - 15.5).collect();
    let mut q = [BlockQ8::default()];
    quantize_q8(&x, &mut q);
    // The scale in f16 precision, as ggml stores it.
    let d = half::f16::from_f32(15.5 / 127.0).to_f32();
    assert_eq!(q[0].d, d);
    // ±15.5 are the largest magnitudes: exactly ∓127; 0.5 rounds away from zero to 4
    // (0.5 / d = 4.097), -0.5 to -4.
    assert_eq!((q[0].qs[0], q[0].qs[31]), (-127, 127));
    assert_eq!((q[0].qs[15], q[0].qs[16]), (-4, 4));
    let sum: i32 = q[0].qs.iter().map(|&v| v as i32).sum();
    assert!((q[0].s - q[0].d * sum as f32).abs() <= 1e-3 * q[0].s.abs() + 1e-6);
    // All zeros: scale 0, no NaN.
    quantize_q8(&[0.0; QK], &mut q);
    assert_eq!((q[0].d, q[0].qs), (0.0, [0; QK]));
}

#[test]
fn levels_are_chosen_refused_and_named() {
    let available = Level::available();
    assert_eq!(available[0], Level::Scalar);
    assert_eq!(Level::named("scalar").unwrap(), Level::Scalar);
    let err = Level::named("avx9000").unwrap_err().to_string();
    assert!(
        err.contains("LLM_BENCH_KERNELS") && err.contains("scalar"),
        "{err}"
    );
    for level in Level::ALL {
        assert_eq!(
            Kernels::for_level(level).is_ok(),
            available.contains(&level)
        );
    }
    // Against the kernel's own account of the CPU: each level's features in /proc/cpuinfo.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let flags: Vec<&str> = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let has = |names: &[&str]| names.iter().all(|n| flags.contains(n));
        let avx2 = has(&["avx2", "fma", "f16c"]);
        for (level, expected) in [
            (Level::Avx2, avx2),
            (Level::AvxVnni, avx2 && has(&["avx_vnni"])),
            (Level::Avx512, avx2 && has(&["avx512f", "avx512bw"])),
            (
                Level::Avx512Vnni,
                avx2 && has(&["avx512f", "avx512bw", "avx512vl", "avx512_vnni"]),
            ),
        ] {
            assert_eq!(available.contains(&level), expected, "{}", level.name());
        }
    }
    // Against the kernel's hardware capabilities: `neondot` wherever HWCAP_ASIMDDP is set.
    #[cfg(all(target_arch = "aarch64", target_os = "linux", target_env = "gnu"))]
    {
        const HWCAP_ASIMDDP: libc::c_ulong = 1 << 20;
        // SAFETY: getauxval reads the process's auxiliary vector; no memory is passed.
        let dotprod = unsafe { libc::getauxval(libc::AT_HWCAP) } & HWCAP_ASIMDDP != 0;
        assert_eq!(available.contains(&Level::NeonDot), dotprod);
        // `i8mm` wherever HWCAP2_I8MM is set too.
        const HWCAP2_I8MM: libc::c_ulong = 1 << 13;
        // SAFETY: as above.
        let i8mm = unsafe { libc::getauxval(libc::AT_HWCAP2) } & HWCAP2_I8MM != 0;
        assert_eq!(available.contains(&Level::I8mm), dotprod && i8mm);
        // NEON (Advanced SIMD) is part of every aarch64 CPU Linux runs on.
        const HWCAP_ASIMD: libc::c_ulong = 1 << 1;
        // SAFETY: as above.
        let asimd = unsafe { libc::getauxval(libc::AT_HWCAP) } & HWCAP_ASIMD != 0;
        assert!(asimd && available.contains(&Level::Neon), "{available:?}");
        eprintln!("aarch64 levels: {available:?}");
    }
}

#[test]
fn matrices_with_the_wrong_byte_count_or_row_length_are_refused() {
    let bytes = vec![0u8; 3 * BlockQ4_0::BYTES];
    assert!(QMatrix::<BlockQ4_0>::from_gguf("w", 1, 96, &bytes).is_ok());
    let err = QMatrix::<BlockQ4_0>::from_gguf("blk.0.ffn_up.weight", 2, 96, &bytes)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("blk.0.ffn_up.weight") && err.contains("108 bytes, found 54"),
        "{err}"
    );
    assert!(QMatrix::<BlockQ4_0>::from_gguf("w", 1, 100, &bytes).is_err());
    assert!(QMatrix::<BlockQ4_0>::from_gguf("w", usize::MAX, 64, &bytes).is_err());
    // A matrix in the engine's storage for each level: the same checks.
    use super::matrix::Matrix;
    use super::Format;
    for level in Level::available() {
        let k = Kernels::for_level(level).unwrap();
        assert!(Matrix::from_gguf("w", Format::Q4_0, (1, 96), &k, &bytes).is_ok());
        let err = Matrix::from_gguf("blk.0.ffn_up.weight", Format::Q4_0, (2, 96), &k, &bytes)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("blk.0.ffn_up.weight") && err.contains("108 bytes, found 54"),
            "{err}"
        );
        assert!(Matrix::from_gguf("w", Format::Q4_0, (1, 100), &k, &bytes).is_err());
    }
}

#[test]
fn f16_attention_kernels_on_every_level_match_f64_for_lengths_around_their_unrolling() {
    use half::f16;
    for n in [0, 1, 7, 8, 15, 16, 17, 64, 128, 129] {
        let a: Vec<f16> = random(n, 3).into_iter().map(f16::from_f32).collect();
        let b: Vec<f16> = random(n, 5).into_iter().map(f16::from_f32).collect();
        let (af, bf): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|v| v.to_f32()).collect(),
            b.iter().map(|v| v.to_f32()).collect(),
        );
        let (want, scale) = reference(&af, &bf);
        for level in Level::available() {
            let k = Kernels::for_level(level).unwrap();
            let got = (k.ops.dot_f16)(&a, &b);
            assert!(
                (got as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                "{} dot n={n}: {got} vs {want}",
                level.name()
            );
            let mut y: Vec<f32> = random(n, 9);
            let start = y.clone();
            (k.ops.axpy_f16)(0.75, &a, &mut y);
            for i in 0..n {
                let want = start[i] as f64 + 0.75 * af[i] as f64;
                assert!(
                    (y[i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{} axpy n={n} [{i}]: {} vs {want}",
                    level.name(),
                    y[i]
                );
            }
        }
    }
}

/// The repacked 8-row kernels on every level that has them, against the f64 reference, for
/// 1 to 6 tokens at once (the 4-token tile and every remainder); the 16-row kernels (two
/// groups at once) against the level's 8-row kernel, to the bit.
fn check_rows8<I: super::repack::Interleaved>(
    dtype: Dtype,
    kernel: impl Fn(&Kernels) -> Option<crate::dispatch::Rows8<I>>,
    wide: impl Fn(&Kernels) -> Option<crate::dispatch::Rows16<I>>,
) where
    I::Row: QuantBlock,
{
    let (mut checked, mut wide_checked) = (0, 0);
    for &(rows, cols) in &[(8, 32), (16, 576), (24, 1536), (8, 4096), (8, 96)] {
        let (bytes, values) = ggml_quantized(&random(rows * cols, 13), rows, cols, dtype);
        let plain = QMatrix::<I::Row>::from_gguf("w", rows, cols, &bytes).unwrap();
        let packed = super::repack::Repacked::<I>::new(rows, cols, &plain.blocks, false);
        let paired = super::repack::Repacked::<I>::new(rows, cols, &plain.blocks, true);
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            packed.row_into(r, &mut row);
            assert_eq!(row, &values[r * cols..(r + 1) * cols], "row {r} unpacks");
            paired.row_into(r, &mut row);
            assert_eq!(
                row,
                &values[r * cols..(r + 1) * cols],
                "row {r} unpacks, paired"
            );
        }
        let tokens = 6;
        let acts: Vec<(Vec<BlockQ8>, Vec<f32>)> = (0..tokens)
            .map(|t| activations(cols, 100 + t as u64))
            .collect();
        let x: Vec<BlockQ8> = acts.iter().flat_map(|(q, _)| q.clone()).collect();
        for level in Level::available() {
            let kernels = Kernels::for_level(level).unwrap();
            let Some(kernel) = kernel(&kernels) else {
                continue;
            };
            if let Some(wide) = wide(&kernels) {
                for run in [0..1, 0..4, 1..6, 2..5, 0..6] {
                    for p in 0..paired.pairs() {
                        let g = 2 * p;
                        let mut both = vec![f32::NAN; run.len() * 16];
                        wide(paired.pair(p), &x, run.clone(), &mut both);
                        let mut each =
                            [vec![f32::NAN; run.len() * 8], vec![f32::NAN; run.len() * 8]];
                        kernel(packed.group(g), &x, run.clone(), &mut each[0]);
                        kernel(packed.group(g + 1), &x, run.clone(), &mut each[1]);
                        for (i, row16) in both.chunks_exact(16).enumerate() {
                            let row8 =
                                [&each[0][i * 8..i * 8 + 8], &each[1][i * 8..i * 8 + 8]].concat();
                            assert_eq!(
                                row16,
                                row8,
                                "{} {rows}x{cols} tokens {run:?}: pair {p}",
                                level.name()
                            );
                            wide_checked += 16;
                        }
                    }
                }
            }
            for run in [0..1, 0..4, 1..6, 2..5, 0..6] {
                for g in 0..rows / 8 {
                    let mut out = vec![f32::NAN; run.len() * 8];
                    kernel(packed.group(g), &x, run.clone(), &mut out);
                    for (i, t) in run.clone().enumerate() {
                        for k in 0..8 {
                            let r = g * 8 + k;
                            let blocks = &plain.blocks[r * cols / QK..(r + 1) * cols / QK];
                            let (want, scale) = reference_blocks(
                                &values[r * cols..(r + 1) * cols],
                                blocks,
                                &acts[t].1,
                                &acts[t].0,
                            );
                            let got = out[i * 8 + k] as f64;
                            assert!(
                                (got - want).abs() <= 1e-5 * scale + 1e-6,
                                "{} {rows}x{cols} tokens {run:?}: row {r} token {t}: {got} vs {want}",
                                level.name()
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    // On a CPU with no level that repacks, nothing is checked: say so rather than pass.
    if Level::available()
        .iter()
        .all(|l| kernel(&Kernels::for_level(*l).unwrap()).is_none())
    {
        eprintln!("no kernel level of this CPU repacks {dtype:?}");
    } else {
        assert!(checked > 0);
    }
    let wide_levels = Level::available()
        .iter()
        .filter(|l| wide(&Kernels::for_level(**l).unwrap()).is_some())
        .count();
    assert_eq!(wide_checked > 0, wide_levels > 0);
}

#[test]
fn repacked_q4_0_rows_on_every_level_match_the_dequantized_reference() {
    check_rows8::<super::repack::BlockQ4_0x8>(Dtype::Q4_0, |k| k.q4_0.rows8, |k| k.q4_0.rows16);
}

#[test]
fn repacked_q5_0_rows_on_every_level_match_the_dequantized_reference() {
    check_rows8::<super::repack::BlockQ5_0x8>(Dtype::Q5_0, |k| k.q5_0.rows8, |k| k.q5_0.rows16);
}

#[test]
fn repacked_q5_1_rows_on_every_level_match_the_dequantized_reference() {
    check_rows8::<super::repack::BlockQ5_1x8>(Dtype::Q5_1, |k| k.q5_1.rows8, |k| k.q5_1.rows16);
}

#[test]
fn repacked_q4_1_rows_on_every_level_match_the_dequantized_reference() {
    check_rows8::<super::repack::BlockQ4_1x8>(Dtype::Q4_1, |k| k.q4_1.rows8, |k| k.q4_1.rows16);
}

#[test]
fn repacked_q8_0_rows_on_every_level_match_the_dequantized_reference() {
    check_rows8::<super::repack::BlockQ8_0x8>(Dtype::Q8_0, |k| k.q8_0.rows8, |k| k.q8_0.rows16);
}

#[test]
fn half_weight_dots_on_every_level_match_f64_for_lengths_around_their_unrolling() {
    use half::{bf16, f16};
    for n in [0, 1, 7, 8, 9, 31, 32, 33, 40, 576, 1537] {
        let (w, x) = (random(n, 21), random(n, 23));
        let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
        // The reference takes the weights as stored (rounded to the half format).
        let back16: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let backb: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
        let ((want16, scale16), (wantb, scaleb)) = (reference(&back16, &x), reference(&backb, &x));
        for level in Level::available() {
            let k = Kernels::for_level(level).unwrap();
            let (got16, gotb) = ((k.dense.f16)(&w16, &x), (k.dense.bf16)(&wb, &x));
            assert!(
                (got16 as f64 - want16).abs() <= 1e-5 * scale16 + 1e-6,
                "{} f16 n={n}: {got16} vs {want16}",
                level.name()
            );
            assert!(
                (gotb as f64 - wantb).abs() <= 1e-5 * scaleb + 1e-6,
                "{} bf16 n={n}: {gotb} vs {wantb}",
                level.name()
            );
        }
    }
}

/// The activation and softmax exponentials on every level against f64: within 4e-7 of the
/// true value relative (2-3 ulp), over the range activations and scores take and far past it
/// (clamped where e^x leaves f32's normal range), at every length's vector tail.
#[test]
fn silu_and_softmax_exponentials_match_f64_on_every_level() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut values: Vec<f32> = (0..2000)
        .map(|_| rng.random_range(-30.0f32..30.0))
        .collect();
    values.extend([
        0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 80.0, -80.0, 86.9, -86.9,
    ]);
    values.extend((0..64).map(|i| (i as f32 - 32.0) * 0.03125));
    let close = |got: f32, want: f64, what: &str| {
        let tolerance = 4e-7 * want.abs() + 1e-37;
        assert!(
            (got as f64 - want).abs() <= tolerance,
            "{what}: {got} vs {want}"
        );
    };
    for level in Level::available() {
        let k = Kernels::for_level(level).unwrap();
        for len in [1, 7, 8, 9, 31, values.len()] {
            let gate = &values[..len];
            let up: Vec<f32> = gate.iter().map(|g| 1.5 - g * 0.25).collect();
            let mut out = gate.to_vec();
            (k.ops.silu_mul)(&mut out, &up);
            for ((&g, &u), &got) in gate.iter().zip(&up).zip(&out) {
                let (g64, u64) = (g as f64, u as f64);
                let want = g64 / (1.0 + (-g64).exp()) * u64;
                close(got, want, &format!("{} silu({g}) * {u}", level.name()));
            }
            // Scores at and below their maximum, as the softmax takes them.
            let max = gate.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut scores = gate.to_vec();
            let sum = (k.ops.softmax_exp)(&mut scores, max);
            let mut want_sum = 0f64;
            for (&s, &got) in gate.iter().zip(&scores) {
                // The difference is an f32, as the kernels take it.
                let want = ((s - max) as f64).exp();
                want_sum += want;
                close(got, want, &format!("{} e^({s} - {max})", level.name()));
            }
            assert!(
                (sum - want_sum).abs() <= 1e-6 * want_sum,
                "{}: sum {sum} vs {want_sum}",
                level.name()
            );
        }
        // Far outside: e^x of very negative x is 0 or the smallest value kept, never NaN;
        // silu of large magnitudes is x or 0.
        let mut big = [100.0f32, -100.0, 1000.0, -1000.0];
        (k.ops.silu_mul)(&mut big, &[1.0; 4]);
        assert!(
            (big[0] - 100.0).abs() < 1e-4 && big[1].abs() < 1e-30,
            "{big:?}"
        );
        assert!(
            (big[2] - 1000.0).abs() < 1e-3 && big[3].abs() < 1e-30,
            "{big:?}"
        );
        let mut far = [0.0f32, -200.0, -1e6];
        let sum = (k.ops.softmax_exp)(&mut far, 0.0);
        assert!(far[0] == 1.0 && far[1] < 1e-37 && far[2] < 1e-37, "{far:?}");
        assert!((sum - 1.0).abs() < 1e-12, "{sum}");
    }
}

/// Attention of one head on every level against f64 on the same f16 cache (the weights'
/// rounding to f16 bounds the difference), and each level's one-pass kernel against its own
/// dot, softmax and axpy kernels applied one position at a time (the scores' sums run in
/// another order: within f32 rounding). Head sizes of SmolLM2 (64), Llama-3 (128), the tiny
/// test model (16) and odd ones the SIMD path hands to the scalar one (12); strides wider
/// than a head, as in the grouped cache.
#[test]
fn attention_matches_f64_and_its_own_kernels_on_every_level() {
    use half::f16;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for (hd, stride, positions) in [
        (64, 192, 1),
        (64, 192, 9),
        (64, 192, 140),
        (128, 1024, 33),
        (16, 48, 17),
        (12, 36, 5),
    ] {
        let mut half = |n: usize, spread: f32| -> Vec<f16> {
            (0..n)
                .map(|_| f16::from_f32(rng.random_range(-spread..spread)))
                .collect()
        };
        let q = half(hd, 2.0);
        // The head's rows start at an offset inside a wider row, as a grouped cache's do.
        let (keys, values) = (half(positions * stride, 2.0), half(positions * stride, 1.0));
        let (kh, vh) = (&keys[stride - hd..], &values[stride - hd..]);
        let row = |x: &[f16], p: usize| -> Vec<f64> {
            x[p * stride..p * stride + hd]
                .iter()
                .map(|v| v.to_f64())
                .collect()
        };
        let scale = 1.0 / (hd as f64).sqrt();
        let logits: Vec<f64> = (0..positions)
            .map(|p| {
                row(kh, p)
                    .iter()
                    .zip(&q)
                    .map(|(k, q)| k * q.to_f64())
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        let mut want = vec![0f64; hd];
        for (p, l) in logits.iter().enumerate() {
            for (w, v) in want.iter_mut().zip(row(vh, p)) {
                *w += (l - max).exp() / total * v;
            }
        }
        for level in Level::available() {
            let k = Kernels::for_level(level).unwrap();
            let (mut scores, mut out) = (vec![0f32; positions], vec![f32::NAN; hd]);
            (k.ops.attend)(&q, kh, vh, stride, positions, &mut scores, &mut out);
            for (d, (&got, &want)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - want).abs() < 2e-3,
                    "{} hd {hd} positions {positions} dim {d}: {got} vs {want}",
                    level.name()
                );
            }
            // One position at a time through the level's own kernels.
            let mut one_by_one = vec![0f32; hd];
            let mut s: Vec<f32> = (0..positions)
                .map(|p| {
                    (k.ops.dot_f16)(&q, &kh[p * stride..p * stride + hd])
                        * (1.0 / (hd as f32).sqrt())
                })
                .collect();
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let inverse = (1.0 / (k.ops.softmax_exp)(&mut s, m)) as f32;
            for (p, &w) in s.iter().enumerate() {
                let w = f16::from_f32(w * inverse).to_f32();
                (k.ops.axpy_f16)(w, &vh[p * stride..p * stride + hd], &mut one_by_one);
            }
            for (&a, &b) in out.iter().zip(&one_by_one) {
                assert!(
                    (a - b).abs() <= 1e-5,
                    "{} hd {hd} positions {positions}: {out:?} vs {one_by_one:?}",
                    level.name()
                );
            }
        }
    }
}
