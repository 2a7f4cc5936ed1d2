//! aarch64's levels: `neon` (every aarch64 CPU) and `neondot` (the dot-product extension's
//! `sdot` for interleaved rows). Each level's file builds its table from a token of
//! [`detect`]: no other code can make one.

mod detect;
pub(super) mod neon;
pub(super) mod neondot;

pub(crate) use detect::{Neon, NeonDot};
