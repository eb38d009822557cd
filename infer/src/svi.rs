//! Stochastic variational inference (NumPyro's `SVI`): fit a [`Guide`]'s parameters by
//! maximizing the evidence lower bound [`TraceElbo`] (NumPyro's `Trace_ELBO`) with an
//! Optax-style optimizer from `ferrax-optim`.
//!
//! One step draws the guide's latent values with reparameterized samplers (so they are
//! differentiable functions of the parameters), scores them under the model and the guide,
//! and differentiates `-(log p(x, z) - log q(z))` with `ferrax_core::ad::value_and_grad`.
//! Parameters with a constraint (an `AutoNormal` scale) are optimized in unconstrained
//! space and mapped onto their set before every run of the guide.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::Normal;
//! use ferrax_infer::guides::AutoNormal;
//! use ferrax_infer::handlers::{plate, sample};
//! use ferrax_infer::svi::{Svi, TraceElbo};
//!
//! # fn main() -> ferrax_infer::Result<()> {
//! let y = Array::from_vec(vec![4], vec![1.0f64, 1.5, 0.5, 1.0]).unwrap();
//! let model = move || -> ferrax_infer::Result<()> {
//!     let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
//!     plate("data", 4, None, |_| {
//!         sample("y", Normal::new(&mu, 1.0)?, Some(y.clone()))?;
//!         Ok(())
//!     })?;
//!     Ok(())
//! };
//! let mut svi = Svi::new(model, AutoNormal::new(), ferrax_optim::adam(0.05), TraceElbo::new(1));
//! let res = svi.run(&Key::new(0), 300)?;
//! // Posterior mean: sum(y) / (n + 1) = 0.8.
//! let loc = res.params["auto_mu_loc"].to_vec::<f64>()?[0];
//! assert!((loc - 0.8).abs() < 0.15, "{loc}");
//! assert_eq!(res.losses.len(), 300);
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use crate::guides::Guide;
use crate::handlers::{replay, seed, substitute, trace, SiteKind};
use crate::math::{to_f64, ArrayMath};
use crate::transforms::Transform;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use ferrax_optim::OptState;
use std::collections::HashMap;

/// The Monte-Carlo ELBO estimator with reparameterized samples (NumPyro's `Trace_ELBO`):
/// the loss is `-(1/P) sum_p [log p(x, z_p) - log q(z_p)]` over `P` particles `z_p ~ q`.
#[derive(Clone, Copy, Debug)]
pub struct TraceElbo {
    num_particles: usize,
}

impl Default for TraceElbo {
    fn default() -> Self {
        TraceElbo::new(1)
    }
}

impl TraceElbo {
    /// The estimator with `num_particles` draws per step (0 is treated as 1).
    pub fn new(num_particles: usize) -> TraceElbo {
        TraceElbo {
            num_particles: num_particles.max(1),
        }
    }
    /// Number of particles per estimate.
    pub fn num_particles(&self) -> usize {
        self.num_particles
    }

    /// The loss (negative ELBO, an `f64` scalar) at the constrained parameter values
    /// `params`, drawing the guide's latent values from `key`. Built from array ops only,
    /// so it traces and differentiates with respect to `params`.
    pub fn loss<R>(
        &self,
        key: &Key,
        params: &HashMap<String, Array>,
        model: &(impl Fn() -> Result<R> + ?Sized),
        guide: &(impl Guide + ?Sized),
    ) -> Result<Array> {
        let keys = key.split(self.num_particles)?;
        let mut total: Option<Array> = None;
        for k in keys {
            let (_, gtr) = trace(|| seed(k, || substitute(params.clone(), || guide.call())))?;
            // The model replays the guide's draws; its own latent sites the guide missed
            // would have no key, and `sample` reports them by name.
            let (_, mtr) = trace(|| replay(&gtr, || substitute(params.clone(), model)))?;
            for s in mtr.sites() {
                if s.kind == SiteKind::Sample && !s.is_observed && gtr.get(&s.name).is_none() {
                    return Err(Error::site(
                        &s.name,
                        "latent site of the model that the guide does not sample",
                    ));
                }
            }
            let elbo = mtr
                .log_prob_sum()?
                .cast(DType::F64)?
                .sub(&gtr.log_prob_sum()?.cast(DType::F64)?)?;
            total = Some(match total {
                None => elbo,
                Some(t) => t.add(&elbo)?,
            });
        }
        let total = total.ok_or_else(|| Error::invalid("Trace_ELBO", "no particles"))?;
        Ok(total.divc(-(self.num_particles as f64))?)
    }
}

