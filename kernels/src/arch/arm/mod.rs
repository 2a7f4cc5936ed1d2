//! aarch64's levels: `neon` (every aarch64 CPU), `neondot` (the dot-product extension's
//! `sdot` for interleaved rows) and `i8mm` (the matrix-multiply extension's `usmmla` for
//! prompts' tiles). Each level's file builds its table from a token of
//! [`detect`]: no other code can make one.

mod detect;
pub(super) mod i8mm;
pub(super) mod neon;
pub(super) mod neondot;

pub(crate) use detect::{I8mm, Neon, NeonDot};
