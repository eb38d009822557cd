//! Losses with Optax's definitions, per example (reduce with `.mean()`):
//! [`softmax_cross_entropy`] (one-hot or soft labels), [`softmax_cross_entropy_with_integer_labels`],
//! [`smooth_labels`], [`sigmoid_binary_cross_entropy`], [`squared_error`] / [`mse`], and
//! [`huber_loss`]. All are compositions of differentiable ops.
//!
//! ```
//! use ferrax_nn::losses;
//! use ferrax_core::{Tensor, C};
//! let logits = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 0., 0., 0.]).unwrap();
//! let labels = Tensor::<(C<2>,), i32>::from_vec(vec![2, 0]).unwrap();
//! let l = losses::softmax_cross_entropy_with_integer_labels(&logits, &labels).to_vec().unwrap();
//! assert!((l[1] - 3f32.ln()).abs() < 1e-6);
//! ```

use crate::util::{typed, LastDim};
use ferrax_core::ops::composite::log_softmax;
use ferrax_core::ops::linalg::one_hot_array;
use ferrax_core::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax_core::prim::reduce::reduce_sum;
use ferrax_core::prim::unary::{abs, neg};
use ferrax_core::{Array, Float, Int, Result, Shape, Tensor};

fn ce_array(logits: &Array, labels: &Array) -> Result<Array> {
    let ax = logits.rank() - 1;
    let lp = log_softmax(logits, &[ax])?;
    neg(&reduce_sum(
        &binary_bcast(BinaryOp::Mul, labels, &lp)?,
        &[ax],
    )?)
}

/// `-Σ labels · log_softmax(logits)` over the last axis (`optax.softmax_cross_entropy`);
/// `labels` are probabilities (one-hot or smoothed).
pub fn softmax_cross_entropy<S: LastDim, E: Float>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S, E>,
) -> Tensor<S::Init, E> {
    typed(
        "softmax_cross_entropy",
        ce_array(logits.array(), labels.array()),
    )
}

/// Cross-entropy with integer class labels (`optax.softmax_cross_entropy_with_integer_labels`).
/// Labels outside `0..K` select no class (their loss is 0), as a one-hot row of zeros.
pub fn softmax_cross_entropy_with_integer_labels<S: LastDim, E: Float, I: Int>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S::Init, I>,
) -> Tensor<S::Init, E> {
    let f = || {
        let k = logits.dims()[logits.dims().len() - 1];
        let oh = one_hot_array(labels.array(), k, E::DTYPE)?;
        ce_array(logits.array(), &oh)
    };
    typed("softmax_cross_entropy_with_integer_labels", f())
}

/// Cross-entropy with integer labels smoothed by `alpha` (see [`smooth_labels`]).
pub fn softmax_cross_entropy_smoothed<S: LastDim, E: Float, I: Int>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S::Init, I>,
    alpha: f64,
) -> Tensor<S::Init, E> {
    let f = || {
        let k = logits.dims()[logits.dims().len() - 1];
        let oh = one_hot_array(labels.array(), k, E::DTYPE)?;
        ce_array(logits.array(), &smooth_array(&oh, alpha)?)
    };
    typed("softmax_cross_entropy_smoothed", f())
}

fn smooth_array(labels: &Array, alpha: f64) -> Result<Array> {
    let k = labels.shape()[labels.rank() - 1] as f64;
    let a = binary_scalar(BinaryOp::Mul, labels, 1.0 - alpha)?;
    binary_scalar(BinaryOp::Add, &a, alpha / k)
}

/// `(1 - alpha) labels + alpha / K` (`optax.smooth_labels`).
pub fn smooth_labels<S: LastDim, E: Float>(labels: &Tensor<S, E>, alpha: f64) -> Tensor<S, E> {
    typed("smooth_labels", smooth_array(labels.array(), alpha))
}

/// `-labels ln σ(logits) - (1 - labels) ln σ(-logits)`, elementwise and stable
/// (`optax.sigmoid_binary_cross_entropy`).
pub fn sigmoid_binary_cross_entropy<S: Shape, E: Float>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S, E>,
) -> Tensor<S, E> {
    let f = || {
        let lp = ferrax_core::ops::arith::log_sigmoid(logits.array())?;
        let lnp = ferrax_core::ops::arith::log_sigmoid(&neg(logits.array())?)?;
        let one_minus = binary_scalar(BinaryOp::Add, &neg(labels.array())?, 1.0)?;
        let a = binary_bcast(BinaryOp::Mul, labels.array(), &lp)?;
        let b = binary_bcast(BinaryOp::Mul, &one_minus, &lnp)?;
        neg(&binary_bcast(BinaryOp::Add, &a, &b)?)
    };
    typed("sigmoid_binary_cross_entropy", f())
}

/// `(predictions - targets)²` elementwise (`optax.squared_error`).
pub fn squared_error<S: Shape, E: Float>(
    predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
) -> Tensor<S, E> {
    let f = || {
        let d = binary_bcast(BinaryOp::Sub, predictions.array(), targets.array())?;
        binary_bcast(BinaryOp::Mul, &d, &d)
    };
    typed("squared_error", f())
}

/// Mean squared error over all elements.
pub fn mse<S: Shape, E: Float>(
    predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
) -> Tensor<(), E> {
    squared_error(predictions, targets).mean()
}

/// Huber loss elementwise (`optax.huber_loss`): `½ e²` for `|e| ≤ delta`, else
/// `delta (|e| - ½ delta)`.
pub fn huber_loss<S: Shape, E: Float>(
    predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
    delta: f64,
) -> Tensor<S, E> {
    let f = || {
        let e = abs(&binary_bcast(
            BinaryOp::Sub,
            predictions.array(),
            targets.array(),
        )?)?;
        let q = binary_scalar(BinaryOp::Min, &e, delta)?;
        let lin = binary_bcast(BinaryOp::Sub, &e, &q)?;
        let qq = binary_scalar(BinaryOp::Mul, &binary_bcast(BinaryOp::Mul, &q, &q)?, 0.5)?;
        binary_bcast(
            BinaryOp::Add,
            &qq,
            &binary_scalar(BinaryOp::Mul, &lin, delta)?,
        )
    };
    typed("huber_loss", f())
}
