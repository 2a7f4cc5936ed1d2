//! Summary statistics: the few the reports and the regression gate need, written out so a
//! reader can check them against a textbook (each is tested against hand-computed values).

use rand::{Rng, SeedableRng};

/// The mean, `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (n - 1 in the denominator).
pub fn std_dev(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
}

/// The `p`-th percentile (0..=100) with linear interpolation between closest ranks
/// (numpy's default, "linear").
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// The median, `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    percentile(xs, 50.0)
}

fn resampled_median(xs: &[f64], rng: &mut rand::rngs::StdRng) -> f64 {
    let drawn: Vec<f64> = (0..xs.len())
        .map(|_| xs[rng.random_range(0..xs.len())])
        .collect();
    median(&drawn).expect("non-empty")
}

/// A 95% percentile-bootstrap confidence interval of the median, from `resamples` resamples
/// with replacement. Seeded: the same input always gives the same interval.
pub fn bootstrap_median(xs: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    if xs.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let medians: Vec<f64> = (0..resamples)
        .map(|_| resampled_median(xs, &mut rng))
        .collect();
    Some((percentile(&medians, 2.5)?, percentile(&medians, 97.5)?))
}

/// A 95% percentile-bootstrap confidence interval of `median(b) / median(a) - 1`, both sides
/// resampled with replacement. Seeded: the same input always gives the same interval.
pub fn bootstrap_median_change(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let changes: Vec<f64> = (0..resamples)
        .map(|_| {
            let ma = resampled_median(a, &mut rng);
            resampled_median(b, &mut rng) / ma - 1.0
        })
        .collect();
    Some((percentile(&changes, 2.5)?, percentile(&changes, 97.5)?))
}

/// The change between two sides measured in interleaved rounds: each round gives one ratio
/// `b / a - 1` of that round's two figures, so drift that slows both sides of a round cancels.
/// Returns the median of the per-round changes and its 95% percentile-bootstrap interval,
/// resampling rounds. `None` for no rounds or a figure that is not positive.
pub fn paired_median_change(
    rounds: &[(f64, f64)],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64, f64)> {
    if rounds.iter().any(|&(a, b)| !(a > 0.0 && b > 0.0)) {
        return None;
    }
    let changes: Vec<f64> = rounds.iter().map(|(a, b)| b / a - 1.0).collect();
    let (lo, hi) = bootstrap_median(&changes, resamples, seed)?;
    Some((median(&changes)?, lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_hand_computed_values() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), Some(5.0));
        // Sum of squared deviations 32, / 7.
        assert!((std_dev(&xs).unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(median(&xs), Some(4.5));
        // rank 0.9 * 7 = 6.3: 7 + 0.3 * (9 - 7).
        assert!((percentile(&xs, 90.0).unwrap() - 7.6).abs() < 1e-12);
        assert_eq!(percentile(&xs, 0.0), Some(2.0));
        assert_eq!(percentile(&xs, 100.0), Some(9.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(std_dev(&[1.0]), None);
    }

    #[test]
    fn bootstrap_brackets_a_clear_shift_and_straddles_none() {
        let a: Vec<f64> = (0..30).map(|i| 100.0 + (i % 5) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x * 1.25).collect();
        let (lo, hi) = bootstrap_median_change(&a, &b, 2000, 1).unwrap();
        assert!(lo > 0.2 && hi < 0.3, "{lo} {hi}");
        let (lo, hi) = bootstrap_median_change(&a, &a, 2000, 1).unwrap();
        assert!(lo <= 0.0 && hi >= 0.0, "{lo} {hi}");
        assert_eq!(
            bootstrap_median_change(&a, &b, 500, 7),
            bootstrap_median_change(&a, &b, 500, 7)
        );
    }

    #[test]
    fn paired_rounds_cancel_drift_that_unpaired_samples_cannot() {
        // Six rounds on a machine that slows down 8% per round; B does 5% more work than A in
        // every round, and a little noise.
        let jitter = [1.0, 1.004, 0.997, 1.002, 0.999, 1.003];
        let rounds: Vec<(f64, f64)> = (0..6)
            .map(|k| {
                let drift = 1.0 + 0.08 * k as f64;
                (100.0 * drift, 105.0 * drift * jitter[k])
            })
            .collect();
        let (change, lo, hi) = paired_median_change(&rounds, 2000, 3).unwrap();
        // Per-round changes: 1.05 * jitter - 1; their median is between the 3rd and 4th.
        let mut expected: Vec<f64> = jitter.iter().map(|j| 1.05 * j - 1.0).collect();
        expected.sort_by(f64::total_cmp);
        assert!(
            (change - (expected[2] + expected[3]) / 2.0).abs() < 1e-12,
            "{change}"
        );
        assert!(lo > 0.04 && hi < 0.06, "[{lo}, {hi}]");
        // The same figures pooled as two unpaired samples: the drift swamps the 5%.
        let (a, b): (Vec<f64>, Vec<f64>) = rounds.iter().copied().unzip();
        let (lo, hi) = bootstrap_median_change(&a, &b, 2000, 3).unwrap();
        assert!(lo < 0.0 && hi > 0.1, "[{lo}, {hi}]");
        // A/A: the interval straddles 0.
        let same: Vec<(f64, f64)> = (0..6).map(|k| (100.0, 100.0 * jitter[k])).collect();
        let (_, lo, hi) = paired_median_change(&same, 2000, 3).unwrap();
        assert!(lo <= 0.0 && hi >= 0.0, "[{lo}, {hi}]");
        assert_eq!(paired_median_change(&[], 100, 1), None);
        assert_eq!(paired_median_change(&[(0.0, 1.0)], 100, 1), None);
    }
}
