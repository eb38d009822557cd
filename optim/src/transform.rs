//! The elementary gradient transformations (Optax's `transform.py` and friends): scaling by a
//! constant, a learning rate or a schedule; momentum (`trace`) and `ema`; the adaptive
//! rescalings behind the named optimizers (`scale_by_adam`, `_rms`, `_lion`, ...); weight
//! decay, noise, constraints. Each is a [`Transform`] whose state is an [`OptState`] node.
//!
//! Scalars follow Optax: a hyperparameter meets a leaf in the leaf's dtype, step-count math
//! runs in f32 (f64 for f64 leaves) and is cast once.

use crate::base::{stateless_map, Mask, Transform};
use crate::num::{self, cast, konst};
use crate::schedule::Schedule;
use crate::state::OptState;
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::prim::reduce::{reduce, ReduceOp};
use ferrax_core::prim::reshape::{expand_dims, reshape};
use ferrax_core::{Array, DType, Error, Result};

/// A learning rate (or any scale): a constant, a schedule of the step count, or a rank-0
/// array (how [`inject_hyperparams`](crate::inject_hyperparams) passes a value that can
/// change without rebuilding or recompiling).
#[derive(Clone, Debug)]
pub enum LearningRate {
    /// A constant, baked into a jitted program.
    Const(f64),
    /// A schedule evaluated on the transformation's own step counter.
    Schedule(Schedule),
    /// A rank-0 float array (possibly a tracer).
    Array(Array),
}

impl From<f64> for LearningRate {
    fn from(x: f64) -> Self {
        LearningRate::Const(x)
    }
}
impl From<f32> for LearningRate {
    fn from(x: f32) -> Self {
        LearningRate::Const(x as f64)
    }
}
impl From<Schedule> for LearningRate {
    fn from(s: Schedule) -> Self {
        LearningRate::Schedule(s)
    }
}
impl From<Array> for LearningRate {
    fn from(a: Array) -> Self {
        LearningRate::Array(a)
    }
}

fn zeros_like_all(params: &[Array]) -> OptState {
    OptState::Leaves(
        params
            .iter()
            .map(|p| Array::zeros(p.shape(), p.dtype()))
            .collect(),
    )
}
fn full_like_all(params: &[Array], v: f64) -> OptState {
    OptState::Leaves(
        params
            .iter()
            .map(|p| Array::full(p.shape(), p.dtype(), v))
            .collect(),
    )
}
fn count_state() -> OptState {
    OptState::Leaf(num::zero_count())
}

/// Multiplies every update by `step_size`.
pub fn scale(step_size: f64) -> Transform {
    stateless_map("scale", move |u| num::mulc(u, step_size))
}

/// Multiplies every update by `schedule(count)`, counting updates from 0.
pub fn scale_by_schedule(schedule: Schedule) -> Transform {
    scale_by_schedule_times(schedule, 1.0)
}

/// `m * schedule(count)`: the schedule is evaluated in its own dtype rules, then multiplied
/// (a sign flip is exact, so this equals Optax's `lambda c: -lr(c)`).
fn scale_by_schedule_times(schedule: Schedule, m: f64) -> Transform {
    const OP: &str = "scale_by_schedule";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::node(vec![("count", count_state())])),
        move |u, state, _| {
            let count = state.array(OP, "count")?;
            let out = scale_leaves(&u, |dt| num::mulc(&schedule.eval(&count, dt)?, m))?;
            *state = OptState::node(vec![(
                "count",
                OptState::Leaf(num::safe_increment(&count)?),
            )]);
            Ok(out)
        },
    )
}

/// Multiplies each leaf by a rank-0 factor computed once per distinct leaf dtype.
fn scale_leaves(u: &[Array], factor: impl Fn(DType) -> Result<Array>) -> Result<Vec<Array>> {
    let mut cache: Vec<(DType, Array)> = Vec::new();
    u.iter()
        .map(|g| {
            let dt = g.dtype();
            let f = match cache.iter().find(|(d, _)| *d == dt) {
                Some((_, f)) => f.clone(),
                None => {
                    let f = cast(&factor(dt)?, dt)?;
                    cache.push((dt, f.clone()));
                    f
                }
            };
            num::mul(g, &f)
        })
        .collect()
}

/// Scales by `-learning_rate` (descent): a constant, a schedule or an injected array.
pub fn scale_by_learning_rate(lr: impl Into<LearningRate>) -> Transform {
    scale_by_learning_rate_signed(lr.into(), true)
}

/// [`scale_by_learning_rate`] with the sign chosen: `flip_sign = false` scales by `+lr`.
pub fn scale_by_learning_rate_signed(lr: LearningRate, flip_sign: bool) -> Transform {
    let m = if flip_sign { -1.0 } else { 1.0 };
    match lr {
        LearningRate::Const(x) => scale(m * x),
        LearningRate::Schedule(s) => scale_by_schedule_times(s, m),
        LearningRate::Array(a) => Transform::from_fns(
            "scale_by_learning_rate",
            |_, _| Ok(OptState::Empty),
            move |u, _, _| {
                let scaled = num::mulc(&a, m)?;
                scale_leaves(&u, |_| Ok(scaled.clone()))
            },
        ),
    }
}

