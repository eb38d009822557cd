//! The `cumsum` / `cumprod` / `cummax` / `cummin` primitive: running folds along one axis,
//! optionally from the end. Each output is the running accumulator of a sequential scan, so
//! the order is fixed by definition (as numpy's `cumsum`); threads only split independent
//! rows. bf16/f16 accumulate in f32 and round each output once.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::{DType, Elem};
use crate::error::Result;
use crate::prim::binary::{add, mul, or};
use crate::prim::compare::{eq, ne};
use crate::prim::gather::GatherMode;
use crate::prim::iota::iota;
use crate::prim::reduce::{
    batched_axis, shift, split_at_axis, unary_batch_operand, with_monoid, Load, Monoid, ReduceOp,
    Split3, PAR_MIN,
};
use crate::prim::rev::rev;
use crate::prim::scatter_add::{scatter_add, IndexMode};
use crate::prim::select::select;
use crate::prim::{check_axis, Primitive};
use crate::storage::Storage;
use rayon::prelude::*;

/// `cum<op>[axis, reverse](x)`: `out[.., i, ..] = op(x[.., 0, ..], ..., x[.., i, ..])`, or
/// over `i..n` when `reverse`. Same shape and dtype as `x`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cumulative {
    /// The monoid (shared with [`Reduce`](crate::prim::reduce::Reduce)).
    pub op: ReduceOp,
    /// The scanned axis.
    pub axis: usize,
    /// Scan from the last element towards the first.
    pub reverse: bool,
}

fn scan3<T: Load, M: Monoid<T::A>>(x: &[T], p: Split3, reverse: bool, out: &mut [T]) {
    let Split3 { outer, r, inner } = p;
    let block = |o: usize, oblk: &mut [T]| {
        let xb = &x[o * r * inner..(o + 1) * r * inner];
        if inner == 1 {
            // The common case (last axis): a plain running fold, no per-step slicing.
            let mut a = M::id();
            let mut step = |(v, y): (&T, &mut T)| {
                a = M::comb(a, v.load());
                *y = T::store(a);
            };
            if reverse {
                xb.iter()
                    .rev()
                    .zip(oblk.iter_mut().rev())
                    .for_each(&mut step);
            } else {
                xb.iter().zip(oblk.iter_mut()).for_each(&mut step);
            }
            return;
        }
        let mut acc = vec![M::id(); inner];
        let mut step = |k: usize| {
            let (xr, yr) = (
                &xb[k * inner..(k + 1) * inner],
                &mut oblk[k * inner..(k + 1) * inner],
            );
            for ((a, v), y) in acc.iter_mut().zip(xr).zip(yr) {
                *a = M::comb(*a, v.load());
                *y = T::store(*a);
            }
        };
        if reverse {
            (0..r).rev().for_each(&mut step);
        } else {
            (0..r).for_each(&mut step);
        }
    };
    let blk = r * inner;
    if blk == 0 {
        return;
    }
    if outer * blk >= PAR_MIN && outer > 1 {
        out.par_chunks_mut(blk)
            .enumerate()
            .for_each(|(o, b)| block(o, b));
    } else {
        out.chunks_mut(blk)
            .enumerate()
            .for_each(|(o, b)| block(o, b));
    }
}

