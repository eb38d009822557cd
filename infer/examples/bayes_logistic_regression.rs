//! Bayesian logistic regression on the Wisconsin breast-cancer data (embedded from
//! examples/data/breast_cancer.csv): standardized features plus an intercept, Normal(0, 1)
//! priors on the weights, NUTS with 2 chains, a summary of the leading coefficients, and
//! the posterior-predictive accuracy on the training data via `Predictive`.
//!
//! Run: `cargo run --release -p ferrax-infer --example bayes_logistic_regression`

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Bernoulli, DistExt, Normal};
use ferrax_infer::handlers::sample;
use ferrax_infer::math::{to_f64, ArrayMath};
use ferrax_infer::mcmc::{Kernel, Mcmc};
use ferrax_infer::predictive::Predictive;

const CSV: &str = include_str!("../../examples/data/breast_cancer.csv");

/// Standardized features with a leading column of ones, and labels (1 = malignant).
fn load() -> Result<(usize, usize, Vec<f64>, Vec<f64>), String> {
    let mut lines = CSV.lines();
    let head: Vec<&str> = lines.next().ok_or("empty csv")?.split(',').collect();
    let n: usize = head[0].parse().map_err(|e| format!("row count: {e}"))?;
    let d: usize = head[1].parse().map_err(|e| format!("feature count: {e}"))?;
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for (i, line) in lines.take(n).enumerate() {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("line {}: {e}", i + 2))?;
        if v.len() != d + 1 {
            return Err(format!(
                "line {}: {} fields, expected {}",
                i + 2,
                v.len(),
                d + 1
            ));
        }
        x.extend_from_slice(&v[..d]);
        // Label 0 is the first class name (malignant).
        y.push(if v[d] == 0.0 { 1.0 } else { 0.0 });
    }
    let mut xs = Vec::with_capacity(n * (d + 1));
    let (mut mean, mut sd) = (vec![0.0; d], vec![0.0; d]);
    for j in 0..d {
        mean[j] = (0..n).map(|i| x[i * d + j]).sum::<f64>() / n as f64;
        sd[j] = ((0..n)
            .map(|i| (x[i * d + j] - mean[j]).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
    }
    for i in 0..n {
        xs.push(1.0);
        for j in 0..d {
            xs.push((x[i * d + j] - mean[j]) / sd[j]);
        }
    }
    Ok((n, d + 1, xs, y))
}

fn main() -> ferrax_infer::Result<()> {
    let (n, d, x, y) = load().map_err(|e| ferrax_infer::Error::invalid("breast_cancer.csv", e))?;
    let xa = Array::from_vec(vec![n, d], x)?;
    let ya = Array::from_vec(vec![n], y.clone())?;
    let model = |obs: Option<Array>| {
        let xa = xa.clone();
        move || -> ferrax_infer::Result<()> {
            let w = sample("w", Normal::new(0.0, 1.0)?.expand(&[d])?.to_event(1)?, None)?;
            let logits = xa.mul(&w)?.sum_last(1)?;
            sample("y", Bernoulli::logits(logits)?.to_event(1)?, obs.clone())?;
            Ok(())
        }
    };
    let run = Mcmc::new(Kernel::nuts(), 500, 500)
        .num_chains(2)
        .run(&Key::new(1), &model(Some(ya)))?;
    let rows = run.summary_rows();
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "mean", "sd", "n_eff", "r_hat"
    );
    for i in 0..6 {
        let r = &rows[&format!("w[{i}]")];
        println!(
            "{:>8} {:>8.3} {:>8.3} {:>8.1} {:>8.3}",
            format!("w[{i}]"),
            r.mean,
            r.sd,
            r.ess_bulk,
            r.r_hat
        );
    }
    println!("... ({d} coefficients; w[0] is the intercept)");
    println!("divergences: {}", run.divergences());
    // Posterior predictive: P(y = 1) per patient averaged over draws.
    let pred = Predictive::from_mcmc(&run)?.run(&Key::new(2), &model(None))?;
    let ys = to_f64(&pred["y"])?;
    let draws = ys.len() / n;
    let mut correct = 0;
    for i in 0..n {
        let p = (0..draws).map(|s| ys[s * n + i]).sum::<f64>() / draws as f64;
        if (p > 0.5) == (y[i] == 1.0) {
            correct += 1;
        }
    }
    println!(
        "posterior-predictive training accuracy: {:.1}% ({draws} draws)",
        100.0 * correct as f64 / n as f64
    );
    Ok(())
}
