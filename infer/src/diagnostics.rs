//! MCMC diagnostics on draws given per chain (`[chain][draw]`): split R-hat, effective
//! sample size (NumPyro's Geyer initial-monotone estimator), rank-normalized bulk and
//! tail ESS (Vehtari et al. 2021's rank normalization, with NumPyro's estimator inside),
//! autocorrelation, Monte Carlo standard errors, quantiles, HPDI and the summary table.
//!
//! ```
//! use ferrax_infer::diagnostics::{effective_sample_size, split_gelman_rubin};
//! let a: Vec<f64> = (0..100).map(|i| ((i * 37 % 101) as f64).sin()).collect();
//! let b: Vec<f64> = (0..100).map(|i| ((i * 53 % 103) as f64).cos()).collect();
//! let chains = vec![a, b];
//! assert!(split_gelman_rubin(&chains) < 1.1);
//! assert!(effective_sample_size(&chains) > 50.0);
//! ```

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn var(x: &[f64], ddof: f64) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - ddof)
}

/// (within-chain variance, pooled variance estimate), as NumPyro computes them.
fn chain_variance_stats(x: &[Vec<f64>]) -> (f64, f64) {
    let n = x[0].len() as f64;
    let var_within = mean(&x.iter().map(|c| var(c, 1.0)).collect::<Vec<_>>());
    let mut var_est = var_within * (n - 1.0) / n;
    if x.len() > 1 {
        let means: Vec<f64> = x.iter().map(|c| mean(c)).collect();
        var_est += var(&means, 1.0);
        (var_within, var_est)
    } else {
        (var_est, var_est)
    }
}

/// Gelman-Rubin R-hat (chains of equal length).
pub fn gelman_rubin(x: &[Vec<f64>]) -> f64 {
    let (w, v) = chain_variance_stats(x);
    (v / w).sqrt()
}

/// Split each chain in halves, as NumPyro's `split_gelman_rubin` does (the middle draw of
/// an odd-length chain is dropped).
pub fn split_chains(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * x.len());
    for c in x {
        let h = c.len() / 2;
        out.push(c[..h].to_vec());
        out.push(c[c.len() - h..].to_vec());
    }
    out
}

/// Split R-hat.
pub fn split_gelman_rubin(x: &[Vec<f64>]) -> f64 {
    gelman_rubin(&split_chains(x))
}

