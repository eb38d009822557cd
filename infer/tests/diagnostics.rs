//! Diagnostics on fixed draws (AR(1) chains from a test-local splitmix64 generator):
//! split R-hat, ESS, bulk and tail ESS against a naive transcription of NumPyro's
//! formulas (all lags computed directly; no reference values on fixed draws exist in
//! tests/reference), ESS against the AR(1) closed form, quantiles and HPDI against hand
//! values, and the summary table.
//!
//! NumPyro (numpyro.diagnostics): autocovariance is biased (divided by n);
//! rho_k = 1 - (W - mean_c gamma_k) / var_est with W the mean within-chain variance
//! (ddof 1) and var_est = W (n-1)/n + var(chain means, ddof 1); Geyer's initial positive
//! sequence of pair sums, made monotone; tau = -1 + 2 sum; ESS = chains * n / tau.

use ferrax_infer::diagnostics::*;

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next();
        let u2 = self.next();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn ar1(seed: u64, chains: usize, n: usize, phi: f64, shift: f64) -> Vec<Vec<f64>> {
    let mut g = SplitMix(seed);
    (0..chains)
        .map(|c| {
            let mut x = g.normal() / (1.0 - phi * phi).sqrt();
            (0..n)
                .map(|_| {
                    x = phi * x + g.normal();
                    x + shift * c as f64
                })
                .collect()
        })
        .collect()
}

fn naive_ess(x: &[Vec<f64>]) -> f64 {
    let m = x.len() as f64;
    let n = x[0].len();
    let nf = n as f64;
    let means: Vec<f64> = x.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
    let w = x
        .iter()
        .zip(&means)
        .map(|(c, mu)| c.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (nf - 1.0))
        .sum::<f64>()
        / m;
    let gm = means.iter().sum::<f64>() / m;
    let b = if x.len() > 1 {
        means.iter().map(|v| (v - gm).powi(2)).sum::<f64>() / (m - 1.0)
    } else {
        0.0
    };
    let var_est = w * (nf - 1.0) / nf + b;
    let w_used = if x.len() > 1 { w } else { var_est };
    let rho: Vec<f64> = (0..n)
        .map(|k| {
            if k == 0 {
                return 1.0;
            }
            let g = x
                .iter()
                .zip(&means)
                .map(|(c, mu)| {
                    (0..n - k)
                        .map(|t| (c[t] - mu) * (c[t + k] - mu))
                        .sum::<f64>()
                        / nf
                })
                .sum::<f64>()
                / m;
            1.0 - (w_used - g) / var_est
        })
        .collect();
    // Pair sums, zeroed after the first non-positive one, then a running minimum.
    let mut pairs: Vec<f64> = rho
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| p[0] + p[1])
        .collect();
    let mut neg = false;
    for p in pairs.iter_mut().skip(1) {
        if neg || *p <= 0.0 {
            neg = true;
            *p = 0.0;
        }
    }
    for i in 1..pairs.len() {
        pairs[i] = pairs[i].min(pairs[i - 1]);
    }
    let tau = -1.0 + 2.0 * pairs.iter().sum::<f64>();
    m * nf / tau
}

fn naive_split_rhat(x: &[Vec<f64>]) -> f64 {
    let mut s = Vec::new();
    for c in x {
        let h = c.len() / 2;
        s.push(c[..h].to_vec());
        s.push(c[c.len() - h..].to_vec());
    }
    let m = s.len() as f64;
    let n = s[0].len() as f64;
    let means: Vec<f64> = s.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let w = s
        .iter()
        .zip(&means)
        .map(|(c, mu)| c.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (n - 1.0))
        .sum::<f64>()
        / m;
    let gm = means.iter().sum::<f64>() / m;
    let b_over_n = means.iter().map(|v| (v - gm).powi(2)).sum::<f64>() / (m - 1.0);
    ((w * (n - 1.0) / n + b_over_n) / w).sqrt()
}

