//! SVI: the staged (compiled once) ELBO against the eager one, beta-Bernoulli posterior
//! mean, the joint autoguides (diagonal, full, low-rank normal, Laplace) on a Bayesian
//! linear regression whose Gaussian posterior is known in closed form, and
//! TraceMeanField_ELBO against Trace_ELBO and the closed-form KL.

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Bernoulli, Beta, Distribution, Normal};
use ferrax_infer::guides::{
    AutoDiagonalNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
    AutoMultivariateNormal, AutoNormal, Guide,
};
use ferrax_infer::handlers::{plate, sample};
use ferrax_infer::math::{to_f64, ArrayMath};
use ferrax_infer::svi::{Svi, TraceElbo};
use std::collections::HashMap;

fn decaying_adam(steps: usize) -> ferrax_optim::Transform {
    ferrax_optim::adam(
        ferrax_optim::schedule::cosine_decay_schedule(0.05, steps as i64, 0.02, 1.0).unwrap(),
    )
}

fn beta_bernoulli() -> impl Fn() -> ferrax_infer::Result<()> {
    let data = Array::from_vec(
        vec![10],
        vec![1.0f64, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0],
    )
    .unwrap();
    move || {
        let p = sample("p", Beta::new(1.0, 1.0)?, None)?;
        plate("n", 10, None, |_| {
            sample("y", Bernoulli::probs(&p)?, Some(data.clone()))
        })?;
        Ok(())
    }
}

#[test]
fn compiled_elbo_matches_eager_and_compiles_once() {
    let run = |jit: bool| {
        let mut svi = Svi::new(
            beta_bernoulli(),
            AutoNormal::new(),
            ferrax_optim::adam(0.05),
            TraceElbo::new(2),
        )
        .jit(jit);
        let r = svi.run(&Key::new(9), 60).unwrap();
        (
            r,
            svi.num_compiles(),
            svi.jit_fallback_reason().map(str::to_string),
        )
    };
    let (a, na, fa) = run(true);
    let (b, nb, _) = run(false);
    assert_eq!(fa, None, "the staged path was used");
    assert_eq!(na, 1, "traced and compiled once for 60 steps");
    assert_eq!(nb, 0);
    for (i, (x, y)) in a.losses.iter().zip(&b.losses).enumerate() {
        assert!(
            (x - y).abs() < 1e-9 * y.abs().max(1.0),
            "step {i}: compiled {x} vs eager {y}"
        );
    }
    let pa = to_f64(&a.params["auto_p_loc"]).unwrap()[0];
    let pb = to_f64(&b.params["auto_p_loc"]).unwrap()[0];
    assert!((pa - pb).abs() < 1e-8, "{pa} vs {pb}");
}

#[test]
fn beta_bernoulli_posterior_mean_within_0_03() {
    let steps = 1500;
    let mut svi = Svi::new(
        beta_bernoulli(),
        AutoNormal::new(),
        decaying_adam(steps),
        TraceElbo::new(4),
    );
    let res = svi.run(&Key::new(1), steps).unwrap();
    // E_q[p] with p = sigmoid(u), u ~ Normal(loc, scale), by Monte Carlo (20000 draws).
    let loc = to_f64(&res.params["auto_p_loc"]).unwrap()[0];
    let scale = to_f64(&res.params["auto_p_scale"]).unwrap()[0];
    let u = to_f64(
        &Normal::new(loc, scale)
            .unwrap()
            .sample(&Key::new(2), &[20000])
            .unwrap(),
    )
    .unwrap();
    let mean = u.iter().map(|u| 1.0 / (1.0 + (-u).exp())).sum::<f64>() / u.len() as f64;
    // Posterior Beta(8, 4): mean 2/3.
    assert!((mean - 2.0 / 3.0).abs() < 0.03, "E_q[p] = {mean}");
}

