//! VonMises, Truncated, MixtureSameFamily and LKJCholesky against closed forms, naive
//! loops and numerical integration (they are not in distributions.json), and sampling
//! checked against log_prob by a Kolmogorov-Smirnov test on the CDF obtained by
//! integrating exp(log_prob) numerically.

mod common;
use common::*;
use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::*;
use ferrax_infer::math::ArrayMath;
use std::f64::consts::PI;

fn grid(a: f64, b: f64, n: usize) -> Vec<f64> {
    // The last point is `b` exactly: a rounded-up endpoint would fall outside a support.
    (0..=n)
        .map(|i| {
            if i == n {
                b
            } else {
                a + (b - a) * i as f64 / n as f64
            }
        })
        .collect()
}

/// Densities on a grid of `[a, b]` (n even) and the Simpson integral.
fn density(d: &dyn Distribution, a: f64, b: f64, n: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let xs = grid(a, b, n);
    let lp = vals(
        &d.log_prob(&Array::from_vec(vec![n + 1], xs.clone()).unwrap())
            .unwrap(),
    );
    let p: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
    let h = (b - a) / n as f64;
    let mut s = p[0] + p[n];
    for (i, v) in p.iter().enumerate().take(n).skip(1) {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * v;
    }
    (xs, p, s * h / 3.0)
}

/// Kolmogorov-Smirnov distance between draws and the CDF of exp(log_prob) integrated by
/// the trapezoid rule on `[a, b]`.
fn ks(d: &dyn Distribution, draws: &[f64], a: f64, b: f64) -> f64 {
    let n = 20000;
    let (xs, p, _) = density(d, a, b, n);
    let mut cdf = vec![0.0; n + 1];
    for i in 1..=n {
        cdf[i] = cdf[i - 1] + 0.5 * (p[i] + p[i - 1]) * (xs[i] - xs[i - 1]);
    }
    let total = cdf[n];
    let mut x = draws.to_vec();
    x.sort_by(f64::total_cmp);
    let m = x.len() as f64;
    let mut dmax: f64 = 0.0;
    for (i, v) in x.iter().enumerate() {
        let pos = ((v - a) / (b - a) * n as f64).clamp(0.0, n as f64);
        let j = (pos.floor() as usize).min(n - 1);
        let f = cdf[j] + (cdf[j + 1] - cdf[j]) * (pos - j as f64);
        let f = f / total;
        dmax = dmax
            .max((f - i as f64 / m).abs())
            .max((f - (i + 1) as f64 / m).abs());
    }
    dmax
}

/// KS critical value at alpha = 0.001.
fn ks_crit(m: usize) -> f64 {
    1.95 / (m as f64).sqrt()
}

#[test]
fn von_mises_density_log_i0_and_sampling() {
    // ln I0 against its power series sum (k/2)^(2m) / (m!)^2.
    for &k in &[0.0, 0.3, 1.0, 4.0, 7.9, 8.1, 15.0, 30.0] {
        let mut term = 1.0f64;
        let mut s = 1.0f64;
        for m in 1..200 {
            term *= (k / 2.0) * (k / 2.0) / (m as f64 * m as f64);
            s += term;
        }
        let got = log_i0_f64(k);
        assert!(
            (got - s.ln()).abs() < 1e-13 * s.ln().abs().max(1.0),
            "ln I0({k}): {got} vs {}",
            s.ln()
        );
        let arr = vals(&log_i0(&Array::scalar(k)).unwrap())[0];
        assert!(
            (arr - got).abs() < 1e-13 * got.abs().max(1.0),
            "array ln I0({k})"
        );
    }
    for (i, &kappa) in [0.5, 2.0, 12.0].iter().enumerate() {
        let d = VonMises::new(0.7, kappa).unwrap();
        let (_, _, z) = density(&d, -PI, PI, 4000);
        assert!(
            (z - 1.0).abs() < 1e-9,
            "VonMises({kappa}) integrates to {z}"
        );
        let m = 4000;
        let x = vals(&d.sample(&Key::new(30 + i as u64), &[m]).unwrap());
        assert!(x.iter().all(|v| (-PI..PI).contains(v)));
        let dist = ks(&d, &x, -PI, PI);
        assert!(dist < ks_crit(m), "VonMises({kappa}) KS {dist}");
    }
    // Gradient of log_prob in kappa: cos(x - loc) - I1(k)/I0(k), with I1/I0 from the
    // series of I1 as the oracle.
    let (x, loc, k) = (0.4f64, -0.3f64, 3.0f64);
    let g = ferrax_core::ad::grad(&vec![Array::scalar(k)], |p: &Vec<Array>| {
        VonMises::new(loc, &p[0])
            .unwrap()
            .log_prob(&Array::scalar(x))
            .unwrap()
    })
    .unwrap();
    let (mut i0, mut i1, mut t0, mut t1) = (1.0f64, k / 2.0, 1.0f64, k / 2.0);
    for m in 1..100 {
        let mf = m as f64;
        t0 *= (k / 2.0).powi(2) / (mf * mf);
        t1 *= (k / 2.0).powi(2) / (mf * (mf + 1.0));
        i0 += t0;
        i1 += t1;
    }
    let want = (x - loc).cos() - i1 / i0;
    let got = vals(&g[0])[0];
    assert!((got - want).abs() < 1e-10, "d/dk {got} vs {want}");
    // Circular variance 1 - I1/I0.
    let v = vals(&VonMises::new(0.0, k).unwrap().variance().unwrap())[0];
    assert!((v - (1.0 - i1 / i0)).abs() < 1e-10, "variance {v}");
}

