//! Potential energy against NumPyro's, leapfrog energy conservation and reversibility,
//! NUTS on known posteriors, and the eight-schools / logistic-regression posteriors of
//! tests/reference/posteriors.json (bounded: 2 or 4 chains x 500 warmup + 500 draws;
//! R-hat < 1.01).

mod common;
use base64::Engine;
use common::*;
use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Bernoulli, Beta, DistExt, HalfCauchy, Normal};
use ferrax_infer::handlers::{deterministic, plate, sample};
use ferrax_infer::math::ArrayMath;
use ferrax_infer::mcmc::nuts::{kinetic, leapfrog, Point};
use ferrax_infer::mcmc::{Kernel, Mcmc};
use ferrax_infer::potential::Potential;

fn eight_schools(y: Array, sigma: Array) -> impl Fn() -> ferrax_infer::Result<()> + Sync {
    move || {
        let mu = sample("mu", Normal::new(0.0, 5.0)?, None)?;
        let tau = sample("tau", HalfCauchy::new(5.0)?, None)?;
        plate("J", 8, None, |_| {
            let tt = sample("theta_tilde", Normal::new(0.0, 1.0)?, None)?;
            let theta = deterministic("theta", mu.add(&tau.mul(&tt)?)?)?;
            sample("obs", Normal::new(&theta, &sigma)?, Some(y.clone()))?;
            Ok(())
        })
    }
}

fn eight_schools_ref() -> (
    serde_json::Value,
    impl Fn() -> ferrax_infer::Result<()> + Sync,
) {
    let r = load("posteriors.json");
    let m = r["models"]["eight_schools_noncentered"].clone();
    let model = eight_schools(arr64(&m["data"]["y"]), arr64(&m["data"]["sigma"]));
    (m, model)
}

fn logreg() -> (
    serde_json::Value,
    impl Fn() -> ferrax_infer::Result<()> + Sync,
) {
    let r = load("posteriors.json");
    let m = r["models"]["logistic_regression"].clone();
    let d = load("logreg_data.json");
    let n = d["N"].as_u64().unwrap() as usize;
    let dd = d["D"].as_u64().unwrap() as usize;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d["X_f32_le_base64"].as_str().unwrap())
        .unwrap();
    let x: Vec<f64> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect();
    assert_eq!(x.len(), n * dd);
    let y: Vec<f64> = d["y"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| if c == '1' { 1.0 } else { 0.0 })
        .collect();
    let x = Array::from_vec(vec![n, dd], x).unwrap();
    let y = Array::from_vec(vec![n], y).unwrap();
    let model = move || -> ferrax_infer::Result<()> {
        let w = sample(
            "w",
            Normal::new(0.0, 1.0)?.expand(&[dd])?.to_event(1)?,
            None,
        )?;
        // X . w as a broadcast product and a row sum.
        let logits = x.mul(&w)?.sum_last(1)?;
        sample(
            "y",
            Bernoulli::logits(logits)?.to_event(1)?,
            Some(y.clone()),
        )?;
        Ok(())
    };
    (m, model)
}

fn check_potential(m: &serde_json::Value, pot: &Potential) {
    for p in m["log_density_checks"]["points"].as_array().unwrap() {
        let mut z = vec![0.0; pot.dim()];
        let mut gw = vec![0.0; pot.dim()];
        for s in pot.sites() {
            let (_, v) = flat(&p["unconstrained"][&s.name]);
            z[s.offset..s.offset + s.size].copy_from_slice(&v);
            let (_, g) = flat(&p["grad"][&s.name]);
            gw[s.offset..s.offset + s.size].copy_from_slice(&g);
        }
        let (pe, g) = pot.value_and_grad(&z).unwrap();
        close(
            &[pe],
            &[num(&p["potential_energy"])],
            1e-10,
            1e-10,
            "potential energy",
        );
        close(&g, &gw, 1e-8, 1e-8, "potential gradient");
    }
}

#[test]
fn potential_matches_numpyro_eight_schools() {
    let (m, model) = eight_schools_ref();
    let pot = Potential::new(&model, &Key::new(0)).unwrap();
    assert_eq!(pot.dim(), 10);
    check_potential(&m, &pot);
}

#[test]
fn potential_matches_numpyro_logistic_regression() {
    let (m, model) = logreg();
    let pot = Potential::new(&model, &Key::new(0)).unwrap();
    assert_eq!(pot.dim(), 25);
    check_potential(&m, &pot);
}

#[test]
fn leapfrog_conserves_energy_and_is_reversible() {
    let (_, model) = eight_schools_ref();
    let pot = Potential::new(&model, &Key::new(0)).unwrap();
    let z: Vec<f64> = (0..10).map(|i| 0.1 * i as f64 - 0.3).collect();
    let (pe, grad) = pot.value_and_grad(&z).unwrap();
    let r: Vec<f64> = (0..10).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.4).collect();
    let inv_mass = vec![1.0; 10];
    let p0 = Point {
        z: z.clone(),
        r,
        pe,
        grad,
    };
    let h0 = p0.pe + kinetic(&p0.r, &inv_mass);
    let mut p = p0.clone();
    let mut max_err: f64 = 0.0;
    for _ in 0..50 {
        p = leapfrog(&p, 0.05, &inv_mass, &pot).unwrap();
        max_err = max_err.max((p.pe + kinetic(&p.r, &inv_mass) - h0).abs());
    }
    assert!(max_err < 0.05, "energy error {max_err}");
    for _ in 0..50 {
        p = leapfrog(&p, -0.05, &inv_mass, &pot).unwrap();
    }
    close(&p.z, &p0.z, 1e-8, 1e-8, "reversibility");
}

