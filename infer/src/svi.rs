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
    mean_field: bool,
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
            mean_field: false,
        }
    }
    /// NumPyro's `TraceMeanField_ELBO`: as [`TraceElbo::new`], but a latent site whose
    /// model and guide distributions are both Normal (e.g. `AutoNormal` on a real site
    /// with a Normal prior) contributes `-KL(q || p)` in closed form instead of the
    /// single-sample estimate `log p(z) - log q(z)` (the same expectation; usually, not
    /// always, a lower variance).
    /// Valid when the guide's sites are independent of each other (mean field).
    pub fn mean_field(num_particles: usize) -> TraceElbo {
        TraceElbo {
            num_particles: num_particles.max(1),
            mean_field: true,
        }
    }
    /// Whether this is the mean-field variant.
    pub fn is_mean_field(&self) -> bool {
        self.mean_field
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
            let elbo = if self.mean_field {
                mean_field_elbo(&mtr, &gtr)?
            } else {
                mtr.log_prob_sum()?
                    .cast(DType::F64)?
                    .sub(&gtr.log_prob_sum()?.cast(DType::F64)?)?
            };
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
/// `KL(N(mq, sq) || N(mp, sp))` elementwise.
fn kl_normal(mq: &Array, sq: &Array, mp: &Array, sp: &Array) -> Result<Array> {
    let r = sq.div(sp)?;
    let d = mq.sub(mp)?.div(sp)?;
    Ok(r.square()?
        .add(&d.square()?)?
        .addc(-1.0)?
        .mulc(0.5)?
        .sub(&r.log()?)?)
}

/// One particle of `TraceMeanField_ELBO`: closed-form `-KL` for latent sites that are
/// Normal in both traces (same scale, no mask), sampled terms for everything else.
fn mean_field_elbo(mtr: &crate::handlers::Trace, gtr: &crate::handlers::Trace) -> Result<Array> {
    let mut acc = Array::scalar(0.0f64);
    let mut analytic: Vec<&str> = Vec::new();
    for s in mtr.sites() {
        if s.kind != SiteKind::Sample || s.is_observed || s.mask.is_some() {
            continue;
        }
        let Some(g) = gtr.get(&s.name) else { continue };
        if g.mask.is_some() || g.scale != s.scale {
            continue;
        }
        let (Some(pd), Some(qd)) = (&s.dist, &g.dist) else {
            continue;
        };
        let (Some((mp, sp)), Some((mq, sq))) = (pd.as_normal(), qd.as_normal()) else {
            continue;
        };
        let kl = kl_normal(
            &mq.cast(DType::F64)?,
            &sq.cast(DType::F64)?,
            &mp.cast(DType::F64)?,
            &sp.cast(DType::F64)?,
        )?
        .sum_all()?;
        // A KL over fewer elements than the value (parameters broadcast later) would
        // undercount; only use it when the shapes agree.
        let n_kl: usize = crate::math::bshape("kl", mq.shape(), mp.shape())?
            .iter()
            .product();
        let n_val: usize = s.value.as_ref().map_or(0, |v| v.shape().iter().product());
        if n_kl != n_val {
            continue;
        }
        acc = acc.sub(&kl.mulc(s.scale)?)?;
        analytic.push(&s.name);
    }
    for s in mtr.sites() {
        if analytic.contains(&s.name.as_str()) {
            continue;
        }
        if let Some(lp) = s.log_prob_sum()? {
            acc = acc.add(&lp.cast(DType::F64)?)?;
        }
    }
    for s in gtr.sites() {
        if analytic.contains(&s.name.as_str()) {
            continue;
        }
        if let Some(lp) = s.log_prob_sum()? {
            acc = acc.sub(&lp.cast(DType::F64)?)?;
        }
    }
    Ok(acc)
}

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
    jit: bool,
    /// The staged loss-and-gradient program, built on the first update: `Ok` once
    /// compiled, `Err(reason)` when the model or guide cannot be traced (then every step
    /// differentiates eagerly).
    compiled: std::sync::OnceLock<std::result::Result<CompiledElbo, String>>,
    compiles: std::sync::atomic::AtomicUsize,
}