/// Zips two equally long leaf lists through a fallible function.
fn zip2(
    a: &[Array],
    b: &[Array],
    f: impl Fn(&Array, &Array) -> Result<Array>,
) -> Result<Vec<Array>> {
    a.iter().zip(b).map(|(x, y)| f(x, y)).collect()
}
fn map1(a: &[Array], f: impl Fn(&Array) -> Result<Array>) -> Result<Vec<Array>> {
    a.iter().map(f).collect()
}

/// Momentum: `t = g + decay * t`; the update is `t` (or `g + decay * t` with `nesterov`).
pub fn trace(decay: f64, nesterov: bool) -> Transform {
    const OP: &str = "trace";
    Transform::from_fns(
        OP,
        |p, _| Ok(OptState::node(vec![("trace", zeros_like_all(p))])),
        move |u, st, _| {
            let tr = st.per_param(OP, "trace", u.len())?;
            let f = |g: &Array, t: &Array| num::add(g, &num::mulc(t, decay)?);
            let new_tr = zip2(&u, &tr, f)?;
            let out = if nesterov {
                zip2(&u, &new_tr, f)?
            } else {
                new_tr.clone()
            };
            *st = OptState::node(vec![("trace", OptState::Leaves(new_tr))]);
            Ok(out)
        },
    )
}

/// Exponential moving average of the updates, bias-corrected when `debias`.
pub fn ema(decay: f64, debias: bool) -> Transform {
    const OP: &str = "ema";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("ema", zeros_like_all(p)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let e = st.per_param(OP, "ema", u.len())?;
            let new_e = zip2(&u, &e, |g, t| num::update_moment(g, t, decay, 1))?;
            let count_inc = num::safe_increment(&count)?;
            let out = if debias {
                map1(&new_e, |t| num::bias_correction(t, decay, &count_inc))?
            } else {
                new_e.clone()
            };
            *st = OptState::node(vec![
                ("count", OptState::Leaf(count_inc)),
                ("ema", OptState::Leaves(new_e)),
            ]);
            Ok(out)
        },
    )
}

/// Hyperparameters of [`scale_by_adam`] (and the Adam-family optimizers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment.
    pub b1: f64,
    /// Decay of the second moment.
    pub b2: f64,
    /// Added to the denominator outside the square root.
    pub eps: f64,
    /// Added inside the square root.
    pub eps_root: f64,
    /// Nesterov momentum (NAdam).
    pub nesterov: bool,
    /// The dtype the first moment is stored in (Optax's `mu_dtype`), e.g. `BF16` to halve
    /// its memory; `None` keeps the parameters' dtype. Each update computes the moment in
    /// the wider of this and the gradient's dtype and rounds it only for storage.
    pub mu_dtype: Option<DType>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
            eps_root: 0.0,
            nesterov: false,
            mu_dtype: None,
        }
    }
}

/// The dtype JAX promotes two float dtypes to: the wider one, and f32 for bf16 with f16.
fn promote_float(a: DType, b: DType) -> DType {
    match (a, b) {
        _ if a == b => a,
        (DType::F64, _) | (_, DType::F64) => DType::F64,
        _ => DType::F32,
    }
}

fn moments_state(p: &[Array]) -> OptState {
    moments_state_mu(p, None)
}

fn moments_state_mu(p: &[Array], mu_dtype: Option<DType>) -> OptState {
    let mu = match mu_dtype {
        None => zeros_like_all(p),
        Some(dt) => OptState::Leaves(p.iter().map(|x| Array::zeros(x.shape(), dt)).collect()),
    };
    OptState::node(vec![
        ("count", count_state()),
        ("mu", mu),
        ("nu", zeros_like_all(p)),
    ])
}

/// Adam's first-moment update when `m` may be stored in another dtype than `g`: as in
/// Optax, `decay * m` is computed in `m`'s dtype (a Python float meeting an array), then
/// both terms meet in the promoted dtype.
fn update_first_moment(g: &Array, m: &Array, decay: f64) -> Result<Array> {
    if g.dtype() == m.dtype() {
        return num::update_moment(g, m, decay, 1);
    }
    let dt = promote_float(g.dtype(), m.dtype());
    num::add(
        &cast(&num::mulc(g, 1.0 - decay)?, dt)?,
        &cast(&num::mulc(m, decay)?, dt)?,
    )
}