fn mean_sd(x: &[Vec<f64>]) -> (f64, f64) {
    let all: Vec<f64> = x.iter().flatten().copied().collect();
    let n = all.len() as f64;
    let m = all.iter().sum::<f64>() / n;
    (
        m,
        (all.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

#[test]
fn nuts_recovers_standard_normal_and_beta_bernoulli() {
    let model = || {
        sample(
            "x",
            Normal::new(
                Array::from_vec(vec![3], vec![0.0f64, 1.0, -2.0]).unwrap(),
                Array::from_vec(vec![3], vec![1.0f64, 0.5, 3.0]).unwrap(),
            )?,
            None,
        )
    };
    let run = Mcmc::new(Kernel::nuts(), 300, 1000)
        .num_chains(2)
        .run(&Key::new(4), &model)
        .unwrap();
    let x = run.site("x").unwrap();
    for (i, (m, s)) in [(0.0, 1.0), (1.0, 0.5), (-2.0, 3.0)].iter().enumerate() {
        let row = ferrax_infer::diagnostics::SummaryRow::of(&x.element(i));
        assert!(
            (row.mean - m).abs() < 4.0 * row.mcse_mean.max(0.02 * s),
            "x[{i}] mean {} vs {m}",
            row.mean
        );
        assert!((row.sd - s).abs() < 0.1 * s, "x[{i}] sd {} vs {s}", row.sd);
    }
    // Beta(1, 1) prior, 7 successes in 10: posterior Beta(8, 4), mean 2/3.
    let data = Array::from_vec(
        vec![10],
        vec![1.0f64, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0],
    )
    .unwrap();
    let bb = || -> ferrax_infer::Result<()> {
        let p = sample("p", Beta::new(1.0, 1.0)?, None)?;
        plate("n", 10, None, |_| {
            sample("y", Bernoulli::probs(&p)?, Some(data.clone()))
        })?;
        Ok(())
    };
    let run = Mcmc::new(Kernel::nuts(), 300, 1000)
        .num_chains(2)
        .run(&Key::new(5), &bb)
        .unwrap();
    let row = ferrax_infer::diagnostics::SummaryRow::of(&run.site("p").unwrap().element(0));
    let sd = (8.0 * 4.0 / (144.0 * 13.0f64)).sqrt();
    assert!(
        (row.mean - 2.0 / 3.0).abs() < 4.0 * row.mcse_mean,
        "p mean {}",
        row.mean
    );
    assert!((row.sd - sd).abs() < 0.1 * sd, "p sd {} vs {sd}", row.sd);
}

fn check_site(name: &str, x: &[Vec<f64>], want: &serde_json::Value) -> String {
    let row = ferrax_infer::diagnostics::SummaryRow::of(x);
    let (m, sd) = mean_sd(x);
    let bound_m = 4.0 * (num(&want["mcse_mean"]).powi(2) + row.mcse_mean.powi(2)).sqrt();
    let bound_s = 4.0 * (num(&want["mcse_sd"]).powi(2) + row.mcse_sd.powi(2)).sqrt();
    assert!(
        (m - num(&want["mean"])).abs() <= bound_m,
        "{name}: mean {m} vs {} (bound {bound_m})",
        num(&want["mean"])
    );
    assert!(
        (sd - num(&want["sd"])).abs() <= bound_s,
        "{name}: sd {sd} vs {} (bound {bound_s})",
        num(&want["sd"])
    );
    assert!(row.r_hat < 1.01, "{name}: r_hat {}", row.r_hat);
    format!(
        "{name}: mean {m:.4} (ref {:.4}), sd {sd:.4} (ref {:.4}), r_hat {:.4}, ess_bulk {:.0}",
        num(&want["mean"]),
        num(&want["sd"]),
        row.r_hat,
        row.ess_bulk
    )
}

#[test]
fn eight_schools_posterior_matches_numpyro() {
    let (m, model) = eight_schools_ref();
    let t = std::time::Instant::now();
    let run = Mcmc::new(Kernel::nuts().target_accept_prob(0.9), 500, 500)
        .num_chains(2)
        .run(&Key::new(11), &model)
        .unwrap();
    let post = &m["posterior"];
    let mut lines = vec![
        check_site("mu", &run.site("mu").unwrap().element(0), &post["mu"]),
        check_site("tau", &run.site("tau").unwrap().element(0), &post["tau"]),
    ];
    let theta = run.site("theta").unwrap();
    for j in 0..8 {
        lines.push(check_site(
            &format!("theta[{j}]"),
            &theta.element(j),
            &post["theta"][j],
        ));
    }
    eprintln!(
        "{}\ndivergences: {}, time {:?}",
        lines.join("\n"),
        run.divergences(),
        t.elapsed()
    );
    eprintln!("{}", run.summary());
}

#[test]
fn logistic_regression_posterior_matches_numpyro() {
    let (m, model) = logreg();
    let t = std::time::Instant::now();
    // Four chains: split R-hat < 1.01 needs more than two short chains to be reliable.
    let run = Mcmc::new(Kernel::nuts().target_accept_prob(0.9), 500, 500)
        .num_chains(4)
        .run(&Key::new(12), &model)
        .unwrap();
    let w = run.site("w").unwrap();
    let mut lines = Vec::new();
    for j in 0..5 {
        lines.push(check_site(
            &format!("w[{j}]"),
            &w.element(j),
            &m["posterior"]["w"][j],
        ));
    }
    eprintln!(
        "{}\ndivergences: {}, time {:?}",
        lines.join("\n"),
        run.divergences(),
        t.elapsed()
    );
}
