//! Proof that this CPU has a level's features: a token made only here, only when
//! `is_aarch64_feature_detected!` finds every feature the level's kernels are compiled for.
//! Each level's table (`kernels(token)`) takes one; the safe entry points around the
//! `#[target_feature]` functions are private to their level's files.

/// NEON (Advanced SIMD).
#[derive(Clone, Copy)]
pub(crate) struct Neon(());

/// NEON and the dot-product extension (Armv8.2 `dotprod`).
#[derive(Clone, Copy)]
pub(crate) struct NeonDot(());

impl Neon {
    pub(crate) fn detect() -> Option<Neon> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(()))
    }
}

impl NeonDot {
    pub(crate) fn detect() -> Option<NeonDot> {
        Neon::detect()?;
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(NeonDot(()))
    }

    /// Every feature NEON's kernels need is one of this level's.
    pub(crate) fn neon(self) -> Neon {
        Neon(())
    }
}

/// NEON with the dot-product and 8-bit matrix-multiply extensions (Armv8.6 `i8mm`).
#[derive(Clone, Copy)]
pub(crate) struct I8mm(());

impl I8mm {
    pub(crate) fn detect() -> Option<I8mm> {
        NeonDot::detect()?;
        std::arch::is_aarch64_feature_detected!("i8mm").then_some(I8mm(()))
    }

    /// Every feature `neondot`'s kernels need is one of this level's.
    pub(crate) fn neondot(self) -> NeonDot {
        NeonDot(())
    }
}
