//! Arithmetic helpers on untyped [`Array`]s used to write log densities and transforms.
//! Every helper is a composite of ferrax primitives applied through `bind`, so the same
//! code runs eagerly, is traced inside a staged potential, and is differentiated by
//! `ferrax_core::ad`. Binary helpers broadcast numpy-style; constants take the dtype of
//! the array they meet.

use ferrax_core::prim::binary::{binary_bcast, BinaryOp};
use ferrax_core::prim::broadcast_in_dim::{broadcast_shapes, broadcast_to};
use ferrax_core::prim::compare::{compare_bcast, CompareOp};
use ferrax_core::prim::reduce::reduce_sum;
use ferrax_core::prim::select::select_bcast;
use ferrax_core::prim::unary as un;
use ferrax_core::{Array, DType, Result};

/// A rank-0 constant of `x`'s dtype. Inside a trace it is lifted to a program constant
/// first, so broadcasting it is recorded (and fused) instead of materialized at trace time.
pub fn scalar_like(x: &Array, c: f64) -> Result<Array> {
    let s = Array::full(&[], x.dtype(), c);
    if x.is_tracer() {
        ferrax_core::trace::lift_concrete(&s)
    } else {
        Ok(s)
    }
}

/// An array of `x`'s shape and dtype filled with `c`.
pub fn full_like(x: &Array, c: f64) -> Result<Array> {
    broadcast_to(&scalar_like(x, c)?, x.shape())
}

/// Elementwise math on arrays with broadcasting; see the module docs.
pub trait ArrayMath: Sized {
    /// `self + o`.
    fn add(&self, o: &Array) -> Result<Array>;
    /// `self - o`.
    fn sub(&self, o: &Array) -> Result<Array>;
    /// `self * o`.
    fn mul(&self, o: &Array) -> Result<Array>;
    /// `self / o`.
    fn div(&self, o: &Array) -> Result<Array>;
    /// `self ^ o`.
    fn pow(&self, o: &Array) -> Result<Array>;
    /// Elementwise maximum.
    fn maximum(&self, o: &Array) -> Result<Array>;
    /// Elementwise minimum.
    fn minimum(&self, o: &Array) -> Result<Array>;
    /// `self + c`.
    fn addc(&self, c: f64) -> Result<Array>;
    /// `self * c`.
    fn mulc(&self, c: f64) -> Result<Array>;
    /// `self / c`.
    fn divc(&self, c: f64) -> Result<Array>;
    /// `c - self`.
    fn rsubc(&self, c: f64) -> Result<Array>;
    /// `c / self`.
    fn rdivc(&self, c: f64) -> Result<Array>;
    /// `self ^ c`.
    fn powc(&self, c: f64) -> Result<Array>;
    /// `-self`.
    fn neg(&self) -> Result<Array>;
    /// `e^self`.
    fn exp(&self) -> Result<Array>;
    /// Natural log.
    fn log(&self) -> Result<Array>;
    /// `ln(1 + self)`.
    fn log1p(&self) -> Result<Array>;
    /// `e^self - 1`.
    fn expm1(&self) -> Result<Array>;
    /// Square root.
    fn sqrt(&self) -> Result<Array>;
    /// `self * self`.
    fn square(&self) -> Result<Array>;
    /// `|self|`.
    fn abs(&self) -> Result<Array>;
    /// `ln |Γ(self)|`.
    fn lgamma(&self) -> Result<Array>;
    /// Digamma.
    fn digamma(&self) -> Result<Array>;
    /// `1 / (1 + e^-self)`.
    fn sigmoid(&self) -> Result<Array>;
    /// Hyperbolic tangent.
    fn tanh(&self) -> Result<Array>;
    /// Arctangent.
    fn atan(&self) -> Result<Array>;
    /// Cosine.
    fn cos(&self) -> Result<Array>;
    /// Round toward -inf.
    fn floor(&self) -> Result<Array>;
    /// `ln(1 + e^self)`, stable for large `|self|`.
    fn softplus(&self) -> Result<Array>;
    /// `ln sigmoid(self) = -softplus(-self)`.
    fn log_sigmoid(&self) -> Result<Array>;
    /// `self * ln(y)`, 0 where `self == 0` (as `jax.scipy.special.xlogy`).
    fn xlogy(&self, y: &Array) -> Result<Array>;
    /// `self * ln(1 + y)`, 0 where `self == 0`.
    fn xlog1py(&self, y: &Array) -> Result<Array>;
    /// Converts to `dt` (a no-op when it already is).
    fn cast(&self, dt: DType) -> Result<Array>;
    /// Sum over the last `n` axes (`n == 0` returns `self`).
    fn sum_last(&self, n: usize) -> Result<Array>;
    /// Sum of every element (a scalar).
    fn sum_all(&self) -> Result<Array>;
    /// Broadcast to `shape`.
    fn bcast(&self, shape: &[usize]) -> Result<Array>;
    /// `self < o` (bool).
    fn lt(&self, o: &Array) -> Result<Array>;
    /// `self <= o` (bool).
    fn le(&self, o: &Array) -> Result<Array>;
    /// `self > o` (bool).
    fn gt(&self, o: &Array) -> Result<Array>;
    /// `self >= o` (bool).
    fn ge(&self, o: &Array) -> Result<Array>;
    /// `self == o` (bool).
    fn eq_(&self, o: &Array) -> Result<Array>;
    /// `self < c` (bool).
    fn ltc(&self, c: f64) -> Result<Array>;
    /// `self > c` (bool).
    fn gtc(&self, c: f64) -> Result<Array>;
    /// `self >= c` (bool).
    fn gec(&self, c: f64) -> Result<Array>;
    /// `self <= c` (bool).
    fn lec(&self, c: f64) -> Result<Array>;
    /// `self == c` (bool).
    fn eqc(&self, c: f64) -> Result<Array>;
}