impl Primitive for Cumulative {
    fn name(&self) -> &'static str {
        match self.op {
            ReduceOp::Sum => "cumsum",
            ReduceOp::Prod => "cumprod",
            ReduceOp::Max => "cummax",
            ReduceOp::Min => "cummin",
        }
    }
    fn params(&self) -> String {
        format!("axis={} reverse={}", self.axis, self.reverse)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        check_axis(self.name(), self.axis, ins[0].rank())?;
        Ok(vec![ins[0].clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let p = split_at_axis(x.shape, self.axis);
        let out = with_storage!(x.data, v, T => {
            let mut out = v.to_vec();
            with_monoid!(self.op, M => scan3::<T, M>(v, p, self.reverse, &mut out));
            T::into_storage(out)
        });
        Ok(vec![out])
    }
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let (Some(x), Some(out), Some(Some(ct))) = (primals.first(), outs.first(), cts.first())
        else {
            return Ok(vec![None]);
        };
        // Integer and bool scans are not differentiable.
        if !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        let g = match self.op {
            // out[i] sums x[j] for j <= i, so x[j] collects ct[i] for i >= j: the scan in
            // the other direction.
            ReduceOp::Sum => cumsum(ct, self.axis, !self.reverse)?,
            ReduceOp::Prod => cumprod_vjp(x, ct, self.axis, self.reverse)?,
            ReduceOp::Max | ReduceOp::Min => cum_extreme_vjp(x, out, ct, self.axis, self.reverse)?,
        };
        Ok(vec![Some(g)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (x, bd) = unary_batch_operand(self.name(), args, dims)?;
        let Some(b) = bd else {
            return Ok((vec![bind1(self.clone(), &[x])?], vec![None]));
        };
        // The batch axis stays in place (no transpose copy); the scanned axis is renumbered
        // around it. Each lane is scanned exactly as in a per-example loop.
        let prim = Cumulative {
            op: self.op,
            axis: batched_axis(self.axis, b),
            reverse: self.reverse,
        };
        Ok((vec![bind1(prim, &[x])?], vec![Some(b)]))
    }
}

/// Cotangent of `cumprod` along `axis`, division-free so that zeros in `x` give the exact
/// gradient (and no NaN) at every order. The forward scan is recomputed as a Hillis-Steele
/// scan (`y <- y * shift(y, s)` for `s = 1, 2, 4, ...`; `ceil(log2 n)` steps of elementwise
/// products, the same idea as JAX's associative-scan-based rule), and the cotangent is
/// pulled back through those products step by step. `O(n log n)` work per lane; the rule is
/// built from `pad` and `mul`, so it is differentiable again.
fn cumprod_vjp(x: &Array, ct: &Array, axis: usize, reverse: bool) -> Result<Array> {
    if reverse {
        // A reverse scan is the forward scan of the reversed lane.
        let g = cumprod_vjp(&rev(x, &[axis])?, &rev(ct, &[axis])?, axis, false)?;
        return rev(&g, &[axis]);
    }
    let n = x.shape()[axis];
    // Forward: remember each step's input and its shifted copy.
    let mut steps: Vec<(Array, Array, i64)> = Vec::new();
    let mut y = x.clone();
    let mut s = 1usize;
    while s < n {
        let shifted = shift(&y, axis, s as i64, 1.0)?;
        let next = mul(&y, &shifted)?;
        steps.push((y, shifted, s as i64));
        y = next;
        s *= 2;
    }
    // Backward through `next = y * shift(y, s)`: the direct factor gives `g * shifted`, the
    // shifted factor gives `g * y` moved back by `s` (the transpose of the shift, zero-filled).
    let mut g = ct.clone();
    for (y, shifted, s) in steps.into_iter().rev() {
        g = add(&mul(&g, &shifted)?, &shift(&mul(&g, &y)?, axis, -s, 0.0)?)?;
    }
    Ok(g)
}

/// Cotangent of `cummax` / `cummin`: each output's cotangent goes to the position its running
/// extreme came from. Position `j` starts a new running extreme when `x[j] == out[j]`; the
/// source of `out[i]` is the latest such `j <= i` (earliest `j >= i` for a reverse scan),
/// found with a running max (min) of those positions. Ties therefore send the cotangent to
/// the most recent tied element, as `torch.cummax`'s indices do (JAX, which differentiates
/// its associative scan of `max`, splits ties instead). The positions come from a comparison,
/// so they carry no derivative; the rule is a `scatter_add`, linear in `ct`.
fn cum_extreme_vjp(
    x: &Array,
    out: &Array,
    ct: &Array,
    axis: usize,
    reverse: bool,
) -> Result<Array> {
    let shape = x.shape();
    let n = shape[axis];
    if x.numel() == 0 {
        return Ok(Array::zeros(shape, x.dtype()));
    }
    let idt = if n < i32::MAX as usize {
        DType::I32
    } else {
        DType::I64
    };
    // A NaN counts as a start too (it equals nothing, not even the NaN it makes the running
    // value), so the cotangent of a NaN output goes to the latest NaN input feeding it.
    let starts = or(&eq(x, out)?, &ne(x, x)?)?;
    let pos = iota(idt, shape, axis)?;
    // The first element of a scan is always a start, so filling the other positions with the
    // scan's first index (0, or n - 1 in reverse) never changes the running max (min), and
    // every source index is in range.
    let src = if reverse {
        let first = Array::full(shape, idt, (n - 1) as f64);
        cummin(&select(&starts, &pos, &first)?, axis, true)?
    } else {
        let first = Array::zeros(shape, idt);
        cummax(&select(&starts, &pos, &first)?, axis, false)?
    };
    scatter_add(
        &Array::zeros(shape, x.dtype()),
        &src,
        ct,
        axis,
        GatherMode::AlongAxis,
        IndexMode::Clip,
    )
}

/// Running `op` along `axis` (from the end when `reverse`).
pub fn cumulative(x: &Array, op: ReduceOp, axis: usize, reverse: bool) -> Result<Array> {
    bind1(Cumulative { op, axis, reverse }, &[x])
}

/// Running sum along `axis`.
pub fn cumsum(x: &Array, axis: usize, reverse: bool) -> Result<Array> {
    cumulative(x, ReduceOp::Sum, axis, reverse)
}
/// Running product along `axis`.
pub fn cumprod(x: &Array, axis: usize, reverse: bool) -> Result<Array> {
    cumulative(x, ReduceOp::Prod, axis, reverse)
}
/// Running maximum along `axis` (NaN propagates).
pub fn cummax(x: &Array, axis: usize, reverse: bool) -> Result<Array> {
    cumulative(x, ReduceOp::Max, axis, reverse)
}
/// Running minimum along `axis` (NaN propagates).
pub fn cummin(x: &Array, axis: usize, reverse: bool) -> Result<Array> {
    cumulative(x, ReduceOp::Min, axis, reverse)
}
