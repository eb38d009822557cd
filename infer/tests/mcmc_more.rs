//! Dense mass matrix (kernel pieces against naive linear algebra, and NUTS on a strongly
//! correlated Gaussian), the vectorized chain method (same draws as sequential chains,
//! with gradient evaluations shared across chains), and init strategies.

mod common;
use common::*;
use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Exponential, MultivariateNormal, Normal};
use ferrax_infer::handlers::sample;
use ferrax_infer::mcmc::nuts::{kinetic, leapfrog, velocity, Point};
use ferrax_infer::mcmc::{ChainMethod, InitStrategy, Kernel, Mcmc};

const SD: [f64; 3] = [1.0, 2.0, 0.5];
const RHO: f64 = 0.95;
const LOC: [f64; 3] = [1.0, -1.0, 0.5];

fn cov() -> Vec<f64> {
    let mut c = vec![0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            let r = if i == j { 1.0 } else { RHO };
            c[i * 3 + j] = r * SD[i] * SD[j];
        }
    }
    c
}

fn mvn_model() -> impl Fn() -> ferrax_infer::Result<()> + Sync {
    let l = ferrax_infer::mcmc::nuts::cholesky(&cov(), 3).unwrap();
    let loc = Array::from_vec(vec![3], LOC.to_vec()).unwrap();
    let tril = Array::from_vec(vec![3, 3], l).unwrap();
    move || {
        sample(
            "x",
            MultivariateNormal::new(loc.clone(), tril.clone())?,
            None,
        )?;
        Ok(())
    }
}

#[test]
fn dense_kernel_pieces_match_naive_linear_algebra() {
    let m = cov();
    let r = [0.3, -1.2, 0.7];
    let v = velocity(&r, &m);
    for i in 0..3 {
        let want: f64 = (0..3).map(|j| m[i * 3 + j] * r[j]).sum();
        assert!((v[i] - want).abs() < 1e-14);
    }
    let k: f64 = 0.5 * (0..3).map(|i| r[i] * v[i]).sum::<f64>();
    assert!((kinetic(&r, &m) - k).abs() < 1e-14);
    // Leapfrog with a dense metric on U(z) = z^T A z / 2 conserves energy to O(eps^2) and
    // is reversible.
    let a = [2.0, 0.3, 0.0, 0.3, 1.0, 0.2, 0.0, 0.2, 0.5];
    let f = |z: &[f64]| -> ferrax_infer::Result<(f64, Vec<f64>)> {
        let g: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * z[j]).sum())
            .collect();
        let u = 0.5 * z.iter().zip(&g).map(|(x, y)| x * y).sum::<f64>();
        Ok((u, g))
    };
    let z0 = vec![0.5, -0.4, 1.0];
    let (pe, grad) = f(&z0).unwrap();
    let p0 = Point {
        z: z0.clone(),
        r: r.to_vec(),
        pe,
        grad,
    };
    let h0 = p0.pe + kinetic(&p0.r, &m);
    let mut p = p0.clone();
    let mut err: f64 = 0.0;
    for _ in 0..100 {
        p = leapfrog(&p, 0.02, &m, &f).unwrap();
        err = err.max((p.pe + kinetic(&p.r, &m) - h0).abs());
    }
    assert!(err < 1e-2, "dense energy error {err}");
    for _ in 0..100 {
        p = leapfrog(&p, -0.02, &m, &f).unwrap();
    }
    close(&p.z, &p0.z, 1e-10, 1e-10, "dense reversibility");
}