/// Adam's rescaling: bias-corrected first moment over the root of the second.
pub fn scale_by_adam(cfg: AdamConfig) -> Transform {
    const OP: &str = "scale_by_adam";
    let AdamConfig {
        b1,
        b2,
        eps,
        eps_root,
        nesterov,
        mu_dtype,
    } = cfg;
    Transform::from_fns(
        OP,
        move |p, _| {
            if let Some(dt) = mu_dtype.filter(|d| !d.is_float()) {
                return Err(Error::dtype(
                    OP,
                    format!("mu_dtype must be a float dtype, got {dt}"),
                ));
            }
            Ok(moments_state_mu(p, mu_dtype))
        },
        move |u, st, _| {
            num::check_float(OP, &u)?;
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let mu = zip2(&u, &mu, |g, m| update_first_moment(g, m, b1))?;
            let nu = zip2(&u, &nu, |g, v| num::update_moment(g, v, b2, 2))?;
            let c = num::safe_increment(&count)?;
            let mu_hat = if nesterov {
                let c2 = num::safe_increment(&c)?;
                let a = map1(&mu, |m| num::bias_correction(m, b1, &c2))?;
                let b = map1(&u, |g| num::bias_correction(g, b1, &c))?;
                zip2(&a, &b, |m, g| {
                    num::add(
                        &num::mulc(m, b1)?,
                        &cast(&num::mulc(g, 1.0 - b1)?, m.dtype())?,
                    )
                })?
            } else {
                map1(&mu, |m| num::bias_correction(m, b1, &c))?
            };
            let out = mu_hat
                .iter()
                .zip(&nu)
                .map(|(m, v)| {
                    let mut v_hat = num::bias_correction(v, b2, &c)?;
                    // `+ 0.0` is exact here (v_hat >= 0) and would cost a pass in a jitted
                    // step: the constant is a program input, so it is not folded away.
                    if eps_root != 0.0 {
                        v_hat = num::addc(&v_hat, eps_root)?;
                    }
                    let den = num::addc(&num::sqrt(&v_hat)?, eps)?;
                    num::div(m, &cast(&den, m.dtype())?)
                })
                .collect::<Result<Vec<_>>>()?;
            // Updates keep the gradients' dtype (a wider mu_dtype would otherwise widen
            // them, which a typed gradient tree cannot hold); mu is rounded for storage.
            let out = zip2(&out, &u, |o, g| cast(o, g.dtype()))?;
            let mu = match mu_dtype {
                Some(dt) => map1(&mu, |m| cast(m, dt))?,
                None => mu,
            };
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// AdaMax: the second moment replaced by an exponentially weighted infinity norm.
pub fn scale_by_adamax(b1: f64, b2: f64, eps: f64) -> Transform {
    const OP: &str = "scale_by_adamax";
    Transform::from_fns(
        OP,
        |p, _| Ok(moments_state(p)),
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let c = num::safe_increment(&count)?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, b1, 1))?;
            let nu = zip2(&u, &nu, |g, v| {
                num::max(&num::addc(&num::abs(g)?, eps)?, &num::mulc(v, b2)?)
            })?;
            let out = zip2(&mu, &nu, |m, v| {
                num::div(&num::bias_correction(m, b1, &c)?, v)
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// AMSGrad: Adam with the running maximum of the bias-corrected second moment.
pub fn scale_by_amsgrad(b1: f64, b2: f64, eps: f64, eps_root: f64) -> Transform {
    const OP: &str = "scale_by_amsgrad";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("mu", zeros_like_all(p)),
                ("nu", zeros_like_all(p)),
                ("nu_max", zeros_like_all(p)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let nu_max = st.per_param(OP, "nu_max", u.len())?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, b1, 1))?;
            let nu = zip2(&u, &nu, |g, v| num::update_moment(g, v, b2, 2))?;
            let c = num::safe_increment(&count)?;
            let nu_hat = map1(&nu, |v| num::bias_correction(v, b2, &c))?;
            let nu_max = zip2(&nu_max, &nu_hat, num::max)?;
            let out = zip2(&mu, &nu_max, |m, v| {
                let m_hat = num::bias_correction(m, b1, &c)?;
                num::div(
                    &m_hat,
                    &num::addc(&num::sqrt(&num::addc(v, eps_root)?)?, eps)?,
                )
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
                ("nu_max", OptState::Leaves(nu_max)),
            ]);
            Ok(out)
        },
    )
}

/// AdaBelief: the second moment tracks the squared deviation of the gradient from its
/// running mean (the "belief").
pub fn scale_by_belief(b1: f64, b2: f64, eps: f64, eps_root: f64) -> Transform {
    const OP: &str = "scale_by_belief";
    Transform::from_fns(
        OP,
        |p, _| Ok(moments_state(p)),
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu0 = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let mu = zip2(&u, &mu0, |g, m| num::update_moment(g, m, b1, 1))?;
            let err = zip2(&u, &mu0, num::sub)?;
            let nu = zip2(&err, &nu, |e, v| {
                num::addc(&num::update_moment(e, v, b2, 2)?, eps_root)
            })?;
            let c = num::safe_increment(&count)?;
            let out = zip2(&mu, &nu, |m, v| {
                let m_hat = num::bias_correction(m, b1, &c)?;
                let v_hat = num::bias_correction(v, b2, &c)?;
                num::div(&m_hat, &num::addc(&num::sqrt(&v_hat)?, eps)?)
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// Yogi: an additive, sign-controlled second-moment update.
pub fn scale_by_yogi(
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
    initial_accumulator_value: f64,
) -> Transform {
    const OP: &str = "scale_by_yogi";
    Transform::from_fns(
        OP,
        move |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("mu", full_like_all(p, initial_accumulator_value)),
                ("nu", full_like_all(p, initial_accumulator_value)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, b1, 1))?;
            let nu = zip2(&u, &nu, |g, v| {
                let g2 = num::square(g)?;
                let s = num::sign(&num::sub(v, &g2)?)?;
                num::sub(v, &num::mul(&num::mulc(&s, 1.0 - b2)?, &g2)?)
            })?;
            let c = num::safe_increment(&count)?;
            let out = zip2(&mu, &nu, |m, v| {
                let m_hat = num::bias_correction(m, b1, &c)?;
                let v_hat = num::bias_correction(v, b2, &c)?;
                num::div(
                    &m_hat,
                    &num::addc(&num::sqrt(&num::addc(&v_hat, eps_root)?)?, eps)?,
                )
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// Rectified Adam: plain momentum until the variance of the adaptive rate is tractable
/// (`rho >= threshold`), rectified Adam after.
pub fn scale_by_radam(b1: f64, b2: f64, eps: f64, eps_root: f64, threshold: f64) -> Transform {
    const OP: &str = "scale_by_radam";
    let ro_inf = 2.0 / (1.0 - b2) - 1.0;
    Transform::from_fns(
        OP,
        |p, _| Ok(moments_state(p)),
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, b1, 1))?;
            let nu = zip2(&u, &nu, |g, v| num::update_moment(g, v, b2, 2))?;
            let c = num::safe_increment(&count)?;
            let out = zip2(&mu, &nu, |m, v| {
                let cd = num::compute_dtype(m.dtype());
                let cf = cast(&c, cd)?;
                let b2t = num::rpowc(b2, &cf)?;
                let ro = num::rsubc(
                    ro_inf,
                    &num::div(
                        &num::mul(&num::mulc(&cf, 2.0)?, &b2t)?,
                        &num::rsubc(1.0, &b2t)?,
                    )?,
                )?;
                let num_ = num::mulc(
                    &num::mul(&num::subc(&ro, 4.0)?, &num::subc(&ro, 2.0)?)?,
                    ro_inf,
                )?;
                let den = num::mulc(&ro, (ro_inf - 4.0) * (ro_inf - 2.0))?;
                let r = cast(&num::sqrt(&num::div(&num_, &den)?)?, m.dtype())?;
                let m_hat = num::bias_correction(m, b1, &c)?;
                let v_hat = num::bias_correction(v, b2, &c)?;
                let rect = num::div(
                    &num::mul(&r, &m_hat)?,
                    &num::addc(&num::sqrt(&num::addc(&v_hat, eps_root)?)?, eps)?,
                )?;
                let ok = num::cmpc(CompareOp::Ge, &ro, threshold)?;
                num::select(&ok, &rect, &m_hat)
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// Lion: the sign of an interpolation between the gradient and its momentum.
pub fn scale_by_lion(b1: f64, b2: f64) -> Transform {
    const OP: &str = "scale_by_lion";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("mu", zeros_like_all(p)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let out = zip2(&u, &mu, |g, m| {
                num::sign(&num::add(&num::mulc(g, 1.0 - b1)?, &num::mulc(m, b1)?)?)
            })?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, b2, 1))?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(num::safe_increment(&count)?)),
                ("mu", OptState::Leaves(mu)),
            ]);
            Ok(out)
        },
    )
}

/// Hyperparameters of [`scale_by_rms`] / [`scale_by_stddev`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsConfig {
    /// Decay of the moments.
    pub decay: f64,
    /// Stabilizer.
    pub eps: f64,
    /// Initial value of the second moment.
    pub initial_scale: f64,
    /// `rsqrt(nu + eps)` (true) or `1 / (sqrt(nu) + eps)` (false).
    pub eps_in_sqrt: bool,
    /// Bias-correct the moments.
    pub bias_correction: bool,
}

impl Default for RmsConfig {
    fn default() -> Self {
        RmsConfig {
            decay: 0.9,
            eps: 1e-8,
            initial_scale: 0.0,
            eps_in_sqrt: true,
            bias_correction: false,
        }
    }
}

fn rms_scaling(n: &Array, eps: f64, eps_in_sqrt: bool) -> Result<Array> {
    if eps_in_sqrt {
        num::rsqrt(&num::addc(n, eps)?)
    } else {
        num::rdivc(1.0, &num::addc(&num::sqrt(n)?, eps)?)
    }
}

/// RMSProp's rescaling by the root of a moving average of squared gradients.
pub fn scale_by_rms(cfg: RmsConfig) -> Transform {
    const OP: &str = "scale_by_rms";
    let RmsConfig {
        decay,
        eps,
        initial_scale,
        eps_in_sqrt,
        bias_correction,
    } = cfg;
    Transform::from_fns(
        OP,
        move |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("nu", full_like_all(p, initial_scale)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let nu = zip2(&u, &nu, |g, v| num::update_moment(g, v, decay, 2))?;
            let (c, nu_hat) = if bias_correction {
                let c = num::safe_increment(&count)?;
                let h = map1(&nu, |v| num::bias_correction(v, decay, &c))?;
                (c, h)
            } else {
                (count, nu.clone())
            };
            let out = zip2(&u, &nu_hat, |g, n| {
                num::mul(&rms_scaling(n, eps, eps_in_sqrt)?, g)
            })?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// Centered RMSProp's rescaling by a running standard deviation of the gradients.
pub fn scale_by_stddev(cfg: RmsConfig) -> Transform {
    const OP: &str = "scale_by_stddev";
    let RmsConfig {
        decay,
        eps,
        initial_scale,
        eps_in_sqrt,
        bias_correction,
    } = cfg;
    Transform::from_fns(
        OP,
        move |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("mu", zeros_like_all(p)),
                ("nu", full_like_all(p, initial_scale)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let mu = zip2(&u, &mu, |g, m| num::update_moment(g, m, decay, 1))?;
            let nu = zip2(&u, &nu, |g, v| num::update_moment(g, v, decay, 2))?;
            let (c, mu_hat, nu_hat) = if bias_correction {
                let c = num::safe_increment(&count)?;
                let m = map1(&mu, |x| num::bias_correction(x, decay, &c))?;
                let v = map1(&nu, |x| num::bias_correction(x, decay, &c))?;
                (c, m, v)
            } else {
                (count, mu.clone(), nu.clone())
            };
            let out = u
                .iter()
                .zip(mu_hat.iter().zip(&nu_hat))
                .map(|(g, (m, n))| {
                    let var = num::sub(n, &num::square(m)?)?;
                    num::mul(&rms_scaling(&var, eps, eps_in_sqrt)?, g)
                })
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(mu)),
                ("nu", OptState::Leaves(nu)),
            ]);
            Ok(out)
        },
    )
}

/// AdaGrad's rescaling by the root of the sum of squared gradients.
pub fn scale_by_rss(initial_accumulator_value: f64, eps: f64) -> Transform {
    const OP: &str = "scale_by_rss";
    Transform::from_fns(
        OP,
        move |p, _| {
            Ok(OptState::node(vec![(
                "sum_of_squares",
                full_like_all(p, initial_accumulator_value),
            )]))
        },
        move |u, st, _| {
            let sos = st.per_param(OP, "sum_of_squares", u.len())?;
            let sos = zip2(&u, &sos, |g, t| num::add(&num::square(g)?, t))?;
            let out = zip2(&u, &sos, |g, t| {
                let pos = num::cmpc(CompareOp::Gt, t, 0.0)?;
                let inv = num::select(
                    &pos,
                    &num::rsqrt(&num::addc(t, eps)?)?,
                    &konst(t.dtype(), 0.0),
                )?;
                num::mul(&inv, g)
            })?;
            *st = OptState::node(vec![("sum_of_squares", OptState::Leaves(sos))]);
            Ok(out)
        },
    )
}

/// AdaDelta's rescaling by the ratio of running RMS of updates and of gradients.
pub fn scale_by_adadelta(rho: f64, eps: f64) -> Transform {
    const OP: &str = "scale_by_adadelta";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![
                ("e_g", zeros_like_all(p)),
                ("e_x", zeros_like_all(p)),
            ]))
        },
        move |u, st, _| {
            let e_g = st.per_param(OP, "e_g", u.len())?;
            let e_x = st.per_param(OP, "e_x", u.len())?;
            let e_g = zip2(&u, &e_g, |g, e| num::update_moment(g, e, rho, 2))?;
            let out = u
                .iter()
                .zip(e_g.iter().zip(&e_x))
                .map(|(g, (eg, ex))| {
                    let r = num::div(
                        &num::sqrt(&num::addc(ex, eps)?)?,
                        &num::sqrt(&num::addc(eg, eps)?)?,
                    )?;
                    num::mul(&r, g)
                })
                .collect::<Result<Vec<_>>>()?;
            let e_x = zip2(&out, &e_x, |d, e| num::update_moment(d, e, rho, 2))?;
            *st = OptState::node(vec![
                ("e_g", OptState::Leaves(e_g)),
                ("e_x", OptState::Leaves(e_x)),
            ]);
            Ok(out)
        },
    )
}

