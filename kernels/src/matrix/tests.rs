use super::*;
use crate::blocks::{quantize_q8, BlockQ8, QK};
use crate::{ops, Format, Kernels, Level, Pool};
use half::f16;

/// A `rows × cols` matrix in `format` read from its GGUF bytes for `kernels`' level.
fn read(format: Format, rows: usize, cols: usize, kernels: &Kernels, bytes: &[u8]) -> Matrix {
    Matrix::from_gguf("w", format, (rows, cols), kernels, bytes).unwrap()
}

/// Prompts' GEMMs on dense weights (f32 rows as they are, f16 rows dequantized) put every row
/// and token's product where it belongs, within f64's, on every level (GEMM tiles or the
/// `gemm` crate) and every split of the rows over 1 to 3 threads; the levels with GEMM tiles
/// agree to the bit.
#[test]
fn dense_gemms_give_every_row_and_token_on_any_level_and_thread_count() {
    let (rows, cols) = (29, 96);
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 37 % 113) as f32 - 56.0) * 0.01)
        .collect();
    let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
    let formats = [
        (
            Format::F32,
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        ),
        (
            Format::F16,
            halves.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    ];
    for (format, bytes) in &formats {
        let weight = |r: usize, c: usize| match format {
            Format::F16 => halves[r * cols + c].to_f64(),
            _ => values[r * cols + c] as f64,
        };
        for tokens in [8, 33, 70] {
            let x: Vec<f32> = (0..tokens * cols)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.1 + (i / cols) as f32 * 0.01)
                .collect();
            let mut tiled: Option<Vec<f32>> = None;
            for level in Level::available() {
                let kernels = Kernels::for_level(level).unwrap();
                let matrix = read(*format, rows, cols, &kernels, bytes);
                for threads in [1, 2, 3] {
                    let mut pool = Pool::new(threads);
                    let mut acts = Activations::default();
                    let input = Input {
                        norm: None,
                        quantize: false,
                        gemm: true,
                    };
                    acts.set(&mut pool, &kernels, &x, tokens, cols, input);
                    let mut out = vec![f32::NAN; rows * tokens];
                    let product = Product {
                        matrix: &matrix,
                        out: &mut out,
                    };
                    multiply(
                        &mut pool,
                        &kernels,
                        &mut acts,
                        &mut [product],
                        Then::Nothing,
                    );
                    for (i, &got) in out.iter().enumerate() {
                        let (t, r) = (i / rows, i % rows);
                        let terms = (0..cols).map(|c| weight(r, c) * x[t * cols + c] as f64);
                        let (want, scale) =
                            terms.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs()));
                        assert!(
                            (got as f64 - want).abs() <= 1e-5 * scale,
                            "{} {}: {threads} threads, {tokens} tokens, token {t} row {r}: {got} vs {want}",
                            level.name(),
                            format.name(),
                        );
                    }
                    if kernels.dense.gemm.is_some() {
                        let first = tiled.get_or_insert_with(|| out.clone());
                        assert!(
                            *first == out,
                            "{} {}: as the other GEMM tiles",
                            level.name(),
                            format.name()
                        );
                    }
                }
            }
        }
    }
}