#[test]
fn nuts_dense_mass_recovers_correlated_mvn() {
    let model = mvn_model();
    let run = Mcmc::new(Kernel::nuts().dense_mass(true), 500, 1000)
        .num_chains(2)
        .run(&Key::new(11), &model)
        .unwrap();
    let x = run.site("x").unwrap();
    let n = (x.num_chains * x.num_draws) as f64;
    let mut means = [0.0; 3];
    for i in 0..3 {
        let row = ferrax_infer::diagnostics::SummaryRow::of(&x.element(i));
        assert!(
            (row.mean - LOC[i]).abs() < 4.0 * row.mcse_mean,
            "x[{i}] mean {} vs {} (mcse {})",
            row.mean,
            LOC[i],
            row.mcse_mean
        );
        assert!((row.sd - SD[i]).abs() < 0.1 * SD[i], "x[{i}] sd {}", row.sd);
        assert!(row.r_hat < 1.01, "x[{i}] r_hat {}", row.r_hat);
        means[i] = row.mean;
    }
    let all: Vec<Vec<f64>> = (0..3)
        .map(|i| x.element(i).into_iter().flatten().collect())
        .collect();
    let c01: f64 = all[0]
        .iter()
        .zip(&all[1])
        .map(|(a, b)| (a - means[0]) * (b - means[1]))
        .sum::<f64>()
        / (n - 1.0);
    let var = |i: usize| all[i].iter().map(|a| (a - means[i]).powi(2)).sum::<f64>() / (n - 1.0);
    let r01 = c01 / (var(0) * var(1)).sqrt();
    assert!((r01 - RHO).abs() < 0.02, "correlation {r01}");
    // The adapted inverse mass matrix is the full posterior covariance.
    for c in &run.chains {
        assert_eq!(c.inverse_mass_matrix.len(), 9);
        for (k, (g, w)) in c.inverse_mass_matrix.iter().zip(cov()).enumerate() {
            assert!(
                (g - w).abs() < 0.3 * w.abs(),
                "inverse mass [{k}] {g} vs {w}"
            );
        }
    }
    assert_eq!(run.divergences(), 0);
    // The dense metric decorrelates the target: fewer leapfrog steps than diagonal.
    let steps = |r: &ferrax_infer::mcmc::McmcResult| {
        let v: Vec<usize> = r.chains.iter().flat_map(|c| c.num_steps.clone()).collect();
        v.iter().sum::<usize>() as f64 / v.len() as f64
    };
    let diag = Mcmc::new(Kernel::nuts(), 500, 1000)
        .num_chains(2)
        .run(&Key::new(11), &model)
        .unwrap();
    assert!(
        steps(&run) < 0.6 * steps(&diag),
        "dense {} vs diagonal {} steps",
        steps(&run),
        steps(&diag)
    );
}

#[test]
fn vectorized_chains_match_sequential_and_share_evaluations() {
    let model = mvn_model();
    let mk = |m| {
        Mcmc::new(Kernel::nuts(), 100, 300)
            .num_chains(3)
            .chain_method(m)
            .run(&Key::new(21), &model)
            .unwrap()
    };
    let vec_run = mk(ChainMethod::Vectorized);
    let seq_run = mk(ChainMethod::Sequential);
    let a = &vec_run.site("x").unwrap().data;
    let b = &seq_run.site("x").unwrap().data;
    close(a, b, 1e-9, 1e-9, "vectorized vs sequential draws");
    // Every chain's gradient evaluations went through shared batches: fewer batched runs
    // than the kept draws' leapfrog steps of all chains together.
    let steps: usize = vec_run
        .chains
        .iter()
        .map(|c| c.num_steps.iter().sum::<usize>())
        .sum();
    assert!(vec_run.vectorized_batches > 0);
    assert!(
        vec_run.vectorized_batches < steps,
        "{} batches for {steps} steps",
        vec_run.vectorized_batches
    );
    assert_eq!(seq_run.vectorized_batches, 0);
}

#[test]
fn init_strategies() {
    let model = || -> ferrax_infer::Result<()> {
        sample("x", Normal::new(3.0, 1.0)?, None)?;
        sample("s", Exponential::new(1.0)?, None)?;
        Ok(())
    };
    let get = |init| {
        let v = Mcmc::new(Kernel::nuts().init(init), 10, 10)
            .init_params(&Key::new(2), &model)
            .unwrap();
        (vals(&v["x"])[0], vals(&v["s"])[0])
    };
    let (x, s) = get(InitStrategy::Feasible);
    assert_eq!((x, s), (0.0, 1.0));
    // Medians of 301 prior draws: x -> 3, s -> ln 2 (sd of a sample median ~ 1.25/sqrt(n)
    // times the sd, so 0.3 is > 4 standard errors).
    let (x, s) = get(InitStrategy::Median { num_samples: 301 });
    assert!((x - 3.0).abs() < 0.3, "median x {x}");
    assert!((s - 2f64.ln()).abs() < 0.3, "median s {s}");
    let (x, s) = get(InitStrategy::Uniform { radius: 2.0 });
    assert!((-2.0..2.0).contains(&x), "uniform x {x}");
    assert!(s > (-2f64).exp() && s < 2f64.exp(), "uniform s {s}");
}

