//! Losses, as in Optax (they live in optim, not nn, so one crate holds what Optax holds).
//! Each is written once on [`Array`] from ferrax-core ops (so it traces and differentiates
//! like any composite) and returns per-example values: reduce them with `mean`/`sum`.
//! Functions over classes reduce the last axis. [`typed`] has the same losses over
//! [`Tensor`](ferrax_core::Tensor)s, with the output shape in the signature.
//!
//! ```
//! use ferrax_optim::loss::{huber_loss, softmax_cross_entropy_with_integer_labels};
//! use ferrax_core::Array;
//! let logits = Array::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap();
//! let labels = Array::from_vec(vec![2], vec![2i32, 0]).unwrap();
//! let l = softmax_cross_entropy_with_integer_labels(&logits, &labels).unwrap();
//! let v = l.to_vec::<f32>().unwrap();
//! assert!((v[0] - 0.40760596).abs() < 1e-6 && (v[1] - 3f32.ln()).abs() < 1e-6);
//! let h = huber_loss(&Array::from_vec(vec![2], vec![0.5f32, 3.0]).unwrap(), None, 1.0).unwrap();
//! assert_eq!(h.to_vec::<f32>().unwrap(), vec![0.125, 2.5]);
//! ```

#[path = "loss_typed.rs"]
pub mod typed;

use crate::num::{self, konst};
use ferrax_core::ops::arith::log_sigmoid;
use ferrax_core::ops::composite::{log_softmax, logsumexp};
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::prim::iota::iota;
use ferrax_core::prim::reduce::reduce_sum;
use ferrax_core::prim::unary;
use ferrax_core::{Array, Error, Result};

fn last_axis(op: &'static str, x: &Array) -> Result<usize> {
    x.rank()
        .checked_sub(1)
        .ok_or_else(|| Error::shape(op, "needs at least one axis (the classes)"))
}

fn errors(pred: &Array, target: Option<&Array>) -> Result<Array> {
    match target {
        Some(t) => num::sub(pred, t),
        None => Ok(pred.clone()),
    }
}

/// `0.5 * (pred - target)^2` elementwise (`target` defaults to 0).
pub fn l2_loss(pred: &Array, target: Option<&Array>) -> Result<Array> {
    num::mulc(&num::square(&errors(pred, target)?)?, 0.5)
}

/// `(pred - target)^2` elementwise.
pub fn squared_error(pred: &Array, target: Option<&Array>) -> Result<Array> {
    num::square(&errors(pred, target)?)
}

/// Huber loss: quadratic within `delta` of the target, linear outside.
pub fn huber_loss(pred: &Array, target: Option<&Array>, delta: f64) -> Result<Array> {
    let a = num::abs(&errors(pred, target)?)?;
    let q = num::minc(&a, delta)?;
    let lin = num::sub(&a, &q)?;
    num::add(
        &num::mulc(&num::square(&q)?, 0.5)?,
        &num::mulc(&lin, delta)?,
    )
}

/// `log(cosh(pred - target))`, computed as `|e| + log1p(exp(-2|e|)) - log 2` (no overflow).
pub fn log_cosh(pred: &Array, target: Option<&Array>) -> Result<Array> {
    let a = num::abs(&errors(pred, target)?)?;
    let t = unary::log1p(&unary::exp(&num::mulc(&a, -2.0)?)?)?;
    num::subc(&num::add(&a, &t)?, std::f64::consts::LN_2)
}

/// Cross entropy between `logits` and a probability distribution `labels` over the last axis.
pub fn softmax_cross_entropy(logits: &Array, labels: &Array) -> Result<Array> {
    let ax = last_axis("softmax_cross_entropy", logits)?;
    let lp = log_softmax(logits, &[ax])?;
    unary::neg(&reduce_sum(&num::mul(labels, &lp)?, &[ax])?)
}

/// Cross entropy with integer class `labels` (shape = `logits` without its last axis):
/// `logsumexp(logits) - logits[label]`. A label outside `[0, classes)` selects no logit.
pub fn softmax_cross_entropy_with_integer_labels(logits: &Array, labels: &Array) -> Result<Array> {
    const OP: &str = "softmax_cross_entropy_with_integer_labels";
    let ax = last_axis(OP, logits)?;
    if labels.shape() != &logits.shape()[..ax] {
        return Err(Error::shape(
            OP,
            format!(
                "labels of shape {:?} do not match logits of shape {:?}",
                labels.shape(),
                logits.shape()
            ),
        ));
    }
    let classes = iota(labels.dtype(), logits.shape(), ax)?;
    let dims: Vec<usize> = (0..ax).collect();
    let lab = ferrax_core::prim::broadcast_in_dim::broadcast_in_dim(labels, logits.shape(), &dims)?;
    let onehot = num::cmp(CompareOp::Eq, &classes, &lab)?;
    let picked = reduce_sum(
        &num::select(&onehot, logits, &konst(logits.dtype(), 0.0))?,
        &[ax],
    )?;
    num::sub(&logsumexp(logits, &[ax])?, &picked)
}

/// Binary cross entropy of `labels` in [0, 1] against `sigmoid(logits)`, elementwise.
pub fn sigmoid_binary_cross_entropy(logits: &Array, labels: &Array) -> Result<Array> {
    let lp = log_sigmoid(logits)?;
    let lnp = log_sigmoid(&unary::neg(logits)?)?;
    let a = num::mul(labels, &lp)?;
    let b = num::mul(&num::rsubc(1.0, labels)?, &lnp)?;
    unary::neg(&num::add(&a, &b)?)
}

/// Hinge loss `max(0, 1 - scores * labels)` with labels in {-1, +1}.
pub fn hinge_loss(scores: &Array, labels: &Array) -> Result<Array> {
    num::maxc(&num::rsubc(1.0, &num::mul(scores, labels)?)?, 0.0)
}

/// `KL(targets || predictions)` over the last axis, from log-predictions and target
/// probabilities (zero targets contribute 0).
pub fn kl_divergence(log_predictions: &Array, targets: &Array) -> Result<Array> {
    let ax = last_axis("kl_divergence", targets)?;
    let zero = num::cmpc(CompareOp::Eq, targets, 0.0)?;
    let lt = num::select(&zero, &konst(targets.dtype(), 0.0), &unary::log(targets)?)?;
    reduce_sum(&num::mul(targets, &num::sub(&lt, log_predictions)?)?, &[ax])
}

/// Cosine similarity over the last axis (norms floored at `epsilon`).
pub fn cosine_similarity(predictions: &Array, targets: &Array, epsilon: f64) -> Result<Array> {
    let ax = last_axis("cosine_similarity", predictions)?;
    let unit = |x: &Array| -> Result<Array> {
        let n = reduce_sum(&num::square(x)?, &[ax])?;
        let n = num::rsqrt(&num::maxc(&n, epsilon * epsilon)?)?;
        let dims: Vec<usize> = (0..ax).collect();
        num::mul(
            x,
            &ferrax_core::prim::broadcast_in_dim::broadcast_in_dim(&n, x.shape(), &dims)?,
        )
    };
    reduce_sum(&num::mul(&unit(predictions)?, &unit(targets)?)?, &[ax])
}

/// `1 - cosine_similarity`.
pub fn cosine_distance(predictions: &Array, targets: &Array, epsilon: f64) -> Result<Array> {
    num::rsubc(1.0, &cosine_similarity(predictions, targets, epsilon)?)
}
