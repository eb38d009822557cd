//! Activation functions with the definitions of `jax.nn` (relu, gelu, silu/swish, sigmoid,
//! tanh, softplus, leaky_relu, elu, selu, glu, log_sigmoid, softmax, log_softmax), and
//! unit-struct layers ([`Relu`], [`Gelu`], ...) for [`Sequential`](crate::Sequential).
//!
//! ```
//! use ferrax_nn::activation as act;
//! use ferrax_core::{Tensor, C};
//! let x = Tensor::<(C<3>,)>::from_vec(vec![-1., 0., 2.]).unwrap();
//! assert_eq!(act::relu(&x).to_vec().unwrap(), vec![0., 0., 2.]);
//! let s = act::selu(&x).to_vec().unwrap();
//! assert!((s[2] - 2.0 * 1.050_700_987_355_480_5).abs() < 1e-6);
//! ```

use crate::sequential::Layer;
use crate::util::{typed, LastDim};
use ferrax_core::prim::binary::{binary_scalar, BinaryOp};
use ferrax_core::prim::slice::slice_in_dim;
use ferrax_core::prim::unary::logistic;
use ferrax_core::{Error, Float, Result, Shape, Tensor, C};
use ferrax_macros::Module;

/// `max(x, 0)`.
pub fn relu<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    typed("relu", ferrax_core::ops::arith::relu(x.array()))
}
/// GELU with the tanh approximation, `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`: what
/// `jax.nn.gelu(x)` computes (its default is `approximate=True`), so a model ported from
/// JAX/Flax gets the same activation. [`gelu_exact`] is the erf form.
///
/// ```
/// use ferrax_nn::activation as act;
/// use ferrax_core::{Tensor, C};
/// let x = Tensor::<(C<1>,), f64>::from_vec(vec![1.0]).unwrap();
/// let approx = act::gelu(&x).to_vec().unwrap()[0];
/// let exact = act::gelu_exact(&x).to_vec().unwrap()[0];
/// assert!((approx - 0.841_191_990_608_276_8).abs() < 1e-12); // jax.nn.gelu(1.0)
/// assert!((exact - 0.841_344_746_068_542_9).abs() < 1e-12); // 1.0 * Φ(1.0)
/// ```
pub fn gelu<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.gelu()
}
/// Exact GELU `x Φ(x)` through the error function (`jax.nn.gelu(x, approximate=False)`).
pub fn gelu_exact<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.gelu_exact()
}
/// `jax.nn.gelu(x, approximate)`: [`gelu`] when `approximate`, else [`gelu_exact`].
pub fn gelu_with<S: Shape, E: Float>(x: &Tensor<S, E>, approximate: bool) -> Tensor<S, E> {
    if approximate {
        gelu(x)
    } else {
        gelu_exact(x)
    }
}
/// The same function as [`gelu`] (the tanh approximation), under the name it had before
/// `gelu` followed `jax.nn.gelu`'s default.
pub fn gelu_tanh<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    gelu(x)
}
/// `x σ(x)`.
pub fn silu<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.silu()
}
/// Alias of [`silu`].
pub fn swish<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.silu()
}
/// `1 / (1 + e^-x)`.
pub fn sigmoid<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.sigmoid()
}
/// Hyperbolic tangent.
pub fn tanh<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.tanh()
}
/// `ln(1 + e^x)`, stable.
pub fn softplus<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.softplus()
}
/// `ln σ(x)`, stable.
pub fn log_sigmoid<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.log_sigmoid()
}
/// `x` for `x ≥ 0`, else `negative_slope x` (jax's default slope is 0.01).
pub fn leaky_relu<S: Shape, E: Float>(x: &Tensor<S, E>, negative_slope: f64) -> Tensor<S, E> {
    x.leaky_relu(negative_slope)
}
/// `x` for `x > 0`, else `alpha (e^x - 1)` (jax's default alpha is 1).
pub fn elu<S: Shape, E: Float>(x: &Tensor<S, E>, alpha: f64) -> Tensor<S, E> {
    x.elu(alpha)
}
/// Scaled ELU with jax's constants (`alpha = 1.6732632423543772`,
/// `scale = 1.0507009873554805`).
pub fn selu<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    const ALPHA: f64 = 1.673_263_242_354_377_2;
    const SCALE: f64 = 1.050_700_987_355_480_5;
    typed(
        "selu",
        binary_scalar(BinaryOp::Mul, x.elu(ALPHA).array(), SCALE),
    )
}
/// Softmax over the last axis.
pub fn softmax<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.softmax()
}
/// Log-softmax over the last axis.
pub fn log_softmax<S: Shape, E: Float>(x: &Tensor<S, E>) -> Tensor<S, E> {
    x.log_softmax()
}
/// Gated linear unit over the last axis: splits it in halves `a, b` and returns `a σ(b)`.
/// The result type names the half size `N`; an odd or mismatched last axis is an error.
pub fn glu<S: LastDim, const N: usize, E: Float>(
    x: &Tensor<S, E>,
) -> Result<Tensor<S::WithLast<C<N>>, E>> {
    let a = x.array();
    let ax = a.rank() - 1;
    let n = a.shape()[ax];
    if n != 2 * N {
        return Err(Error::shape(
            "glu",
            format!(
                "the last axis of {:?} must be twice the result's {N}",
                a.shape()
            ),
        ));
    }
    let first = slice_in_dim(a, ax, 0, N, 1)?;
    let second = slice_in_dim(a, ax, N, n, 1)?;
    Tensor::from_array(crate::util::mul(&first, &logistic(&second)?)?)
}

macro_rules! act_layer {
    ($($(#[$m:meta])* $name:ident => $f:expr;)*) => {
        $(
            $(#[$m])*
            #[derive(Module, Clone, Copy, Debug, Default)]
            #[module(crate = crate)]
            pub struct $name;
            impl<S: Shape, E: Float> Layer<Tensor<S, E>> for $name {
                type Output = Tensor<S, E>;
                fn apply(&self, x: &Tensor<S, E>) -> Result<Tensor<S, E>> {
                    let f: fn(&Tensor<S, E>) -> Tensor<S, E> = $f;
                    Ok(f(x))
                }
            }
        )*
    };
}

act_layer! {
    /// [`relu`] as a layer.
    Relu => relu;
    /// [`gelu`] (the tanh approximation, as `jax.nn.gelu`) as a layer.
    Gelu => gelu;
    /// [`gelu_exact`] (the erf form) as a layer.
    GeluExact => gelu_exact;
    /// [`silu`] as a layer.
    Silu => silu;
    /// [`sigmoid`] as a layer.
    Sigmoid => sigmoid;
    /// [`tanh`] as a layer.
    Tanh => tanh;
    /// [`softplus`] as a layer.
    Softplus => softplus;
}
