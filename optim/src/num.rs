//! Small array helpers shared by the transformations: constant-operand arithmetic, bias
//! corrections, moment updates and the saturating step counter. Everything here is built
//! from ferrax-core lax-level functions (through `bind`), so it runs eagerly on host arrays
//! and records equations on tracers alike: nothing reads a buffer.

use ferrax_core::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax_core::prim::compare::{compare_bcast, CompareOp};
use ferrax_core::prim::convert::convert;
use ferrax_core::prim::reduce::{reduce_all, ReduceOp};
use ferrax_core::prim::select::select_bcast;
use ferrax_core::prim::unary;
use ferrax_core::{Array, DType, Error, Result};

pub(crate) fn add(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Add, a, b)
}
pub(crate) fn sub(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Sub, a, b)
}
pub(crate) fn mul(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Mul, a, b)
}
pub(crate) fn div(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Div, a, b)
}
pub(crate) fn max(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Max, a, b)
}
pub(crate) fn min(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Min, a, b)
}
pub(crate) fn pow(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Pow, a, b)
}
/// `x + c` with `c` converted to `x`'s dtype (as a Python float meets a typed array).
pub(crate) fn addc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Add, x, c)
}
pub(crate) fn subc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Sub, x, c)
}
pub(crate) fn mulc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Mul, x, c)
}
pub(crate) fn divc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Div, x, c)
}
pub(crate) fn maxc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Max, x, c)
}
pub(crate) fn minc(x: &Array, c: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Min, x, c)
}
/// `c - x`.
pub(crate) fn rsubc(c: f64, x: &Array) -> Result<Array> {
    sub(&konst(x.dtype(), c), x)
}
/// `c / x`.
pub(crate) fn rdivc(c: f64, x: &Array) -> Result<Array> {
    div(&konst(x.dtype(), c), x)
}
/// `c ^ x` for a float `x`.
pub(crate) fn rpowc(c: f64, x: &Array) -> Result<Array> {
    pow(&konst(x.dtype(), c), x)
}
/// A rank-0 constant.
pub(crate) fn konst(dtype: DType, c: f64) -> Array {
    Array::full(&[], dtype, c)
}
pub(crate) fn sqrt(x: &Array) -> Result<Array> {
    unary::sqrt(x)
}
pub(crate) fn rsqrt(x: &Array) -> Result<Array> {
    unary::rsqrt(x)
}
pub(crate) fn abs(x: &Array) -> Result<Array> {
    unary::abs(x)
}
pub(crate) fn sign(x: &Array) -> Result<Array> {
    unary::sign(x)
}
pub(crate) fn square(x: &Array) -> Result<Array> {
    mul(x, x)
}
pub(crate) fn cast(x: &Array, to: DType) -> Result<Array> {
    convert(x, to)
}
pub(crate) fn select(p: &Array, a: &Array, b: &Array) -> Result<Array> {
    select_bcast(p, a, b)
}
pub(crate) fn cmp(op: CompareOp, a: &Array, b: &Array) -> Result<Array> {
    compare_bcast(op, a, b)
}
/// `x op c` as a bool array.
pub(crate) fn cmpc(op: CompareOp, x: &Array, c: f64) -> Result<Array> {
    compare_bcast(op, x, &konst(x.dtype(), c))
}
/// Sum of every element, rank 0.
pub(crate) fn sum_all(x: &Array) -> Result<Array> {
    reduce_all(x, ReduceOp::Sum)
}
/// Mean of every element, rank 0 (accumulated in f32 for half types).
pub(crate) fn mean_all(x: &Array) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    ferrax_core::ops::composite::mean(x, &axes)
}
/// `sum(x * x)` over every element, rank 0.
pub(crate) fn sum_sq(x: &Array) -> Result<Array> {
    sum_all(&square(x)?)
}
/// Whether every element is true (bool rank 0).
pub(crate) fn all(x: &Array) -> Result<Array> {
    reduce_all(x, ReduceOp::Prod)
}
pub(crate) fn and(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::And, a, b)
}
pub(crate) fn or(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Or, a, b)
}
pub(crate) fn not(x: &Array) -> Result<Array> {
    unary::not(x)
}
/// Whether every element of `x` is finite (bool rank 0).
pub(crate) fn all_finite(x: &Array) -> Result<Array> {
    all(&unary::is_finite(x)?)
}

/// The dtype scalar hyperparameter math runs in for a leaf of dtype `dt`: f64 leaves get
/// f64 (what Optax computes under `jax_enable_x64`), everything else f32, then the result is
/// cast to the leaf's dtype once (as `jnp.asarray(x, g.dtype)` does in Optax).
pub(crate) fn compute_dtype(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// A zero rank-0 i32 step counter (Optax counts in int32).
pub(crate) fn zero_count() -> Array {
    Array::zeros(&[], DType::I32)
}

/// `count + 1`, saturating at `i32::MAX` (Optax's `safe_increment`) so a long run never
/// wraps to a negative count.
pub(crate) fn safe_increment(count: &Array) -> Result<Array> {
    let max = konst(count.dtype(), i32::MAX as f64);
    let lt = cmp(CompareOp::Lt, count, &max)?;
    let inc = addc(count, 1.0)?;
    select(&lt, &inc, count)
}

/// `moment / (1 - decay^count)`, the power computed in [`compute_dtype`] and cast once.
pub(crate) fn bias_correction(moment: &Array, decay: f64, count: &Array) -> Result<Array> {
    let cd = compute_dtype(moment.dtype());
    let t = cast(count, cd)?;
    let bc = rsubc(1.0, &rpowc(decay, &t)?)?;
    div(moment, &cast(&bc, moment.dtype())?)
}

/// `(1 - decay) * g^order + decay * m` (Optax's `update_moment` / `_per_elem_norm`).
pub(crate) fn update_moment(g: &Array, m: &Array, decay: f64, order: u32) -> Result<Array> {
    let g = if order == 2 { square(g)? } else { g.clone() };
    add(&mulc(&g, 1.0 - decay)?, &mulc(m, decay)?)
}

/// Checks that a leaf list has the length the state was built for.
pub(crate) fn check_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::invalid(
            op,
            format!(
                "{what} holds {want} leaves but the update has {got}; was the state initialised \
                 for a different tree?"
            ),
        ));
    }
    Ok(())
}

/// Float leaves only: optimizers scale gradients, which integer leaves do not have.
pub(crate) fn check_float(op: &'static str, xs: &[Array]) -> Result<()> {
    for (i, x) in xs.iter().enumerate() {
        if !x.dtype().is_float() {
            return Err(Error::dtype(
                op,
                format!(
                    "leaf {i} has dtype {}; updates must be floating point",
                    x.dtype()
                ),
            ));
        }
    }
    Ok(())
}
