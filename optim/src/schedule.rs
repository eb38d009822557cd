//! Schedules: values (a [`Schedule`]) that map a step count to a hyperparameter, evaluated
//! with ferrax-core ops on the (possibly traced) rank-0 `i32` count held in an optimizer's
//! state, so a jitted train step computes its learning rate inside the compiled program.
//!
//! The constructors mirror Optax's (`linear_schedule`, `cosine_decay_schedule`,
//! `warmup_cosine_decay_schedule` whose `decay_steps` include the warmup, ...). The
//! arithmetic follows Optax's order and dtypes: integer step arithmetic happens in i32, and
//! a division of the integer count (polynomial, exponential) is done in f32 even when the
//! requested dtype is f64, as JAX does under `jax_enable_x64`; those pieces then win the
//! dtype of a [`join_schedules`], as JAX's weak-type promotion makes them.
//!
//! ```
//! use ferrax_optim::schedule::{warmup_cosine_decay_schedule};
//! let s = warmup_cosine_decay_schedule(0.0, 1.0, 5, 15, 0.1, 1.0).unwrap();
//! assert!((s.value_f32(0).unwrap() - 0.0).abs() < 1e-7);
//! assert!((s.value_f32(5).unwrap() - 1.0).abs() < 1e-7);
//! assert!((s.value_f32(15).unwrap() - 0.1).abs() < 1e-7);
//! ```

use crate::num::{self, cast, konst};
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::prim::unary;
use ferrax_core::{Array, DType, Error, Result};
use std::fmt;
use std::sync::Arc;

/// How [`piecewise_interpolate_schedule`] moves between boundary values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Straight lines.
    Linear,
    /// Half cosine waves (smooth at the boundaries).
    Cosine,
}