#[test]
fn thinning_progress_bars_and_hmc_dense() {
    let model = || sample("x", Normal::new(1.0, 2.0)?, None);
    let run = Mcmc::new(Kernel::nuts(), 100, 200)
        .num_chains(2)
        .thinning(3)
        .progress_bar(true)
        .run(&Key::new(31), &model)
        .unwrap();
    let x = run.site("x").unwrap();
    assert_eq!((x.num_chains, x.num_draws), (2, 200));
    for c in &run.chains {
        assert_eq!(c.tree_depth.len(), 200);
        assert_eq!(c.num_steps.len(), 200);
        assert!(c.tree_depth.iter().all(|&d| (1..=10).contains(&d)));
    }
    // Fixed-length HMC with a dense metric on the correlated Gaussian.
    let mvn = mvn_model();
    let run = Mcmc::new(Kernel::hmc(8).dense_mass(true), 400, 800)
        .num_chains(2)
        .run(&Key::new(32), &mvn)
        .unwrap();
    let x = run.site("x").unwrap();
    for i in 0..3 {
        let row = ferrax_infer::diagnostics::SummaryRow::of(&x.element(i));
        assert!(
            (row.mean - LOC[i]).abs() < 4.0 * row.mcse_mean,
            "HMC x[{i}] mean {} (mcse {})",
            row.mean,
            row.mcse_mean
        );
        assert!(
            (row.sd - SD[i]).abs() < 0.15 * SD[i],
            "HMC x[{i}] sd {}",
            row.sd
        );
    }
}

/// NUTS on an LKJCholesky latent (through the corr_cholesky bijection and its Jacobian)
/// reproduces the law of the onion-method sampler: the off-diagonal correlations have
/// variance 1 / (2a + 1), a = eta - 1 + D/2.
#[test]
fn nuts_on_lkj_cholesky_matches_its_sampler() {
    use ferrax_infer::dist::{Distribution, LkjCholesky};
    let model = || sample("L", LkjCholesky::new(3, 2.0)?, None);
    let run = Mcmc::new(Kernel::nuts(), 300, 1000)
        .num_chains(2)
        .run(&Key::new(41), &model)
        .unwrap();
    let l = run.site("L").unwrap();
    let want = 1.0 / (2.0 * 2.5 + 1.0);
    // L[1][0] is corr[1][0]; L[2][0] is corr[2][0].
    for idx in [3usize, 6] {
        let row = ferrax_infer::diagnostics::SummaryRow::of(&l.element(idx));
        let v = row.sd * row.sd + row.mean * row.mean;
        assert!(row.mean.abs() < 4.0 * row.mcse_mean, "mean {}", row.mean);
        assert!((v - want).abs() < 0.15 * want, "E[r^2] {v} vs {want}");
        assert!(row.r_hat < 1.01);
    }
    let direct = vals(
        &LkjCholesky::new(3, 2.0)
            .unwrap()
            .sample(&Key::new(42), &[4000])
            .unwrap(),
    );
    let v: f64 = direct.chunks(9).map(|m| m[3] * m[3]).sum::<f64>() / 4000.0;
    assert!((v - want).abs() < 0.1 * want, "onion sampler E[r^2] {v}");
}

/// NUTS on a VonMises latent (interval support through the sigmoid bijection):
/// E[cos(theta - loc)] = I1(k) / I0(k), matched by the direct sampler too.
#[test]
fn nuts_on_von_mises_matches_mean_resultant_length() {
    use ferrax_infer::dist::{Distribution, VonMises};
    let model = || sample("t", VonMises::new(0.5, 2.0)?, None);
    let run = Mcmc::new(Kernel::nuts(), 300, 2000)
        .num_chains(2)
        .run(&Key::new(43), &model)
        .unwrap();
    let t = run.site("t").unwrap();
    // I1(2) / I0(2) from the power series.
    let (mut i0, mut i1, mut t0, mut t1) = (1.0f64, 1.0f64, 1.0f64, 1.0f64);
    for m in 1..60 {
        let mf = m as f64;
        t0 /= mf * mf;
        t1 /= mf * (mf + 1.0);
        i0 += t0;
        i1 += t1;
    }
    let want = i1 / i0;
    let c: Vec<Vec<f64>> = t
        .element(0)
        .iter()
        .map(|ch| ch.iter().map(|v| (v - 0.5).cos()).collect())
        .collect();
    let row = ferrax_infer::diagnostics::SummaryRow::of(&c);
    assert!(
        (row.mean - want).abs() < 4.0 * row.mcse_mean,
        "NUTS E[cos] {} vs {want} (mcse {})",
        row.mean,
        row.mcse_mean
    );
    let d = vals(
        &VonMises::new(0.5, 2.0)
            .unwrap()
            .sample(&Key::new(44), &[20000])
            .unwrap(),
    );
    let m = d.iter().map(|v| (v - 0.5).cos()).sum::<f64>() / 20000.0;
    assert!((m - want).abs() < 0.015, "sampler E[cos] {m} vs {want}");
}
