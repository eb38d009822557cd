//! Probability distributions in NumPyro's style: each has a batch shape (independent,
//! not necessarily identical, distributions) and an event shape (the shape of one draw),
//! a support [`Constraint`], `log_prob` built from ferrax ops (so it traces and
//! differentiates), `sample` from a [`Key`] (same draws as NumPyro where JAX's sampler is
//! available in core), and `mean` / `variance`.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::{Distribution, Normal};
//! # fn main() -> ferrax_infer::Result<()> {
//! let d = Normal::new(0.5, 2.0)?;
//! let lp = d.log_prob(&Array::scalar(1.25f64))?;
//! assert!((lp.to_vec::<f64>()?[0] + 1.6823982137646178).abs() < 1e-12);
//! let x = d.sample(&Key::new(0), &[3])?;
//! assert_eq!(x.shape(), &[3]);
//! # Ok(())
//! # }
//! ```

mod continuous;
mod discrete;
mod lkj;
mod mixture;
mod multivariate;
mod truncated;
mod wrappers;

pub use continuous::*;
pub use discrete::*;
pub use lkj::*;
pub use mixture::*;
pub use multivariate::*;
pub use truncated::*;
pub use wrappers::*;

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{bshape, ArrayMath};
use ferrax_core::random::Key;
use ferrax_core::{Array, DType, Elem, Shape, Tensor};
use std::fmt;
use std::sync::Arc;

/// A probability distribution over arrays. Object safe: models pass `Arc<dyn Distribution>`.
pub trait Distribution: fmt::Debug + Send + Sync {
    /// The name, as NumPyro's class (`Normal`).
    fn name(&self) -> &'static str;
    /// Shape of independent (batched) distributions.
    fn batch_shape(&self) -> Vec<usize>;
    /// Shape of one draw of one of them.
    fn event_shape(&self) -> Vec<usize> {
        Vec::new()
    }
    /// Float dtype of the parameters (and of continuous draws).
    fn dtype(&self) -> DType;
    /// The set of values with positive density.
    fn support(&self) -> Constraint;
    /// Whether the values are integers.
    fn is_discrete(&self) -> bool {
        false
    }
    /// Log density (or mass) of `value` (shape `sample ++ batch ++ event`, broadcasting);
    /// the result has the broadcast batch shape. Computed in `value`'s float dtype.
    fn log_prob(&self, value: &Array) -> Result<Array>;
    /// Draws of shape `sample_shape ++ batch_shape ++ event_shape`.
    fn sample(&self, key: &Key, sample_shape: &[usize]) -> Result<Array>;
    /// The mean (shape `batch ++ event`); NaN or inf where undefined, as NumPyro.
    fn mean(&self) -> Result<Array> {
        Err(Error::unsupported(self.name(), "mean is not implemented"))
    }
    /// The variance (shape `batch ++ event`).
    fn variance(&self) -> Result<Array> {
        Err(Error::unsupported(
            self.name(),
            "variance is not implemented",
        ))
    }
    /// Whether `sample` is a differentiable function of the parameters.
    fn has_rsample(&self) -> bool {
        false
    }
    /// Cumulative distribution function (univariate continuous distributions that define
    /// it; what [`Truncated`] needs).
    fn cdf(&self, _value: &Array) -> Result<Array> {
        Err(Error::unsupported(self.name(), "cdf is not implemented"))
    }
    /// Survival function `1 - cdf`. Distributions with a closed-form upper tail override
    /// it so that it keeps its relative accuracy where `cdf` is close to 1 (what
    /// [`Truncated`] needs for bounds far in the upper tail).
    fn sf(&self, value: &Array) -> Result<Array> {
        Ok(self.cdf(value)?.rsubc(1.0)?)
    }
    /// Inverse of [`Distribution::cdf`].
    fn icdf(&self, _q: &Array) -> Result<Array> {
        Err(Error::unsupported(self.name(), "icdf is not implemented"))
    }
    /// `(loc, scale)` when this is a Normal (possibly reinterpreted with `to_event` or
    /// under identity transforms): lets `TraceMeanField_ELBO` use the closed-form KL.
    fn as_normal(&self) -> Option<(Array, Array)> {
        None
    }
}

/// A shared, type-erased distribution (what sample sites hold).
pub type DynDist = Arc<dyn Distribution>;

impl<D: Distribution + ?Sized> Distribution for Arc<D> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn batch_shape(&self) -> Vec<usize> {
        (**self).batch_shape()
    }
    fn event_shape(&self) -> Vec<usize> {
        (**self).event_shape()
    }
    fn dtype(&self) -> DType {
        (**self).dtype()
    }
    fn support(&self) -> Constraint {
        (**self).support()
    }
    fn is_discrete(&self) -> bool {
        (**self).is_discrete()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        (**self).log_prob(value)
    }
    fn sample(&self, key: &Key, sample_shape: &[usize]) -> Result<Array> {
        (**self).sample(key, sample_shape)
    }
    fn mean(&self) -> Result<Array> {
        (**self).mean()
    }
    fn variance(&self) -> Result<Array> {
        (**self).variance()
    }
    fn has_rsample(&self) -> bool {
        (**self).has_rsample()
    }
    fn cdf(&self, value: &Array) -> Result<Array> {
        (**self).cdf(value)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        (**self).sf(value)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        (**self).icdf(q)
    }
    fn as_normal(&self) -> Option<(Array, Array)> {
        (**self).as_normal()
    }
}

