//! The `broadcast_in_dim` primitive: places an operand's axes at chosen positions of a larger
//! shape, repeating along the rest (and along operand axes of size 1). Implicit numpy-style
//! broadcasting is a composite built on it ([`broadcast_shapes`], [`broadcast_to`]).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `broadcast_in_dim[shape, dims](x)`: output axis `dims[i]` carries operand axis `i`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BroadcastInDim {
    /// Output shape.
    pub shape: Vec<usize>,
    /// For each operand axis, the output axis it maps to (strictly increasing).
    pub dims: Vec<usize>,
}

impl Primitive for BroadcastInDim {
    fn name(&self) -> &'static str {
        "broadcast_in_dim"
    }
    fn params(&self) -> String {
        format!("shape={:?} dims={:?}", self.shape, self.dims)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        if self.dims.len() != x.rank() {
            return Err(Error::shape(
                "broadcast_in_dim",
                format!(
                    "operand of shape {:?} needs {} dims, got {:?}",
                    x.shape,
                    x.rank(),
                    self.dims
                ),
            ));
        }
        for (i, &d) in self.dims.iter().enumerate() {
            if d >= self.shape.len() || (i > 0 && d <= self.dims[i - 1]) {
                return Err(Error::shape(
                    "broadcast_in_dim",
                    format!(
                        "dims {:?} must be increasing and < {}",
                        self.dims,
                        self.shape.len()
                    ),
                ));
            }
            if x.shape[i] != 1 && x.shape[i] != self.shape[d] {
                return Err(Error::shape(
                    "broadcast_in_dim",
                    format!(
                        "cannot broadcast shape {:?} to {:?}: axis {i} has size {} but target axis {d} has {}",
                        x.shape, self.shape, x.shape[i], self.shape[d]
                    ),
                ));
            }
        }
        Ok(vec![AVal::new(self.shape.clone(), x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let out_shape = &outs[0].shape;
        // Stride of the operand seen from each output axis (0 where broadcast).
        let xs = strides(x.shape);
        let mut in_strides = vec![0usize; out_shape.len()];
        for (i, &d) in self.dims.iter().enumerate() {
            if x.shape[i] != 1 {
                in_strides[d] = xs[i];
            }
        }
        let out = with_storage!(x.data, v, T => {
            <T as crate::dtype::Elem>::into_storage(strided_gather(v, out_shape, &in_strides))
        });
        Ok(vec![out])
    }
    fn broadcast_pattern(&self) -> Option<(&[usize], &[usize])> {
        Some((&self.shape, &self.dims))
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
        // Sum over the axes the broadcast created, and over operand axes of size 1 that it
        // stretched; then restore the operand's shape.
        let mut axes: Vec<usize> = (0..self.shape.len())
            .filter(|a| !self.dims.contains(a))
            .collect();
        for (i, &d) in self.dims.iter().enumerate() {
            if x.shape()[i] == 1 && self.shape[d] != 1 {
                axes.push(d);
            }
        }
        axes.sort_unstable();
        let summed = crate::prim::reduce::reduce_sum(ct, &axes)?;
        Ok(vec![Some(crate::prim::reshape::reshape(
            &summed,
            x.shape(),
        )?)])
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
        // The batch axis stays where it is in the operand (no transpose copy). `dims` must be
        // increasing, so in the output it goes right after the axis that carries the operand
        // axis before it (or first), and later output axes move up by one.
        let out_b = if b == 0 { 0 } else { self.dims[b - 1] + 1 };
        let mut shape = self.shape.clone();
        shape.insert(out_b, x.shape()[b]);
        let mut new_dims: Vec<usize> = self.dims[..b].to_vec();
        new_dims.push(out_b);
        new_dims.extend(self.dims[b..].iter().map(|&d| d + 1));
        Ok((
            vec![bind1(
                BroadcastInDim {
                    shape,
                    dims: new_dims,
                },
                &[x],
            )?],
            vec![Some(out_b)],
        ))
    }
}

/// The size of the batch axis shared by the batched operands of a batching rule (an error
/// if none is batched, or if they disagree).
pub(crate) fn batch_size(
    op: &'static str,
    args: &[Array],
    dims: &[Option<usize>],
) -> Result<usize> {
    if args.len() != dims.len() {
        return Err(Error::invalid(
            op,
            format!(
                "batching: {} operands but {} batch dims",
                args.len(),
                dims.len()
            ),
        ));
    }
    let mut size = None;
    for (a, d) in args.iter().zip(dims) {
        let Some(d) = *d else { continue };
        crate::prim::check_axis(op, d, a.rank())?;
        let n = a.shape()[d];
        match size {
            None => size = Some(n),
            Some(m) if m != n => {
                return Err(Error::shape(
                    op,
                    format!("batching: batch sizes differ: {m} vs {n}"),
                ));
            }
            Some(_) => {}
        }
    }
    size.ok_or_else(|| Error::invalid(op, "batching: no operand is batched"))
}

/// `x` with its batch axis `d` moved to the front, or (`d = None`, an operand shared by all
/// examples) broadcast along a new front axis of size `n`: the common layout batching rules
/// rewrite a primitive in when operands must agree on where the batch axis is.
pub(crate) fn batch_to_front(x: &Array, d: Option<usize>, n: usize) -> Result<Array> {
    match d {
        Some(d) => crate::vmap::move_axis(x, d, 0),
        None => broadcast_batch(x, 0, n),
    }
}

/// An operand shared by all examples, broadcast along a new batch axis of size `n` at
/// position `at` (`0..=rank`).
pub(crate) fn broadcast_batch(x: &Array, at: usize, n: usize) -> Result<Array> {
    if at > x.rank() {
        return Err(Error::invalid(
            "batching",
            format!(
                "batch axis {at} is out of range for an operand of shape {:?}",
                x.shape()
            ),
        ));
    }
    let mut shape = x.shape().to_vec();
    shape.insert(at, n);
    let dims: Vec<usize> = (0..x.rank())
        .map(|i| if i < at { i } else { i + 1 })
        .collect();
    broadcast_in_dim(x, &shape, &dims)
}

/// Reads `src` through per-output-axis strides into a new row-major vector of `shape`.
/// The workhorse of broadcast, transpose and strided slicing.
pub fn strided_gather<T: Copy>(src: &[T], shape: &[usize], in_strides: &[usize]) -> Vec<T> {
    strided_gather_offset(src, 0, shape, in_strides)
}

/// [`strided_gather`] starting at element `offset` of `src`.
pub fn strided_gather_offset<T: Copy>(
    src: &[T],
    offset: usize,
    shape: &[usize],
    in_strides: &[usize],
) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let rank = shape.len();
    if rank == 0 {
        out.push(src[offset]);
        return out;
    }
    let last = rank - 1;
    let (inner_n, inner_s) = (shape[last], in_strides[last]);
    let mut idx = vec![0usize; rank];
    let mut base = offset;
    loop {
        if inner_s == 1 {
            out.extend_from_slice(&src[base..base + inner_n]);
        } else if inner_s == 0 {
            out.extend(std::iter::repeat_n(src[base], inner_n));
        } else {
            out.extend((0..inner_n).map(|j| src[base + j * inner_s]));
        }
        // Advance the outer index (odometer over axes 0..last).
        let mut ax = last;
        loop {
            if ax == 0 {
                return out;
            }
            ax -= 1;
            idx[ax] += 1;
            base += in_strides[ax];
            if idx[ax] < shape[ax] {
                break;
            }
            base -= in_strides[ax] * shape[ax];
            idx[ax] = 0;
        }
    }
}

/// `broadcast_in_dim` on arrays.
pub fn broadcast_in_dim(x: &Array, shape: &[usize], dims: &[usize]) -> Result<Array> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    bind1(
        BroadcastInDim {
            shape: shape.to_vec(),
            dims: dims.to_vec(),
        },
        &[x],
    )
}

