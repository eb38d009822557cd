//! The `gather` primitive, restricted to the two forms `take` and `take_along_axis` need
//! (and their gradients, [`ScatterAdd`](crate::prim::scatter_add::ScatterAdd)).
//!
//! Index convention (shared with `scatter_add`): integer indices of any integer dtype; a
//! negative index `-k` means `dim - k` (numpy / `jnp.take`), and the result is then clamped
//! into `0..dim` (JAX's default clip mode for gathers), so indices are never an error.
//! Gathering along an empty axis yields zeros (there is no element to clamp to).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::dynamic_slice::index_at;
use crate::prim::scatter_add::IndexMode;
use crate::prim::Primitive;
use crate::storage::Storage;

/// Which gather form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatherMode {
    /// `out = x.shape[..axis] ++ idx.shape ++ x.shape[axis+1..]`: every index selects a
    /// whole slice along `axis` (`jnp.take(x, idx, axis)`).
    Take,
    /// Indices have the operand's rank and equal dims off `axis`; `out.shape = idx.shape`
    /// and `out[p] = x[p with axis -> idx[p]]` (`jnp.take_along_axis`).
    AlongAxis,
}

/// `gather[axis, mode](x, indices)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gather {
    /// The axis indices select along.
    pub axis: usize,
    /// Which form.
    pub mode: GatherMode,
}

/// Wraps a negative index once and clamps into `0..d` (`d > 0`).
#[inline]
pub(crate) fn clip_index(i: i64, d: usize) -> usize {
    let d = d as i64;
    let i = if i < 0 { i + d } else { i };
    i.clamp(0, d - 1) as usize
}

/// The shape of a gather's output (and of a scatter's updates), checked.
pub(crate) fn gather_shape(
    op: &'static str,
    axis: usize,
    mode: GatherMode,
    x: &AVal,
    idx: &AVal,
) -> Result<Vec<usize>> {
    crate::prim::check_axis(op, axis, x.rank())?;
    if !idx.dtype.is_int() {
        return Err(Error::dtype(
            op,
            format!("indices must be integers, got {}", idx.dtype),
        ));
    }
    match mode {
        GatherMode::Take => {
            let mut s = x.shape[..axis].to_vec();
            s.extend_from_slice(&idx.shape);
            s.extend_from_slice(&x.shape[axis + 1..]);
            Ok(s)
        }
        GatherMode::AlongAxis => {
            let ok = idx.rank() == x.rank()
                && (0..x.rank()).all(|i| i == axis || idx.shape[i] == x.shape[i]);
            if !ok {
                return Err(Error::shape(
                    op,
                    format!(
                        "indices of shape {:?} must have the rank of operand shape {:?} and equal dims off axis {axis}",
                        idx.shape, x.shape
                    ),
                ));
            }
            Ok(idx.shape.clone())
        }
    }
}