/// `max(norm(x), min_norm)` over the whole leaf (Optax's `safe_norm` forward value).
fn safe_norm(x: &Array, min_norm: f64) -> Result<Array> {
    let n = num::sqrt(&num::sum_sq(x)?)?;
    let small = num::cmpc(CompareOp::Le, &n, min_norm)?;
    num::select(&small, &konst(n.dtype(), min_norm), &n)
}

/// Scales each leaf's update by `trust_coefficient * ||param|| / (||update|| + eps)` (LARS,
/// LAMB), or by 1 where either norm is 0. Needs the parameters.
pub fn scale_by_trust_ratio(min_norm: f64, trust_coefficient: f64, eps: f64) -> Transform {
    const OP: &str = "scale_by_trust_ratio";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::Empty),
        move |u, _, ctx| {
            let params = ctx.params(OP)?;
            zip2(&u, params, |g, p| {
                let pn = safe_norm(p, min_norm)?;
                let un = safe_norm(g, min_norm)?;
                let tr = num::mulc(&num::div(&pn, &num::addc(&un, eps)?)?, trust_coefficient)?;
                let zero = num::or(
                    &num::cmpc(CompareOp::Eq, &pn, 0.0)?,
                    &num::cmpc(CompareOp::Eq, &un, 0.0)?,
                )?;
                let safe = num::select(&zero, &konst(tr.dtype(), 1.0), &tr)?;
                num::mul(g, &cast(&safe, g.dtype())?)
            })
        },
    )
}

