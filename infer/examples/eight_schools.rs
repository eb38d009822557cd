//! Eight schools (non-centered) with NUTS: 4 chains in parallel threads, NumPyro's
//! print_summary-style table, divergences, and the reference posterior of
//! tests/reference/posteriors.json (NumPyro, 4 x 5000 draws) for comparison.
//!
//! Run: `cargo run --release -p ferrax-infer --example eight_schools`

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{HalfCauchy, Normal};
use ferrax_infer::handlers::{deterministic, plate, sample};
use ferrax_infer::math::ArrayMath;
use ferrax_infer::mcmc::{Kernel, Mcmc};

fn main() -> ferrax_infer::Result<()> {
    let y = Array::from_vec(
        vec![8],
        vec![28.0f64, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
    )?;
    let sigma = Array::from_vec(
        vec![8],
        vec![15.0f64, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
    )?;
    let model = || -> ferrax_infer::Result<()> {
        let mu = sample("mu", Normal::new(0.0, 5.0)?, None)?;
        let tau = sample("tau", HalfCauchy::new(5.0)?, None)?;
        plate("J", 8, None, |_| {
            let tt = sample("theta_tilde", Normal::new(0.0, 1.0)?, None)?;
            let theta = deterministic("theta", mu.add(&tau.mul(&tt)?)?)?;
            sample("obs", Normal::new(&theta, &sigma)?, Some(y.clone()))?;
            Ok(())
        })
    };
    let run = Mcmc::new(Kernel::nuts().target_accept_prob(0.9), 1000, 2000)
        .num_chains(4)
        .progress_bar(true)
        .run(&Key::new(0), &model)?;
    println!("{}", run.summary());
    for (i, c) in run.chains.iter().enumerate() {
        let depth = c.tree_depth.iter().sum::<usize>() as f64 / c.tree_depth.len() as f64;
        println!(
            "chain {i}: step size {:.3}, mean tree depth {depth:.2}, divergences {} (warmup {}), {:.2?} sampling",
            c.step_size, c.divergences, c.warmup_divergences, c.sample_time
        );
    }
    println!("NumPyro reference (4 x 5000 draws): mu 4.41 +- 3.32, tau 3.58 +- 3.19");
    Ok(())
}