/// On a level that multiplies pairs of groups, a matrix stored in pairs (with a last group
/// alone when its rows are not a multiple of 16) gives, to the bit, what the same level
/// gives on single groups, for every split of its rows over 1 to 3 threads.
#[test]
fn pairs_of_groups_give_what_single_groups_give_on_any_thread_count() {
    let levels: Vec<Kernels> = Level::available()
        .into_iter()
        .map(|l| Kernels::for_level(l).unwrap())
        .filter(|k| k.q4_0.rows16.is_some())
        .collect();
    if levels.is_empty() {
        eprintln!("no kernel level of this CPU multiplies pairs of groups");
    }
    let cols = 64;
    for (wide, rows) in levels.iter().flat_map(|k| [(*k, 24), (*k, 40), (*k, 48)]) {
        let mut narrow = wide;
        narrow.q4_0.rows16 = None;
        let bytes: Vec<u8> = (0..rows * cols / QK)
            .flat_map(|i| {
                let d = f16::from_f32(0.01 + (i % 7) as f32 * 0.003);
                let qs = (0..QK / 2).map(move |j| ((i * 31 + j * 17) % 256) as u8);
                d.to_le_bytes().into_iter().chain(qs)
            })
            .collect();
        let read = |k: &Kernels| read(Format::Q4_0, rows, cols, k, &bytes);
        let (paired, single) = (read(&wide), read(&narrow));
        assert!(matches!(&paired, Matrix::Q4_0x8(m) if m.paired));
        assert!(matches!(&single, Matrix::Q4_0x8(m) if !m.paired));
        for threads in [1, 2, 3] {
            let mut pool = Pool::new(threads);
            for tokens in [1, 5] {
                let x: Vec<f32> = (0..tokens * cols)
                    .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.1)
                    .collect();
                let mut acts = Activations::default();
                let input = Input {
                    norm: None,
                    quantize: true,
                    gemm: false,
                };
                acts.set(&mut pool, &wide, &x, tokens, cols, input);
                let mut outputs = [vec![0f32; rows * tokens], vec![0f32; rows * tokens]];
                let [a, b] = &mut outputs;
                for (matrix, kernels, out) in [(&paired, &wide, a), (&single, &narrow, b)] {
                    let product = Product { matrix, out };
                    multiply(&mut pool, kernels, &mut acts, &mut [product], Then::Nothing);
                }
                assert_eq!(
                    outputs[0],
                    outputs[1],
                    "{}: {rows} rows, {threads} threads, {tokens} tokens",
                    wide.level.name()
                );
            }
        }
    }
}

