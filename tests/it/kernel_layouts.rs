//! The kernels crate's reading of GGUF's block layouts, pinned to candle's quantizer (an
//! independent implementation of ggml's formats): candle's bytes, read by `QMatrix::from_gguf`,
//! dequantize to exactly the values candle dequantizes them to. The kernels' own tests check
//! every kernel against an f64 reference over the values their blocks decode to; this ties
//! those values to candle's.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use llm_bench::kernels::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8_0,
};
use llm_bench::kernels::{QMatrix, QuantBlock};
use rand::{Rng, SeedableRng};

/// Awkward shapes: SmolLM2's 576 and 1536, odd row counts, rows not a multiple of 256.
const SHAPES: &[(usize, usize)] = &[(1, 32), (3, 576), (7, 1536), (5, 96), (2, 49152)];

fn check<B: QuantBlock>(dtype: GgmlDType) {
    check_shapes::<B>(dtype, SHAPES)
}

fn check_shapes<B: QuantBlock>(dtype: GgmlDType, shapes: &[(usize, usize)]) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for &(rows, cols) in shapes {
        // Mostly small values with a few outliers, as real weights have.
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| rng.random_range(-1.0f32..1.0) * if i % 97 == 0 { 8.0 } else { 1.0 })
            .collect();
        let t = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype).unwrap();
        let bytes = q.data().unwrap().into_owned();
        let candle: Vec<f32> = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let matrix = QMatrix::<B>::from_gguf("w", rows, cols, &bytes).unwrap();
        let ours: Vec<f32> = matrix.blocks.iter().flat_map(|b| b.dequantize()).collect();
        assert_eq!(ours, candle, "{} {rows}x{cols}", B::FORMAT);
    }
}

#[test]
fn q8_0_blocks_read_as_candle_writes_them() {
    check::<BlockQ8_0>(GgmlDType::Q8_0);
}

#[test]
fn q4_0_blocks_read_as_candle_writes_them() {
    check::<BlockQ4_0>(GgmlDType::Q4_0);
}

#[test]
fn q4_1_blocks_read_as_candle_writes_them() {
    check::<BlockQ4_1>(GgmlDType::Q4_1);
}

#[test]
fn q5_0_blocks_read_as_candle_writes_them() {
    check::<BlockQ5_0>(GgmlDType::Q5_0);
}

#[test]
fn q5_1_blocks_read_as_candle_writes_them() {
    check::<BlockQ5_1>(GgmlDType::Q5_1);
}

/// k-quants: rows of whole 256-weight super-blocks (SmolLM2's 1536, Llama's 4096 and 14336).
const K_SHAPES: &[(usize, usize)] = &[(1, 256), (7, 1536), (3, 4096), (2, 14336)];

#[test]
fn q4k_blocks_read_as_candle_writes_them() {
    check_shapes::<BlockQ4K>(GgmlDType::Q4K, K_SHAPES);
}

#[test]
fn q6k_blocks_read_as_candle_writes_them() {
    check_shapes::<BlockQ6K>(GgmlDType::Q6K, K_SHAPES);
}

#[test]
fn q5k_blocks_read_as_candle_writes_them() {
    check_shapes::<BlockQ5K>(GgmlDType::Q5K, K_SHAPES);
}

#[test]
fn q3k_blocks_read_as_candle_writes_them() {
    check_shapes::<BlockQ3K>(GgmlDType::Q3K, K_SHAPES);
}

#[test]
fn q2k_blocks_read_as_candle_writes_them() {
    check_shapes::<BlockQ2K>(GgmlDType::Q2K, K_SHAPES);
}