/// A step-count → value function (see the module docs).
#[derive(Clone)]
pub enum Schedule {
    /// The same value at every step.
    Constant(f64),
    /// `(init - end) * (1 - t/T)^power + end` for `t = clip(count - begin, 0, T)`.
    Polynomial {
        /// Value before the transition.
        init: f64,
        /// Value after it.
        end: f64,
        /// Exponent of the transition.
        power: f64,
        /// Length `T` of the transition.
        transition_steps: i64,
        /// Step at which it starts.
        transition_begin: i64,
    },
    /// `init * ((1 - alpha) * (0.5 (1 + cos(pi t / T)))^exponent + alpha)`, `t = min(count, T)`.
    CosineDecay {
        /// Value at step 0.
        init: f64,
        /// `T`.
        decay_steps: i64,
        /// Final multiplier.
        alpha: f64,
        /// Exponent of the cosine factor.
        exponent: f64,
    },
    /// `init * rate^((count - begin) / T)` (floored in staircase mode), clipped at `end`.
    ExponentialDecay {
        /// Value before `transition_begin`.
        init: f64,
        /// `T`.
        transition_steps: i64,
        /// Decay per `T` steps.
        decay_rate: f64,
        /// Step at which the decay starts.
        transition_begin: i64,
        /// Whether the exponent is floored.
        staircase: bool,
        /// Bound the value stops at (a lower bound when `decay_rate < 1`).
        end: Option<f64>,
    },
    /// `init` times every scale whose boundary is `<= count`.
    PiecewiseConstant {
        /// Value before the first boundary.
        init: f64,
        /// `(boundary, scale)`, sorted by boundary.
        boundaries_and_scales: Vec<(i64, f64)>,
    },
    /// Interpolates between the cumulative products of the scales at the boundaries.
    PiecewiseInterpolate {
        /// Linear or cosine segments.
        kind: Interpolation,
        /// Value at step 0.
        init: f64,
        /// `(boundary, scale)`, sorted by boundary.
        boundaries_and_scales: Vec<(i64, f64)>,
    },
    /// `schedules[i]` from `boundaries[i-1]` on, each counting from its own boundary.
    Join {
        /// The pieces.
        schedules: Vec<Schedule>,
        /// One fewer than the pieces.
        boundaries: Vec<i64>,
    },
    /// Any function of the rank-0 i32 count written with ferrax ops (its result is cast to
    /// the requested dtype).
    Custom(Arc<dyn Fn(&Array) -> Result<Array> + Send + Sync>),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant(v) => write!(f, "Constant({v})"),
            Schedule::Polynomial { init, end, power, transition_steps, transition_begin } => write!(
                f,
                "Polynomial {{ init: {init}, end: {end}, power: {power}, transition_steps: \
                 {transition_steps}, transition_begin: {transition_begin} }}"
            ),
            Schedule::CosineDecay { init, decay_steps, alpha, exponent } => write!(
                f,
                "CosineDecay {{ init: {init}, decay_steps: {decay_steps}, alpha: {alpha}, \
                 exponent: {exponent} }}"
            ),
            Schedule::ExponentialDecay { init, transition_steps, decay_rate, transition_begin, staircase, end } => {
                write!(
                    f,
                    "ExponentialDecay {{ init: {init}, transition_steps: {transition_steps}, \
                     decay_rate: {decay_rate}, transition_begin: {transition_begin}, staircase: \
                     {staircase}, end: {end:?} }}"
                )
            }
            Schedule::PiecewiseConstant { init, boundaries_and_scales } => write!(
                f,
                "PiecewiseConstant {{ init: {init}, boundaries_and_scales: {boundaries_and_scales:?} }}"
            ),
            Schedule::PiecewiseInterpolate { kind, init, boundaries_and_scales } => write!(
                f,
                "PiecewiseInterpolate {{ kind: {kind:?}, init: {init}, boundaries_and_scales: \
                 {boundaries_and_scales:?} }}"
            ),
            Schedule::Join { schedules, boundaries } => {
                write!(f, "Join {{ schedules: {schedules:?}, boundaries: {boundaries:?} }}")
            }
            Schedule::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// A value with JAX's "weak type" flag: weak values (from Python-float arithmetic) take the
/// dtype of a strong value they meet.
struct Val {
    a: Array,
    weak: bool,
}

impl Schedule {
    /// The value at `count` (a rank-0 integer array, possibly a tracer) as a rank-0 array of
    /// `dtype` (f32 or f64; other float dtypes are computed in f32 and cast).
    pub fn eval(&self, count: &Array, dtype: DType) -> Result<Array> {
        if count.rank() != 0 {
            return Err(Error::shape(
                "schedule",
                format!(
                    "the step count must be rank 0, got shape {:?}",
                    count.shape()
                ),
            ));
        }
        let want = num::compute_dtype(dtype);
        let count = cast(count, DType::I32)?;
        let v = self.eval_val(&count, want)?;
        cast(&v.a, dtype)
    }
    /// The value at `step` computed eagerly in f64 (Optax under `jax_enable_x64`).
    pub fn value(&self, step: i32) -> Result<f64> {
        let a = self.eval(&Array::scalar(step), DType::F64)?;
        Ok(a.to_vec::<f64>()?[0])
    }
    /// The value at `step` computed eagerly in f32 (Optax's default).
    pub fn value_f32(&self, step: i32) -> Result<f32> {
        let a = self.eval(&Array::scalar(step), DType::F32)?;
        Ok(a.to_vec::<f32>()?[0])
    }

