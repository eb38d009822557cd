//! A hierarchical (partially pooled) normal model with nested plates: J groups with
//! group means drawn around a global mean, observations in an inner plate indexed by
//! group. Sampled with NUTS using the `vectorized` chain method (the chains' gradients
//! are evaluated together by one vmapped compiled potential), then posterior-predictive
//! draws for a new observation of each group.
//!
//! Run: `cargo run --release -p ferrax-infer --example hierarchical`

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{HalfNormal, Normal};
use ferrax_infer::handlers::{plate, sample};
use ferrax_infer::math::{to_f64, ArrayMath};
use ferrax_infer::mcmc::{ChainMethod, Kernel, Mcmc};
use ferrax_infer::predictive::Predictive;

const J: usize = 6;

fn main() -> ferrax_infer::Result<()> {
    // Synthetic data (deterministic): group g has true mean 1 + 0.8 g, noise sd 1.
    let sizes = [3usize, 10, 5, 20, 2, 8];
    let mut group = Vec::new();
    let mut y = Vec::new();
    for (g, &n) in sizes.iter().enumerate() {
        for i in 0..n {
            group.push(g);
            y.push(1.0 + 0.8 * g as f64 + ((i * 7 + g * 3) as f64 * 1.3).sin());
        }
    }
    let n = y.len();
    // One-hot group membership, so alpha[group] is a broadcast product and a row sum.
    let mut onehot = vec![0.0f64; n * J];
    for (i, &g) in group.iter().enumerate() {
        onehot[i * J + g] = 1.0;
    }
    let onehot = Array::from_vec(vec![n, J], onehot)?;
    let ya = Array::from_vec(vec![n], y)?;
    let model = |obs: Option<Array>| {
        let onehot = onehot.clone();
        move || -> ferrax_infer::Result<()> {
            let mu = sample("mu", Normal::new(0.0, 5.0)?, None)?;
            let tau = sample("tau", HalfNormal::new(2.0)?, None)?;
            let alpha = plate("groups", J, None, |_| {
                sample("alpha", Normal::new(&mu, &tau)?, None)
            })?;
            let sigma = sample("sigma", HalfNormal::new(2.0)?, None)?;
            let m = onehot.mul(&alpha)?.sum_last(1)?;
            plate("obs", n, None, |_| {
                sample("y", Normal::new(&m, &sigma)?, obs.clone())
            })?;
            Ok(())
        }
    };
    let run = Mcmc::new(Kernel::nuts().target_accept_prob(0.9), 500, 1000)
        .num_chains(4)
        .chain_method(ChainMethod::Vectorized)
        .run(&Key::new(3), &model(Some(ya)))?;
    println!("{}", run.summary());
    println!(
        "{} batched potential evaluations served all 4 chains",
        run.vectorized_batches
    );
    let pred = Predictive::from_mcmc(&run)?.run(&Key::new(4), &model(None))?;
    let yp = to_f64(&pred["y"])?;
    let draws = yp.len() / n;
    let mut first = [usize::MAX; J];
    for (i, &g) in group.iter().enumerate() {
        if first[g] == usize::MAX {
            first[g] = i;
        }
    }
    for (g, &i) in first.iter().enumerate() {
        let v: Vec<f64> = (0..draws).map(|s| yp[s * n + i]).collect();
        let m = v.iter().sum::<f64>() / draws as f64;
        println!(
            "group {g} ({} obs): posterior-predictive mean of a new y {m:.2}",
            sizes[g]
        );
    }
    Ok(())
}
