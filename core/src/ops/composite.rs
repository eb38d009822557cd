//! Reduction composites: `mean`, `var`, `std`, `logsumexp`, `softmax`, `log_softmax`, `norm`.
//! Each is written once on [`Array`] from primitives (reduce, broadcast_in_dim, elementwise
//! ops) through `bind`, so it traces like any other code, and is exposed typed on
//! [`Tensor`]. None is a primitive. bf16/f16 inputs are computed in f32 and rounded once at
//! the end, as `jnp.mean` does.
//!
//! ```
//! use ferrax_core::{Tensor, C};
//! let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 1000., 1000., 1000.]).unwrap();
//! let p = x.softmax_axis::<1>().to_vec().unwrap();
//! assert!((p[0] + p[1] + p[2] - 1.0).abs() < 1e-6);
//! assert!((p[3] - 1.0 / 3.0).abs() < 1e-6); // no overflow at 1000
//! assert_eq!(x.mean_axis::<1>().to_vec().unwrap(), vec![2.0, 1000.0]);
//! ```

use crate::array::Array;
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::ops::reduce::typed;
use crate::prim::binary::{add, binary_scalar, div, mul, sub, BinaryOp};
use crate::prim::broadcast_in_dim::broadcast_in_dim;
use crate::prim::convert::convert;
use crate::prim::reduce::{canonical_axes, reduce, ReduceOp};
use crate::prim::select::select;
use crate::prim::unary::{abs, exp, is_finite, log, sqrt};
use crate::shape::Shape;
use crate::shape_axes::RemoveAxis;
use crate::tensor::Tensor;

/// Which vector norm [`norm`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NormOrd {
    /// `sum(|x|)`.
    L1,
    /// `sqrt(sum(x^2))` (the default).
    L2,
    /// `max(|x|)`.
    Inf,
}

/// Runs `f` on `x` in a float dtype wide enough to accumulate in: bf16/f16 go through f32 and
/// the result is rounded back once. Integer and bool inputs are rejected, naming `op`.
fn in_float(op: &'static str, x: &Array, f: impl FnOnce(&Array) -> Result<Array>) -> Result<Array> {
    match x.dtype() {
        DType::F32 | DType::F64 => f(x),
        DType::BF16 | DType::F16 => convert(&f(&convert(x, DType::F32)?)?, x.dtype()),
        d => Err(Error::dtype(op, format!("needs a float operand, got {d}"))),
    }
}

/// Broadcasts `r` (the result of reducing `axes` of a `shape`) back to `shape`.
fn expand(r: &Array, shape: &[usize], axes: &[usize]) -> Result<Array> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    broadcast_in_dim(r, shape, &kept)
}

/// Number of elements folded per output when reducing `axes` of `x`.
fn count(x: &Array, axes: &[usize]) -> usize {
    axes.iter().map(|&a| x.shape()[a]).product()
}

fn mean_f(x: &Array, axes: &[usize]) -> Result<Array> {
    let s = reduce(x, ReduceOp::Sum, axes)?;
    binary_scalar(BinaryOp::Div, &s, count(x, axes) as f64)
}

fn var_f(x: &Array, axes: &[usize], ddof: usize) -> Result<Array> {
    // Two passes (mean, then squared deviations): no cancellation, unlike E[x²] - E[x]².
    let m = expand(&mean_f(x, axes)?, x.shape(), axes)?;
    let d = sub(x, &m)?;
    let ss = reduce(&mul(&d, &d)?, ReduceOp::Sum, axes)?;
    let n = count(x, axes) as f64 - ddof as f64;
    binary_scalar(BinaryOp::Div, &ss, n.max(0.0))
}

/// Mean over `axes` (any order; empty reductions give NaN, as `jnp.mean`).
pub fn mean(x: &Array, axes: &[usize]) -> Result<Array> {
    let axes = canonical_axes("mean", axes, x.rank())?;
    in_float("mean", x, |x| mean_f(x, &axes))
}

