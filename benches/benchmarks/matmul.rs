//! `matmul`: the products one forward pass is made of, at the selected model's real
//! projection shapes, in dense and quantized formats, as GEMV (1 row: decode) and GEMM
//! (128 rows: prefill). Timed: `Linear::forward` (dense) or `QMatMul::forward` (quantized);
//! weights and inputs are made before timing. GEMV reports weight bytes read per second (what
//! bounds decode); GEMM reports multiply-adds per second (Criterion's "elem/s"; 1 elem = 1
//! multiply-add = 2 FLOP). Both figures for every id go to `llm-bench-context.json`.
//!
//! Beside candle's products, the tuned engine's decode products (`llm_bench::kernels`) at the
//! same shapes, on every kernel level this CPU runs, with ids
//! `matmul/<model>@<format>+tuned-<level>/<shape>-gemv` (q8_0, q4_0, q4_1, q5_0, q5_1, and q4k
//! and q6k at shapes whose rows fill their 256-weight blocks; f32): the weights stored as the
//! engine stores them for that level (interleaved groups of rows, or pairs of groups, where the
//! level has kernels for them), the input row taken (quantized to 8-bit blocks for block
//! formats, as candle's `QMatMul::forward` also does) and multiplied as a forward pass does.

use super::{group, Cost};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use criterion::{Criterion, Throughput};
use llm_bench::format::WeightFormat;
use llm_bench::kernels::matrix::{self, multiply, Activations, Input, Matrix, Then};
use llm_bench::kernels::{Format, Kernels, Level, Pool};
use serde_json::json;

const FORMATS: &[&str] = &["f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "q4k", "q6k"];
const ROWS: &[(usize, &str)] = &[(1, "gemv"), (128, "gemm128")];
/// The formats whose decode products the tuned engine's kernels are timed in.
const TUNED: [Format; 8] = [
    Format::Q8_0,
    Format::Q4_0,
    Format::Q4_1,
    Format::Q5_0,
    Format::Q5_1,
    Format::Q4K,
    Format::Q6K,
    Format::F32,
];

enum Product {
    Dense(candle_nn::Linear),
    Quantized(QMatMul),
}

impl Product {
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Product::Dense(l) => l.forward(x),
            Product::Quantized(q) => q.forward(x),
        }
        .expect("matmul")
    }
}

pub fn bench(c: &mut Criterion) {
    let (config, name) = {
        let s = llm_bench::bench::session();
        (s.config.clone(), s.name.clone())
    };
    let hd = config.head_dim();
    // (name, output features n, input features k), as the model's weights are [n, k].
    let shapes = [
        ("attn_q", config.num_heads * hd, config.hidden_size),
        ("attn_kv", config.num_kv_heads * hd, config.hidden_size),
        ("attn_output", config.hidden_size, config.num_heads * hd),
        ("ffn_gate_up", config.intermediate_size, config.hidden_size),
        ("ffn_down", config.hidden_size, config.intermediate_size),
        ("lm_head", config.vocab_size, config.hidden_size),
    ];
    let mut group = group(c, "matmul", Cost::Small);
    for format_name in FORMATS {
        let format: WeightFormat = format_name.parse().expect("listed formats parse");
        // The kernels timed here are candle's own, whichever engines the run compares.
        let function = llm_bench::model::run_label(&name, format_name, "candle");
        for &(shape, n, k) in &shapes {
            if let WeightFormat::Quantized(q) = format {
                if k % q.block_size() != 0 {
                    eprintln!("matmul: skipping {shape} at {format_name}: rows of {k} do not fill {}-value blocks", q.block_size());
                    continue;
                }
            }
            for &(m, mode) in ROWS {
                let weight_bytes = (n * k) as f64 * format.bytes_per_weight();
                let macs = (m * n * k) as u64;
                llm_bench::bench::session().record(
                    &format!("matmul/{function}/{shape}-{mode}"),
                    json!({"m": m, "n": n, "k": k, "weight_bytes": weight_bytes as u64, "multiply_adds": macs}),
                );
                group.throughput(if m == 1 {
                    Throughput::Bytes(weight_bytes as u64)
                } else {
                    Throughput::Elements(macs)
                });
                let mut prepared: Option<(Product, Tensor)> = None;
                group.bench(&function, format!("{shape}-{mode}"), |b| {
                    let (product, x) = prepared.get_or_insert_with(|| prepare(format, m, n, k));
                    b.iter(|| product.forward(x))
                });
            }
        }
    }
    let mut pool = Pool::new(llm_bench::bench::session().threads);
    // LLM_BENCH_KERNELS caps the levels timed (a level this CPU lacks is refused).
    let top = Level::chosen().unwrap_or_else(|e| {
        eprintln!("llm-bench: {e}");
        std::process::exit(2)
    });
    for level in Level::available().into_iter().filter(|l| *l <= top) {
        let kernels = Kernels::for_level(level).expect("available levels load");
        for &(shape, n, k) in &shapes {
            let tuned = |format: &str| {
                llm_bench::model::run_label(&name, format, &format!("tuned-{}", level.name()))
            };
            for format in TUNED {
                let function = tuned(format.name());
                let id = (function.as_str(), format);
                tuned_gemv(&mut group, &kernels, &mut pool, id, shape, n, k);
            }
        }
    }
    group.finish();
}