/// The optimizer's view of the parameters: unconstrained leaves in a fixed order, the map
/// onto each parameter's set, and the optimizer state.
#[derive(Clone, Debug)]
pub struct SviState {
    names: Vec<String>,
    transforms: Vec<Transform>,
    raw: Vec<Array>,
    opt_state: OptState,
    key: Key,
    step: usize,
}

impl SviState {
    /// Number of optimization steps taken.
    pub fn step(&self) -> usize {
        self.step
    }
    /// Parameter names, in optimizer order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// The unconstrained parameter values the optimizer updates.
    pub fn unconstrained(&self) -> &[Array] {
        &self.raw
    }
    /// The parameters, each mapped onto its set (what the guide and model see).
    pub fn params(&self) -> Result<HashMap<String, Array>> {
        constrain(&self.names, &self.transforms, &self.raw)
    }
}

fn constrain(
    names: &[String],
    transforms: &[Transform],
    raw: &[Array],
) -> Result<HashMap<String, Array>> {
    names
        .iter()
        .zip(transforms)
        .zip(raw)
        .map(|((n, t), r)| Ok((n.clone(), t.forward(r)?)))
        .collect()
}

/// The result of [`Svi::run`].
#[derive(Clone, Debug)]
pub struct SviRunResult {
    /// Fitted parameters (constrained values), by name.
    pub params: HashMap<String, Array>,
    /// The loss (negative ELBO estimate) before each step.
    pub losses: Vec<f64>,
    /// The final state, to continue optimizing with [`Svi::update`].
    pub state: SviState,
}

/// Stochastic variational inference: a model, a guide, an optimizer and a loss.
pub struct Svi<M, G> {
    model: M,
    guide: G,
    optim: ferrax_optim::Transform,
    loss: TraceElbo,
}

impl<M, G: std::fmt::Debug> std::fmt::Debug for Svi<M, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Svi")
            .field("guide", &self.guide)
            .field("optim", &self.optim)
            .field("loss", &self.loss)
            .finish()
    }
}