#[test]
fn truncated_matches_closed_forms_and_samples() {
    // Normal(0, s) truncated below at 0 is HalfNormal(s); above at 0, its mirror.
    let s = 1.7;
    let xs = Array::from_vec(vec![4], vec![0.1f64, 0.5, 1.3, 4.0]).unwrap();
    let lo = Truncated::lower(Normal::new(0.0, s).unwrap(), 0.0).unwrap();
    close(
        &vals(&lo.log_prob(&xs).unwrap()),
        &vals(&HalfNormal::new(s).unwrap().log_prob(&xs).unwrap()),
        1e-12,
        1e-12,
        "lower-truncated normal",
    );
    let up = Truncated::upper(Normal::new(0.0, s).unwrap(), 0.0).unwrap();
    close(
        &vals(&up.log_prob(&xs.neg().unwrap()).unwrap()),
        &vals(&HalfNormal::new(s).unwrap().log_prob(&xs).unwrap()),
        1e-12,
        1e-12,
        "upper-truncated normal",
    );
    // Outside the support: -inf.
    let out = vals(&lo.log_prob(&Array::scalar(-0.5f64)).unwrap())[0];
    assert_eq!(out, f64::NEG_INFINITY);
    // Two-sided truncations of several bases integrate to 1, differ from the base by the
    // log of the base's mass on [a, b] (integrated numerically), and sample by KS.
    let cases: Vec<(DynDist, f64, f64)> = vec![
        (Normal::new(0.5, 2.0).unwrap().boxed(), -1.0, 3.0),
        (Normal::new(0.0, 1.0).unwrap().boxed(), 1.5, 4.0),
        (Cauchy::new(0.0, 1.0).unwrap().boxed(), -2.0, 5.0),
        (Laplace::new(0.3, 0.7).unwrap().boxed(), -1.0, 0.0),
        (Logistic::new(0.3, 0.7).unwrap().boxed(), 0.0, 2.0),
        (Exponential::new(1.3).unwrap().boxed(), 0.5, 2.5),
        (Gumbel::new(0.3, 0.7).unwrap().boxed(), -1.0, 2.0),
        (Uniform::new(-1.0, 2.0).unwrap().boxed(), 0.0, 1.0),
    ];
    for (i, (base, a, b)) in cases.into_iter().enumerate() {
        let t =
            Truncated::build(base.clone(), Some(Array::scalar(a)), Some(Array::scalar(b))).unwrap();
        let name = base.name();
        let (_, _, z) = density(&t, a, b, 4000);
        assert!((z - 1.0).abs() < 1e-7, "{name} truncated integrates to {z}");
        let (_, _, mass) = density(base.as_ref(), a, b, 4000);
        let x = Array::scalar(0.5 * (a + b));
        let diff = vals(&t.log_prob(&x).unwrap())[0] - vals(&base.log_prob(&x).unwrap())[0];
        assert!(
            (diff + mass.ln()).abs() < 1e-7,
            "{name}: {diff} vs {}",
            -mass.ln()
        );
        let m = 4000;
        let draws = vals(&t.sample(&Key::new(150 + i as u64), &[m]).unwrap());
        assert!(
            draws.iter().all(|v| *v >= a && *v <= b),
            "{name} draws in range"
        );
        let dist = ks(&t, &draws, a, b);
        assert!(dist < ks_crit(m), "{name} truncated KS {dist}");
    }
    // Truncated-normal mean and variance (closed form) against Simpson integration.
    for (lo, hi) in [
        (Some(-1.0), Some(3.0)),
        (Some(1.5), None),
        (None, Some(0.2)),
    ] {
        let base = Normal::new(0.5, 2.0).unwrap().boxed();
        let t = Truncated::build(base, lo.map(Array::scalar), hi.map(Array::scalar)).unwrap();
        let (a, b) = (lo.unwrap_or(-40.0), hi.unwrap_or(40.0));
        let (xs, p, _) = density(&t, a, b, 20000);
        let h = (b - a) / 20000.0;
        let simpson = |f: &dyn Fn(f64) -> f64| {
            let mut s = 0.0;
            for (i, (x, pv)) in xs.iter().zip(&p).enumerate() {
                let w = if i == 0 || i == 20000 {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                s += w * f(*x) * pv;
            }
            s * h / 3.0
        };
        let m = simpson(&|x| x);
        let v = simpson(&|x| (x - m) * (x - m));
        let gm = vals(&t.mean().unwrap())[0];
        let gv = vals(&t.variance().unwrap())[0];
        assert!((gm - m).abs() < 1e-8, "truncated mean {gm} vs {m}");
        assert!((gv - v).abs() < 1e-8, "truncated variance {gv} vs {v}");
    }
    // A base without a cdf is an error, not a panic.
    assert!(Truncated::lower(Gamma::new(2.0, 1.0).unwrap(), 0.5).is_err());
}

#[test]
fn mixture_same_family_against_naive_sums() {
    let w = [0.2f64, 0.5, 0.3];
    let mu = [-2.0f64, 0.5, 3.0];
    let sd = [0.7f64, 1.0, 0.4];
    let mix = MixtureSameFamily::new(
        Categorical::probs(w.to_vec()).unwrap(),
        Normal::new(mu.to_vec(), sd.to_vec()).unwrap(),
    )
    .unwrap();
    assert_eq!(mix.batch_shape(), Vec::<usize>::new());
    let xs = vec![-2.5, -0.3, 0.0, 1.1, 2.9, 6.0];
    let got = vals(
        &mix.log_prob(&Array::from_vec(vec![6], xs.clone()).unwrap())
            .unwrap(),
    );
    let want: Vec<f64> = xs
        .iter()
        .map(|x| {
            (0..3)
                .map(|k| {
                    w[k] * (-0.5 * ((x - mu[k]) / sd[k]).powi(2)).exp()
                        / (sd[k] * (2.0 * PI).sqrt())
                })
                .sum::<f64>()
                .ln()
        })
        .collect();
    close(&got, &want, 1e-12, 1e-12, "mixture log_prob");
    let em: f64 = (0..3).map(|k| w[k] * mu[k]).sum();
    let ev: f64 = (0..3)
        .map(|k| w[k] * (sd[k] * sd[k] + (mu[k] - em).powi(2)))
        .sum();
    assert!((vals(&mix.mean().unwrap())[0] - em).abs() < 1e-12);
    assert!((vals(&mix.variance().unwrap())[0] - ev).abs() < 1e-12);
    let m = 4000;
    let draws = vals(&mix.sample(&Key::new(7), &[m]).unwrap());
    let dist = ks(&mix, &draws, -8.0, 8.0);
    assert!(dist < ks_crit(m), "mixture KS {dist}");
    // Batched mixtures of multivariate components (MVN with batch [2, K]).
    let locs = Array::from_vec(
        vec![2, 2, 2],
        vec![0.0f64, 0.0, 1.0, 1.0, -1.0, 2.0, 0.5, 0.5],
    )
    .unwrap();
    let tril = Array::from_vec(vec![2, 2], vec![1.0f64, 0.0, 0.3, 0.8]).unwrap();
    let comp = MultivariateNormal::new(locs, tril).unwrap();
    let mix2 = MixtureSameFamily::new(
        Categorical::probs(Array::from_vec(vec![2], vec![0.4f64, 0.6]).unwrap()).unwrap(),
        comp.clone(),
    )
    .unwrap();
    assert_eq!(mix2.batch_shape(), vec![2]);
    assert_eq!(mix2.event_shape(), vec![2]);
    let x = Array::from_vec(vec![2, 2], vec![0.3f64, -0.2, 0.1, 1.5]).unwrap();
    let got = vals(&mix2.log_prob(&x).unwrap());
    // Naive: each component's log density at each batch's x.
    let xb = Array::from_vec(vec![2, 1, 2], vals(&x)).unwrap();
    let lc = vals(&comp.log_prob(&xb).unwrap()); // [2, 2]
    let want: Vec<f64> = (0..2)
        .map(|b| (0.4 * lc[b * 2].exp() + 0.6 * lc[b * 2 + 1].exp()).ln())
        .collect();
    close(&got, &want, 1e-12, 1e-12, "MVN mixture log_prob");
    let s = mix2.sample(&Key::new(3), &[5]).unwrap();
    assert_eq!(s.shape(), &[5, 2, 2]);
    // Mismatched component count is an error.
    assert!(MixtureSameFamily::new(
        Categorical::probs(vec![0.5, 0.5]).unwrap(),
        Normal::new(mu.to_vec(), sd.to_vec()).unwrap()
    )
    .is_err());
}

fn lbeta(a: f64, b: f64) -> f64 {
    let lg = |x: f64| vals(&Array::scalar(x).lgamma().unwrap())[0];
    lg(a) + lg(b) - lg(a + b)
}

#[test]
fn lkj_cholesky_density_and_sampler() {
    // D = 2: L = [[1, 0], [r, sqrt(1 - r^2)]], and r is Beta(eta, eta) on (-1, 1).
    for &eta in &[0.5, 1.0, 2.5] {
        let d = LkjCholesky::new(2, eta).unwrap();
        for &r in &[-0.7f64, 0.0, 0.4, 0.95] {
            let l = Array::from_vec(vec![2, 2], vec![1.0, 0.0, r, (1.0 - r * r).sqrt()]).unwrap();
            let got = vals(&d.log_prob(&l).unwrap())[0];
            let want =
                (eta - 1.0) * (1.0 - r * r).ln() - lbeta(eta, eta) - (2.0 * eta - 1.0) * 2f64.ln();
            assert!(
                (got - want).abs() < 1e-12,
                "LKJ(2, {eta}) at {r}: {got} vs {want}"
            );
        }
    }
    // D = 3, 4: the density ratio between two concentrations averages to 1 under the
    // sampler of the first (importance check of the normalizer against the onion sampler).
    for &dim in &[3usize, 4] {
        let (e1, e2) = (1.5, 2.5);
        let d1 = LkjCholesky::new(dim, e1).unwrap();
        let d2 = LkjCholesky::new(dim, e2).unwrap();
        let m = 20000;
        let l = d1.sample(&Key::new(dim as u64), &[m]).unwrap();
        assert_eq!(l.shape(), &[m, dim, dim]);
        let r: Vec<f64> = vals(&d2.log_prob(&l).unwrap())
            .iter()
            .zip(vals(&d1.log_prob(&l).unwrap()))
            .map(|(a, b)| (a - b).exp())
            .collect();
        let mean = r.iter().sum::<f64>() / m as f64;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m as f64).sqrt();
        let se = sd / (m as f64).sqrt();
        assert!(
            (mean - 1.0).abs() < 5.0 * se,
            "D={dim}: E[ratio] {mean} (se {se})"
        );
        // Draws are valid Cholesky factors of correlation matrices, and each off-diagonal
        // correlation is Beta(a, a) on (-1, 1), a = eta - 1 + D/2: variance 1 / (2a + 1).
        let x = vals(&l);
        let mut c01 = Vec::with_capacity(m);
        for s in 0..m {
            let mat = &x[s * dim * dim..(s + 1) * dim * dim];
            for i in 0..dim {
                let norm: f64 = (0..dim).map(|j| mat[i * dim + j].powi(2)).sum();
                assert!((norm - 1.0).abs() < 1e-12);
                assert!(mat[i * dim + i] > 0.0);
                for j in i + 1..dim {
                    assert_eq!(mat[i * dim + j], 0.0);
                }
            }
            // corr[1][0] = L10 * L00.
            c01.push(mat[dim]);
        }
        let a = e1 - 1.0 + dim as f64 / 2.0;
        let v = c01.iter().map(|c| c * c).sum::<f64>() / m as f64;
        let want = 1.0 / (2.0 * a + 1.0);
        assert!((v - want).abs() < 0.05 * want, "D={dim}: var {v} vs {want}");
    }
    assert!(LkjCholesky::new(1, 1.0).is_err());
}