/// Biased autocovariance of one chain up to `max_lag` (exclusive).
fn autocov(c: &[f64], max_lag: usize) -> Vec<f64> {
    let n = c.len();
    let m = mean(c);
    let d: Vec<f64> = c.iter().map(|v| v - m).collect();
    (0..max_lag.min(n))
        .map(|k| {
            d[..n - k]
                .iter()
                .zip(&d[k..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / n as f64
        })
        .collect()
}

/// Biased autocovariance of one chain at lags `0..n` (NumPyro's `autocovariance` with
/// `bias=True`: lag-k sums of centered products divided by n).
pub fn autocovariance(chain: &[f64]) -> Vec<f64> {
    autocov(chain, chain.len())
}

/// Autocorrelation of one chain at lags `0..n`: the autocovariance over its lag-0 value
/// (NumPyro's `autocorrelation`; NaN for a constant chain, as NumPyro's 0/0).
pub fn autocorrelation(chain: &[f64]) -> Vec<f64> {
    let g = autocovariance(chain);
    match g.first() {
        Some(&g0) => g.iter().map(|v| v / g0).collect(),
        None => g,
    }
}

/// Effective sample size (NumPyro's `effective_sample_size`: Geyer's initial monotone
/// sequence on the mean autocorrelation over chains, no splitting).
pub fn effective_sample_size(x: &[Vec<f64>]) -> f64 {
    let n = x[0].len();
    let total = (x.len() * n) as f64;
    let (var_within, var_est) = chain_variance_stats(x);
    if var_est.is_nan() || var_est <= 0.0 {
        return f64::NAN;
    }
    // Lags are added in pairs until a pair sum is no longer positive, so autocovariances
    // are computed in growing blocks instead of all N lags at once.
    let mut max_lag = 64.min(n);
    loop {
        let acs: Vec<Vec<f64>> = x.iter().map(|c| autocov(c, max_lag)).collect();
        let rho = |k: usize| -> f64 {
            if k == 0 {
                return 1.0;
            }
            let g = acs.iter().map(|a| a[k]).sum::<f64>() / x.len() as f64;
            1.0 - (var_within - g) / var_est
        };
        let mut sum = 0.0;
        let mut prev = f64::INFINITY;
        let mut k = 0;
        let mut done = false;
        while k + 1 < max_lag {
            let mut p = rho(k) + rho(k + 1);
            if k > 0 {
                p = p.max(0.0).min(prev);
            }
            if k > 0 && p <= 0.0 {
                done = true;
                break;
            }
            sum += p;
            prev = p;
            k += 2;
        }
        if done || max_lag >= n {
            let tau = -1.0 + 2.0 * sum;
            return total / tau;
        }
        max_lag = (max_lag * 4).min(n);
    }
}

/// `Phi^-1(p)`.
fn norm_ppf(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * ferrax_core::prim::unary::erf_inv_f64(2.0 * p - 1.0)
}

/// Rank-normalizes pooled draws (average ranks for ties, Blom's offset).
pub fn rank_normalize(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n: usize = x.iter().map(|c| c.len()).sum();
    let mut idx: Vec<(f64, usize, usize)> = Vec::with_capacity(n);
    for (ci, c) in x.iter().enumerate() {
        for (di, &v) in c.iter().enumerate() {
            idx.push((v, ci, di));
        }
    }
    idx.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Vec<f64>> = x.iter().map(|c| vec![0.0; c.len()]).collect();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && idx[j + 1].0 == idx[i].0 {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        let z = norm_ppf((r - 0.375) / (n as f64 + 0.25));
        for t in &idx[i..=j] {
            out[t.1][t.2] = z;
        }
        i = j + 1;
    }
    out
}

/// Bulk ESS: ESS of the rank-normalized split chains.
pub fn ess_bulk(x: &[Vec<f64>]) -> f64 {
    effective_sample_size(&rank_normalize(&split_chains(x)))
}

/// Tail ESS: the smaller ESS of the indicators of the 5% and 95% quantiles (split chains).
pub fn ess_tail(x: &[Vec<f64>]) -> f64 {
    let pooled: Vec<f64> = x.iter().flatten().copied().collect();
    let q05 = quantile(&pooled, 0.05);
    let q95 = quantile(&pooled, 0.95);
    let s = split_chains(x);
    let ind = |q: f64| -> Vec<Vec<f64>> {
        s.iter()
            .map(|c| c.iter().map(|&v| if v <= q { 1.0 } else { 0.0 }).collect())
            .collect()
    };
    effective_sample_size(&ind(q05)).min(effective_sample_size(&ind(q95)))
}

/// Linear-interpolation quantile (numpy's default) of unsorted values.
pub fn quantile(x: &[f64], q: f64) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Highest posterior density interval holding `prob` of the draws (NumPyro's `hpdi`):
/// with `L = floor(prob * n)` it is the narrowest `[sorted[i], sorted[i + L]]` (so it
/// spans `L + 1` draws, as NumPyro's), the first one on ties.
pub fn hpdi(x: &[f64], prob: f64) -> (f64, f64) {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    // NumPyro has no window at all for prob = 1 (an empty argmin); the full range is the
    // only interval holding every draw.
    let l = ((prob.max(0.0) * n as f64).floor() as usize).min(n - 1);
    let mut best = (v[0], v[n - 1]);
    let mut width = f64::INFINITY;
    for i in 0..n - l {
        let w = v[i + l] - v[i];
        if w < width {
            width = w;
            best = (v[i], v[i + l]);
        }
    }
    best
}

/// Summary statistics of one scalar.
#[derive(Clone, Copy, Debug)]
pub struct SummaryRow {
    /// Mean over all draws.
    pub mean: f64,
    /// Standard deviation (ddof 1).
    pub sd: f64,
    /// Median.
    pub median: f64,
    /// 5% quantile.
    pub q05: f64,
    /// 95% quantile.
    pub q95: f64,
    /// ESS of the mean (NumPyro's estimator).
    pub ess_mean: f64,
    /// Bulk ESS.
    pub ess_bulk: f64,
    /// Tail ESS.
    pub ess_tail: f64,
    /// Split R-hat.
    pub r_hat: f64,
    /// Monte Carlo standard error of the mean: `sd / sqrt(ess_mean)`.
    pub mcse_mean: f64,
    /// Monte Carlo standard error of the sd (delta method, as posteriors.json defines it).
    pub mcse_sd: f64,
}

impl SummaryRow {
    /// Statistics of draws `[chain][draw]`.
    pub fn of(x: &[Vec<f64>]) -> SummaryRow {
        let pooled: Vec<f64> = x.iter().flatten().copied().collect();
        let m = mean(&pooled);
        let sd = var(&pooled, 1.0).sqrt();
        let ess_mean = effective_sample_size(x);
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|c| c.iter().map(|v| (v - m) * (v - m)).collect())
            .collect();
        let zp: Vec<f64> = z.iter().flatten().copied().collect();
        let mcse_sd = var(&zp, 1.0).sqrt() / effective_sample_size(&z).sqrt() / (2.0 * sd);
        SummaryRow {
            mean: m,
            sd,
            median: quantile(&pooled, 0.5),
            q05: quantile(&pooled, 0.05),
            q95: quantile(&pooled, 0.95),
            ess_mean,
            ess_bulk: ess_bulk(x),
            ess_tail: ess_tail(x),
            r_hat: split_gelman_rubin(x),
            mcse_mean: sd / ess_mean.sqrt(),
            mcse_sd,
        }
    }
}

/// Formats rows as NumPyro's `print_summary` table.
pub fn format_summary(rows: &[(String, SummaryRow)]) -> String {
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "{:>w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "", "mean", "std", "median", "5.0%", "95.0%", "n_eff", "r_hat"
    );
    for (n, r) in rows {
        s.push_str(&format!(
            "{:>w$} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            n, r.mean, r.sd, r.median, r.q05, r.q95, r.ess_bulk, r.r_hat
        ));
    }
    s
}
