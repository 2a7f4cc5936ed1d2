//! Proof that this CPU has a level's features: a token made only here, only when
//! `is_x86_feature_detected!` finds every feature the level's kernels are compiled for.
//! Each level's table (`kernels(token)`) takes one, so code that reaches an AVX-512 kernel
//! without the check does not compile; the safe entry points around the `#[target_feature]`
//! functions are private to their level's file.

/// AVX2, FMA and F16C.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

/// AVX2's features and AVX-VNNI.
#[derive(Clone, Copy)]
pub(crate) struct AvxVnni(());

/// AVX2's features and AVX-512 F and BW.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

/// `avx512`'s features and AVX-512 VL and VNNI.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Vnni(());

impl Avx2 {
    pub(crate) fn detect() -> Option<Avx2> {
        (is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Avx2(()))
    }
}

impl AvxVnni {
    pub(crate) fn detect() -> Option<AvxVnni> {
        Avx2::detect()?;
        is_x86_feature_detected!("avxvnni").then_some(AvxVnni(()))
    }

    /// Every feature AVX2's kernels need is one of this level's.
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2(())
    }
}

impl Avx512 {
    pub(crate) fn detect() -> Option<Avx512> {
        Avx2::detect()?;
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw"))
            .then_some(Avx512(()))
    }

    /// Every feature AVX2's kernels need is one of this level's.
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2(())
    }
}

impl Avx512Vnni {
    pub(crate) fn detect() -> Option<Avx512Vnni> {
        Avx512::detect()?;
        (is_x86_feature_detected!("avx512vl") && is_x86_feature_detected!("avx512vnni"))
            .then_some(Avx512Vnni(()))
    }

    /// Every feature AVX2's kernels need is one of this level's.
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2(())
    }
}