/// SM3: memory-efficient adaptive rates from one accumulator per axis of each leaf.
pub fn scale_by_sm3(b1: f64, b2: f64, eps: f64) -> Transform {
    const OP: &str = "scale_by_sm3";
    let coeff0 = if b2 != 1.0 { 1.0 - b2 } else { 1.0 };
    Transform::from_fns(
        OP,
        |p, _| {
            let mu = p
                .iter()
                .map(|x| {
                    if x.rank() == 0 {
                        OptState::Leaves(vec![Array::zeros(&[], x.dtype())])
                    } else {
                        OptState::Leaves(
                            x.shape()
                                .iter()
                                .map(|&s| Array::zeros(&[s], x.dtype()))
                                .collect(),
                        )
                    }
                })
                .collect();
            Ok(OptState::node(vec![
                ("mu", OptState::Seq(mu)),
                ("nu", zeros_like_all(p)),
            ]))
        },
        move |u, st, _| {
            let mus = st.field(OP, "mu")?.seq(OP, u.len())?.to_vec();
            let nu = st.per_param(OP, "nu", u.len())?;
            let mut accums = Vec::with_capacity(u.len());
            for (g, m) in u.iter().zip(&mus) {
                let vs = m
                    .as_leaves()
                    .ok_or_else(|| Error::invalid(OP, "malformed state `mu`"))?;
                let r = g.rank();
                let prev = if r < 2 {
                    vs[0].clone()
                } else {
                    // The elementwise minimum of the per-axis accumulators broadcast back.
                    let mut acc: Option<Array> = None;
                    for (i, v) in vs.iter().enumerate() {
                        let mut shape = vec![1; r];
                        shape[i] = g.shape()[i];
                        let e = reshape(v, &shape)?;
                        acc = Some(match acc {
                            None => e,
                            Some(a) => num::min(&a, &e)?,
                        });
                    }
                    acc.expect("rank >= 2")
                };
                accums.push(num::add(
                    &num::mulc(&num::square(g)?, coeff0)?,
                    &num::mulc(&prev, b2)?,
                )?);
            }
            let up = zip2(&u, &accums, |g, a| {
                let pos = num::cmpc(CompareOp::Gt, a, 0.0)?;
                let inv = num::select(
                    &pos,
                    &num::rsqrt(&num::addc(a, eps)?)?,
                    &konst(a.dtype(), 0.0),
                )?;
                num::mul(g, &inv)
            })?;
            let nu = zip2(&up, &nu, |x, n| num::update_moment(x, n, b1, 1))?;
            let new_mu = accums
                .iter()
                .map(|a| {
                    let r = a.rank();
                    if r < 2 {
                        return Ok(OptState::Leaves(vec![a.clone()]));
                    }
                    let v = (0..r)
                        .map(|i| {
                            let others: Vec<usize> = (0..r).filter(|&j| j != i).collect();
                            reduce(a, ReduceOp::Max, &others)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok(OptState::Leaves(v))
                })
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![
                ("mu", OptState::Seq(new_mu)),
                ("nu", OptState::Leaves(nu.clone())),
            ]);
            Ok(nu)
        },
    )
}

/// Which two axes of `shape` Adafactor factors (`(d1, d0)`: the second largest, the
/// largest), or `None` to keep a full second moment.
fn factored_dims(shape: &[usize], factored: bool, min_dim: usize) -> Option<(usize, usize)> {
    if !factored || shape.len() < 2 {
        return None;
    }
    let mut idx: Vec<usize> = (0..shape.len()).collect();
    idx.sort_by_key(|&i| shape[i]); // stable, as numpy's argsort on short arrays
    let (d1, d0) = (idx[idx.len() - 2], idx[idx.len() - 1]);
    if shape[d1] < min_dim {
        return None;
    }
    Some((d1, d0))
}

fn remove_axis(shape: &[usize], ax: usize) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != ax)
        .map(|(_, &s)| s)
        .collect()
}

