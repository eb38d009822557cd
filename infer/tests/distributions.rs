//! log_prob of every distribution in tests/reference/distributions.json (f64 and f32),
//! its gradients (f64) through `ferrax_core::ad::grad`, and moment checks of `sample`.

mod common;
use common::*;
use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::*;
use ferrax_infer::math::ArrayMath;
use serde_json::Value;

/// Parameter names in the order `build` takes them.
fn param_names(name: &str) -> Vec<&'static str> {
    match name {
        "Normal" | "LogNormal" | "Cauchy" => vec!["loc", "scale"],
        "HalfNormal" => vec!["scale"],
        "Gamma" => vec!["concentration", "rate"],
        "Beta" => vec!["concentration1", "concentration0"],
        "Exponential" | "Poisson" => vec!["rate"],
        "StudentT" => vec!["df", "loc", "scale"],
        "Uniform" => vec!["low", "high"],
        "Bernoulli_logits" | "Categorical_logits" => vec!["logits"],
        "Binomial_probs" => vec!["total_count", "probs"],
        "Binomial_logits" => vec!["total_count", "logits"],
        "Dirichlet" => vec!["concentration"],
        "MultivariateNormal_scale_tril" => vec!["loc", "scale_tril"],
        other => panic!("unknown distribution {other}"),
    }
}

fn build(name: &str, p: &[Array]) -> ferrax_infer::Result<DynDist> {
    let c = |a: &Array| a.clone();
    Ok(match name {
        "Normal" => Normal::new(c(&p[0]), c(&p[1]))?.boxed(),
        "HalfNormal" => HalfNormal::new(c(&p[0]))?.boxed(),
        "LogNormal" => LogNormal::new(c(&p[0]), c(&p[1]))?.boxed(),
        "Cauchy" => Cauchy::new(c(&p[0]), c(&p[1]))?.boxed(),
        "Gamma" => Gamma::new(c(&p[0]), c(&p[1]))?.boxed(),
        "Beta" => Beta::new(c(&p[0]), c(&p[1]))?.boxed(),
        "Exponential" => Exponential::new(c(&p[0]))?.boxed(),
        "Poisson" => Poisson::new(c(&p[0]))?.boxed(),
        "StudentT" => StudentT::new(c(&p[0]), c(&p[1]), c(&p[2]))?.boxed(),
        "Uniform" => Uniform::new(c(&p[0]), c(&p[1]))?.boxed(),
        "Bernoulli_logits" => Bernoulli::logits(c(&p[0]))?.boxed(),
        "Categorical_logits" => Categorical::logits(c(&p[0]))?.boxed(),
        "Binomial_probs" => Binomial::probs(c(&p[0]), c(&p[1]))?.boxed(),
        "Binomial_logits" => Binomial::logits(c(&p[0]), c(&p[1]))?.boxed(),
        "Dirichlet" => Dirichlet::new(c(&p[0]))?.boxed(),
        "MultivariateNormal_scale_tril" => MultivariateNormal::new(c(&p[0]), c(&p[1]))?.boxed(),
        other => panic!("unknown distribution {other}"),
    })
}

#[test]
fn log_prob_matches_numpyro_f64_and_f32() {
    let r = load("distributions.json");
    let tol64 = &r["suggested_tolerances"]["float64"];
    let tol32 = &r["suggested_tolerances"]["float32"];
    let dists = r["distributions"].as_object().unwrap();
    assert_eq!(dists.len(), 16);
    for (name, d) in dists {
        for (dt, tol, conv) in [
            ("float64", tol64, arr64 as fn(&Value) -> Array),
            ("float32", tol32, arr32),
        ] {
            let params: Vec<Array> = param_names(name)
                .iter()
                .map(|p| conv(&d["params"][*p]))
                .collect();
            let dist = build(name, &params).unwrap();
            let x = conv(&d["points"]);
            let lp = dist.log_prob(&x).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want: Vec<f64> = d[dt]["log_prob"]
                .as_array()
                .unwrap()
                .iter()
                .map(num)
                .collect();
            close(
                &vals(&lp),
                &want,
                num(&tol["rtol"]),
                num(&tol["atol"]),
                &format!("{name} {dt} log_prob"),
            );
        }
    }
}