/// y = a + b x + N(0, 1) with a, b ~ Normal(0, 10): posterior Gaussian with precision
/// I/100 + X^T X and mean Lambda^-1 X^T y.
fn linreg() -> (
    impl Fn() -> ferrax_infer::Result<()> + Sync,
    [f64; 2],
    [f64; 4],
) {
    let x: Vec<f64> = (0..12).map(|i| 0.5 + i as f64 / 8.0).collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, x)| 0.3 + 1.2 * x + 0.8 * ((i as f64) * 2.3).sin())
        .collect();
    let (mut s0, mut s1, mut s2, mut t0, mut t1) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (xi, yi) in x.iter().zip(&y) {
        s0 += 1.0;
        s1 += xi;
        s2 += xi * xi;
        t0 += yi;
        t1 += xi * yi;
    }
    let lam = [s0 + 0.01, s1, s1, s2 + 0.01];
    let det = lam[0] * lam[3] - lam[1] * lam[2];
    let cov = [lam[3] / det, -lam[1] / det, -lam[2] / det, lam[0] / det];
    let mean = [cov[0] * t0 + cov[1] * t1, cov[2] * t0 + cov[3] * t1];
    let n = x.len();
    let xa = Array::from_vec(vec![n], x).unwrap();
    let ya = Array::from_vec(vec![n], y).unwrap();
    let model = move || -> ferrax_infer::Result<()> {
        let a = sample("a", Normal::new(0.0, 10.0)?, None)?;
        let b = sample("b", Normal::new(0.0, 10.0)?, None)?;
        let m = a.add(&b.mul(&xa)?)?;
        plate("data", n, None, |_| {
            sample("y", Normal::new(&m, 1.0)?, Some(ya.clone()))
        })?;
        Ok(())
    };
    (model, mean, cov)
}

fn fit<G: Guide + Clone + std::fmt::Debug>(
    guide: G,
    steps: usize,
) -> (HashMap<String, Array>, G, [f64; 2], [f64; 4]) {
    let (model, mean, cov) = linreg();
    let mut svi = Svi::new(model, guide, decaying_adam(steps), TraceElbo::new(8));
    let res = svi.run(&Key::new(5), steps).unwrap();
    assert_eq!(svi.jit_fallback_reason(), None);
    (res.params, svi.guide().clone(), mean, cov)
}

fn v(p: &HashMap<String, Array>, k: &str) -> Vec<f64> {
    to_f64(&p[k]).unwrap()
}

/// Covariance `L L^T` of a row-major 2x2 lower factor.
fn llt(l: &[f64]) -> [f64; 4] {
    [
        l[0] * l[0],
        l[0] * l[2],
        l[0] * l[2],
        l[2] * l[2] + l[3] * l[3],
    ]
}

fn check_gaussian(what: &str, m: &[f64], c: &[f64; 4], mean: &[f64; 2], cov: &[f64; 4], tol: f64) {
    for i in 0..2 {
        let sd = cov[i * 3].sqrt();
        assert!(
            (m[i] - mean[i]).abs() < tol * sd,
            "{what}: mean[{i}] {} vs {}",
            m[i],
            mean[i]
        );
    }
    for k in 0..4 {
        let scale = (cov[0] * cov[3]).sqrt();
        assert!(
            (c[k] - cov[k]).abs() < tol * scale,
            "{what}: cov[{k}] {} vs {}",
            c[k],
            cov[k]
        );
    }
}

#[test]
fn joint_guides_recover_gaussian_posterior() {
    let steps = 1500;
    // Full-rank families contain the posterior: mean and covariance within 0.15 (in units
    // of posterior sds).
    let (p, _, mean, cov) = fit(AutoMultivariateNormal::new(), steps);
    check_gaussian(
        "AutoMultivariateNormal",
        &v(&p, "auto_loc"),
        &llt(&v(&p, "auto_scale_tril")),
        &mean,
        &cov,
        0.15,
    );
    let (p, g, _, _) = fit(AutoLowRankMultivariateNormal::with_rank(1).unwrap(), steps);
    assert_eq!(g.rank(), Some(1));
    let w = v(&p, "auto_cov_factor");
    let d = v(&p, "auto_cov_diag");
    let c = [
        w[0] * w[0] + d[0],
        w[0] * w[1],
        w[0] * w[1],
        w[1] * w[1] + d[1],
    ];
    check_gaussian(
        "AutoLowRankMultivariateNormal",
        &v(&p, "auto_loc"),
        &c,
        &mean,
        &cov,
        0.15,
    );
    // Mean field on a Gaussian: exact means, variances 1 / Lambda_ii.
    let (p, g, _, _) = fit(AutoDiagonalNormal::new(), steps);
    let lam_diag = [
        cov[3] / (cov[0] * cov[3] - cov[1] * cov[2]),
        cov[0] / (cov[0] * cov[3] - cov[1] * cov[2]),
    ];
    let sc = v(&p, "auto_scale");
    let c = [sc[0] * sc[0], 0.0, 0.0, sc[1] * sc[1]];
    let want = [1.0 / lam_diag[0], 0.0, 0.0, 1.0 / lam_diag[1]];
    check_gaussian(
        "AutoDiagonalNormal",
        &v(&p, "auto_loc"),
        &c,
        &mean,
        &want,
        0.15,
    );
    let med = g.median(&p).unwrap();
    assert!((to_f64(&med["a"]).unwrap()[0] - v(&p, "auto_loc")[0]).abs() < 1e-12);
    // Laplace: the potential is exactly quadratic, so the mode and the inverse Hessian
    // are the posterior mean and covariance (to optimizer and finite-difference error).
    let (p, g, _, _) = fit(AutoLaplaceApproximation::new(), steps);
    let (model, _, _) = linreg();
    let (m, c) = g.posterior(&model, &p).unwrap();
    check_gaussian(
        "AutoLaplaceApproximation",
        &m,
        &[c[0], c[1], c[2], c[3]],
        &mean,
        &cov,
        0.02,
    );
    let draws = g.sample_posterior(&Key::new(3), &model, &p, 4000).unwrap();
    let a = to_f64(&draws["a"]).unwrap();
    let ma = a.iter().sum::<f64>() / a.len() as f64;
    assert!(
        (ma - mean[0]).abs() < 4.0 * (cov[0] / 4000.0).sqrt(),
        "Laplace draws mean {ma}"
    );
}