fn bin(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(op, a, b)
}

impl ArrayMath for Array {
    fn add(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Add, self, o)
    }
    fn sub(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Sub, self, o)
    }
    fn mul(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Mul, self, o)
    }
    fn div(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Div, self, o)
    }
    fn pow(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Pow, self, o)
    }
    fn maximum(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Max, self, o)
    }
    fn minimum(&self, o: &Array) -> Result<Array> {
        bin(BinaryOp::Min, self, o)
    }
    fn addc(&self, c: f64) -> Result<Array> {
        self.add(&scalar_like(self, c)?)
    }
    fn mulc(&self, c: f64) -> Result<Array> {
        self.mul(&scalar_like(self, c)?)
    }
    fn divc(&self, c: f64) -> Result<Array> {
        self.div(&scalar_like(self, c)?)
    }
    fn rsubc(&self, c: f64) -> Result<Array> {
        scalar_like(self, c)?.sub(self)
    }
    fn rdivc(&self, c: f64) -> Result<Array> {
        scalar_like(self, c)?.div(self)
    }
    fn powc(&self, c: f64) -> Result<Array> {
        self.pow(&scalar_like(self, c)?)
    }
    fn neg(&self) -> Result<Array> {
        un::neg(self)
    }
    fn exp(&self) -> Result<Array> {
        un::exp(self)
    }
    fn log(&self) -> Result<Array> {
        un::log(self)
    }
    fn log1p(&self) -> Result<Array> {
        un::log1p(self)
    }
    fn expm1(&self) -> Result<Array> {
        un::expm1(self)
    }
    fn sqrt(&self) -> Result<Array> {
        un::sqrt(self)
    }
    fn square(&self) -> Result<Array> {
        ferrax_core::prim::binary::mul(self, self)
    }
    fn abs(&self) -> Result<Array> {
        un::abs(self)
    }
    fn lgamma(&self) -> Result<Array> {
        un::lgamma(self)
    }
    fn digamma(&self) -> Result<Array> {
        un::digamma(self)
    }
    fn sigmoid(&self) -> Result<Array> {
        un::logistic(self)
    }
    fn tanh(&self) -> Result<Array> {
        un::tanh(self)
    }
    fn atan(&self) -> Result<Array> {
        un::atan(self)
    }
    fn cos(&self) -> Result<Array> {
        un::cos(self)
    }
    fn floor(&self) -> Result<Array> {
        un::floor(self)
    }
    fn softplus(&self) -> Result<Array> {
        // max(x, 0) + log1p(exp(-|x|)): no overflow for large x, no loss for small.
        let zero = scalar_like(self, 0.0)?;
        self.maximum(&zero)?
            .add(&self.abs()?.neg()?.exp()?.log1p()?)
    }
    fn log_sigmoid(&self) -> Result<Array> {
        self.neg()?.softplus()?.neg()
    }
    fn xlogy(&self, y: &Array) -> Result<Array> {
        // Only where x == 0 and log(y) is not finite (y <= 0) is y replaced by 1 before
        // multiplying, so 0 * log(0) never makes a NaN value or gradient. Elsewhere the
        // product stays, so d/dx = log(y) also at x = 0 (a Beta / Dirichlet concentration
        // of exactly 1), as JAX's xlogy.
        let z = and(&self.eqc(0.0)?, &y.lec(0.0)?)?;
        let one = scalar_like(y, 1.0)?;
        let safe_y = select_bcast(&z, &one, y)?;
        self.mul(&safe_y.log()?)
    }
    fn xlog1py(&self, y: &Array) -> Result<Array> {
        let z = and(&self.eqc(0.0)?, &y.lec(-1.0)?)?;
        let zero = scalar_like(y, 0.0)?;
        let safe_y = select_bcast(&z, &zero, y)?;
        self.mul(&safe_y.log1p()?)
    }
    fn cast(&self, dt: DType) -> Result<Array> {
        if self.dtype() == dt {
            Ok(self.clone())
        } else {
            ferrax_core::prim::convert::convert(self, dt)
        }
    }
    fn sum_last(&self, n: usize) -> Result<Array> {
        if n == 0 {
            return Ok(self.clone());
        }
        let r = self.rank();
        if n > r {
            return Err(ferrax_core::Error::shape(
                "sum_last",
                format!(
                    "cannot sum the last {n} axes of a rank-{r} array {:?}",
                    self.shape()
                ),
            ));
        }
        let axes: Vec<usize> = (r - n..r).collect();
        reduce_sum(self, &axes)
    }
    fn sum_all(&self) -> Result<Array> {
        self.sum_last(self.rank())
    }
    fn bcast(&self, shape: &[usize]) -> Result<Array> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        broadcast_to(self, shape)
    }
    fn lt(&self, o: &Array) -> Result<Array> {
        compare_bcast(CompareOp::Lt, self, o)
    }
    fn le(&self, o: &Array) -> Result<Array> {
        compare_bcast(CompareOp::Le, self, o)
    }
    fn gt(&self, o: &Array) -> Result<Array> {
        compare_bcast(CompareOp::Gt, self, o)
    }
    fn ge(&self, o: &Array) -> Result<Array> {
        compare_bcast(CompareOp::Ge, self, o)
    }
    fn eq_(&self, o: &Array) -> Result<Array> {
        compare_bcast(CompareOp::Eq, self, o)
    }
    fn ltc(&self, c: f64) -> Result<Array> {
        self.lt(&scalar_like(self, c)?)
    }
    fn gtc(&self, c: f64) -> Result<Array> {
        self.gt(&scalar_like(self, c)?)
    }
    fn gec(&self, c: f64) -> Result<Array> {
        self.ge(&scalar_like(self, c)?)
    }
    fn lec(&self, c: f64) -> Result<Array> {
        self.le(&scalar_like(self, c)?)
    }
    fn eqc(&self, c: f64) -> Result<Array> {
        self.eq_(&scalar_like(self, c)?)
    }
}

