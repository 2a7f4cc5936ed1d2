//! How sizes and spreads are printed, the same in every report, table and progress line.

/// Bytes per MiB.
pub const MIB: f64 = (1u64 << 20) as f64;

/// Bytes as whole mebibytes: `92 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / MIB)
}

/// `mean ± std`, or the mean alone when there is no spread.
pub fn mean_plus_minus(mean: f64, std: Option<f64>, decimals: usize) -> String {
    match std {
        Some(std) => format!("{mean:.decimals$} ± {std:.decimals$}"),
        None => format!("{mean:.decimals$}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_spreads_print_as_the_reports_show_them() {
        assert_eq!(super::mib(92 << 20), "92 MiB");
        assert_eq!(super::mean_plus_minus(1.234, Some(0.5), 1), "1.2 ± 0.5");
        assert_eq!(super::mean_plus_minus(1.0, None, 2), "1.00");
    }
}
