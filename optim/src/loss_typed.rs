//! Typed forms of the losses in [`crate::loss`]: the same definitions over
//! [`Tensor`]s, with the shape algebra in the signature (a loss over classes maps
//! `Tensor<(B, K)>` to `Tensor<(B,)>`, an elementwise loss keeps its shape). Static shapes
//! cannot mismatch; `Dyn` sizes are checked at run time and a mismatch is an `Err` naming
//! the loss and both shapes.
//!
//! ```
//! use ferrax_optim::loss::typed::{softmax_cross_entropy_with_integer_labels, l2_loss};
//! use ferrax_core::{Tensor, C};
//! let logits = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 0., 0., 0.]).unwrap();
//! let labels = Tensor::<(C<2>,), i32>::from_vec(vec![2, 0]).unwrap();
//! let l: Tensor<(C<2>,)> = softmax_cross_entropy_with_integer_labels(&logits, &labels).unwrap();
//! assert!((l.to_vec().unwrap()[1] - 3f32.ln()).abs() < 1e-6);
//! let e: Tensor<(C<3>,)> = l2_loss(&Tensor::from_vec(vec![1., -2., 0.]).unwrap(), None).unwrap();
//! assert_eq!(e.to_vec().unwrap(), vec![0.5, 2.0, 0.0]);
//! ```

use crate::loss;
use ferrax_core::{Array, Dim, Error, Float, Int, Result, Shape, Tensor};

/// Shapes of rank 1 to 6 seen as `Init ++ [Last]`: the losses over classes reduce `Last`.
/// (ferrax-nn has the same trait for its layers; optim does not depend on nn.)
pub trait ClassAxis: Shape {
    /// The class axis.
    type Last: Dim;
    /// The shape without the class axis (one value per example).
    type Init: Shape;
}

macro_rules! class_axis {
    ($($A:ident),* ; $L:ident) => {
        impl<$($A: Dim,)* $L: Dim> ClassAxis for ($($A,)* $L,) {
            type Last = $L;
            type Init = ($($A,)*);
        }
    };
}
class_axis!(; L);
class_axis!(A0; L);
class_axis!(A0, A1; L);
class_axis!(A0, A1, A2; L);
class_axis!(A0, A1, A2, A3; L);
class_axis!(A0, A1, A2, A3, A4; L);

/// Checks that two operands of a loss have the same run-time shape (only `Dyn` axes can
/// differ once the types agree).
fn same_shape(op: &'static str, a: &Array, b: &Array) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!(
                "operands have shapes {:?} and {:?}; they must be equal",
                a.shape(),
                b.shape()
            ),
        ));
    }
    Ok(())
}

fn target_of<'a, S: Shape, E: Float>(
    op: &'static str,
    pred: &Tensor<S, E>,
    target: Option<&'a Tensor<S, E>>,
) -> Result<Option<&'a Array>> {
    match target {
        Some(t) => {
            same_shape(op, pred.array(), t.array())?;
            Ok(Some(t.array()))
        }
        None => Ok(None),
    }
}

/// `0.5 * (pred - target)^2` elementwise (`target` defaults to 0); `optax.l2_loss`.
pub fn l2_loss<S: Shape, E: Float>(
    pred: &Tensor<S, E>,
    target: Option<&Tensor<S, E>>,
) -> Result<Tensor<S, E>> {
    let t = target_of("l2_loss", pred, target)?;
    Tensor::from_array(loss::l2_loss(pred.array(), t)?)
}

/// `(pred - target)^2` elementwise; `optax.squared_error`.
pub fn squared_error<S: Shape, E: Float>(
    pred: &Tensor<S, E>,
    target: Option<&Tensor<S, E>>,
) -> Result<Tensor<S, E>> {
    let t = target_of("squared_error", pred, target)?;
    Tensor::from_array(loss::squared_error(pred.array(), t)?)
}

