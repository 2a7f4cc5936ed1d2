//! aarch64's levels: `neon` (every aarch64 CPU), `neondot` (the dot-product extension's
//! `sdot` for interleaved rows) and `i8mm` (the matrix-multiply extension's `usmmla` for
//! prompts' tiles). Each level's file builds its table from a token of
//! [`detect`]: no other code can make one.

/// `$name(acc, a, b)`: one instruction `$op acc.4s, a.16b, b.16b` of an extension `$features`
/// names, accumulating byte products into `acc`'s four 32-bit lanes (`sdot`, `usmmla`,
/// `smmla`), written as inline assembly because Rust's intrinsics for them are not stable yet.
macro_rules! accumulate_bytes {
    ($(#[$doc:meta])* $name:ident, $op:literal, $features:literal, $a:ty) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        fn $name(acc: int32x4_t, a: $a, b: int8x16_t) -> int32x4_t {
            let mut acc = acc;
            // SAFETY: one register-only instruction of the extension this function requires.
            unsafe {
                std::arch::asm!(
                    concat!($op, " {0:v}.4s, {1:v}.16b, {2:v}.16b"),
                    inout(vreg) acc,
                    in(vreg) a,
                    in(vreg) b,
                    options(pure, nomem, nostack)
                )
            };
            acc
        }
    };
}

mod detect;
pub(super) mod i8mm;
pub(super) mod neon;
pub(super) mod neondot;

pub(crate) use detect::{I8mm, Neon, NeonDot};
