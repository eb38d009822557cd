//! Tree arithmetic (Optax's `tree_utils`): add, subtract, scale, inner product, L2 and
//! global norms over any [`Tree`], built from ferrax-core ops so they trace.

use crate::num;
use ferrax_core::tree::{self, Tree};
use ferrax_core::{Array, Result};

/// `a + b` leaf by leaf.
pub fn tree_add<T: Tree>(a: &T, b: &T) -> Result<T> {
    tree::zip_map(a, b, |_, x, y| num::add(x, y))
}
/// `a - b` leaf by leaf.
pub fn tree_sub<T: Tree>(a: &T, b: &T) -> Result<T> {
    tree::zip_map(a, b, |_, x, y| num::sub(x, y))
}
/// `s * t` leaf by leaf.
pub fn tree_scale<T: Tree>(s: f64, t: &T) -> Result<T> {
    tree::map_leaves(t, |_, x| num::mulc(x, s))
}
/// `a + s * b` leaf by leaf.
pub fn tree_add_scalar_mul<T: Tree>(a: &T, s: f64, b: &T) -> Result<T> {
    tree::zip_map(a, b, |_, x, y| num::add(x, &num::mulc(y, s)?))
}
/// `sum(a * b)` over every leaf, rank 0 in the first leaf's dtype (0.0 f32 for no leaves).
pub fn tree_vdot<T: Tree>(a: &T, b: &T) -> Result<Array> {
    let prods = tree::leaves(&tree::zip_map(a, b, |_, x, y| num::mul(x, y))?);
    sum_of(prods.iter().map(num::sum_all))
}
/// `sqrt(sum of squares)` over every leaf (or the sum of squares when `squared`).
pub fn tree_l2_norm<T: Tree>(t: &T, squared: bool) -> Result<Array> {
    let ss = sum_of(tree::leaves(t).iter().map(num::sum_sq))?;
    if squared {
        Ok(ss)
    } else {
        num::sqrt(&ss)
    }
}
/// The global L2 norm of all leaves (what `clip_by_global_norm` clips).
pub fn global_norm<T: Tree>(t: &T) -> Result<Array> {
    global_norm_leaves(&tree::leaves(t))
}

pub(crate) fn global_norm_leaves(leaves: &[Array]) -> Result<Array> {
    num::sqrt(&sum_of(leaves.iter().map(num::sum_sq))?)
}

/// Sums rank-0 arrays in order (Python's `sum` over leaves, as Optax).
fn sum_of(xs: impl Iterator<Item = Result<Array>>) -> Result<Array> {
    let mut acc: Option<Array> = None;
    for x in xs {
        let x = x?;
        acc = Some(match acc {
            None => x,
            Some(a) => num::add(&a, &num::cast(&x, a.dtype())?)?,
        });
    }
    Ok(acc.unwrap_or_else(|| Array::zeros(&[], ferrax_core::DType::F32)))
}
