//! Each level's kernels, by CPU architecture: `generic` (portable loops, every CPU), `x86`
//! (`avx2`, `avxvnni`, `avx512`, `avx512vnni`), `arm` (`neon`, `neondot`, `i8mm`). A level's table is
//! built by its `kernels(token)`, and its token only by its detection: [`kernels`] is the one
//! place that asks.

/// Runs `$kernel::<$I, N>` (or `$kernel::<N>`; `$rows` interleaved rows, eight unless given,
/// by `N ≤ 4` tokens, each token's row results in the level's vector type) over the run
/// `$tokens` of tokens, four at a time, `$store`-ing token `t`'s results at
/// `$out[(t - start) * $rows..]`. Each token's activations are `$blocks` elements of `$x` per
/// element of `$w` (one unless given: a k-quant super-block takes eight 8-bit blocks). One
/// driver for every multi-token kernel of every level.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! four_tokens_at_a_time {
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path) => {
        four_tokens_at_a_time!($kernel $(::<$($I),*>)?, $w, $x, $tokens, $out, $store, ROWS, 1)
    };
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path, $rows:expr) => {
        four_tokens_at_a_time!($kernel $(::<$($I),*>)?, $w, $x, $tokens, $out, $store, $rows, 1)
    };
    ($kernel:ident $(::<$($I:ty),*>)?, $w:expr, $x:expr, $tokens:expr, $out:expr, $store:path, $rows:expr, $blocks:expr) => {{
        let (w, x, tokens, out) = ($w, $x, $tokens, $out);
        let per = w.len() * $blocks;
        let token = |t: usize| &x[t * per..(t + 1) * per];
        let mut t = tokens.start;
        while t < tokens.end {
            let n = (tokens.end - t).min(4);
            let results = match n {
                4 => $kernel::<$($($I,)*)? 4>(w, [token(t), token(t + 1), token(t + 2), token(t + 3)]),
                3 => {
                    let r = $kernel::<$($($I,)*)? 3>(w, [token(t), token(t + 1), token(t + 2)]);
                    [r[0], r[1], r[2], r[2]]
                }
                2 => {
                    let r = $kernel::<$($($I,)*)? 2>(w, [token(t), token(t + 1)]);
                    [r[0], r[1], r[1], r[1]]
                }
                _ => [$kernel::<$($($I,)*)? 1>(w, [token(t)])[0]; 4],
            };
            let o = &mut out[(t - tokens.start) * $rows..(t - tokens.start + n) * $rows];
            for (v, dst) in results.iter().zip(o.chunks_exact_mut($rows)) {
                $store(dst, v);
            }
            t += n;
        }
    }};
}

#[cfg(target_arch = "aarch64")]
mod arm;
pub(crate) mod generic;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::{Kernels, Level};

/// The kernels of `level`, if this CPU runs it.
pub(crate) fn kernels(level: Level) -> Option<Kernels> {
    match level {
        Level::Scalar => Some(generic::kernels()),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => x86::Avx2::detect().map(x86::avx2::kernels),
        #[cfg(target_arch = "x86_64")]
        Level::AvxVnni => x86::AvxVnni::detect().map(x86::avxvnni::kernels),
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => x86::Avx512::detect().map(x86::avx512::kernels),
        #[cfg(target_arch = "x86_64")]
        Level::Avx512Vnni => x86::Avx512Vnni::detect().map(x86::avx512vnni::kernels),
        #[cfg(target_arch = "aarch64")]
        Level::Neon => arm::Neon::detect().map(arm::neon::kernels),
        #[cfg(target_arch = "aarch64")]
        Level::NeonDot => arm::NeonDot::detect().map(arm::neondot::kernels),
        #[cfg(target_arch = "aarch64")]
        Level::I8mm => arm::I8mm::detect().map(arm::i8mm::kernels),
        #[cfg(not(target_arch = "x86_64"))]
        Level::Avx2 | Level::AvxVnni | Level::Avx512 | Level::Avx512Vnni => None,
        #[cfg(not(target_arch = "aarch64"))]
        Level::Neon | Level::NeonDot | Level::I8mm => None,
    }
}
