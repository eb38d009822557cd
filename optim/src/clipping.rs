//! Gradient clipping and sanitizing: by value, by global norm, by per-leaf RMS, adaptive
//! (unit-wise, relative to the parameter norm), and replacing NaNs by zeros.

use crate::base::{stateless_map, Transform};
use crate::num::{self, cast, konst};
use crate::state::OptState;
use crate::tree_utils::global_norm_leaves;
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::prim::reduce::{reduce, ReduceOp};
use ferrax_core::{Array, Error, Result};

/// Clips every update element to `[-max_delta, max_delta]`.
pub fn clip(max_delta: f64) -> Transform {
    stateless_map("clip", move |u| {
        num::minc(&num::maxc(u, -max_delta)?, max_delta)
    })
}

/// Rescales all updates together so their global L2 norm is at most `max_norm`.
///
/// ```
/// use ferrax_optim::clip_by_global_norm;
/// use ferrax_core::{Tensor, C};
/// let g = (Tensor::<(C<1>,)>::from_vec(vec![3.0]).unwrap(), Tensor::<(C<1>,)>::from_vec(vec![4.0]).unwrap());
/// let tx = clip_by_global_norm(1.0);
/// let mut s = tx.init(&g).unwrap();
/// let u = tx.update(&g, &mut s, None).unwrap();
/// assert!((u.0.to_vec().unwrap()[0] - 0.6).abs() < 1e-6);
/// assert!((u.1.to_vec().unwrap()[0] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_by_global_norm(max_norm: f64) -> Transform {
    Transform::from_fns(
        "clip_by_global_norm",
        |_, _| Ok(OptState::Empty),
        move |u, _, _| {
            if u.is_empty() {
                return Ok(u);
            }
            let g_norm = global_norm_leaves(&u)?;
            let trigger = num::cmpc(CompareOp::Lt, &g_norm, max_norm)?;
            u.iter()
                .map(|t| {
                    let clipped = num::mulc(&num::div(t, &cast(&g_norm, t.dtype())?)?, max_norm)?;
                    num::select(&trigger, t, &clipped)
                })
                .collect()
        },
    )
}

/// Rescales each leaf so its root mean square is at most `threshold`.
pub fn clip_by_block_rms(threshold: f64) -> Transform {
    stateless_map("clip_by_block_rms", move |u| {
        let rms = num::sqrt(&num::mean_all(&num::square(u)?)?)?;
        let denom = num::max(&konst(rms.dtype(), 1.0), &num::divc(&rms, threshold)?)?;
        num::div(u, &cast(&denom, u.dtype())?)
    })
}

/// The unit-wise norm of adaptive gradient clipping: over everything for vectors and
/// scalars, over axis 0 (inputs) for matrices and rank-3 kernels, over the spatial and
/// input axes for rank-4 convolution kernels; broadcast back to the leaf's shape.
fn unitwise_norm(x: &Array) -> Result<Array> {
    let squeezed_rank = x.shape().iter().filter(|&&s| s != 1).count();
    let axes: Vec<usize> = if squeezed_rank <= 1 {
        (0..x.rank()).collect()
    } else {
        match x.rank() {
            2 | 3 => vec![0],
            4 => vec![0, 1, 2],
            r => {
                return Err(Error::unsupported(
                    "adaptive_grad_clip",
                    format!(
                        "no unit-wise norm for a rank-{r} leaf of shape {:?}",
                        x.shape()
                    ),
                ))
            }
        }
    };
    let sq = reduce(&num::square(x)?, ReduceOp::Sum, &axes)?;
    let kept: Vec<usize> = (0..x.rank()).filter(|a| !axes.contains(a)).collect();
    let n = num::sqrt(&sq)?;
    ferrax_core::prim::broadcast_in_dim::broadcast_in_dim(&n, x.shape(), &kept)
}

/// Adaptive gradient clipping (NFNets): clips each unit's gradient norm to
/// `clipping * max(||param unit||, eps)`. Needs the parameters.
pub fn adaptive_grad_clip(clipping: f64, eps: f64) -> Transform {
    const OP: &str = "adaptive_grad_clip";
    Transform::from_fns(
        OP,
        |_, _| Ok(OptState::Empty),
        move |u, _, ctx| {
            let params = ctx.params(OP)?;
            u.iter()
                .zip(params)
                .map(|(g, p)| {
                    let g_norm = unitwise_norm(g)?;
                    let max_norm = num::mulc(&num::maxc(&unitwise_norm(p)?, eps)?, clipping)?;
                    let trigger = num::cmp(CompareOp::Lt, &g_norm, &max_norm)?;
                    let clipped = num::mul(g, &num::div(&max_norm, &num::maxc(&g_norm, 1e-6)?)?)?;
                    num::select(&trigger, g, &clipped)
                })
                .collect()
        },
    )
}

/// Replaces NaN updates by 0 and records, per leaf, whether one was found (`found_nan`).
pub fn zero_nans() -> Transform {
    const OP: &str = "zero_nans";
    Transform::from_fns(
        OP,
        |p, _| {
            Ok(OptState::node(vec![(
                "found_nan",
                OptState::Leaves(p.iter().map(|_| Array::scalar(false)).collect()),
            )]))
        },
        |u, st, _| {
            st.per_param(OP, "found_nan", u.len())?;
            let mut found = Vec::with_capacity(u.len());
            let out = u
                .iter()
                .map(|g| {
                    let nan = num::cmp(CompareOp::Ne, g, g)?;
                    found.push(num::not(&num::all(&num::not(&nan)?)?)?);
                    num::select(&nan, &konst(g.dtype(), 0.0), g)
                })
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![("found_nan", OptState::Leaves(found))]);
            Ok(out)
        },
    )
}