/// Adafactor's factored second moments: row and column statistics for large matrices, a
/// full second moment for the rest. Needs the parameters (for their shapes).
pub fn scale_by_factored_rms(
    factored: bool,
    decay_rate: f64,
    step_offset: i64,
    min_dim_size_to_factor: usize,
    epsilon: f64,
) -> Transform {
    const OP: &str = "scale_by_factored_rms";
    Transform::from_fns(
        OP,
        move |p, _| {
            let (mut vr, mut vc, mut v) = (Vec::new(), Vec::new(), Vec::new());
            for x in p {
                let dt = x.dtype();
                match factored_dims(x.shape(), factored, min_dim_size_to_factor) {
                    Some((d1, d0)) => {
                        vr.push(Array::zeros(&remove_axis(x.shape(), d0), dt));
                        vc.push(Array::zeros(&remove_axis(x.shape(), d1), dt));
                        v.push(Array::zeros(&[1], dt));
                    }
                    None => {
                        vr.push(Array::zeros(&[1], dt));
                        vc.push(Array::zeros(&[1], dt));
                        v.push(Array::zeros(x.shape(), dt));
                    }
                }
            }
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("v_row", OptState::Leaves(vr)),
                ("v_col", OptState::Leaves(vc)),
                ("v", OptState::Leaves(v)),
            ]))
        },
        move |u, st, _| {
            let count = st.array(OP, "count")?;
            let vr = st.per_param(OP, "v_row", u.len())?;
            let vc = st.per_param(OP, "v_col", u.len())?;
            let v = st.per_param(OP, "v", u.len())?;
            // decay_rate_t = 1 - (step - offset + 1)^-decay_rate, in f32 as Optax does.
            let t = cast(
                &num::addc(&num::subc(&count, step_offset as f64)?, 1.0)?,
                DType::F32,
            )?;
            let drt = num::rsubc(1.0, &num::pow(&t, &konst(DType::F32, -decay_rate))?)?;
            let one_m = num::rsubc(1.0, &drt)?;
            let (mut out, mut nvr, mut nvc, mut nv) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in 0..u.len() {
                let g = &u[i];
                let dt = g.dtype();
                let (d, om) = (cast(&drt, dt)?, cast(&one_m, dt)?);
                let gsq = num::addc(&num::square(g)?, epsilon)?;
                match factored_dims(g.shape(), factored, min_dim_size_to_factor) {
                    Some((d1, d0)) => {
                        let mean =
                            |x: &Array, ax: usize| ferrax_core::ops::composite::mean(x, &[ax]);
                        let r =
                            num::add(&num::mul(&d, &vr[i])?, &num::mul(&om, &mean(&gsq, d0)?)?)?;
                        let c =
                            num::add(&num::mul(&d, &vc[i])?, &num::mul(&om, &mean(&gsq, d1)?)?)?;
                        let rd1 = if d1 > d0 { d1 - 1 } else { d1 };
                        let rcm = expand_dims(&mean(&r, rd1)?, rd1)?;
                        let neg_half = konst(dt, -0.5);
                        let row_f = num::pow(&num::div(&r, &rcm)?, &neg_half)?;
                        let col_f = num::pow(&c, &neg_half)?;
                        let upd = num::mul(
                            &num::mul(g, &expand_dims(&row_f, d0)?)?,
                            &expand_dims(&col_f, d1)?,
                        )?;
                        out.push(upd);
                        nvr.push(r);
                        nvc.push(c);
                        nv.push(Array::zeros(&[1], dt));
                    }
                    None => {
                        let nvi = num::add(&num::mul(&d, &v[i])?, &num::mul(&om, &gsq)?)?;
                        out.push(num::mul(g, &num::pow(&nvi, &konst(dt, -0.5))?)?);
                        nvr.push(Array::zeros(&[1], dt));
                        nvc.push(Array::zeros(&[1], dt));
                        nv.push(nvi);
                    }
                }
            }
            *st = OptState::node(vec![
                ("count", OptState::Leaf(num::safe_increment(&count)?)),
                ("v_row", OptState::Leaves(nvr)),
                ("v_col", OptState::Leaves(nvc)),
                ("v", OptState::Leaves(nv)),
            ]);
            Ok(out)
        },
    )
}