#[test]
fn ess_and_rhat_match_naive_formulas_on_fixed_draws() {
    for (seed, chains, n, phi, shift) in [
        (1u64, 4usize, 500usize, 0.5, 0.0),
        (2, 2, 301, 0.9, 0.0),
        (3, 3, 200, -0.3, 0.0),
        (4, 4, 400, 0.2, 0.8),
        (5, 1, 1000, 0.7, 0.0),
    ] {
        let x = ar1(seed, chains, n, phi, shift);
        let (got, want) = (effective_sample_size(&x), naive_ess(&x));
        assert!(
            (got - want).abs() < 1e-9 * want,
            "ESS {got} vs {want} (seed {seed})"
        );
        if chains > 0 {
            let (got, want) = (split_gelman_rubin(&x), naive_split_rhat(&x));
            assert!(
                (got - want).abs() < 1e-12,
                "R-hat {got} vs {want} (seed {seed})"
            );
        }
        // Bulk ESS is the naive ESS of the rank-normalized split chains.
        let mut split = Vec::new();
        for c in &x {
            let h = c.len() / 2;
            split.push(c[..h].to_vec());
            split.push(c[c.len() - h..].to_vec());
        }
        let want = naive_ess(&rank_normalize(&split));
        assert!(
            (ess_bulk(&x) - want).abs() < 1e-9 * want,
            "bulk ESS (seed {seed})"
        );
    }
    // Chains with different means: R-hat well above 1; identical-law chains: near 1.
    assert!(split_gelman_rubin(&ar1(4, 4, 400, 0.2, 0.8)) > 1.05);
    assert!(split_gelman_rubin(&ar1(6, 4, 2000, 0.2, 0.0)) < 1.01);
}

#[test]
fn ess_matches_ar1_theory_and_is_rank_invariant() {
    // AR(1): integrated autocorrelation time (1 + phi) / (1 - phi).
    for &phi in &[0.0, 0.5, 0.8] {
        let x = ar1(10, 4, 5000, phi, 0.0);
        let want = 20000.0 * (1.0 - phi) / (1.0 + phi);
        let got = effective_sample_size(&x);
        assert!(
            (got - want).abs() < 0.15 * want,
            "phi {phi}: ESS {got} vs {want}"
        );
    }
    // Bulk ESS depends on ranks only: unchanged by a monotone map.
    let x = ar1(11, 2, 500, 0.6, 0.0);
    let ex: Vec<Vec<f64>> = x
        .iter()
        .map(|c| c.iter().map(|v| v.exp()).collect())
        .collect();
    assert!((ess_bulk(&x) - ess_bulk(&ex)).abs() < 1e-9 * ess_bulk(&x));
    assert!(ess_tail(&x) > 0.0 && ess_tail(&x).is_finite());
}

#[test]
fn quantiles_hpdi_and_summary() {
    // numpy.quantile (linear) of 1..=10: q=0.05 -> 1.45, 0.5 -> 5.5, 0.95 -> 9.55.
    let v: Vec<f64> = (1..=10).rev().map(|i| i as f64).collect();
    assert!((quantile(&v, 0.05) - 1.45).abs() < 1e-12);
    assert!((quantile(&v, 0.5) - 5.5).abs() < 1e-12);
    assert!((quantile(&v, 0.95) - 9.55).abs() < 1e-12);
    // HPDI of a right-skewed sample: the densest window of floor(prob n) + 1 draws
    // (numpyro.diagnostics.hpdi gives [0, 0.5] and [0, 8] here).
    let s = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 2.0, 4.0, 8.0];
    assert_eq!(hpdi(&s, 0.5), (0.0, 0.5));
    assert_eq!(hpdi(&s, 0.9), (0.0, 8.0));
    // Summary row: mean/sd of pooled draws, mcse = sd / sqrt(ESS).
    let x = ar1(12, 2, 400, 0.4, 0.0);
    let r = SummaryRow::of(&x);
    let pooled: Vec<f64> = x.iter().flatten().copied().collect();
    let m = pooled.iter().sum::<f64>() / 800.0;
    let sd = (pooled.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 799.0).sqrt();
    assert!((r.mean - m).abs() < 1e-12 && (r.sd - sd).abs() < 1e-12);
    assert!((r.mcse_mean - sd / naive_ess(&x).sqrt()).abs() < 1e-9);
    assert!((r.r_hat - naive_split_rhat(&x)).abs() < 1e-12);
    let table = format_summary(&[("x".to_string(), r)]);
    for col in ["mean", "std", "median", "5.0%", "95.0%", "n_eff", "r_hat"] {
        assert!(table.contains(col), "summary header lacks {col}: {table}");
    }
}