/// Every univariate continuous distribution: draws against the CDF of exp(log_prob)
/// (KS at alpha 0.001, 4000 draws); the integration range leaves < 0.3% of the mass out.
#[test]
fn samples_match_log_prob_continuous() {
    let tiny = 1e-9;
    let cases: Vec<(DynDist, f64, f64)> = vec![
        (Normal::new(0.5, 2.0).unwrap().boxed(), -15.0, 16.0),
        (HalfNormal::new(1.5).unwrap().boxed(), tiny, 12.0),
        (LogNormal::new(0.2, 0.5).unwrap().boxed(), tiny, 30.0),
        (StudentT::new(4.0, 0.5, 1.2).unwrap().boxed(), -80.0, 80.0),
        (Cauchy::new(0.3, 1.0).unwrap().boxed(), -400.0, 400.0),
        (HalfCauchy::new(1.0).unwrap().boxed(), tiny, 600.0),
        (Laplace::new(0.3, 0.7).unwrap().boxed(), -15.0, 15.0),
        (Logistic::new(0.3, 0.7).unwrap().boxed(), -20.0, 20.0),
        (Uniform::new(-1.0, 2.5).unwrap().boxed(), -1.0, 2.5),
        (Exponential::new(1.7).unwrap().boxed(), tiny, 15.0),
        (Gamma::new(2.5, 1.5).unwrap().boxed(), tiny, 20.0),
        (InverseGamma::new(6.0, 2.0).unwrap().boxed(), tiny, 10.0),
        (Beta::new(2.0, 3.5).unwrap().boxed(), tiny, 1.0 - tiny),
        (Chi2::new(4.0).unwrap().boxed(), tiny, 60.0),
        (Weibull::new(1.5, 2.0).unwrap().boxed(), tiny, 20.0),
        (Pareto::new(1.0, 5.0).unwrap().boxed(), 1.0, 60.0),
        (Gumbel::new(0.3, 0.7).unwrap().boxed(), -5.0, 20.0),
    ];
    for (i, (d, a, b)) in cases.into_iter().enumerate() {
        let m = 4000;
        let x = vals(&d.sample(&Key::new(300 + i as u64), &[m]).unwrap());
        let dist = ks(d.as_ref(), &x, a, b);
        assert!(dist < ks_crit(m), "{}: KS {dist}", d.name());
    }
}

