//! x86-64's levels. `avx2` holds the 256-bit kernels every level shares (quantized and dense
//! dots, attention, k-quant rows); `gemm`, the dense GEMM tiles of the 256- and 512-bit levels;
//! `vnni` (eight interleaved rows with `vpdpbusd`) and `wide` (sixteen in 512-bit vectors) are
//! bodies written once and expanded in each level that uses
//! them, with its features and its integer steps. Each level's file builds its table from a
//! token of [`detect`]: no other code can make one.

mod detect;
#[macro_use]
pub(super) mod avx2;
mod gemm;
#[macro_use]
mod vnni;
#[macro_use]
mod wide;

pub(super) mod avx512;
pub(super) mod avx512vnni;
pub(super) mod avxvnni;

pub(crate) use detect::{Avx2, Avx512, Avx512Vnni, AvxVnni};
