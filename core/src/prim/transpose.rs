//! The `transpose` primitive: permutes axes (`out.shape[i] = x.shape[perm[i]]`).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::strided_gather;
use crate::prim::{strides, Primitive, Simplified, SimplifyCtx};
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
    fn simplify(&self, ctx: &dyn SimplifyCtx) -> Option<Simplified> {
        // transpose[p2](transpose[p1](x)): output axis i is x's axis p1[p2[i]]; when that is
        // i for every axis, the pair is the identity and the result is x itself.
        let (p, ins) = ctx.producer(0)?;
        let inner = p.as_any().downcast_ref::<Transpose>()?;
        let identity = inner.perm.len() == self.perm.len()
            && self
                .perm
                .iter()
                .enumerate()
                .all(|(i, &q)| inner.perm.get(q) == Some(&i));
        if identity {
            ins.first().map(|&v| Simplified::Var(v))
        } else {
            None
        }
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(ct) = &cts[0] else {
            return Ok(vec![None]);
        };
        if !primals[0].dtype().is_float() {
            return Ok(vec![None]);
        }
        Ok(vec![Some(transpose(ct, &inverse_perm(&self.perm))?)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (x, bd) = crate::prim::reduce::unary_batch_operand(self.name(), args, dims)?;
        let Some(b) = bd else {
            return Ok((vec![bind1(self.clone(), &[x])?], vec![None]));
        };
        // One transpose does both jobs: output axis 0 reads the batch axis, the rest follow
        // `perm` renumbered around it.
        let mut perm = vec![b];
        perm.extend(
            self.perm
                .iter()
                .map(|&p| crate::prim::reduce::batched_axis(p, b)),
        );
        Ok((vec![transpose(x, &perm)?], vec![Some(0)]))
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
