//! Predictive: prior draws have the distribution's moments; posterior predictive
//! substitutes each draw (values and shapes checked for a model with a plate and a
//! deterministic site), from explicit samples, from MCMC and from a fitted guide.

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Exponential, Normal};
use ferrax_infer::guides::AutoNormal;
use ferrax_infer::handlers::{deterministic, plate, sample};
use ferrax_infer::math::ArrayMath;
use ferrax_infer::mcmc::{Kernel, Mcmc};
use ferrax_infer::predictive::Predictive;
use ferrax_infer::svi::{Svi, TraceElbo};
use std::collections::HashMap;

fn vals(a: &Array) -> Vec<f64> {
    a.cast(ferrax_core::DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn moments(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

/// mu ~ N(2, 3); y_i ~ N(mu, 0.5) for 5 observations (data given); mu2 = 2 mu.
fn model() -> impl Fn() -> ferrax_infer::Result<()> + Sync {
    let y = Array::from_vec(vec![5], vec![1.0f64, 2.0, 3.0, 2.5, 1.5]).unwrap();
    move || {
        let mu = sample("mu", Normal::new(2.0, 3.0)?, None)?;
        deterministic("mu2", mu.mulc(2.0)?)?;
        plate("data", 5, None, |_| {
            sample("y", Normal::new(&mu, 0.5)?, Some(y.clone()))?;
            Ok(())
        })
    }
}

#[test]
fn prior_predictive_moments() {
    let n = 4000;
    let out = Predictive::prior(n).run(&Key::new(0), &model()).unwrap();
    assert_eq!(out["mu"].shape(), &[n]);
    assert_eq!(out["y"].shape(), &[n, 5]);
    assert_eq!(out["mu2"].shape(), &[n]);
    let mu = vals(&out["mu"]);
    let (m, v) = moments(&mu);
    eprintln!("prior mu: mean {m:.4} (2), var {v:.4} (9)");
    // 4 standard errors: sd(mean) = 3/sqrt(n); sd(var) ~ 9 * sqrt(2/n).
    assert!((m - 2.0).abs() < 4.0 * 3.0 / (n as f64).sqrt());
    assert!((v - 9.0).abs() < 4.0 * 9.0 * (2.0 / n as f64).sqrt());
    // Observed sites are drawn: y_i ~ N(2, 9 + 0.25) marginally, not the data.
    let y = vals(&out["y"]);
    let y0: Vec<f64> = y.iter().step_by(5).copied().collect();
    let (my, vy) = moments(&y0);
    eprintln!("prior y[0]: mean {my:.4} (2), var {vy:.4} (9.25)");
    assert!((my - 2.0).abs() < 4.0 * (9.25f64 / n as f64).sqrt());
    assert!((vy - 9.25).abs() < 4.0 * 9.25 * (2.0 / n as f64).sqrt());
    // The deterministic site is computed from each draw.
    let mu2 = vals(&out["mu2"]);
    for (a, b) in mu.iter().zip(&mu2) {
        assert_eq!(*b, 2.0 * a);
    }
    // Same key, same draws; return_sites restricts the output.
    let again = Predictive::prior(n)
        .return_sites(["mu"])
        .run(&Key::new(0), &model())
        .unwrap();
    assert_eq!(again.keys().collect::<Vec<_>>(), vec!["mu"]);
    assert_eq!(vals(&again["mu"]), mu);
}

#[test]
fn prior_of_a_positive_site() {
    // Exponential(2): mean 0.5, variance 0.25, all draws positive.
    let m = || -> ferrax_infer::Result<()> {
        sample("r", Exponential::new(2.0)?, None)?;
        Ok(())
    };
    let n = 4000;
    let out = Predictive::prior(n).run(&Key::new(9), &m).unwrap();
    let r = vals(&out["r"]);
    assert!(r.iter().all(|&x| x > 0.0));
    let (mean, var) = moments(&r);
    assert!((mean - 0.5).abs() < 4.0 * 0.5 / (n as f64).sqrt(), "{mean}");
    assert!((var - 0.25).abs() < 0.05, "{var}");
}

#[test]
fn posterior_predictive_from_samples() {
    let draws = vec![-1.0f64, 0.0, 10.0];
    let mu = Array::from_vec(vec![3], draws.clone()).unwrap();
    let p = Predictive::from_samples([("mu".to_string(), mu)].into_iter().collect()).unwrap();
    assert_eq!(p.num_samples(), 3);
    let out = p.run(&Key::new(1), &model()).unwrap();
    // mu is given, so it is not returned; y and the deterministic site are.
    assert_eq!(out.keys().collect::<Vec<_>>(), vec!["mu2", "y"]);
    assert_eq!(out["y"].shape(), &[3, 5]);
    assert_eq!(vals(&out["mu2"]), vec![-2.0, 0.0, 20.0]);
    let y = vals(&out["y"]);
    for (i, d) in draws.iter().enumerate() {
        for j in 0..5 {
            // y ~ N(draw, 0.5): within 5 sd of its draw, and not the data.
            assert!(
                (y[i * 5 + j] - d).abs() < 2.5,
                "y[{i},{j}] = {}",
                y[i * 5 + j]
            );
        }
    }
    // The residuals have sd 0.5 overall (15 draws; a loose check of the scale).
    let res: Vec<f64> = (0..15).map(|k| y[k] - draws[k / 5]).collect();
    let (_, v) = moments(&res);
    assert!(v > 0.05 && v < 0.8, "residual variance {v}");
}

#[test]
fn posterior_predictive_from_mcmc_and_guide() {
    let m = model();
    let run = Mcmc::new(Kernel::nuts(), 200, 100)
        .num_chains(2)
        .run(&Key::new(2), &m)
        .unwrap();
    let out = Predictive::from_mcmc(&run)
        .unwrap()
        .run(&Key::new(3), &m)
        .unwrap();
    assert_eq!(out["y"].shape(), &[200, 5]);
    // The posterior of mu is N(~2, ~0.22); y's predictive mean is mu's posterior mean.
    let y = vals(&out["y"]);
    let (my, vy) = moments(&y);
    let post_mu = run.site("mu").unwrap().mean()[0];
    eprintln!("posterior predictive y: mean {my:.3} (mu mean {post_mu:.3}), var {vy:.3}");
    assert!((my - post_mu).abs() < 0.15);
    // Predictive variance: 0.25 + posterior variance (~0.05).
    assert!(vy > 0.2 && vy < 0.45, "{vy}");

    // From a fitted AutoNormal guide.
    let mut svi = Svi::new(
        model(),
        AutoNormal::new(),
        ferrax_optim::adam(0.05),
        TraceElbo::new(4),
    );
    let res = svi.run(&Key::new(4), 400).unwrap();
    let out = Predictive::from_guide(svi.guide(), res.params.clone(), 300)
        .run(&Key::new(5), svi.model())
        .unwrap();
    assert_eq!(out["y"].shape(), &[300, 5]);
    assert_eq!(out["mu"].shape(), &[300]);
    let (mm, _) = moments(&vals(&out["mu"]));
    // Posterior mean of mu: (2/9 + 10/0.25) / (1/9 + 5/0.25).
    let exact = (2.0 / 9.0 + 10.0 / 0.25) / (1.0 / 9.0 + 5.0 / 0.25);
    assert!((mm - exact).abs() < 0.1, "{mm} vs {exact}");
}

#[test]
fn predictive_errors() {
    let mut s = HashMap::new();
    s.insert(
        "a".to_string(),
        Array::from_vec(vec![3], vec![1.0f64; 3]).unwrap(),
    );
    s.insert(
        "b".to_string(),
        Array::from_vec(vec![4], vec![1.0f64; 4]).unwrap(),
    );
    assert!(Predictive::from_samples(s).is_err());
    assert!(Predictive::prior(0).run(&Key::new(0), &model()).is_err());
    let e = Predictive::prior(2)
        .return_sites(["nope"])
        .run(&Key::new(0), &model())
        .unwrap_err();
    assert!(e.to_string().contains("nope"));
}