    fn eval_val(&self, count: &Array, want: DType) -> Result<Val> {
        let i32c = |c: i64| konst(DType::I32, c as f64);
        match self {
            Schedule::Constant(v) => Ok(Val {
                a: konst(want, *v),
                weak: true,
            }),
            Schedule::Polynomial {
                init,
                end,
                power,
                transition_steps,
                transition_begin,
            } => {
                if *transition_steps <= 0 {
                    return Ok(Val {
                        a: konst(want, *init),
                        weak: true,
                    });
                }
                let begin = (*transition_begin).max(0);
                // Integer clip, then an int32 / int division: f32 in JAX, even under x64.
                let c = num::sub(count, &i32c(begin))?;
                let c = num::min(&num::max(&c, &i32c(0))?, &i32c(*transition_steps))?;
                let frac = num::rsubc(
                    1.0,
                    &num::divc(&cast(&c, DType::F32)?, *transition_steps as f64)?,
                )?;
                let p = powf(&frac, *power)?;
                let v = num::addc(&num::mulc(&p, init - end)?, *end)?;
                Ok(Val { a: v, weak: false })
            }
            Schedule::CosineDecay {
                init,
                decay_steps,
                alpha,
                exponent,
            } => {
                let t = num::minc(&cast(count, want)?, *decay_steps as f64)?;
                let x = num::divc(&num::mulc(&t, std::f64::consts::PI)?, *decay_steps as f64)?;
                let cd = num::mulc(&num::addc(&unary::cos(&x)?, 1.0)?, 0.5)?;
                let cd = powf(&cd, *exponent)?;
                let d = num::addc(&num::mulc(&cd, 1.0 - alpha)?, *alpha)?;
                Ok(Val {
                    a: num::mulc(&d, *init)?,
                    weak: true,
                })
            }
            Schedule::ExponentialDecay {
                init,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end,
            } => {
                if *transition_steps <= 0 || *decay_rate == 0.0 {
                    return Ok(Val {
                        a: konst(want, *init),
                        weak: true,
                    });
                }
                let begin = (*transition_begin).max(0);
                let dc = num::sub(count, &i32c(begin))?;
                let mut p = num::divc(&cast(&dc, DType::F32)?, *transition_steps as f64)?;
                if *staircase {
                    p = unary::floor(&p)?;
                }
                let decayed = num::mulc(&num::rpowc(*decay_rate, &p)?, *init)?;
                let before = num::cmp(CompareOp::Le, &dc, &i32c(0))?;
                let mut v = num::select(&before, &konst(DType::F32, *init), &decayed)?;
                if let Some(e) = end {
                    v = if *decay_rate < 1.0 {
                        num::maxc(&v, *e)?
                    } else {
                        num::minc(&v, *e)?
                    };
                }
                Ok(Val { a: v, weak: false })
            }
            Schedule::PiecewiseConstant {
                init,
                boundaries_and_scales,
            } => {
                let mut v = konst(want, *init);
                for &(b, s) in boundaries_and_scales {
                    // max(0, sign(b - count)): 1 before the boundary, 0 from it on.
                    let ind = num::sign(&num::sub(&i32c(b), count)?)?;
                    let ind = cast(&num::max(&ind, &i32c(0))?, want)?;
                    let keep = num::mul(&v, &ind)?;
                    let scaled = num::mul(&num::mulc(&num::rsubc(1.0, &ind)?, s)?, &v)?;
                    v = num::add(&keep, &scaled)?;
                }
                Ok(Val { a: v, weak: true })
            }
            Schedule::PiecewiseInterpolate {
                kind,
                init,
                boundaries_and_scales,
            } => {
                let mut bounds = vec![0i64];
                bounds.extend(boundaries_and_scales.iter().map(|b| b.0));
                // Cumulative products of the scales, rounded to `want` at each step as
                // `jnp.cumprod` does in that dtype.
                let mut values = vec![round_to(*init, want)];
                for &(_, s) in boundaries_and_scales {
                    let last = *values.last().expect("non-empty");
                    values.push(round_to(last * round_to(s, want), want));
                }
                let cf = cast(count, want)?;
                let mut total = konst(want, 0.0);
                for i in 0..bounds.len() - 1 {
                    let (lo, hi) = (bounds[i], bounds[i + 1]);
                    let size = (hi - lo).max(1) as f64;
                    let inside = num::and(
                        &num::cmp(CompareOp::Le, &i32c(lo), count)?,
                        &num::cmp(CompareOp::Lt, count, &i32c(hi))?,
                    )?;
                    let pct = num::divc(&num::subc(&cf, lo as f64)?, size)?;
                    let (start, end) = (values[i], values[i + 1]);
                    let seg = match kind {
                        Interpolation::Linear => num::addc(&num::mulc(&pct, end - start)?, start)?,
                        Interpolation::Cosine => {
                            let c = unary::cos(&num::mulc(&pct, std::f64::consts::PI)?)?;
                            num::addc(&num::mulc(&num::addc(&c, 1.0)?, (start - end) / 2.0)?, end)?
                        }
                    };
                    total = num::add(&total, &num::mul(&cast(&inside, want)?, &seg)?)?;
                }
                let last_b = *bounds.last().expect("non-empty");
                let after = cast(&num::cmp(CompareOp::Le, &i32c(last_b), count)?, want)?;
                let tail = num::mulc(&after, *values.last().expect("non-empty"))?;
                Ok(Val {
                    a: num::add(&total, &tail)?,
                    weak: false,
                })
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                let mut out = schedules[0].eval_val(count, want)?;
                for (b, s) in boundaries.iter().zip(&schedules[1..]) {
                    let next = s.eval_val(&num::sub(count, &i32c(*b))?, want)?;
                    let before = num::cmp(CompareOp::Lt, count, &i32c(*b))?;
                    // JAX's promotion: a strong operand's dtype wins over a weak one's.
                    let (dt, weak) = match (out.weak, next.weak) {
                        (true, true) => (want, true),
                        (false, _) => (out.a.dtype(), false),
                        (true, false) => (next.a.dtype(), false),
                    };
                    let a = num::select(&before, &cast(&out.a, dt)?, &cast(&next.a, dt)?)?;
                    out = Val { a, weak };
                }
                Ok(out)
            }
            Schedule::Custom(f) => Ok(Val {
                a: cast(&f(count)?, want)?,
                weak: false,
            }),
        }
    }
}

/// `x^p`; an integer `p` is applied by repeated squaring (as `lax.integer_pow`), so `p = 1`
/// is exact.
fn powf(x: &Array, p: f64) -> Result<Array> {
    if p == p.trunc() && (0.0..=64.0).contains(&p) {
        let mut n = p as u32;
        if n == 0 {
            return Ok(Array::full(x.shape(), x.dtype(), 1.0));
        }
        let mut base = x.clone();
        let mut acc: Option<Array> = None;
        while n > 0 {
            if n & 1 == 1 {
                acc = Some(match acc {
                    None => base.clone(),
                    Some(a) => num::mul(&a, &base)?,
                });
            }
            n >>= 1;
            if n > 0 {
                base = num::mul(&base, &base)?;
            }
        }
        return Ok(acc.expect("n > 0"));
    }
    num::pow(x, &konst(x.dtype(), p))
}

fn round_to(x: f64, dt: DType) -> f64 {
    if dt == DType::F64 {
        x
    } else {
        x as f32 as f64
    }
}

// ---- constructors ----------------------------------------------------------------------

/// The same value at every step.
pub fn constant_schedule(value: f64) -> Schedule {
    Schedule::Constant(value)
}

/// From `init_value` to `end_value` along `(1 - t/T)^power` over `transition_steps` steps
/// starting at `transition_begin` (a non-positive `transition_steps` gives a constant, as
/// in Optax).
pub fn polynomial_schedule(
    init_value: f64,
    end_value: f64,
    power: f64,
    transition_steps: i64,
    transition_begin: i64,
) -> Schedule {
    Schedule::Polynomial {
        init: init_value,
        end: end_value,
        power,
        transition_steps,
        transition_begin,
    }
}

/// A straight line from `init_value` to `end_value` (`polynomial_schedule` with power 1).
pub fn linear_schedule(
    init_value: f64,
    end_value: f64,
    transition_steps: i64,
    transition_begin: i64,
) -> Schedule {
    polynomial_schedule(
        init_value,
        end_value,
        1.0,
        transition_steps,
        transition_begin,
    )
}

/// Cosine decay from `init_value` to `alpha * init_value` over `decay_steps` steps.
pub fn cosine_decay_schedule(
    init_value: f64,
    decay_steps: i64,
    alpha: f64,
    exponent: f64,
) -> Result<Schedule> {
    if decay_steps <= 0 {
        return Err(Error::invalid(
            "cosine_decay_schedule",
            format!("needs positive decay_steps, got {decay_steps}"),
        ));
    }
    Ok(Schedule::CosineDecay {
        init: init_value,
        decay_steps,
        alpha,
        exponent,
    })
}

/// Exponential decay `init_value * decay_rate^((count - transition_begin) / transition_steps)`
/// (the exponent floored when `staircase`), bounded by `end_value`. A non-positive
/// `transition_steps` or a zero `decay_rate` gives a constant, as in Optax.
pub fn exponential_decay(
    init_value: f64,
    transition_steps: i64,
    decay_rate: f64,
    transition_begin: i64,
    staircase: bool,
    end_value: Option<f64>,
) -> Schedule {
    Schedule::ExponentialDecay {
        init: init_value,
        transition_steps,
        decay_rate,
        transition_begin,
        staircase,
        end: end_value,
    }
}

/// `init_value` scaled by every `scale` whose boundary has been reached.
pub fn piecewise_constant_schedule(
    init_value: f64,
    boundaries_and_scales: &[(i64, f64)],
) -> Result<Schedule> {
    let bs = sorted_scales("piecewise_constant_schedule", boundaries_and_scales)?;
    Ok(Schedule::PiecewiseConstant {
        init: init_value,
        boundaries_and_scales: bs,
    })
}

/// Interpolates (linearly or by half cosines) between the cumulative products of the scales.
pub fn piecewise_interpolate_schedule(
    kind: Interpolation,
    init_value: f64,
    boundaries_and_scales: &[(i64, f64)],
) -> Result<Schedule> {
    let bs = sorted_scales("piecewise_interpolate_schedule", boundaries_and_scales)?;
    Ok(Schedule::PiecewiseInterpolate {
        kind,
        init: init_value,
        boundaries_and_scales: bs,
    })
}

fn sorted_scales(op: &'static str, bs: &[(i64, f64)]) -> Result<Vec<(i64, f64)>> {
    if let Some((b, s)) = bs.iter().find(|(_, s)| s.is_nan() || *s < 0.0) {
        return Err(Error::invalid(
            op,
            format!("scales must be non-negative; boundary {b} has {s}"),
        ));
    }
    let mut v = bs.to_vec();
    v.sort_by_key(|x| x.0);
    Ok(v)
}

/// `schedules[0]` until `boundaries[0]`, then `schedules[1]` counting from that boundary, ...
pub fn join_schedules(schedules: Vec<Schedule>, boundaries: &[i64]) -> Result<Schedule> {
    if schedules.is_empty() || boundaries.len() + 1 != schedules.len() {
        return Err(Error::invalid(
            "join_schedules",
            format!(
                "needs one boundary fewer than schedules, got {} schedules and {} boundaries",
                schedules.len(),
                boundaries.len()
            ),
        ));
    }
    Ok(Schedule::Join {
        schedules,
        boundaries: boundaries.to_vec(),
    })
}

/// Linear warmup from `init_value` to `peak_value` over `warmup_steps`, then cosine decay
/// to `end_value`; `decay_steps` counts the whole schedule, warmup included (as Optax).
pub fn warmup_cosine_decay_schedule(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    decay_steps: i64,
    end_value: f64,
    exponent: f64,
) -> Result<Schedule> {
    let alpha = if peak_value == 0.0 {
        0.0
    } else {
        end_value / peak_value
    };
    join_schedules(
        vec![
            linear_schedule(init_value, peak_value, warmup_steps, 0),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)?,
        ],
        &[warmup_steps],
    )
}