#[test]
fn log_prob_gradients_match_numpyro() {
    let r = load("distributions.json");
    let mut missing = Vec::new();
    for (name, d) in r["distributions"].as_object().unwrap() {
        let names = param_names(name);
        let x = arr64(&d["points"]);
        let n = 5;
        // Parameters broadcast to one per point, so d(sum log_prob)/d(param) is per point.
        let ev = if name.starts_with("Dirichlet") || name.starts_with("Multivariate") {
            1
        } else {
            0
        };
        let mut leaves = vec![x.clone()];
        for p in &names {
            let a = arr64(&d["params"][*p]);
            let mut shape = vec![n];
            let keep = if *p == "scale_tril" {
                2
            } else if ev == 1 || *p == "logits" && name.starts_with("Categorical") {
                1
            } else {
                0
            };
            shape.extend_from_slice(&a.shape()[a.rank() - keep..]);
            leaves.push(if a.rank() == keep {
                a.bcast(&shape).unwrap()
            } else {
                a
            });
        }
        let res = ferrax_core::ad::grad(&leaves, |w| {
            let dist = build(name, &w[1..]).unwrap();
            dist.log_prob(&w[0]).unwrap().sum_all().unwrap()
        });
        let g = match res {
            Ok(g) => g,
            Err(e) => {
                missing.push(format!("{name}: {e}"));
                continue;
            }
        };
        let grads = d["float64"]["grad_log_prob_per_point"].as_object().unwrap();
        for (k, want) in grads {
            let idx = if k == "wrt_value" {
                0
            } else {
                1 + names.iter().position(|p| k == &format!("wrt_{p}")).unwrap()
            };
            let (_, w) = flat(want);
            close(&vals(&g[idx]), &w, 1e-9, 1e-10, &format!("{name} {k}"));
        }
    }
    assert!(missing.is_empty(), "gradients failed: {missing:#?}");
}

fn moments(d: &dyn Distribution, key: u64, n: usize) -> (f64, f64) {
    let x = vals(&d.sample(&Key::new(key), &[n]).unwrap());
    let m = x.iter().sum::<f64>() / n as f64;
    let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n as f64 - 1.0);
    (m, v)
}

/// Sample means and variances agree with `mean()`/`variance()` within 5 standard errors
/// (variance of the sample variance from the fourth moment is bounded loosely by using
/// a 10% relative band, which holds for these light-tailed cases at n = 20000).
#[test]
fn samples_agree_with_moments() {
    let n = 20000;
    let cases: Vec<(DynDist, &str)> = vec![
        (Normal::new(0.5, 2.0).unwrap().boxed(), "Normal"),
        (HalfNormal::new(1.5).unwrap().boxed(), "HalfNormal"),
        (LogNormal::new(0.2, 0.5).unwrap().boxed(), "LogNormal"),
        (Gamma::new(2.5, 1.5).unwrap().boxed(), "Gamma"),
        (InverseGamma::new(6.0, 2.0).unwrap().boxed(), "InverseGamma"),
        (Beta::new(2.0, 3.5).unwrap().boxed(), "Beta"),
        (Exponential::new(1.7).unwrap().boxed(), "Exponential"),
        (StudentT::new(8.0, 0.5, 1.2).unwrap().boxed(), "StudentT"),
        (Uniform::new(-1.0, 2.5).unwrap().boxed(), "Uniform"),
        (Laplace::new(0.3, 0.7).unwrap().boxed(), "Laplace"),
        (Logistic::new(0.3, 0.7).unwrap().boxed(), "Logistic"),
        (Gumbel::new(0.3, 0.7).unwrap().boxed(), "Gumbel"),
        (Weibull::new(1.5, 2.0).unwrap().boxed(), "Weibull"),
        (Pareto::new(1.0, 5.0).unwrap().boxed(), "Pareto"),
        (Chi2::new(4.0).unwrap().boxed(), "Chi2"),
        (Bernoulli::probs(0.3).unwrap().boxed(), "Bernoulli"),
        (Binomial::probs(10.0, 0.3).unwrap().boxed(), "Binomial"),
        (Poisson::new(3.2).unwrap().boxed(), "Poisson"),
        (Geometric::probs(0.3).unwrap().boxed(), "Geometric"),
        (
            NegativeBinomial2::new(3.0, 2.0).unwrap().boxed(),
            "NegativeBinomial2",
        ),
    ];
    for (i, (d, name)) in cases.iter().enumerate() {
        let (m, v) = moments(d.as_ref(), 100 + i as u64, n);
        let em = vals(&d.mean().unwrap())[0];
        let ev = vals(&d.variance().unwrap())[0];
        let se = (ev / n as f64).sqrt();
        assert!(
            (m - em).abs() < 5.0 * se,
            "{name}: sample mean {m} vs {em} (se {se})"
        );
        assert!(
            (v - ev).abs() < 0.1 * ev,
            "{name}: sample variance {v} vs {ev}"
        );
    }
}