/// The numpy broadcast of two shapes (right-aligned; equal dims or one of them 1).
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("cannot broadcast shapes {a:?} and {b:?}"),
            ));
        };
    }
    Ok(out)
}

/// numpy-style `broadcast_to`: right-aligns `x`'s shape with `shape`.
pub fn broadcast_to(x: &Array, shape: &[usize]) -> Result<Array> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    if x.rank() > shape.len() {
        return Err(Error::shape(
            "broadcast_to",
            format!(
                "cannot broadcast shape {:?} to the lower-rank {shape:?}",
                x.shape()
            ),
        ));
    }
    let off = shape.len() - x.rank();
    let dims: Vec<usize> = (off..shape.len()).collect();
    broadcast_in_dim(x, shape, &dims)
}

/// Broadcasts two arrays to their common shape (the implicit broadcasting of binary ops).
pub fn broadcast_pair(op: &'static str, a: &Array, b: &Array) -> Result<(Array, Array)> {
    if a.shape() == b.shape() {
        return Ok((a.clone(), b.clone()));
    }
    let s = broadcast_shapes(op, a.shape(), b.shape())?;
    // A constant meeting a tracer is broadcast inside the trace, where fusion reads it
    // through an index map, instead of being materialized at full size while tracing.
    let (a, b) = match (a.is_tracer(), b.is_tracer()) {
        (true, false) => (a.clone(), crate::trace::lift_concrete(b)?),
        (false, true) => (crate::trace::lift_concrete(a)?, b.clone()),
        _ => (a.clone(), b.clone()),
    };
    Ok((broadcast_to(&a, &s)?, broadcast_to(&b, &s)?))
}