/// `init_value` rising linearly to `peak_value` over `warmup_steps`, then constant (the
/// warmup of the schedule-free optimizers).
pub fn warmup_constant_schedule(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
) -> Result<Schedule> {
    join_schedules(
        vec![
            linear_schedule(init_value, peak_value, warmup_steps, 0),
            constant_schedule(peak_value),
        ],
        &[warmup_steps],
    )
}

/// Linear warmup from `init_value` to `peak_value`, then [`exponential_decay`] from the peak.
pub fn warmup_exponential_decay_schedule(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    transition_steps: i64,
    decay_rate: f64,
    transition_begin: i64,
    staircase: bool,
    end_value: Option<f64>,
) -> Result<Schedule> {
    join_schedules(
        vec![
            linear_schedule(init_value, peak_value, warmup_steps, 0),
            exponential_decay(
                peak_value,
                transition_steps,
                decay_rate,
                transition_begin,
                staircase,
                end_value,
            ),
        ],
        &[warmup_steps],
    )
}

/// The one-cycle policy with cosine phases: up from `peak_value / div_factor` to the peak
/// over `pct_start` of the steps, then down to `peak / (div_factor * final_div_factor)`.
pub fn cosine_onecycle_schedule(
    transition_steps: i64,
    peak_value: f64,
    pct_start: f64,
    div_factor: f64,
    final_div_factor: f64,
) -> Result<Schedule> {
    if transition_steps <= 0 {
        return Err(Error::invalid(
            "cosine_onecycle_schedule",
            "needs positive transition_steps",
        ));
    }
    piecewise_interpolate_schedule(
        Interpolation::Cosine,
        peak_value / div_factor,
        &[
            ((pct_start * transition_steps as f64) as i64, div_factor),
            (transition_steps, 1.0 / (div_factor * final_div_factor)),
        ],
    )
}

