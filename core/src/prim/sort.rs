//! The `sort` primitive: a stable sort along one axis returning the sorted values and the
//! i32 indices that produce them. NaN sorts after every number (numpy's rule), `-0.0` and
//! `0.0` compare equal. A stable sort's output is unique, so sorting rows or long runs on
//! several threads cannot change it.

use crate::array::{bind, AVal, Array, HostView};
use crate::dtype::{DType, Elem};
use crate::error::{Error, Result};
use crate::prim::argreduce::index_storage;
use crate::prim::gather::GatherMode;
use crate::prim::reduce::{
    batched_axis, split_at_axis, unary_batch_operand, Acc, Load, Split3, PAR_MIN,
};
use crate::prim::scatter_add::{scatter_add, IndexMode};
use crate::prim::{check_axis, Primitive};
use crate::storage::Storage;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::sync::Arc;

/// `sort[axis, descending](x) -> (values, indices)`. Stable in both directions: equal
/// elements keep their original order. Descending puts NaN first (the reverse of
/// ascending's NaN-last, as `jnp.sort(descending=True)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sort {
    /// The sorted axis.
    pub axis: usize,
    /// Largest first.
    pub descending: bool,
}

/// Ascending total order with NaN last and all NaNs equal.
#[inline]
fn cmp_asc<A: Acc>(a: A, b: A) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

/// Sorts one lane of `(value, original index)` pairs in place.
fn sort_lane<T: Load>(lane: &mut [(T, u32)], descending: bool) {
    let cmp = |a: &(T, u32), b: &(T, u32)| {
        let o = cmp_asc(a.0.load(), b.0.load());
        if descending {
            o.reverse()
        } else {
            o
        }
    };
    if lane.len() >= PAR_MIN {
        lane.par_sort_by(cmp);
    } else {
        lane.sort_by(cmp);
    }
}

fn sort3<T: Load>(x: &[T], p: Split3, descending: bool, vals: &mut [T], idx: &mut [usize]) {
    let Split3 { outer, r, inner } = p;
    let lanes = outer * inner;
    if lanes == 0 || r == 0 {
        return;
    }
    let gather = |l: usize| -> Vec<(T, u32)> {
        let (o, j) = (l / inner, l % inner);
        let base = o * r * inner + j;
        let mut lane: Vec<(T, u32)> = (0..r).map(|k| (x[base + k * inner], k as u32)).collect();
        sort_lane(&mut lane, descending);
        lane
    };
    let par = lanes * r >= PAR_MIN && lanes > 1;
    if inner == 1 {
        let write = |(l, (vs, is)): (usize, (&mut [T], &mut [usize]))| {
            for (k, (v, i)) in gather(l).into_iter().enumerate() {
                vs[k] = v;
                is[k] = i as usize;
            }
        };
        if par {
            vals.par_chunks_mut(r)
                .zip(idx.par_chunks_mut(r))
                .enumerate()
                .for_each(write);
        } else {
            vals.chunks_mut(r)
                .zip(idx.chunks_mut(r))
                .enumerate()
                .for_each(write);
        }
        return;
    }
    // Lanes are strided: sort each into its own buffer, then scatter.
    let sorted: Vec<Vec<(T, u32)>> = if par {
        (0..lanes).into_par_iter().map(gather).collect()
    } else {
        (0..lanes).map(gather).collect()
    };
    for (l, lane) in sorted.into_iter().enumerate() {
        let (o, j) = (l / inner, l % inner);
        let base = o * r * inner + j;
        for (k, (v, i)) in lane.into_iter().enumerate() {
            vals[base + k * inner] = v;
            idx[base + k * inner] = i as usize;
        }
    }
}

impl Primitive for Sort {
    fn name(&self) -> &'static str {
        "sort"
    }
    fn params(&self) -> String {
        format!("axis={} descending={}", self.axis, self.descending)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        check_axis("sort", self.axis, x.rank())?;
        if x.shape[self.axis] > i32::MAX as usize {
            return Err(Error::shape(
                "sort",
                format!(
                    "axis {} of shape {:?} is too long for i32 indices",
                    self.axis, x.shape
                ),
            ));
        }
        Ok(vec![x.clone(), AVal::new(x.shape.clone(), DType::I32)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let p = split_at_axis(x.shape, self.axis);
        let mut idx = vec![0usize; outs[1].numel()];
        let vals = with_storage!(x.data, v, T => {
            let mut vals = v.to_vec();
            sort3::<T>(v, p, self.descending, &mut vals, &mut idx);
            T::into_storage(vals)
        });
        Ok(vec![vals, index_storage(DType::I32, &idx)])
    }
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // Only the values output is differentiable (the indices are integers).
        let (Some(x), Some(idx), Some(Some(ct))) = (primals.first(), outs.get(1), cts.first())
        else {
            return Ok(vec![None]);
        };
        if !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        // values[k] = x[idx[k]] along the axis, a permutation, so x[idx[k]] receives ct[k]:
        // the scatter that transposes that gather. Linear in `ct`, and the indices carry no
        // derivative, so the rule differentiates again.
        let g = scatter_add(
            &Array::zeros(x.shape(), x.dtype()),
            idx,
            ct,
            self.axis,
            GatherMode::AlongAxis,
            IndexMode::Clip,
        )?;
        Ok(vec![Some(g)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (x, bd) = unary_batch_operand("sort", args, dims)?;
        let Some(b) = bd else {
            return Ok((bind(Arc::new(self.clone()), &[x])?, vec![None, None]));
        };
        // The batch axis stays in place; the sorted axis is renumbered around it. Lanes are
        // sorted independently, exactly as in a per-example loop.
        let prim = Sort {
            axis: batched_axis(self.axis, b),
            descending: self.descending,
        };
        Ok((bind(Arc::new(prim), &[x])?, vec![Some(b), Some(b)]))
    }
}

/// Sorts `x` along `axis`, returning `(values, i32 indices)`.
pub fn sort_with_indices(x: &Array, axis: usize, descending: bool) -> Result<(Array, Array)> {
    let mut outs = bind(Arc::new(Sort { axis, descending }), &[x])?;
    let idx = outs.pop().expect("two outputs");
    let vals = outs.pop().expect("two outputs");
    Ok((vals, idx))
}

/// The values of `x` sorted along `axis` (stable; NaN last when ascending).
pub fn sort(x: &Array, axis: usize, descending: bool) -> Result<Array> {
    Ok(sort_with_indices(x, axis, descending)?.0)
}

/// The i32 indices that sort `x` along `axis` (stable; NaN last when ascending).
pub fn argsort(x: &Array, axis: usize, descending: bool) -> Result<Array> {
    Ok(sort_with_indices(x, axis, descending)?.1)
}
