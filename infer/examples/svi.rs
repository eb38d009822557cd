//! SVI on small models: beta-Bernoulli with `AutoNormal` (posterior Beta(8, 4), mean
//! 2/3), and a Bayesian linear regression with `AutoMultivariateNormal` compared with its
//! exact Gaussian posterior. The ELBO and its gradient are traced and compiled once.
//!
//! Run: `cargo run --release -p ferrax-infer --example svi`

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Bernoulli, Beta, Distribution, Normal};
use ferrax_infer::guides::{AutoMultivariateNormal, AutoNormal};
use ferrax_infer::handlers::{plate, sample};
use ferrax_infer::math::{to_f64, ArrayMath};
use ferrax_infer::svi::{Svi, TraceElbo};

fn main() -> ferrax_infer::Result<()> {
    let data = Array::from_vec(
        vec![10],
        vec![1.0f64, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0],
    )?;
    let model = move || -> ferrax_infer::Result<()> {
        let p = sample("p", Beta::new(1.0, 1.0)?, None)?;
        plate("n", 10, None, |_| {
            sample("y", Bernoulli::probs(&p)?, Some(data.clone()))
        })?;
        Ok(())
    };
    let opt = ferrax_optim::adam(0.02);
    let mut svi = Svi::new(model, AutoNormal::new(), opt, TraceElbo::new(4));
    let t = std::time::Instant::now();
    let res = svi.run(&Key::new(0), 2000)?;
    let loc = to_f64(&res.params["auto_p_loc"])?[0];
    let scale = to_f64(&res.params["auto_p_scale"])?[0];
    let u = to_f64(&Normal::new(loc, scale)?.sample(&Key::new(1), &[20000])?)?;
    let mean = u.iter().map(|u| 1.0 / (1.0 + (-u).exp())).sum::<f64>() / u.len() as f64;
    println!(
        "beta-Bernoulli: E_q[p] = {mean:.4} (exact 0.6667); 2000 steps in {:.2?}, compiled {} time(s)",
        t.elapsed(),
        svi.num_compiles()
    );

    let x: Vec<f64> = (0..12).map(|i| 0.5 + i as f64 / 8.0).collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, x)| 0.3 + 1.2 * x + 0.8 * ((i as f64) * 2.3).sin())
        .collect();
    let n = x.len();
    let xa = Array::from_vec(vec![n], x.clone())?;
    let ya = Array::from_vec(vec![n], y.clone())?;
    let lin = move || -> ferrax_infer::Result<()> {
        let a = sample("a", Normal::new(0.0, 10.0)?, None)?;
        let b = sample("b", Normal::new(0.0, 10.0)?, None)?;
        let m = a.add(&b.mul(&xa)?)?;
        plate("data", n, None, |_| {
            sample("y", Normal::new(&m, 1.0)?, Some(ya.clone()))
        })?;
        Ok(())
    };
    let mut svi = Svi::new(
        lin,
        AutoMultivariateNormal::new(),
        ferrax_optim::adam(0.02),
        TraceElbo::new(8),
    );
    let res = svi.run(&Key::new(2), 2000)?;
    let loc = to_f64(&res.params["auto_loc"])?;
    let l = to_f64(&res.params["auto_scale_tril"])?;
    // Exact posterior: precision I/100 + X^T X (noise sd 1).
    let (s1, s2): (f64, f64) = (x.iter().sum(), x.iter().map(|v| v * v).sum());
    let (t0, t1): (f64, f64) = (y.iter().sum(), x.iter().zip(&y).map(|(a, b)| a * b).sum());
    let lam = [n as f64 + 0.01, s1, s1, s2 + 0.01];
    let det = lam[0] * lam[3] - lam[1] * lam[2];
    let cov = [lam[3] / det, -lam[1] / det, -lam[1] / det, lam[0] / det];
    let mean = [cov[0] * t0 + cov[1] * t1, cov[2] * t0 + cov[3] * t1];
    println!(
        "linear regression: a = {:.3} (exact {:.3}), b = {:.3} (exact {:.3})",
        loc[0], mean[0], loc[1], mean[1]
    );
    println!(
        "  sd(a) = {:.3} (exact {:.3}), sd(b) = {:.3} (exact {:.3}), corr = {:.3} (exact {:.3})",
        l[0],
        cov[0].sqrt(),
        (l[2] * l[2] + l[3] * l[3]).sqrt(),
        cov[3].sqrt(),
        l[2] / (l[2] * l[2] + l[3] * l[3]).sqrt(),
        cov[1] / (cov[0] * cov[3]).sqrt()
    );
    Ok(())
}