/// The one-cycle policy with linear phases (up, back down to the start, then annealed).
pub fn linear_onecycle_schedule(
    transition_steps: i64,
    peak_value: f64,
    pct_start: f64,
    pct_final: f64,
    div_factor: f64,
    final_div_factor: f64,
) -> Result<Schedule> {
    if transition_steps <= 0 {
        return Err(Error::invalid(
            "linear_onecycle_schedule",
            "needs positive transition_steps",
        ));
    }
    piecewise_interpolate_schedule(
        Interpolation::Linear,
        peak_value / div_factor,
        &[
            ((pct_start * transition_steps as f64) as i64, div_factor),
            (
                (pct_final * transition_steps as f64) as i64,
                1.0 / div_factor,
            ),
            (transition_steps, 1.0 / final_div_factor),
        ],
    )
}

/// One cycle of [`sgdr_schedule`]: the arguments of [`warmup_cosine_decay_schedule`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineCycle {
    /// Start of the warmup.
    pub init_value: f64,
    /// Peak after the warmup.
    pub peak_value: f64,
    /// Warmup length.
    pub warmup_steps: i64,
    /// Cycle length (warmup included).
    pub decay_steps: i64,
    /// Value at the end of the cycle.
    pub end_value: f64,
}

/// SGD with warm restarts: warmup-cosine cycles one after another.
pub fn sgdr_schedule(cycles: &[CosineCycle]) -> Result<Schedule> {
    let mut schedules = Vec::new();
    let mut boundaries = Vec::new();
    let mut step = 0;
    for c in cycles {
        schedules.push(warmup_cosine_decay_schedule(
            c.init_value,
            c.peak_value,
            c.warmup_steps,
            c.decay_steps,
            c.end_value,
            1.0,
        )?);
        step += c.decay_steps;
        boundaries.push(step);
    }
    boundaries.pop();
    join_schedules(schedules, &boundaries)
}