/// Discrete distributions: the frequency of each value within 5 standard errors (plus
/// 1e-3) of exp(log_prob); Dirichlet with K = 2 is Beta in its first coordinate, and an
/// MVN's sample covariance is L L^T.
#[test]
fn samples_match_log_prob_discrete_and_multivariate() {
    let cases: Vec<(DynDist, usize)> = vec![
        (Bernoulli::logits(-0.4).unwrap().boxed(), 2),
        (Binomial::probs(10.0, 0.3).unwrap().boxed(), 11),
        (Poisson::new(3.2).unwrap().boxed(), 25),
        (Geometric::probs(0.3).unwrap().boxed(), 40),
        (NegativeBinomial2::new(3.0, 2.0).unwrap().boxed(), 40),
        (
            Categorical::logits(vec![0.1, -1.0, 0.7, 0.0])
                .unwrap()
                .boxed(),
            4,
        ),
    ];
    for (i, (d, k)) in cases.into_iter().enumerate() {
        let m = 20000;
        let x = vals(&d.sample(&Key::new(400 + i as u64), &[m]).unwrap());
        let ks_: Vec<f64> = (0..k).map(|v| v as f64).collect();
        let p: Vec<f64> = vals(&d.log_prob(&Array::from_vec(vec![k], ks_).unwrap()).unwrap())
            .iter()
            .map(|l| l.exp())
            .collect();
        for (v, pv) in p.iter().enumerate() {
            let f = x.iter().filter(|&&s| s == v as f64).count() as f64 / m as f64;
            let se = (pv * (1.0 - pv) / m as f64).sqrt();
            assert!(
                (f - pv).abs() < 5.0 * se + 1e-3,
                "{}: P({v}) {f} vs {pv}",
                d.name()
            );
        }
    }
    let dir = Dirichlet::new(vec![2.0, 3.5]).unwrap();
    let beta = Beta::new(2.0, 3.5).unwrap();
    let xs = vec![0.2f64, 0.8, 0.55, 0.45];
    let got = vals(
        &dir.log_prob(&Array::from_vec(vec![2, 2], xs).unwrap())
            .unwrap(),
    );
    let want = vals(
        &beta
            .log_prob(&Array::from_vec(vec![2], vec![0.2f64, 0.55]).unwrap())
            .unwrap(),
    );
    close(&got, &want, 1e-12, 1e-12, "Dirichlet(K=2) vs Beta");
    let m = 4000;
    let s = vals(&dir.sample(&Key::new(501), &[m]).unwrap());
    let first: Vec<f64> = s.chunks(2).map(|c| c[0]).collect();
    let dist = ks(&beta, &first, 1e-9, 1.0 - 1e-9);
    assert!(dist < ks_crit(m), "Dirichlet first coordinate KS {dist}");
    let l = [1.0, 0.0, 0.6, 0.5];
    let mvn = MultivariateNormal::new(
        vec![1.0, -1.0],
        Array::from_vec(vec![2, 2], l.to_vec()).unwrap(),
    )
    .unwrap();
    let n = 20000;
    let z = vals(&mvn.sample(&Key::new(502), &[n]).unwrap());
    let (mut c00, mut c01, mut c11) = (0.0, 0.0, 0.0);
    for p in z.chunks(2) {
        let (a, b) = (p[0] - 1.0, p[1] + 1.0);
        c00 += a * a / n as f64;
        c01 += a * b / n as f64;
        c11 += b * b / n as f64;
    }
    let want = [l[0] * l[0], l[0] * l[2], l[2] * l[2] + l[3] * l[3]];
    for (g, w) in [c00, c01, c11].iter().zip(want) {
        assert!(
            (g - w).abs() < 0.05 * w.abs().max(0.5),
            "MVN covariance {g} vs {w}"
        );
    }
}