/// Huber loss elementwise: quadratic within `delta` of the target, linear outside.
pub fn huber_loss<S: Shape, E: Float>(
    pred: &Tensor<S, E>,
    target: Option<&Tensor<S, E>>,
    delta: f64,
) -> Result<Tensor<S, E>> {
    let t = target_of("huber_loss", pred, target)?;
    Tensor::from_array(loss::huber_loss(pred.array(), t, delta)?)
}

/// `log(cosh(pred - target))` elementwise, without overflow.
pub fn log_cosh<S: Shape, E: Float>(
    pred: &Tensor<S, E>,
    target: Option<&Tensor<S, E>>,
) -> Result<Tensor<S, E>> {
    let t = target_of("log_cosh", pred, target)?;
    Tensor::from_array(loss::log_cosh(pred.array(), t)?)
}

/// Cross entropy between `logits` and class probabilities `labels` (one-hot or soft),
/// one value per example.
pub fn softmax_cross_entropy<S: ClassAxis, E: Float>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S, E>,
) -> Result<Tensor<S::Init, E>> {
    same_shape("softmax_cross_entropy", logits.array(), labels.array())?;
    Tensor::from_array(loss::softmax_cross_entropy(logits.array(), labels.array())?)
}

/// Cross entropy with integer class labels (one per example); a label outside
/// `[0, classes)` selects no logit, as in Optax.
pub fn softmax_cross_entropy_with_integer_labels<S: ClassAxis, E: Float, I: Int>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S::Init, I>,
) -> Result<Tensor<S::Init, E>> {
    Tensor::from_array(loss::softmax_cross_entropy_with_integer_labels(
        logits.array(),
        labels.array(),
    )?)
}

/// Binary cross entropy of `labels` in `[0, 1]` against `sigmoid(logits)`, elementwise.
pub fn sigmoid_binary_cross_entropy<S: Shape, E: Float>(
    logits: &Tensor<S, E>,
    labels: &Tensor<S, E>,
) -> Result<Tensor<S, E>> {
    same_shape(
        "sigmoid_binary_cross_entropy",
        logits.array(),
        labels.array(),
    )?;
    Tensor::from_array(loss::sigmoid_binary_cross_entropy(
        logits.array(),
        labels.array(),
    )?)
}

/// Hinge loss `max(0, 1 - scores * labels)` with labels in {-1, +1}, elementwise.
pub fn hinge_loss<S: Shape, E: Float>(
    scores: &Tensor<S, E>,
    labels: &Tensor<S, E>,
) -> Result<Tensor<S, E>> {
    same_shape("hinge_loss", scores.array(), labels.array())?;
    Tensor::from_array(loss::hinge_loss(scores.array(), labels.array())?)
}

/// `KL(targets || predictions)` over the class axis, from log-predictions and target
/// probabilities; one value per example.
pub fn kl_divergence<S: ClassAxis, E: Float>(
    log_predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
) -> Result<Tensor<S::Init, E>> {
    same_shape("kl_divergence", log_predictions.array(), targets.array())?;
    Tensor::from_array(loss::kl_divergence(
        log_predictions.array(),
        targets.array(),
    )?)
}

/// Cosine similarity over the class (feature) axis, norms floored at `epsilon`.
pub fn cosine_similarity<S: ClassAxis, E: Float>(
    predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
    epsilon: f64,
) -> Result<Tensor<S::Init, E>> {
    same_shape("cosine_similarity", predictions.array(), targets.array())?;
    Tensor::from_array(loss::cosine_similarity(
        predictions.array(),
        targets.array(),
        epsilon,
    )?)
}

/// `1 - cosine_similarity`.
pub fn cosine_distance<S: ClassAxis, E: Float>(
    predictions: &Tensor<S, E>,
    targets: &Tensor<S, E>,
    epsilon: f64,
) -> Result<Tensor<S::Init, E>> {
    same_shape("cosine_distance", predictions.array(), targets.array())?;
    Tensor::from_array(loss::cosine_distance(
        predictions.array(),
        targets.array(),
        epsilon,
    )?)
}