/// One decode product of the tuned engine as it runs it: the weights in the storage the level
/// reads (interleaved groups, pairs of them, or rows; see `kernels::matrix`), the input row
/// taken (quantized to 8-bit blocks for block formats) and multiplied by `multiply`.
fn tuned_gemv(
    group: &mut super::Group,
    kernels: &Kernels,
    pool: &mut Pool,
    (function, format): (&str, Format),
    shape: &str,
    n: usize,
    k: usize,
) {
    let (weights, block_bytes) = format.geometry();
    if !k.is_multiple_of(weights) {
        return;
    }
    group.throughput(Throughput::Bytes((n * k / weights * block_bytes) as u64));
    // Weights, input row, its activations, output.
    type Prepared = (Matrix, Vec<f32>, Activations, Vec<f32>);
    let mut prepared: Option<Prepared> = None;
    group.bench(function, format!("{shape}-gemv"), |b| {
        let (w, x, acts, y) = prepared.get_or_insert_with(|| {
            let dev = Device::Cpu;
            let w = Tensor::rand(-0.035f32, 0.035, (n, k), &dev).expect("weights");
            let bytes = if format == Format::F32 {
                let values = w.flatten_all().and_then(|t| t.to_vec1::<f32>());
                values
                    .expect("weights")
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect()
            } else {
                // The block's own format name, parsed as every other format name is.
                let Ok(WeightFormat::Quantized(dtype)) = format.name().parse::<WeightFormat>()
                else {
                    panic!("matmul: {format} is not a quantized format");
                };
                QTensor::quantize(&w, dtype.candle().expect("a type candle has"))
                    .and_then(|q| q.data().map(|d| d.into_owned()))
                    .expect("quantize")
            };
            let w =
                Matrix::from_gguf(shape, format, (n, k), kernels, &bytes).expect("candle's layout");
            let x = Tensor::rand(-1f32, 1.0, k, &dev)
                .and_then(|t| t.to_vec1::<f32>())
                .expect("input");
            (w, x, Activations::default(), vec![0f32; n])
        });
        let input = Input {
            norm: None,
            quantize: format != Format::F32,
            gemm: false,
        };
        b.iter(|| {
            acts.set(pool, kernels, x, 1, k, input);
            let product = matrix::Product { matrix: w, out: y };
            multiply(pool, kernels, acts, &mut [product], Then::Nothing);
            std::hint::black_box(&y);
        })
    });
}

fn prepare(format: WeightFormat, m: usize, n: usize, k: usize) -> (Product, Tensor) {
    let dev = Device::Cpu;
    let w = Tensor::rand(-0.035f32, 0.035, (n, k), &dev).expect("weights");
    let x = Tensor::rand(-1f32, 1.0, (m, k), &dev).expect("input");
    match format {
        WeightFormat::Dense(dtype) => {
            let w = w.to_dtype(dtype.into()).expect("dtype");
            (
                Product::Dense(candle_nn::Linear::new(w, None)),
                x.to_dtype(dtype.into()).expect("dtype"),
            )
        }
        WeightFormat::Quantized(q) => {
            let qt =
                QTensor::quantize(&w, q.candle().expect("a type candle has")).expect("quantize");
            (
                Product::Quantized(QMatMul::from_qtensor(qt).expect("qmatmul")),
                x,
            )
        }
    }
}