/// Taking activations normed and quantized in one pass gives, to the bit, what normalizing
/// them (`ops::rms_norm`) and then quantizing them (`quantize_q8`, the portable quantizer)
/// gives, on every level, on one thread and on two (prompts share tokens among threads), for
/// dot products and GEMMs.
#[test]
fn activations_normed_and_quantized_in_one_pass_match_the_two_steps() {
    let (tokens, cols) = (7, 96);
    let x: Vec<f32> = (0..tokens * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
        .collect();
    let weight: Vec<f32> = (0..cols).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
    let eps = 1e-5;
    let mut normed = vec![0f32; x.len()];
    for (x, o) in x.chunks_exact(cols).zip(normed.chunks_exact_mut(cols)) {
        ops::rms_norm(x, &weight, eps, o);
    }
    let mut blocks = vec![BlockQ8::default(); x.len() / QK];
    quantize_q8(&normed, &mut blocks);
    let dequantized: Vec<f32> = blocks.iter().flat_map(|b| b.dequantize()).collect();
    for (level, threads) in Level::available()
        .into_iter()
        .flat_map(|l| [(l, 1), (l, 2)])
    {
        let kernels = Kernels::for_level(level).unwrap();
        let mut pool = Pool::new(threads);
        for gemm in [false, true] {
            let mut acts = Activations::default();
            let norm = Some(RmsNorm {
                weight: &weight,
                eps,
            });
            let input = Input {
                norm,
                quantize: true,
                gemm,
            };
            acts.set(&mut pool, &kernels, &x, tokens, cols, input);
            let case = format!("{}, {threads} threads, gemm {gemm}", level.name());
            assert_eq!(acts.q8, blocks, "{case}");
            let want = if gemm { &dequantized } else { &normed };
            assert_eq!(&acts.f32, want, "{case}");
            // As they are, in f32 (f32 weights).
            let input = Input {
                norm: None,
                quantize: false,
                gemm,
            };
            acts.set(&mut pool, &kernels, &x, tokens, cols, input);
            assert_eq!(acts.f32, x);
            assert!(!acts.quantized);
        }
    }
}

/// On the levels that multiply groups by tiles (`avx512vnni`, `i8mm`: q4_0, q5_0, q4k, q5k and
/// q6k), prompts of a tile or more (a last tile padded) give what the same level's group
/// kernels give, for every split of the rows over 1 to 3 threads, and every output lands on
/// its row and token.
#[test]
fn tiles_give_what_groups_give_on_any_thread_count() {
    use crate::blocks::{Block, BlockQ4K, BlockQ4_0, BlockQ5K, BlockQ5_0, BlockQ6K};
    let levels: Vec<Kernels> = Level::available()
        .into_iter()
        .filter(|l| matches!(l, Level::Avx512Vnni | Level::I8mm))
        .map(|l| Kernels::for_level(l).unwrap())
        .collect();
    if levels.is_empty() {
        eprintln!("no kernel level of this CPU multiplies groups by tiles");
    }
    let (rows, cols) = (40, 512);
    // Blocks of `weights` weights of patterned bytes with small f16 scales where each format
    // keeps them (q4k and q5k: d and dmin first, q5_0: d and the first half of qh, q4_0: d
    // and two bytes of nibbles; q6k: d last).
    let blocks = |weights: usize, size: usize, scales_first: bool| -> Vec<u8> {
        (0..rows * cols / weights)
            .flat_map(|i| {
                let scale = |k: usize| f16::from_f32(0.001 + ((i + k) % 5) as f32 * 0.0004);
                let body = (0..size - if scales_first { 4 } else { 2 })
                    .map(move |j| ((i * 131 + j * 71 + j * j) % 256) as u8);
                if scales_first {
                    let head = [scale(0).to_le_bytes(), scale(3).to_le_bytes()].concat();
                    head.into_iter().chain(body).collect::<Vec<u8>>()
                } else {
                    body.chain(scale(0).to_le_bytes()).collect()
                }
            })
            .collect()
    };
    let formats = [
        (Format::Q4K, blocks(256, BlockQ4K::BYTES, true)),
        (Format::Q5K, blocks(256, BlockQ5K::BYTES, true)),
        (Format::Q6K, blocks(256, BlockQ6K::BYTES, false)),
        (Format::Q5_0, blocks(QK, BlockQ5_0::BYTES, true)),
        (Format::Q4_0, blocks(QK, BlockQ4_0::BYTES, true)),
    ];
    for (tiled, (format, bytes)) in levels
        .iter()
        .flat_map(|k| formats.iter().map(move |f| (*k, f)))
    {
        let mut grouped = tiled;
        (grouped.q4k.tiled, grouped.q5k.tiled, grouped.q6k.tiled) = (None, None, None);
        (grouped.q5_0.tiled, grouped.q4_0.tiled) = (None, None);
        let matrix = read(*format, rows, cols, &tiled, bytes);
        assert!(
            matrix.tiled(&tiled) && !matrix.tiled(&grouped),
            "{}: {} by tiles",
            tiled.level.name(),
            format.name()
        );
        for threads in [1, 2, 3] {
            let mut pool = Pool::new(threads);
            for tokens in [16, 37] {
                let x: Vec<f32> = (0..tokens * cols)
                    .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.1 + (i / cols) as f32 * 0.01)
                    .collect();
                let mut acts = Activations::default();
                let input = Input {
                    norm: None,
                    quantize: true,
                    gemm: true,
                };
                acts.set(&mut pool, &tiled, &x, tokens, cols, input);
                let mut outputs = [vec![f32::NAN; rows * tokens], vec![f32::NAN; rows * tokens]];
                let [a, b] = &mut outputs;
                for (kernels, out) in [(&tiled, a), (&grouped, b)] {
                    let product = Product {
                        matrix: &matrix,
                        out,
                    };
                    multiply(&mut pool, kernels, &mut acts, &mut [product], Then::Nothing);
                }
                let largest = outputs[1].iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(largest > 0.0);
                for (i, (a, b)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * largest,
                        "{} {}: {threads} threads, {tokens} tokens, token {} row {}: {a} vs {b}",
                        tiled.level.name(),
                        format.name(),
                        i / rows,
                        i % rows
                    );
                }
            }
        }
    }
}