#[test]
fn sample_shapes_and_event_shapes() {
    let d = Normal::new(
        Array::from_vec(vec![3], vec![0.0f64, 1.0, 2.0]).unwrap(),
        1.0,
    )
    .unwrap();
    assert_eq!(d.batch_shape(), vec![3]);
    let x = d.sample(&Key::new(0), &[4]).unwrap();
    assert_eq!(x.shape(), &[4, 3]);
    assert_eq!(d.log_prob(&x).unwrap().shape(), &[4, 3]);
    let ind = d.clone().to_event(1).unwrap();
    assert_eq!((ind.batch_shape(), ind.event_shape()), (vec![], vec![3]));
    assert_eq!(ind.log_prob(&x).unwrap().shape(), &[4]);
    let e = Normal::new(0.0, 1.0).unwrap().expand(&[2, 5]).unwrap();
    assert_eq!(e.sample(&Key::new(1), &[3]).unwrap().shape(), &[3, 2, 5]);
    let mvn = MultivariateNormal::from_covariance(
        Array::from_vec(vec![2], vec![1.0f64, -1.0]).unwrap(),
        Array::from_vec(vec![2, 2], vec![2.0f64, 0.6, 0.6, 1.0]).unwrap(),
    )
    .unwrap();
    let s = mvn.sample(&Key::new(2), &[20000]).unwrap();
    assert_eq!(s.shape(), &[20000, 2]);
    let v = vals(&s);
    let (mut m0, mut m1, mut c01) = (0.0, 0.0, 0.0);
    for p in v.chunks(2) {
        m0 += p[0] / 20000.0;
        m1 += p[1] / 20000.0;
    }
    for p in v.chunks(2) {
        c01 += (p[0] - m0) * (p[1] - m1) / 20000.0;
    }
    assert!(
        (m0 - 1.0).abs() < 0.05 && (m1 + 1.0).abs() < 0.05 && (c01 - 0.6).abs() < 0.05,
        "{m0} {m1} {c01}"
    );
    let dir = Dirichlet::new(vec![1.5, 2.0, 0.7]).unwrap();
    assert_eq!(dir.sample(&Key::new(3), &[7]).unwrap().shape(), &[7, 3]);
}

#[test]
fn bad_parameters_are_errors() {
    assert!(Normal::new(
        Array::from_vec(vec![3], vec![0.0f64; 3]).unwrap(),
        Array::from_vec(vec![2], vec![1.0f64; 2]).unwrap()
    )
    .is_err());
    assert!(Categorical::logits(1.0).is_err());
    assert!(Dirichlet::new(1.0).is_err());
    assert!(MultivariateNormal::new(
        vec![0.0, 0.0],
        Array::from_vec(vec![3, 3], vec![1.0f64; 9]).unwrap()
    )
    .is_err());
    assert!(Normal::new(0.0, 1.0).unwrap().to_event(1).is_err());
    assert!(Normal::new(vec![0.0, 1.0], 1.0)
        .unwrap()
        .expand(&[3])
        .is_err());
}
