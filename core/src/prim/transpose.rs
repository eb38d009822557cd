//! The `transpose` primitive: permutes axes (`out.shape[i] = x.shape[perm[i]]`).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::strided_gather;
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `transpose[perm](x)`: output axis `i` is operand axis `perm[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transpose {
    /// A permutation of `0..rank`.
    pub perm: Vec<usize>,
}

/// Checks that `perm` is a permutation of `0..rank`, naming `op` and the shape.
pub fn check_perm(op: &'static str, perm: &[usize], shape: &[usize]) -> Result<()> {
    let r = shape.len();
    let mut seen = vec![false; r];
    let ok = perm.len() == r
        && perm
            .iter()
            .all(|&p| p < r && !std::mem::replace(&mut seen[p], true));
    if !ok {
        return Err(Error::invalid(
            op,
            format!("{perm:?} is not a permutation of the axes of shape {shape:?} (0..{r})"),
        ));
    }
    Ok(())
}

impl Primitive for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn params(&self) -> String {
        format!("perm={:?}", self.perm)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        check_perm("transpose", &self.perm, &x.shape)?;
        let shape: Vec<usize> = self.perm.iter().map(|&p| x.shape[p]).collect();
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let xs = strides(x.shape);
        let in_strides: Vec<usize> = self.perm.iter().map(|&p| xs[p]).collect();
        let out = with_storage!(x.data, v, T => {
            <T as crate::dtype::Elem>::into_storage(strided_gather(v, &outs[0].shape, &in_strides))
        });
        Ok(vec![out])
    }
}

/// `transpose` on arrays; returns `x` itself for the identity permutation.
pub fn transpose(x: &Array, perm: &[usize]) -> Result<Array> {
    check_perm("transpose", perm, x.shape())?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x.clone());
    }
    bind1(
        Transpose {
            perm: perm.to_vec(),
        },
        &[x],
    )
}

/// Swaps two axes (`jnp.swapaxes`).
pub fn swap_axes(x: &Array, a: usize, b: usize) -> Result<Array> {
    crate::prim::check_axis("swap_axes", a, x.rank())?;
    crate::prim::check_axis("swap_axes", b, x.rank())?;
    let mut perm: Vec<usize> = (0..x.rank()).collect();
    perm.swap(a, b);
    transpose(x, &perm)
}

/// The permutation that undoes `perm` (used by transposition rules).
pub fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}