/// Variance over `axes` with `ddof` delta degrees of freedom (`jnp.var`; ddof 0 is the
/// population variance).
pub fn var(x: &Array, axes: &[usize], ddof: usize) -> Result<Array> {
    let axes = canonical_axes("var", axes, x.rank())?;
    in_float("var", x, |x| var_f(x, &axes, ddof))
}

/// Standard deviation over `axes`: `sqrt(var(x, axes, ddof))`.
pub fn std(x: &Array, axes: &[usize], ddof: usize) -> Result<Array> {
    let axes = canonical_axes("std", axes, x.rank())?;
    in_float("std", x, |x| sqrt(&var_f(x, &axes, ddof)?))
}

/// `log(sum(exp(x)))` over `axes`, shifted by the maximum so large inputs do not overflow.
/// All `-inf` gives `-inf`, any `+inf` gives `+inf`, an empty reduction gives `-inf`.
pub fn logsumexp(x: &Array, axes: &[usize]) -> Result<Array> {
    let axes = canonical_axes("logsumexp", axes, x.rank())?;
    in_float("logsumexp", x, |x| {
        let m = reduce(x, ReduceOp::Max, &axes)?;
        // A non-finite max (all -inf, or +inf) would make `x - m` NaN: shift by 0 there.
        let m = select(&is_finite(&m)?, &m, &Array::zeros(m.shape(), m.dtype()))?;
        let e = exp(&sub(x, &expand(&m, x.shape(), &axes)?)?)?;
        add(&log(&reduce(&e, ReduceOp::Sum, &axes)?)?, &m)
    })
}

/// `exp(x) / sum(exp(x))` over `axes`, computed from `x - max(x)` (stable). Same shape.
pub fn softmax(x: &Array, axes: &[usize]) -> Result<Array> {
    let axes = canonical_axes("softmax", axes, x.rank())?;
    in_float("softmax", x, |x| {
        let m = reduce(x, ReduceOp::Max, &axes)?;
        let e = exp(&sub(x, &expand(&m, x.shape(), &axes)?)?)?;
        let s = reduce(&e, ReduceOp::Sum, &axes)?;
        div(&e, &expand(&s, x.shape(), &axes)?)
    })
}

/// `x - logsumexp(x)` over `axes`, computed from `x - max(x)` (stable). Same shape.
pub fn log_softmax(x: &Array, axes: &[usize]) -> Result<Array> {
    let axes = canonical_axes("log_softmax", axes, x.rank())?;
    in_float("log_softmax", x, |x| {
        let m = reduce(x, ReduceOp::Max, &axes)?;
        let shifted = sub(x, &expand(&m, x.shape(), &axes)?)?;
        let lse = log(&reduce(&exp(&shifted)?, ReduceOp::Sum, &axes)?)?;
        sub(&shifted, &expand(&lse, x.shape(), &axes)?)
    })
}

/// The vector norm of order `ord` over `axes` (as `jnp.linalg.norm` on flattened axes).
/// Over an empty extent every order gives 0.
pub fn norm(x: &Array, axes: &[usize], ord: NormOrd) -> Result<Array> {
    let axes = canonical_axes("norm", axes, x.rank())?;
    in_float("norm", x, |x| match ord {
        NormOrd::L1 => reduce(&abs(x)?, ReduceOp::Sum, &axes),
        NormOrd::L2 => sqrt(&reduce(&mul(x, x)?, ReduceOp::Sum, &axes)?),
        NormOrd::Inf => {
            // max(|x|) with 0 as the identity: |x| >= 0, so folding in a 0 changes nothing
            // except on an empty extent, where the norm is 0 (not -inf).
            let m = reduce(&abs(x)?, ReduceOp::Max, &axes)?;
            if count(x, &axes) == 0 {
                return Ok(Array::zeros(m.shape(), m.dtype()));
            }
            Ok(m)
        }
    })
}

fn all_axes<S: Shape>() -> Vec<usize> {
    (0..S::RANK).collect()
}

/// The last axis, or none for a scalar (softmax of a scalar is 1).
fn last_axis<S: Shape>() -> Vec<usize> {
    S::RANK.checked_sub(1).into_iter().collect()
}