/// Scales each leaf's update by the root mean square of its parameter (at least
/// `min_scale`), as Adafactor's `multiply_by_parameter_scale`.
pub fn scale_by_param_block_rms(min_scale: f64) -> Transform {
    const OP: &str = "scale_by_param_block_rms";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::Empty),
        move |u, _, ctx| {
            let params = ctx.params(OP)?;
            zip2(&u, params, |g, p| {
                let rms = num::maxc(&num::sqrt(&num::mean_all(&num::square(p)?)?)?, min_scale)?;
                num::mul(g, &cast(&rms, g.dtype())?)
            })
        },
    )
}

/// NovoGrad: layer-wise second moments (one scalar per leaf) and decoupled weight decay.
pub fn scale_by_novograd(
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
) -> Transform {
    const OP: &str = "scale_by_novograd";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("mu", zeros_like_all(p)),
                (
                    "nu",
                    OptState::Leaves(p.iter().map(|x| Array::zeros(&[], x.dtype())).collect()),
                ),
            ]))
        },
        move |u, st, ctx| {
            let count = st.array(OP, "count")?;
            let mu = st.per_param(OP, "mu", u.len())?;
            let nu = st.per_param(OP, "nu", u.len())?;
            let params = if weight_decay != 0.0 {
                Some(ctx.params(OP)?)
            } else {
                None
            };
            let c = num::safe_increment(&count)?;
            let first = num::cmp(CompareOp::Eq, &c, &konst(DType::I32, 1.0))?;
            let (mut out_mu, mut out_nu) = (Vec::new(), Vec::new());
            for i in 0..u.len() {
                let g = &u[i];
                let n_add = num::square(&num::sqrt(&num::sum_sq(g)?)?)?;
                let n_upd = num::update_moment(&n_add, &nu[i], b2, 1)?;
                let n = num::select(&first, &n_add, &n_upd)?;
                let mut m_add =
                    num::div(g, &num::addc(&num::sqrt(&num::addc(&n, eps_root)?)?, eps)?)?;
                if let Some(p) = params {
                    m_add = num::add(&m_add, &num::mulc(&p[i], weight_decay)?)?;
                }
                let m_upd = num::add(&num::mulc(&mu[i], b1)?, &m_add)?;
                out_mu.push(num::select(&first, &m_add, &m_upd)?);
                out_nu.push(n);
            }
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("mu", OptState::Leaves(out_mu.clone())),
                ("nu", OptState::Leaves(out_nu)),
            ]);
            Ok(out_mu)
        },
    )
}