impl Primitive for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn params(&self) -> String {
        format!("axis={} mode={:?}", self.axis, self.mode)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let (x, idx) = (&ins[0], &ins[1]);
        let shape = gather_shape("gather", self.axis, self.mode, x, idx)?;
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let (x, idx) = (ins[0], ins[1]);
        let a = self.axis;
        let d = x.shape[a];
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let n = outs[0].numel();
        if n == 0 || d == 0 {
            // Nothing to clamp into along an empty axis: the result is zeros, the transpose
            // of `scatter_add` dropping every update there.
            return Ok(vec![Storage::zeros(x.data.dtype(), n)]);
        }
        let m = idx.data.len();
        let pos: Vec<usize> = (0..m)
            .map(|i| index_at("gather", idx.data, i).map(|j| clip_index(j, d)))
            .collect::<Result<_>>()?;
        let out = with_storage!(x.data, v, T => {
            let mut out: Vec<T> = Vec::with_capacity(n);
            match self.mode {
                GatherMode::Take => {
                    for o in 0..outer {
                        let base = o * d * inner;
                        for &p in &pos {
                            out.extend_from_slice(&v[base + p * inner..base + (p + 1) * inner]);
                        }
                    }
                }
                GatherMode::AlongAxis => {
                    let k = idx.shape[a];
                    for o in 0..outer {
                        for j in 0..k {
                            let row = (o * k + j) * inner;
                            out.extend((0..inner).map(|i| v[(o * d + pos[row + i]) * inner + i]));
                        }
                    }
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
            return Ok(vec![None, None]);
        };
        let (x, idx) = (&primals[0], &primals[1]);
        if !x.dtype().is_float() {
            return Ok(vec![None, None]);
        }
        // Each gathered element sends its cotangent back to the position it was read from;
        // `Clip` routes clamped (and wrapped negative) indices exactly as the gather read
        // them, and repeated indices accumulate. Indices are integers: no cotangent.
        let zeros = crate::prim::unary::full_like(x, 0.0)?;
        let g = crate::prim::scatter_add::scatter_add(
            &zeros,
            idx,
            ct,
            self.axis,
            self.mode,
            IndexMode::Clip,
        )?;
        Ok(vec![Some(g), None])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        use crate::prim::broadcast_in_dim::{batch_size, broadcast_batch};
        use crate::prim::reduce::batched_axis;
        let ([x, idx], [xd, id]) = (args, dims) else {
            return Err(Error::invalid(
                "gather",
                format!("batching takes 2 operands, got {}", args.len()),
            ));
        };
        let a = self.axis;
        let n = || batch_size("gather", args, dims);
        let (y, out_b) = match (*xd, *id, self.mode) {
            (None, None, _) => return Ok((vec![gather(x, idx, a, self.mode)?], vec![None])),
            // Shared indices select along the operand's axis renumbered around the batch axis
            // (left in place); the batch axis comes out before or after the index axes.
            (Some(b), None, GatherMode::Take) => {
                let ax = batched_axis(a, b);
                let out_b = if b < ax { b } else { b + idx.rank() - 1 };
                (gather(x, idx, ax, GatherMode::Take)?, out_b)
            }
            // AlongAxis indices need the operand's rank: give them the batch axis too.
            (Some(b), None, GatherMode::AlongAxis) => {
                let ib = broadcast_batch(idx, b, n()?)?;
                (
                    gather(x, &ib, batched_axis(a, b), GatherMode::AlongAxis)?,
                    b,
                )
            }
            // A shared operand: batched Take indices simply are more index axes.
            (None, Some(c), GatherMode::Take) => (gather(x, idx, a, GatherMode::Take)?, a + c),
            (None, Some(c), GatherMode::AlongAxis) => {
                let xb = broadcast_batch(x, c, n()?)?;
                (
                    gather(&xb, idx, batched_axis(a, c), GatherMode::AlongAxis)?,
                    c,
                )
            }
            (Some(b), Some(c), GatherMode::AlongAxis) => {
                let x0 = crate::vmap::move_axis(x, b, 0)?;
                let i0 = crate::vmap::move_axis(idx, c, 0)?;
                (gather(&x0, &i0, a + 1, GatherMode::AlongAxis)?, 0)
            }
            // Each example takes its own indices: flatten to [n, P, d, Q] (P, Q = the axes
            // before and after `axis`) and [n, M] indices, and gather along axis 2 in the
            // AlongAxis form with the indices repeated over P and Q.
            (Some(b), Some(c), GatherMode::Take) => {
                let x0 = crate::vmap::move_axis(x, b, 0)?;
                let i0 = crate::vmap::move_axis(idx, c, 0)?;
                let (flat_x, idx_b) = take_as_along_axis(&x0, &i0, a)?;
                let g = gather(&flat_x, &idx_b, 2, GatherMode::AlongAxis)?;
                let mut shape = x0.shape()[..a + 1].to_vec();
                shape.extend_from_slice(&i0.shape()[1..]);
                shape.extend_from_slice(&x0.shape()[a + 2..]);
                (crate::prim::reshape::reshape(&g, &shape)?, 0)
            }
        };
        Ok((vec![y], vec![Some(out_b)]))
    }
}

/// The AlongAxis form of a batched Take (both operands batched at axis 0, `axis` counted
/// without the batch axis): the operand reshaped to `[n, P, d, Q]` and the indices, flattened
/// to `[n, M]`, broadcast to `[n, P, M, Q]`. Shared with `scatter_add`'s batching rule.
pub(crate) fn take_as_along_axis(x0: &Array, i0: &Array, axis: usize) -> Result<(Array, Array)> {
    let s = x0.shape();
    let (Some(&n), Some(&d)) = (s.first(), s.get(axis + 1)) else {
        return Err(Error::invalid(
            "gather",
            format!("axis {axis} is out of range for a batched operand of shape {s:?}"),
        ));
    };
    let p: usize = s[1..axis + 1].iter().product();
    let q: usize = s[axis + 2..].iter().product();
    let m: usize = i0.shape()[1..].iter().product();
    let flat_x = crate::prim::reshape::reshape(x0, &[n, p, d, q])?;
    let flat_i = crate::prim::reshape::reshape(i0, &[n, m])?;
    let idx_b = crate::prim::broadcast_in_dim::broadcast_in_dim(&flat_i, &[n, p, m, q], &[0, 2])?;
    Ok((flat_x, idx_b))
}

/// `gather` on arrays.
pub fn gather(x: &Array, indices: &Array, axis: usize, mode: GatherMode) -> Result<Array> {
    bind1(Gather { axis, mode }, &[x, indices])
}

/// `jnp.take(x, indices, axis)`: selects whole slices along `axis`. Negative indices count
/// from the end; out-of-range ones are clamped (see the module docs).
pub fn take(x: &Array, indices: &Array, axis: usize) -> Result<Array> {
    gather(x, indices, axis, GatherMode::Take)
}

/// `jnp.take_along_axis(x, indices, axis)`: `indices` has `x`'s rank and equal dims off
/// `axis` (broadcast them first if needed). Same index convention as [`take`].
pub fn take_along_axis(x: &Array, indices: &Array, axis: usize) -> Result<Array> {
    gather(x, indices, axis, GatherMode::AlongAxis)
}