#[test]
fn less_than_bijection() {
    use ferrax_infer::constraints::Constraint;
    use ferrax_infer::transforms::biject_to;
    let t = biject_to(&Constraint::LessThan(Array::scalar(2.0f64))).unwrap();
    let u = Array::from_vec(vec![3], vec![-3.0f64, 0.0, 1.5]).unwrap();
    let y = t.forward(&u).unwrap();
    let yv = vals(&y);
    // y = 2 - exp(u), |dy/du| = exp(u).
    for (k, uv) in [-3.0f64, 0.0, 1.5].iter().enumerate() {
        assert!((yv[k] - (2.0 - uv.exp())).abs() < 1e-12);
    }
    close(
        &vals(&t.inverse(&y).unwrap()),
        &vals(&u),
        1e-12,
        1e-12,
        "inverse",
    );
    let l = vals(&t.log_abs_det_jacobian(&u, &y).unwrap());
    close(&l, &[-3.0, 0.0, 1.5], 1e-12, 1e-12, "log|det J|");
}

/// MultivariateNormal::from_covariance with a traced covariance (unrolled Cholesky from
/// ops) gives the host-factored log density, and its gradient in the covariance matches
/// central finite differences of the host version.
#[test]
fn mvn_from_traced_covariance_differentiates() {
    let cov = vec![2.0f64, 0.6, 0.3, 0.6, 1.5, -0.2, 0.3, -0.2, 1.0];
    let x = Array::from_vec(vec![3], vec![0.4f64, -1.0, 0.8]).unwrap();
    let loc = vec![0.1, 0.2, -0.3];
    let host = |c: &[f64]| -> f64 {
        let d = MultivariateNormal::from_covariance(
            loc.clone(),
            Array::from_vec(vec![3, 3], c.to_vec()).unwrap(),
        )
        .unwrap();
        vals(&d.log_prob(&x).unwrap())[0]
    };
    let g = ferrax_core::ad::value_and_grad(
        &vec![Array::from_vec(vec![3, 3], cov.clone()).unwrap()],
        |p: &Vec<Array>| {
            MultivariateNormal::from_covariance(loc.clone(), &p[0])
                .unwrap()
                .log_prob(&x)
                .unwrap()
        },
    )
    .unwrap();
    assert!((vals(&g.0)[0] - host(&cov)).abs() < 1e-12);
    let grad = vals(&g.1[0]);
    // The factorization reads the lower triangle only, so perturb (i, j) with i >= j.
    for i in 0..3 {
        for j in 0..=i {
            let h = 1e-6;
            let mut cp = cov.clone();
            cp[i * 3 + j] += h;
            let mut cm = cov.clone();
            cm[i * 3 + j] -= h;
            let fd = (host(&cp) - host(&cm)) / (2.0 * h);
            assert!(
                (grad[i * 3 + j] - fd).abs() < 1e-6,
                "d/dcov[{i}][{j}]: {} vs {fd}",
                grad[i * 3 + j]
            );
        }
    }
}