impl<S: Shape, E: Float> Tensor<S, E> {
    /// Mean of all elements (NaN for an empty tensor).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<4>,)>::from_vec(vec![1., 2., 3., 6.]).unwrap();
    /// assert_eq!(x.mean().item().unwrap(), 3.0);
    /// assert_eq!(x.var().item().unwrap(), 3.5);
    /// ```
    pub fn mean(&self) -> Tensor<(), E> {
        typed("mean", mean(self.array(), &all_axes::<S>()))
    }
    /// Mean along axis `I`, which the output type drops.
    pub fn mean_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, E>
    where
        S: RemoveAxis<I>,
    {
        typed("mean_axis", mean(self.array(), &[I]))
    }
    /// Population variance of all elements (ddof 0, as `jnp.var`).
    pub fn var(&self) -> Tensor<(), E> {
        typed("var", var(self.array(), &all_axes::<S>(), 0))
    }
    /// Population variance along axis `I`.
    pub fn var_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, E>
    where
        S: RemoveAxis<I>,
    {
        typed("var_axis", var(self.array(), &[I], 0))
    }
    /// Population standard deviation of all elements (ddof 0, as `jnp.std`).
    pub fn std(&self) -> Tensor<(), E> {
        typed("std", std(self.array(), &all_axes::<S>(), 0))
    }
    /// Population standard deviation along axis `I`.
    pub fn std_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, E>
    where
        S: RemoveAxis<I>,
    {
        typed("std_axis", std(self.array(), &[I], 0))
    }
    /// `log(sum(exp(x)))` of all elements, stable for large inputs.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>,)>::from_vec(vec![1000., 1000.]).unwrap();
    /// let l = x.logsumexp().item().unwrap();
    /// assert!((l - (1000. + 2f32.ln())).abs() < 1e-3);
    /// ```
    pub fn logsumexp(&self) -> Tensor<(), E> {
        typed("logsumexp", logsumexp(self.array(), &all_axes::<S>()))
    }
    /// `log(sum(exp(x)))` along axis `I`, stable for large inputs.
    pub fn logsumexp_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, E>
    where
        S: RemoveAxis<I>,
    {
        typed("logsumexp_axis", logsumexp(self.array(), &[I]))
    }
    /// Softmax along the last axis (as `jax.nn.softmax`'s default); shape preserved.
    pub fn softmax(&self) -> Tensor<S, E> {
        typed("softmax", softmax(self.array(), &last_axis::<S>()))
    }
    /// Softmax along axis `I`; shape preserved.
    pub fn softmax_axis<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        typed("softmax_axis", softmax(self.array(), &[I]))
    }
    /// Log-softmax along the last axis; shape preserved.
    pub fn log_softmax(&self) -> Tensor<S, E> {
        typed("log_softmax", log_softmax(self.array(), &last_axis::<S>()))
    }
    /// Log-softmax along axis `I`; shape preserved.
    pub fn log_softmax_axis<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        typed("log_softmax_axis", log_softmax(self.array(), &[I]))
    }
    /// Euclidean (L2) norm of all elements.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// use ferrax_core::ops::composite::NormOrd;
    /// let x = Tensor::<(C<2>,)>::from_vec(vec![3., -4.]).unwrap();
    /// assert_eq!(x.norm().item().unwrap(), 5.0);
    /// assert_eq!(x.norm_ord(NormOrd::L1).item().unwrap(), 7.0);
    /// assert_eq!(x.norm_ord(NormOrd::Inf).item().unwrap(), 4.0);
    /// ```
    pub fn norm(&self) -> Tensor<(), E> {
        self.norm_ord(NormOrd::L2)
    }
    /// Norm of order `ord` of all elements.
    pub fn norm_ord(&self, ord: NormOrd) -> Tensor<(), E> {
        typed("norm", norm(self.array(), &all_axes::<S>(), ord))
    }
    /// Norm of order `ord` along axis `I`.
    pub fn norm_axis<const I: usize>(&self, ord: NormOrd) -> Tensor<<S as RemoveAxis<I>>::Out, E>
    where
        S: RemoveAxis<I>,
    {
        typed("norm_axis", norm(self.array(), &[I], ord))
    }
}