/// `where(pred, a, b)` with broadcasting (`pred` is bool).
pub fn where_(pred: &Array, a: &Array, b: &Array) -> Result<Array> {
    select_bcast(pred, a, b)
}

/// Logical and of two bool arrays, with broadcasting.
pub fn and(a: &Array, b: &Array) -> Result<Array> {
    bin(BinaryOp::And, a, b)
}

/// The broadcast of two shapes, or a shape error naming `op`.
pub fn bshape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    broadcast_shapes(op, a, b)
}

/// `x[..., i]` (the last axis removed). Built from `select` and a sum rather than a slice,
/// so it differentiates with the elementwise and reduction rules alone.
pub fn index_last(x: &Array, i: usize) -> Result<Array> {
    let k = *x.shape().last().ok_or_else(|| {
        ferrax_core::Error::shape("index_last", "cannot index the last axis of a scalar")
    })?;
    if i >= k {
        return Err(ferrax_core::Error::shape(
            "index_last",
            format!("index {i} is out of range for a last axis of size {k}"),
        ));
    }
    let mask: Vec<bool> = (0..k).map(|j| j == i).collect();
    let mask = Array::from_vec(vec![k], mask)?;
    let mask = if x.is_tracer() {
        ferrax_core::trace::lift_concrete(&mask)?
    } else {
        mask
    };
    select_bcast(&mask, x, &scalar_like(x, 0.0)?)?.sum_last(1)
}

/// Stacks arrays of one shape along a new last axis (`jnp.stack(xs, -1)`), built from
/// broadcasts and selects (differentiable with elementwise rules alone).
pub fn stack_last(xs: &[Array]) -> Result<Array> {
    let Some(first) = xs.first() else {
        return Err(ferrax_core::Error::invalid(
            "stack_last",
            "nothing to stack",
        ));
    };
    let mut shape = first.shape().to_vec();
    for x in xs {
        shape = bshape("stack_last", &shape, x.shape())?;
    }
    let k = xs.len();
    let mut out_shape = shape.clone();
    out_shape.push(k);
    let mut acc = broadcast_to(&scalar_like(first, 0.0)?, &out_shape)?;
    let dims: Vec<usize> = (0..shape.len()).collect();
    for (i, x) in xs.iter().enumerate() {
        let xb = ferrax_core::prim::broadcast_in_dim::broadcast_in_dim(
            &x.bcast(&shape)?,
            &out_shape,
            &dims,
        )?;
        let mask: Vec<bool> = (0..k).map(|j| j == i).collect();
        let mask = Array::from_vec(vec![k], mask)?;
        let mask = if xb.is_tracer() {
            ferrax_core::trace::lift_concrete(&mask)?
        } else {
            mask
        };
        acc = select_bcast(&mask, &xb, &acc)?;
    }
    Ok(acc)
}

/// `x[..., a:b]` as a stack of single indices (small event sizes only).
pub fn slice_last(x: &Array, a: usize, b: usize) -> Result<Array> {
    let parts: Vec<Array> = (a..b).map(|i| index_last(x, i)).collect::<Result<_>>()?;
    stack_last(&parts)
}

/// Reads a host array as `f64` values (converting from any float or int dtype).
pub fn to_f64(x: &Array) -> Result<Vec<f64>> {
    x.cast(DType::F64)?.to_vec::<f64>()
}