/// Adds `weight_decay * params` to the updates of the leaves `mask` selects (all when
/// `None`). Needs the parameters.
pub fn add_decayed_weights(weight_decay: f64, mask: Option<Mask>) -> Transform {
    const OP: &str = "add_decayed_weights";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::Empty),
        move |u, _, ctx| {
            if weight_decay == 0.0 && mask.is_none() {
                return Ok(u);
            }
            let params = ctx.params(OP)?;
            u.iter()
                .zip(params)
                .zip(ctx.paths)
                .map(|((g, p), path)| {
                    if mask.as_ref().is_none_or(|m| m.contains(path)) {
                        num::add(g, &num::mulc(p, weight_decay)?)
                    } else {
                        Ok(g.clone())
                    }
                })
                .collect()
        },
    )
}

/// Adds Gaussian noise with variance `eta / (1 + t)^gamma` at step `t` (noisy SGD).
pub fn add_noise(eta: f64, gamma: f64, seed: u64) -> Transform {
    const OP: &str = "add_noise";
    Transform::from_fns(
        OP,
        move |_, _| {
            let key = ferrax_core::random::Key::new(seed);
            Ok(OptState::node(vec![
                ("count", count_state()),
                ("rng_key", OptState::Leaf(key.array().clone())),
            ]))
        },
        move |u, st, _| {
            use ferrax_core::prim::random::{random_sample, random_split, Dist};
            let count = st.array(OP, "count")?;
            let key = st.array(OP, "rng_key")?;
            let c = num::safe_increment(&count)?;
            let keys = random_split(&key, u.len() + 1)?;
            let out = u
                .iter()
                .zip(&keys[1..])
                .map(|(g, k)| {
                    let cd = num::compute_dtype(g.dtype());
                    let var = num::rdivc(eta, &num::pow(&cast(&c, cd)?, &konst(cd, gamma))?)?;
                    let std = cast(&num::sqrt(&var)?, g.dtype())?;
                    let noise = random_sample(k, Dist::Normal, g.shape(), g.dtype(), &[])?;
                    num::add(g, &num::mul(&std, &noise)?)
                })
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("rng_key", OptState::Leaf(keys[0].clone())),
            ]);
            Ok(out)
        },
    )
}

/// Clamps updates so that `params + updates >= 0` (the update becomes `-params` where it
/// would cross 0). Needs the parameters.
pub fn keep_params_nonnegative() -> Transform {
    const OP: &str = "keep_params_nonnegative";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::Empty),
        |u, _, ctx| {
            let params = ctx.params(OP)?;
            zip2(&u, params, |g, p| {
                let neg = num::cmpc(CompareOp::Lt, &num::add(p, g)?, 0.0)?;
                num::select(&neg, &ferrax_core::prim::unary::neg(p)?, g)
            })
        },
    )
}

/// Gradient centralization: subtracts from each leaf of rank > 1 its mean over every axis
/// but the first.
pub fn centralize() -> Transform {
    stateless_map("centralize", |g| {
        if g.rank() <= 1 {
            return Ok(g.clone());
        }
        let axes: Vec<usize> = (1..g.rank()).collect();
        let m = ferrax_core::ops::composite::mean(g, &axes)?;
        let m = ferrax_core::prim::broadcast_in_dim::broadcast_in_dim(&m, g.shape(), &[0])?;
        num::sub(g, &m)
    })
}
