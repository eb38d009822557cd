//! The `reshape` primitive: the same row-major elements under a new shape, plus the
//! conveniences built on it (`expand_dims`, `squeeze`, `flatten`).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::{Primitive, Simplified, SimplifyCtx};
use crate::storage::Storage;

/// `reshape[new_shape](x)`: row-major order is kept, only the sizes change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reshape {
    /// Output shape; its element count must equal the operand's.
    pub new_shape: Vec<usize>,
}

impl Primitive for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn params(&self) -> String {
        format!("new_shape={:?}", self.new_shape)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        let n: usize = self.new_shape.iter().product();
        if n != x.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot reshape {:?} ({} elements) to {:?} ({} elements)",
                    x.shape,
                    x.numel(),
                    self.new_shape,
                    n
                ),
            ));
        }
        Ok(vec![AVal::new(self.new_shape.clone(), x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        // Inputs are contiguous row-major, so the buffer is already the answer.
        Ok(vec![ins[0].data.clone()])
    }
    fn simplify(&self, ctx: &dyn SimplifyCtx) -> Option<Simplified> {
        // Reshapes keep the row-major order, so a reshape of a reshape is a reshape of the
        // original operand; when the final shape is the original one, that is the operand
        // itself. The simplifier only substitutes a variable of the same abstract value, and
        // the operand's shape is not visible here, so returning the candidate is safe: it is
        // taken exactly when the shapes (and, always, the dtypes) agree.
        let (p, ins) = ctx.producer(0)?;
        p.as_any().downcast_ref::<Reshape>()?;
        ins.first().map(|&v| Simplified::Var(v))
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
        let x = &primals[0];
        if !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        Ok(vec![Some(reshape(ct, x.shape())?)])
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
        // Row-major order mixes axes, so the batch axis must be outermost for each example's
        // elements to stay contiguous; then only the sizes after it change.
        let x = crate::vmap::move_axis(x, b, 0)?;
        let mut shape = vec![x.shape()[0]];
        shape.extend_from_slice(&self.new_shape);
        Ok((vec![reshape(&x, &shape)?], vec![Some(0)]))
    }
}

/// `reshape` on arrays; returns `x` itself when the shape is unchanged.
pub fn reshape(x: &Array, shape: &[usize]) -> Result<Array> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    bind1(
        Reshape {
            new_shape: shape.to_vec(),
        },
        &[x],
    )
}

/// Inserts a size-1 axis so that it becomes axis `axis` (`0..=rank`), as `jnp.expand_dims`.
pub fn expand_dims(x: &Array, axis: usize) -> Result<Array> {
    if axis > x.rank() {
        return Err(Error::invalid(
            "expand_dims",
            format!(
                "axis {axis} is out of range for a rank-{} operand of shape {:?} (allowed 0..={})",
                x.rank(),
                x.shape(),
                x.rank()
            ),
        ));
    }
    let mut s = x.shape().to_vec();
    s.insert(axis, 1);
    reshape(x, &s)
}

/// Removes the listed axes, each of which must have size 1, as `jnp.squeeze(x, axes)`.
pub fn squeeze(x: &Array, axes: &[usize]) -> Result<Array> {
    for (k, &a) in axes.iter().enumerate() {
        crate::prim::check_axis("squeeze", a, x.rank())?;
        if axes[..k].contains(&a) {
            return Err(Error::invalid(
                "squeeze",
                format!("axis {a} is listed twice in {axes:?}"),
            ));
        }
        if x.shape()[a] != 1 {
            return Err(Error::shape(
                "squeeze",
                format!(
                    "axis {a} of shape {:?} has size {}, not 1",
                    x.shape(),
                    x.shape()[a]
                ),
            ));
        }
    }
    let s: Vec<usize> = x
        .shape()
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    reshape(x, &s)
}

/// Reshapes to rank 1 (a rank-0 operand becomes a 1-element vector).
pub fn flatten(x: &Array) -> Result<Array> {
    reshape(x, &[x.numel()])
}