#[test]
fn mean_field_elbo_agrees_with_trace_elbo_and_is_exact_kl() {
    // Fixed AutoNormal params on the linear regression: the two estimators have the same
    // expectation (KL is the expectation of the log ratio).
    let (model, _, _) = linreg();
    let mut guide = AutoNormal::new();
    let (_, proto) =
        ferrax_infer::handlers::trace(|| ferrax_infer::handlers::seed(Key::new(0), &model))
            .unwrap();
    guide.setup(&proto, &Key::new(1)).unwrap();
    let mut params = HashMap::new();
    for (n, val) in [
        ("auto_a_loc", 0.2),
        ("auto_a_scale", 0.5),
        ("auto_b_loc", 1.1),
        ("auto_b_scale", 0.3),
    ] {
        params.insert(n.to_string(), Array::scalar(val));
    }
    let stats = |loss: TraceElbo| {
        let xs: Vec<f64> = (0..400)
            .map(|k| to_f64(&loss.loss(&Key::new(k), &params, &model, &guide).unwrap()).unwrap()[0])
            .collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0);
        (m, var)
    };
    let (m1, v1) = stats(TraceElbo::new(1));
    let (m2, v2) = stats(TraceElbo::mean_field(1));
    let se = ((v1 + v2) / 400.0).sqrt();
    assert!(
        (m1 - m2).abs() < 4.0 * se,
        "Trace {m1} vs MeanField {m2} (se {se})"
    );
    assert!(TraceElbo::mean_field(1).is_mean_field());
    // Without data the mean-field loss is exactly the closed-form KL(q || prior), the
    // same for every key, while Trace_ELBO's single-sample estimate varies.
    let prior_only = || -> ferrax_infer::Result<()> {
        sample("a", Normal::new(0.0, 10.0)?, None)?;
        sample("b", Normal::new(0.0, 10.0)?, None)?;
        Ok(())
    };
    let kl = |mq: f64, sq: f64, mp: f64, sp: f64| {
        (sp / sq).ln() + (sq * sq + (mq - mp).powi(2)) / (2.0 * sp * sp) - 0.5
    };
    let want = kl(0.2, 0.5, 0.0, 10.0) + kl(1.1, 0.3, 0.0, 10.0);
    let mf: Vec<f64> = (0..5)
        .map(|k| {
            to_f64(
                &TraceElbo::mean_field(1)
                    .loss(&Key::new(k), &params, &prior_only, &guide)
                    .unwrap(),
            )
            .unwrap()[0]
        })
        .collect();
    for l in &mf {
        assert!((l - want).abs() < 1e-12, "mean-field loss {l} vs KL {want}");
    }
    let tr: Vec<f64> = (0..5)
        .map(|k| {
            to_f64(
                &TraceElbo::new(1)
                    .loss(&Key::new(k), &params, &prior_only, &guide)
                    .unwrap(),
            )
            .unwrap()[0]
        })
        .collect();
    assert!(tr.iter().any(|l| (l - want).abs() > 1e-6));
    let _ = Bernoulli::probs(0.5).unwrap();
}