/// Builder methods every distribution gets: `to_event`, `expand`, `mask`.
pub trait DistExt: Distribution + Sized + 'static {
    /// Reinterprets the last `n` batch axes as event axes (NumPyro's `to_event`).
    fn to_event(self, n: usize) -> Result<Independent> {
        Independent::new(Arc::new(self), n)
    }
    /// Broadcasts the batch shape to `batch_shape` (NumPyro's `expand`).
    fn expand(self, batch_shape: &[usize]) -> Result<Expanded> {
        Expanded::new(Arc::new(self), batch_shape)
    }
    /// Masks the log density with a bool array (NumPyro's `mask`).
    fn masked(self, mask: Array) -> Result<Masked> {
        Masked::new(Arc::new(self), mask)
    }
    /// Type-erases it.
    fn boxed(self) -> DynDist {
        Arc::new(self)
    }
}
impl<D: Distribution + Sized + 'static> DistExt for D {}

/// Things a distribution parameter can be built from: Rust floats (f64 / f32 scalars),
/// `Vec<f64>` (a vector), arrays and tensors (possibly traced).
pub trait IntoArray {
    /// The parameter as an array.
    fn into_array(self) -> Array;
}
impl IntoArray for f64 {
    fn into_array(self) -> Array {
        Array::scalar(self)
    }
}
impl IntoArray for f32 {
    fn into_array(self) -> Array {
        Array::scalar(self)
    }
}
impl IntoArray for Array {
    fn into_array(self) -> Array {
        self
    }
}
impl IntoArray for &Array {
    fn into_array(self) -> Array {
        self.clone()
    }
}
impl IntoArray for Vec<f64> {
    fn into_array(self) -> Array {
        let n = self.len();
        Array::from_vec(vec![n], self).expect("a vector's length matches its shape")
    }
}
impl<S: Shape, E: Elem> IntoArray for Tensor<S, E> {
    fn into_array(self) -> Array {
        self.into_array()
    }
}
impl<S: Shape, E: Elem> IntoArray for &Tensor<S, E> {
    fn into_array(self) -> Array {
        self.array().clone()
    }
}

/// Promotes parameters to one float dtype (f64 if any is f64, else f32; integers become
/// that float) and returns them with their broadcast shape (the batch shape, for
/// elementwise distributions).
pub(crate) fn promote(
    what: &'static str,
    ps: Vec<Array>,
) -> Result<(Vec<Array>, Vec<usize>, DType)> {
    let mut dt = None;
    for p in &ps {
        match p.dtype() {
            DType::F64 => dt = Some(DType::F64),
            DType::F32 if dt != Some(DType::F64) => dt = Some(DType::F32),
            d if d.is_float() => {
                return Err(Error::invalid(
                    what,
                    format!("parameters must be f32 or f64, got {d}"),
                ))
            }
            _ => {}
        }
    }
    let dt = dt.unwrap_or(DType::F32);
    let mut shape: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(ps.len());
    for p in ps {
        if p.dtype() == DType::Bool {
            return Err(Error::invalid(what, "a bool parameter is not supported"));
        }
        shape = bshape(what, &shape, p.shape()).map_err(|_| {
            Error::invalid(
                what,
                format!(
                    "parameter shapes do not broadcast: {:?} vs {:?}",
                    shape,
                    p.shape()
                ),
            )
        })?;
        out.push(p.cast(dt)?);
    }
    Ok((out, shape, dt))
}

/// Casts `value` and the parameters to the dtype the density is computed in: the value's
/// float dtype, or the parameters' for integer values.
pub(crate) fn at(value: &Array, params: &[&Array], dt: DType) -> Result<(Array, Vec<Array>)> {
    let dt = if value.dtype().is_float() {
        value.dtype()
    } else {
        dt
    };
    let v = value.cast(dt)?;
    let ps = params
        .iter()
        .map(|p| p.cast(dt))
        .collect::<ferrax_core::Result<Vec<_>>>()?;
    Ok((v, ps))
}

/// NumPyro's log density outside the support: `-inf` where `inside` is false. `f` (the
/// density formula) is evaluated at `x` where `inside` holds and at `safe` (a point of the
/// support) elsewhere, so neither its value nor its gradient meets an out-of-support
/// argument (a NaN there would leak into parameter gradients through the masked branch).
pub(crate) fn on_support(
    x: &Array,
    inside: &Array,
    safe: &Array,
    f: impl FnOnce(&Array) -> Result<Array>,
) -> Result<Array> {
    let xs = crate::math::where_(inside, x, &safe.cast(x.dtype())?)?;
    let lp = f(&xs)?;
    let shape = bshape("log_prob", inside.shape(), lp.shape())?;
    let lp = lp.bcast(&shape)?;
    Ok(crate::math::where_(
        &inside.bcast(&shape)?,
        &lp,
        &crate::math::full_like(&lp, f64::NEG_INFINITY)?,
    )?)
}

/// `sample_shape ++ batch ++ event`.
pub(crate) fn full_shape(sample: &[usize], batch: &[usize], event: &[usize]) -> Vec<usize> {
    let mut s = sample.to_vec();
    s.extend_from_slice(batch);
    s.extend_from_slice(event);
    s
}

/// Standard draws from core's jax-compatible samplers.
pub(crate) fn std_draw(
    key: &Key,
    d: ferrax_core::prim::random::Dist,
    shape: &[usize],
    dt: DType,
    ps: &[&Array],
) -> Result<Array> {
    Ok(ferrax_core::prim::random::random_sample(
        key.array(),
        d,
        shape,
        dt,
        ps,
    )?)
}