/// The ELBO and its gradient with respect to the unconstrained parameters, traced once as
/// a function of `(params..., key)` and compiled: a step then runs only the compiled
/// arithmetic (no retracing of the model and guide).
struct CompiledElbo {
    exe: ferrax_core::exec::Executable,
    avals: Vec<ferrax_core::AVal>,
}

impl<M, G: std::fmt::Debug> std::fmt::Debug for Svi<M, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Svi")
            .field("guide", &self.guide)
            .field("optim", &self.optim)
            .field("loss", &self.loss)
            .field("jit", &self.jit)
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
            jit: true,
            compiled: std::sync::OnceLock::new(),
            compiles: std::sync::atomic::AtomicUsize::new(0),
        }
    }
    /// Stage the loss and gradient into one compiled program (default `true`). With
    /// `false`, every step traces and differentiates the model and guide eagerly.
    pub fn jit(mut self, on: bool) -> Self {
        self.jit = on;
        self
    }
    /// How many times the loss and gradient were traced and compiled (once per
    /// [`Svi::init`] / [`Svi::run`], on the first update).
    pub fn num_compiles(&self) -> usize {
        self.compiles.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Why the staged path is not used, when tracing the model or guide failed (then
    /// steps run eagerly); `None` when compiled or not yet attempted.
    pub fn jit_fallback_reason(&self) -> Option<&str> {
        match self.compiled.get() {
            Some(Err(r)) => Some(r),
            _ => None,
        }
    }

    fn compile(&self, state: &SviState) -> Result<CompiledElbo> {
        self.compiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut avals: Vec<ferrax_core::AVal> =
            state.raw.iter().map(|r| r.aval().clone()).collect();
        avals.push(ferrax_core::AVal::new(vec![2], DType::U32));
        let n = state.raw.len();
        let mut err = None;
        let r = ferrax_core::trace::trace_fn(&avals, |xs| {
            let out = Key::from_array(xs[n].clone())
                .map_err(Error::from)
                .and_then(|key| {
                    let p = constrain(&state.names, &state.transforms, &xs[..n])?;
                    self.loss.loss(&key, &p, &self.model, &self.guide)
                });
            match out {
                Ok(l) => Ok(vec![l]),
                Err(e) => {
                    err = Some(e);
                    Err(ferrax_core::Error::invalid(
                        "svi",
                        "the ELBO failed while being traced",
                    ))
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let (prog, captured) = r?;
        if !captured.is_empty() {
            return Err(Error::invalid(
                "svi",
                "the model or guide captured a traced value from an enclosing trace",
            ));
        }
        let mut wrt = vec![true; n];
        wrt.push(false);
        let joint = ferrax_core::ad::vjp_program(&prog, &wrt)?;
        Ok(CompiledElbo {
            exe: ferrax_core::exec::Executable::compile(&joint)?,
            avals,
        })
    }

    fn loss_and_grad_compiled(
        &self,
        c: &CompiledElbo,
        state: &mut SviState,
    ) -> Result<(f64, Vec<Array>)> {
        let (next, sub) = state.key.split2()?;
        state.key = next;
        let n = state.raw.len();
        for (r, a) in state.raw.iter().zip(&c.avals) {
            if r.shape() != a.shape.as_slice() || r.dtype() != a.dtype {
                return Err(Error::invalid(
                    "svi",
                    "a parameter changed shape or dtype after the ELBO was compiled",
                ));
            }
        }
        let mut args = state.raw.clone();
        args.push(sub.array().clone());
        args.push(Array::scalar(1.0f64));
        let mut outs = c.exe.run_owned(args)?;
        let l = to_f64(&outs[0])?.first().copied().unwrap_or(f64::NAN);
        let grads: Vec<Array> = outs.drain(1..1 + n).collect();
        Ok((l, grads))
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
        // The guide is set up again, so a program staged for the previous setup is stale.
        self.compiled = std::sync::OnceLock::new();
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
        if self.jit {
            let c = self
                .compiled
                .get_or_init(|| self.compile(state).map_err(|e| e.to_string()));
            if let Ok(c) = c {
                return self.loss_and_grad_compiled(c, state);
            }
        }
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
