//! The `cumsum` / `cumprod` / `cummax` / `cummin` primitive: running folds along one axis,
//! optionally from the end. Each output is the running accumulator of a sequential scan, so
//! the order is fixed by definition (as numpy's `cumsum`); threads only split independent
//! rows. bf16/f16 accumulate in f32 and round each output once.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::Elem;
use crate::error::Result;
use crate::prim::reduce::{split_at_axis, with_monoid, Load, Monoid, ReduceOp, Split3, PAR_MIN};
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
