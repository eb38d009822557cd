//! Shape traits the layers' signatures use ([`LastDim`]) and small array-level helpers.

use crate::init::Initializer;
use crate::rngs::Rngs;
use ferrax_core::prim::binary::{binary_bcast, BinaryOp};
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::{Array, Dim, Elem, Float, Result, Shape, StaticShape, Tensor};

/// Shapes of rank 1 to 6, seen as `Init ++ [Last]`: layers acting on the last axis (dense,
/// norms, attention features) are generic over the leading axes with this.
pub trait LastDim: Shape {
    /// The last axis.
    type Last: Dim;
    /// The shape without its last axis.
    type Init: Shape;
    /// The shape with its last axis replaced by `D`.
    type WithLast<D: Dim>: Shape;
}

macro_rules! last_dim {
    ($($A:ident),* ; $L:ident) => {
        impl<$($A: Dim,)* $L: Dim> LastDim for ($($A,)* $L,) {
            type Last = $L;
            type Init = ($($A,)*);
            type WithLast<D: Dim> = ($($A,)* D,);
        }
    };
}
last_dim!(; L);
last_dim!(A0; L);
last_dim!(A0, A1; L);
last_dim!(A0, A1, A2; L);
last_dim!(A0, A1, A2, A3; L);
last_dim!(A0, A1, A2, A3, A4; L);

/// Wraps the result of an array-level computation whose shape the signature guarantees.
/// An error here is a broken internal invariant (the types rule out bad shapes), never a
/// property of user data, so it panics with the op's name like core's typed ops do.
#[track_caller]
pub(crate) fn typed<S: Shape, E: Elem>(op: &str, r: Result<Array>) -> Tensor<S, E> {
    match r {
        Ok(a) => Tensor::from_array_unchecked(a),
        Err(e) => panic!("{op}: internal error in a typed layer: {e}"),
    }
}

/// Broadcasts `v` (shape `[n]`) along the last axis of `shape`.
pub(crate) fn along_last(v: &Array, shape: &[usize]) -> Result<Array> {
    broadcast_in_dim(v, shape, &[shape.len() - 1])
}

/// Broadcasts `r` (the result of reducing `axes` of `shape`) back to `shape`.
pub(crate) fn expand(r: &Array, shape: &[usize], axes: &[usize]) -> Result<Array> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    broadcast_in_dim(r, shape, &kept)
}

pub(crate) fn add(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Add, a, b)
}
pub(crate) fn sub(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Sub, a, b)
}
pub(crate) fn mul(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Mul, a, b)
}
pub(crate) fn scale(a: &Array, c: f64) -> Result<Array> {
    ferrax_core::prim::binary::binary_scalar(BinaryOp::Mul, a, c)
}
pub(crate) fn add_scalar(a: &Array, c: f64) -> Result<Array> {
    ferrax_core::prim::binary::binary_scalar(BinaryOp::Add, a, c)
}

/// Draws a layer's kernel and optional bias from the `params` stream, kernel first, as the
/// layers with a `with_init(.., kernel_init, bias_init)` constructor do (the draw order fixes
/// which key each gets, so it must not differ between layers).
pub(crate) fn kernel_and_bias<K: StaticShape, B: StaticShape, E: Float>(
    rngs: &mut Rngs,
    kernel_init: &Initializer,
    bias_init: Option<&Initializer>,
) -> Result<(Tensor<K, E>, Option<Tensor<B, E>>)> {
    let kernel = kernel_init.init(&rngs.params()?)?;
    let bias = match bias_init {
        Some(b) => Some(b.init(&rngs.params()?)?),
        None => None,
    };
    Ok((kernel, bias))
}
