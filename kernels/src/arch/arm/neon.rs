//! aarch64's baseline level, in plain NEON: row-major quantized dots (`rows`), k-quant rows
//! (`kquants`), dense dots, the exponentials and attention (`dense`). `neondot` starts from
//! these. Tested under QEMU's `max` CPU on x86-64 hosts (`scripts/test-aarch64`).

mod dense;
mod kquants;
mod rows;

use super::Neon;
use crate::arch::generic;
use crate::dispatch::{Dense, Ops, Quant};
use crate::{Kernels, Level};

/// The `neon` level's kernels.
pub(crate) fn kernels(_: Neon) -> Kernels {
    Kernels {
        level: Level::Neon,
        q8_0: Quant::rows(rows::dot_q8_0),
        q4_0: Quant::rows(rows::dot_q4_0),
        q4_1: Quant::rows(rows::dot_q4_1),
        q5_0: Quant::rows(rows::dot_q5_0),
        q5_1: Quant::rows(rows::dot_q5_1),
        q4k: Quant::rows(kquants::rows_q4k),
        q2k: Quant::rows(kquants::rows_q2k),
        q3k: Quant::rows(kquants::rows_q3k),
        iq4_nl: Quant::rows(generic::dot_iq4_nl),
        q5k: Quant::rows(generic::rows_q5k),
        q6k: Quant::rows(kquants::rows_q6k),
        dense: Dense {
            f32: dense::dot_f32,
            f16: dense::dot_f16_f32,
            bf16: dense::dot_bf16_f32,
            gemm: None,
        },
        ops: Ops {
            quantize: dense::quantize,
            silu_mul: dense::silu_mul,
            softmax_exp: dense::softmax_exp,
            attend: dense::attend,
            dot_f16: dense::dot_f16,
            axpy_f16: dense::axpy_f16,
        },
    }
}