impl<M, R, G> Svi<M, G>
where
    M: Fn() -> Result<R>,
    G: Guide,
{
    /// Builds it (nothing runs until [`Svi::init`] or [`Svi::run`]).
    pub fn new(model: M, guide: G, optim: ferrax_optim::Transform, loss: TraceElbo) -> Self {
        Svi {
            model,
            guide,
            optim,
            loss,
        }
    }
    /// The guide (set up after [`Svi::init`]).
    pub fn guide(&self) -> &G {
        &self.guide
    }
    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Runs the model once to set up the guide, then guide and model once more to collect
    /// every `param` site and its initial value; returns the optimizer's starting state.
    pub fn init(&mut self, key: &Key) -> Result<SviState> {
        let ks = key.split(4)?;
        let (_, proto) = trace(|| seed(ks[0].clone(), &self.model))?;
        self.guide.setup(&proto, &ks[1])?;
        let (_, gtr) = trace(|| seed(ks[2].clone(), || self.guide.call()))?;
        let (_, mtr) = trace(|| replay(&gtr, || seed(ks[2].clone(), &self.model)))?;
        let pt = self.guide.param_transforms();
        let mut names = Vec::new();
        let mut transforms = Vec::new();
        let mut raw = Vec::new();
        for s in gtr.sites().iter().chain(mtr.sites()) {
            if s.kind != SiteKind::Param || names.contains(&s.name) {
                continue;
            }
            let v = s
                .value
                .as_ref()
                .ok_or_else(|| Error::site(&s.name, "param site without a value"))?;
            if !v.dtype().is_float() {
                return Err(Error::site(
                    &s.name,
                    format!("parameters must be float arrays, got {}", v.dtype()),
                ));
            }
            let t = pt.get(&s.name).cloned().unwrap_or(Transform::Identity);
            let u = t.inverse(v)?;
            if to_f64(&u)?.iter().any(|x| !x.is_finite()) {
                return Err(Error::site(
                    &s.name,
                    "the initial value is outside the parameter's constraint",
                ));
            }
            names.push(s.name.clone());
            transforms.push(t);
            raw.push(u);
        }
        let opt_state = self.optim.init(&raw)?;
        Ok(SviState {
            names,
            transforms,
            raw,
            opt_state,
            key: ks[3].clone(),
            step: 0,
        })
    }

    /// The loss at the current parameters and its gradient with respect to the
    /// unconstrained parameters, with a fresh key from the state.
    fn loss_and_grad(&self, state: &mut SviState) -> Result<(f64, Vec<Array>)> {
        let (next, sub) = state.key.split2()?;
        state.key = next;
        let mut err = None;
        let r = ferrax_core::ad::value_and_grad(&state.raw, |raw: &Vec<Array>| -> Array {
            let loss = constrain(&state.names, &state.transforms, raw)
                .and_then(|p| self.loss.loss(&sub, &p, &self.model, &self.guide));
            match loss {
                Ok(l) => l,
                Err(e) => {
                    // The closure must return an array; the error is carried out here and
                    // reported instead of the (meaningless) result.
                    err = Some(e);
                    Array::scalar(0.0f64)
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let (loss, grads) = r?;
        let l = to_f64(&loss)?.first().copied().unwrap_or(f64::NAN);
        Ok((l, grads))
    }

    /// One optimization step; returns the loss before the step. A non-finite loss or
    /// gradient is an error and leaves the state's parameters unchanged.
    pub fn update(&self, state: &mut SviState) -> Result<f64> {
        let (loss, grads) = self.loss_and_grad(state)?;
        let finite = loss.is_finite()
            && grads
                .iter()
                .map(|g| to_f64(g).map_err(Error::from))
                .collect::<Result<Vec<_>>>()?
                .iter()
                .all(|g| g.iter().all(|x| x.is_finite()));
        if !finite {
            return Err(Error::invalid(
                "svi",
                format!(
                    "step {}: the loss or its gradient is not finite (loss {loss}); try a smaller learning rate or a better initialization",
                    state.step
                ),
            ));
        }
        let mut opt_state = state.opt_state.clone();
        let updates = self
            .optim
            .update(&grads, &mut opt_state, Some(&state.raw))?;
        state.raw = ferrax_optim::apply_updates(&state.raw, &updates)?;
        state.opt_state = opt_state;
        state.step += 1;
        Ok(loss)
    }

    /// The loss at the current parameters (a fresh Monte-Carlo estimate), without a step.
    pub fn evaluate(&self, state: &mut SviState) -> Result<f64> {
        let (next, sub) = state.key.split2()?;
        state.key = next;
        let p = state.params()?;
        Ok(
            to_f64(&self.loss.loss(&sub, &p, &self.model, &self.guide)?)?
                .first()
                .copied()
                .unwrap_or(f64::NAN),
        )
    }

    /// [`Svi::init`] from `key`, then `steps` updates: the fitted parameters and the loss
    /// before every step.
    pub fn run(&mut self, key: &Key, steps: usize) -> Result<SviRunResult> {
        let mut state = self.init(key)?;
        let mut losses = Vec::with_capacity(steps);
        for _ in 0..steps {
            losses.push(self.update(&mut state)?);
        }
        Ok(SviRunResult {
            params: state.params()?,
            losses,
            state,
        })
    }
}
