//! The `concatenate` primitive: joins any number of operands along one axis (their other
//! dims must agree), plus `stack` built on it.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::Primitive;
use crate::storage::Storage;

/// `concatenate[axis](x0, x1, ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Concatenate {
    /// The axis the operands are joined along.
    pub axis: usize,
}

impl Primitive for Concatenate {
    fn name(&self) -> &'static str {
        "concatenate"
    }
    fn params(&self) -> String {
        format!("axis={}", self.axis)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let Some(first) = ins.first() else {
            return Err(Error::invalid("concatenate", "needs at least one operand"));
        };
        crate::prim::check_axis("concatenate", self.axis, first.rank())?;
        let mut shape = first.shape.clone();
        for x in &ins[1..] {
            if x.dtype != first.dtype {
                return Err(Error::dtype_mismatch("concatenate", first.dtype, x.dtype));
            }
            let same_rest = x.rank() == first.rank()
                && (0..x.rank()).all(|i| i == self.axis || x.shape[i] == first.shape[i]);
            if !same_rest {
                let shapes: Vec<&Vec<usize>> = ins.iter().map(|a| &a.shape).collect();
                return Err(Error::shape(
                    "concatenate",
                    format!("shapes {shapes:?} differ outside axis {}", self.axis),
                ));
            }
            shape[self.axis] += x.shape[self.axis];
        }
        Ok(vec![AVal::new(shape, first.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let shape = &outs[0].shape;
        let outer: usize = shape[..self.axis].iter().product();
        let inner: usize = shape[self.axis + 1..].iter().product();
        let out = with_storage!(ins[0].data, _v, T => {
            let parts: Vec<(&[T], usize)> = ins
                .iter()
                .map(|h| (<T as crate::dtype::Elem>::slice(h.data).expect("dtype checked"), h.shape[self.axis] * inner))
                .collect();
            let mut out: Vec<T> = Vec::with_capacity(outs[0].numel());
            for o in 0..outer {
                for &(p, n) in &parts {
                    out.extend_from_slice(&p[o * n..(o + 1) * n]);
                }
            }
            <T as crate::dtype::Elem>::into_storage(out)
        });
        Ok(vec![out])
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(ct) = &cts[0] else {
            return Ok(vec![None; primals.len()]);
        };
        if !ct.dtype().is_float() {
            return Ok(vec![None; primals.len()]);
        }
        // Each operand's cotangent is its own stretch of the result's along the axis.
        let mut off = 0;
        primals
            .iter()
            .map(|x| {
                let len = x.shape()[self.axis];
                let part = crate::prim::slice::slice_in_dim(ct, self.axis, off, off + len, 1)?;
                off += len;
                Ok(Some(part))
            })
            .collect()
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        if dims.iter().all(Option::is_none) {
            let refs: Vec<&Array> = args.iter().collect();
            return Ok((vec![bind1(self.clone(), &refs)?], vec![None]));
        }
        // Operands must agree on where the batch axis is: bring it to the front (shared
        // operands are broadcast) and join along the shifted axis.
        let n = crate::prim::broadcast_in_dim::batch_size("concatenate", args, dims)?;
        let xs = args
            .iter()
            .zip(dims)
            .map(|(a, d)| crate::prim::broadcast_in_dim::batch_to_front(a, *d, n))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Array> = xs.iter().collect();
        Ok((
            vec![bind1(
                Concatenate {
                    axis: self.axis + 1,
                },
                &refs,
            )?],
            vec![Some(0)],
        ))
    }
}

/// `concatenate` on arrays; a single operand is returned as is.
pub fn concatenate(xs: &[&Array], axis: usize) -> Result<Array> {
    if xs.len() == 1 {
        crate::prim::check_axis("concatenate", axis, xs[0].rank())?;
        return Ok(xs[0].clone());
    }
    bind1(Concatenate { axis }, xs)
}

/// Joins equally shaped arrays along a new axis `axis` (`jnp.stack`).
pub fn stack(xs: &[&Array], axis: usize) -> Result<Array> {
    let expanded = xs
        .iter()
        .map(|x| crate::prim::reshape::expand_dims(x, axis))
        .collect::<Result<Vec<_>>>()?;
    if expanded.is_empty() {
        return Err(Error::invalid("stack", "needs at least one operand"));
    }
    let refs: Vec<&Array> = expanded.iter().collect();
    concatenate(&refs, axis).map_err(|e| match e {
        Error::Shape { msg, .. } => Error::shape("stack", msg),
        e => e,
    })
}
