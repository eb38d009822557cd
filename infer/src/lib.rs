//! ferrax-infer: NumPyro-style probabilistic programming on ferrax.
//!
//! - [`dist`]: distributions with `log_prob` built from ferrax ops (so log densities trace,
//!   compile and differentiate), `sample` from a PRNG [`Key`](ferrax_core::random::Key),
//!   batch and event shapes, `to_event`, `expand`, masking.
//! - [`constraints`] and [`transforms`]: supports and the bijections (`biject_to`) that
//!   inference uses to work in unconstrained space.
//! - [`handlers`]: models are Rust closures calling `sample`, `param`, `deterministic`,
//!   `factor` and `plate`; effect handlers (`seed`, `trace`, `substitute`, `condition`,
//!   `block`, `replay`, `scale`, `mask`) change what those calls do.
//! - [`potential`]: the model's unconstrained log density and gradient, traced once and
//!   compiled.
//! - [`mcmc`]: HMC and NUTS (diagonal or dense mass matrix) with Stan-style warmup,
//!   chains in parallel threads or vectorized (one vmapped compiled potential for all).
//! - [`diagnostics`]: split R-hat, ESS (bulk/tail), MCSE, HPDI, summary table.
//! - [`svi`] and [`guides`]: Trace_ELBO / TraceMeanField_ELBO, staged and compiled once,
//!   with AutoNormal, AutoDiagonalNormal, AutoMultivariateNormal,
//!   AutoLowRankMultivariateNormal, AutoDelta and AutoLaplaceApproximation guides.
//! - [`predictive`]: prior and posterior predictive draws.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::{HalfCauchy, Normal};
//! use ferrax_infer::handlers::{deterministic, plate, sample};
//! use ferrax_infer::math::ArrayMath;
//! use ferrax_infer::mcmc::{Kernel, Mcmc};
//!
//! # fn main() -> ferrax_infer::Result<()> {
//! let y = Array::from_vec(vec![4], vec![1.0f64, 2.5, 0.3, 1.7]).unwrap();
//! let model = || -> ferrax_infer::Result<()> {
//!     let mu = sample("mu", Normal::new(0.0, 5.0)?, None)?;
//!     let sigma = sample("sigma", HalfCauchy::new(2.0)?, None)?;
//!     plate("data", 4, None, |_| {
//!         sample("y", Normal::new(&mu, &sigma)?, Some(y.clone()))?;
//!         Ok(())
//!     })?;
//!     deterministic("mu2", mu.mul(&mu)?)?;
//!     Ok(())
//! };
//! let run = Mcmc::new(Kernel::nuts(), 100, 100).run(&Key::new(1), &model)?;
//! assert_eq!(run.site("mu").unwrap().num_draws, 100);
//! println!("{}", run.summary());
//! # Ok(())
//! # }
//! ```

pub mod constraints;
pub mod diagnostics;
pub mod dist;
mod error;
pub mod guides;
mod guides_joint;
pub mod handlers;
pub mod math;
pub mod mcmc;
pub mod potential;
pub mod predictive;
pub mod svi;
pub mod transforms;

pub use error::{Error, Result};
