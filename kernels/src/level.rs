//! Kernel levels: which instruction-set extensions a set of kernels needs, the levels this CPU
//! runs, and the one `LLM_BENCH_KERNELS` chooses.
//!
//! A level is only a name here. Its kernels are handed out by `arch` (private), and only with
//! the token its detection returns (`arch::x86::Avx512::detect`, ...): code that reaches an
//! AVX-512 kernel without the check does not compile.

use crate::{Error, Result};

/// Lowers the kernel level: `scalar`, `avx2`, `avxvnni`, `avx512`, `avx512vnni`, `neon`,
/// `neondot` or `i8mm`.
pub const LEVEL_ENV: &str = "LLM_BENCH_KERNELS";

/// A set of kernels and the CPU features they need, lowest first within each architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable loops (`arch::generic`): every CPU.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C (Haswell, Zen 1 and later).
    Avx2,
    /// AVX2's kernels, with AVX-VNNI's `vpdpbusd` for interleaved and q4k rows.
    AvxVnni,
    /// AVX2's kernels, with interleaved rows sixteen at a time in 512-bit vectors (AVX-512 F
    /// and BW).
    Avx512,
    /// `avx512`'s, with `vpdpbusd` on 256- and 512-bit vectors (AVX-512 VNNI and VL).
    Avx512Vnni,
    /// aarch64's NEON (every aarch64 CPU): row-major quantized dots, dense dots, attention.
    Neon,
    /// `neon`'s kernels, with the dot-product extension's `sdot` for interleaved rows.
    NeonDot,
    /// `neondot`'s kernels, with the matrix-multiply extension's `usmmla` for prompts' tiles.
    I8mm,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 8] = [
        Level::Scalar,
        Level::Avx2,
        Level::AvxVnni,
        Level::Avx512,
        Level::Avx512Vnni,
        Level::Neon,
        Level::NeonDot,
        Level::I8mm,
    ];

    /// The level's name, as `LLM_BENCH_KERNELS` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::AvxVnni => "avxvnni",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
            Level::Neon => "neon",
            Level::NeonDot => "neondot",
            Level::I8mm => "i8mm",
        }
    }

    /// Whether this CPU runs the level (its detection returns a token).
    fn supported(self) -> bool {
        crate::arch::kernels(self).is_some()
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        Level::ALL.into_iter().filter(|l| l.supported()).collect()
    }

    /// The best level this CPU runs, or the one `LLM_BENCH_KERNELS` names (which must be one
    /// the CPU runs).
    pub fn chosen() -> Result<Level> {
        match std::env::var(LEVEL_ENV) {
            Ok(name) if !name.trim().is_empty() => Level::named(name.trim()),
            _ => Ok(*Level::available()
                .last()
                .expect("scalar is always available")),
        }
    }

    /// The level called `name`, if this CPU runs it.
    pub fn named(name: &str) -> Result<Level> {
        let level = Level::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| refusal(name, "not a kernel level"))?;
        if !level.supported() {
            return Err(refusal(name, LACKING));
        }
        Ok(level)
    }
}

/// Why a level the CPU cannot run is refused.
pub(crate) const LACKING: &str = "this CPU lacks the features that level needs";

/// The error refusing the level called `name`, listing the ones this CPU runs.
pub(crate) fn refusal(name: &str, problem: &str) -> Error {
    Error::KernelLevel {
        value: name.into(),
        problem: problem.into(),
        available: Level::available()
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", "),
    }
}
