//! The `reduce_{sum,max,min,prod}` primitive: folds a set of axes with one monoid. Also home of
//! the accumulator machinery (`Acc`, `Load`, `Monoid`) the other reducing primitives share.
//!
//! Summation order is part of the result, so it is fixed: every output element folds its
//! input sequence (the reduced indices in row-major order) as a pairwise tree over leaves of
//! [`LEAF`] elements, each leaf folded by eight interleaved lanes combined in a fixed tree.
//! Threads only ever evaluate independent subtrees or independent outputs, so the bits do not
//! depend on the thread count, and the tree keeps f32 sums accurate (error grows with
//! `log n`, not `n`). bf16/f16 accumulate in f32 and round once.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::{DType, Elem};
use crate::error::{Error, Result};
use crate::prim::binary::{div, mul};
use crate::prim::broadcast_in_dim::{broadcast_in_dim, strided_gather};
use crate::prim::compare::eq;
use crate::prim::convert::convert;
use crate::prim::cumulative::cumprod;
use crate::prim::pad::pad;
use crate::prim::reshape::reshape;
use crate::prim::transpose::{inverse_perm, transpose};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;
use half::{bf16, f16};
use rayon::prelude::*;

/// Elements per leaf of the summation tree.
pub const LEAF: usize = 256;
/// Interleaved accumulators inside a leaf (lets the compiler vectorize a leaf).
const LANES: usize = 8;
/// Work (in elements) below which a kernel stays on the calling thread.
pub(crate) const PAR_MIN: usize = 1 << 15;
/// Output columns handled together when the reduced axis is not innermost.
const TILE: usize = 256;

/// Which monoid a reduction folds with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// `+` (logical or on bool; wrapping on integers).
    Sum,
    /// Maximum (NaN propagates; logical or on bool).
    Max,
    /// Minimum (NaN propagates; logical and on bool).
    Min,
    /// `*` (logical and on bool; wrapping on integers).
    Prod,
}

impl ReduceOp {
    /// Lower-case name (`sum`, `max`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accumulators shared by reduce, cumulative, argreduce and sort.

/// An accumulator type: the values a reduction folds (f32 for the half types).
pub(crate) trait Acc: Copy + Send + Sync + PartialOrd + 'static {
    const ZERO: Self;
    const ONE: Self;
    /// Identity of max (the smallest value).
    const LOWEST: Self;
    /// Identity of min (the largest value).
    const HIGHEST: Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// Maximum; a NaN on either side wins.
    fn max(self, o: Self) -> Self;
    /// Minimum; a NaN on either side wins.
    fn min(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
}

macro_rules! acc_float {
    ($t:ty) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                if self.is_nan() || self > o {
                    self
                } else {
                    o
                }
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                if self.is_nan() || self < o {
                    self
                } else {
                    o
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                self != self
            }
        }
    };
}
acc_float!(f32);
acc_float!(f64);

macro_rules! acc_int {
    ($t:ty) => {
        impl Acc for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                Ord::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                Ord::min(self, o)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}
acc_int!(i32);
acc_int!(i64);
acc_int!(u32);

impl Acc for bool {
    const ZERO: Self = false;
    const ONE: Self = true;
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        false
    }
}

/// An element type with its accumulator: how to widen an element and round a result back.
pub(crate) trait Load: Elem {
    type A: Acc;
    fn load(self) -> Self::A;
    fn store(a: Self::A) -> Self;
}

macro_rules! load_same {
    ($($t:ty),*) => {$(
        impl Load for $t {
            type A = $t;
            #[inline(always)]
            fn load(self) -> $t {
                self
            }
            #[inline(always)]
            fn store(a: $t) -> $t {
                a
            }
        }
    )*};
}
load_same!(f32, f64, i32, i64, u32, bool);

macro_rules! load_half {
    ($($t:ty),*) => {$(
        impl Load for $t {
            type A = f32;
            #[inline(always)]
            fn load(self) -> f32 {
                self.to_f32()
            }
            #[inline(always)]
            fn store(a: f32) -> $t {
                <$t>::from_f32(a)
            }
        }
    )*};
}
load_half!(bf16, f16);

/// A reduction monoid over accumulator `A`, as a zero-sized type so kernels monomorphize.
pub(crate) trait Monoid<A: Acc>: Copy + Send + Sync + 'static {
    fn id() -> A;
    fn comb(a: A, b: A) -> A;
}

#[derive(Clone, Copy)]
pub(crate) struct SumM;
#[derive(Clone, Copy)]
pub(crate) struct ProdM;
#[derive(Clone, Copy)]
pub(crate) struct MaxM;
#[derive(Clone, Copy)]
pub(crate) struct MinM;

impl<A: Acc> Monoid<A> for SumM {
    #[inline(always)]
    fn id() -> A {
        A::ZERO
    }
    #[inline(always)]
    fn comb(a: A, b: A) -> A {
        a.add(b)
    }
}
impl<A: Acc> Monoid<A> for ProdM {
    #[inline(always)]
    fn id() -> A {
        A::ONE
    }
    #[inline(always)]
    fn comb(a: A, b: A) -> A {
        a.mul(b)
    }
}
impl<A: Acc> Monoid<A> for MaxM {
    #[inline(always)]
    fn id() -> A {
        A::LOWEST
    }
    #[inline(always)]
    fn comb(a: A, b: A) -> A {
        a.max(b)
    }
}
impl<A: Acc> Monoid<A> for MinM {
    #[inline(always)]
    fn id() -> A {
        A::HIGHEST
    }
    #[inline(always)]
    fn comb(a: A, b: A) -> A {
        a.min(b)
    }
}

/// Runs `$body` with `$M` naming the monoid type of a [`ReduceOp`].
macro_rules! with_monoid {
    ($op:expr, $M:ident => $body:expr) => {
        match $op {
            $crate::prim::reduce::ReduceOp::Sum => {
                type $M = $crate::prim::reduce::SumM;
                $body
            }
            $crate::prim::reduce::ReduceOp::Prod => {
                type $M = $crate::prim::reduce::ProdM;
                $body
            }
            $crate::prim::reduce::ReduceOp::Max => {
                type $M = $crate::prim::reduce::MaxM;
                $body
            }
            $crate::prim::reduce::ReduceOp::Min => {
                type $M = $crate::prim::reduce::MinM;
                $body
            }
        }
    };
}
pub(crate) use with_monoid;

/// A reduction problem in the canonical form `(outer, r, inner)`: output `(o, j)` folds
/// `x[(o * r + k) * inner + j]` for `k` in `0..r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split3 {
    pub outer: usize,
    pub r: usize,
    pub inner: usize,
}

/// The `(outer, axis, inner)` split of a shape around one axis.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> Split3 {
    Split3 {
        outer: shape[..axis].iter().product(),
        r: shape[axis],
        inner: shape[axis + 1..].iter().product(),
    }
}

// ---------------------------------------------------------------------------------------
// The fixed-order fold.

/// Left size of the tree split of `n > LEAF` elements: half the leaves, rounded up.
#[inline]
fn tree_split(n: usize) -> usize {
    n.div_ceil(LEAF).div_ceil(2) * LEAF
}

#[inline(always)]
fn combine_lanes<A: Acc, M: Monoid<A>>(a: [A; LANES]) -> A {
    M::comb(
        M::comb(M::comb(a[0], a[1]), M::comb(a[2], a[3])),
        M::comb(M::comb(a[4], a[5]), M::comb(a[6], a[7])),
    )
}

/// One leaf (at most `LEAF` elements): element `k` goes to lane `k % LANES`.
#[inline]
fn leaf_contig<T: Load, M: Monoid<T::A>>(x: &[T]) -> T::A {
    let mut acc = [M::id(); LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] = M::comb(acc[k], c[k].load());
        }
    }
    for (k, v) in chunks.remainder().iter().enumerate() {
        acc[k] = M::comb(acc[k], v.load());
    }
    combine_lanes::<T::A, M>(acc)
}

/// The canonical fold of a contiguous sequence.
pub(crate) fn fold_contig<T: Load, M: Monoid<T::A>>(x: &[T]) -> T::A {
    if x.len() <= LEAF {
        return leaf_contig::<T, M>(x);
    }
    let (l, r) = x.split_at(tree_split(x.len()));
    let (a, b) = if x.len() >= PAR_MIN {
        rayon::join(|| fold_contig::<T, M>(l), || fold_contig::<T, M>(r))
    } else {
        (fold_contig::<T, M>(l), fold_contig::<T, M>(r))
    };
    M::comb(a, b)
}

/// The canonical fold of `n` rows of `w` columns (row `k`, column `j` at `x[k * stride + j]`),
/// column by column, with the same tree and lanes as [`fold_contig`] so that a layout change
/// does not change the bits.
fn fold_cols<T: Load, M: Monoid<T::A>>(x: &[T], stride: usize, n: usize, w: usize) -> Vec<T::A> {
    if n <= LEAF {
        let mut acc = vec![M::id(); LANES * w];
        for k in 0..n {
            let row = &x[k * stride..k * stride + w];
            let lane = &mut acc[(k % LANES) * w..(k % LANES + 1) * w];
            for (a, v) in lane.iter_mut().zip(row) {
                *a = M::comb(*a, v.load());
            }
        }
        return (0..w)
            .map(|j| combine_lanes::<T::A, M>(std::array::from_fn(|l| acc[l * w + j])))
            .collect();
    }
    let m = tree_split(n);
    let right = &x[m * stride..];
    let (mut a, b) = if n * w >= PAR_MIN {
        rayon::join(
            || fold_cols::<T, M>(x, stride, m, w),
            || fold_cols::<T, M>(right, stride, n - m, w),
        )
    } else {
        (
            fold_cols::<T, M>(x, stride, m, w),
            fold_cols::<T, M>(right, stride, n - m, w),
        )
    };
    for (p, q) in a.iter_mut().zip(b) {
        *p = M::comb(*p, q);
    }
    a
}

/// Reduces the canonical problem `p` over `x` into `out` (`outer * inner` elements).
pub(crate) fn reduce3<T: Load, M: Monoid<T::A>>(x: &[T], p: Split3, out: &mut [T]) {
    let Split3 { outer, r, inner } = p;
    let total = outer * r * inner;
    if outer * inner == 0 {
        return;
    }
    if r == 1 {
        // Nothing to fold: an exact copy (keeps -0.0, which `0 + x` would not).
        out.copy_from_slice(&x[..out.len()]);
        return;
    }
    if inner == 1 {
        let row = |o: usize| T::store(fold_contig::<T, M>(&x[o * r..(o + 1) * r]));
        if total >= PAR_MIN && outer > 1 {
            let per = (PAR_MIN / r.max(1)).max(1);
            out.par_chunks_mut(per)
                .enumerate()
                .for_each(|(c, o_chunk)| {
                    for (i, y) in o_chunk.iter_mut().enumerate() {
                        *y = row(c * per + i);
                    }
                });
        } else {
            for (o, y) in out.iter_mut().enumerate() {
                *y = row(o);
            }
        }
        return;
    }
    let block = |o: usize, orow: &mut [T]| {
        let base = &x[o * r * inner..];
        let tiles = |(t, chunk): (usize, &mut [T])| {
            let w = chunk.len();
            let acc = fold_cols::<T, M>(&base[t * TILE..], inner, r, w);
            for (y, a) in chunk.iter_mut().zip(acc) {
                *y = T::store(a);
            }
        };
        if r * inner >= PAR_MIN {
            orow.par_chunks_mut(TILE).enumerate().for_each(tiles);
        } else {
            orow.chunks_mut(TILE).enumerate().for_each(tiles);
        }
    };
    if total >= PAR_MIN && outer > 1 {
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(o, orow)| block(o, orow));
    } else {
        out.chunks_mut(inner)
            .enumerate()
            .for_each(|(o, orow)| block(o, orow));
    }
}

/// Reduces `axes` (strictly increasing, in range) of a row-major `x` of `shape`.
fn reduce_axes<T: Load, M: Monoid<T::A>>(x: &[T], shape: &[usize], axes: &[usize]) -> Vec<T> {
    let is_red = |i: usize| axes.contains(&i);
    let out_n: usize = (0..shape.len())
        .filter(|&i| !is_red(i))
        .map(|i| shape[i])
        .product();
    let mut out = vec![T::store(M::id()); out_n];
    // Merge runs of kept / reduced axes, ignoring size-1 axes (they do not change the order
    // of the fold), into segments (size, reduced).
    let mut segs: Vec<(usize, bool)> = Vec::new();
    for (i, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        match segs.last_mut() {
            Some((m, red)) if *red == is_red(i) => *m *= n,
            _ => segs.push((n, is_red(i))),
        }
    }
    let p = match segs.as_slice() {
        [] => Some(Split3 {
            outer: 1,
            r: 1,
            inner: 1,
        }),
        [(k, false)] => Some(Split3 {
            outer: *k,
            r: 1,
            inner: 1,
        }),
        [(r, true)] => Some(Split3 {
            outer: 1,
            r: *r,
            inner: 1,
        }),
        [(k, false), (r, true)] => Some(Split3 {
            outer: *k,
            r: *r,
            inner: 1,
        }),
        [(r, true), (j, false)] => Some(Split3 {
            outer: 1,
            r: *r,
            inner: *j,
        }),
        [(k, false), (r, true), (j, false)] => Some(Split3 {
            outer: *k,
            r: *r,
            inner: *j,
        }),
        _ => None,
    };
    match p {
        Some(p) => reduce3::<T, M>(x, p, &mut out),
        None => {
            // Interleaved kept and reduced axes: move the reduced ones innermost first. The
            // fold order per output is still row-major over the reduced indices.
            let st = strides(shape);
            let perm: Vec<usize> = (0..shape.len())
                .filter(|&i| !is_red(i))
                .chain(axes.iter().copied())
                .collect();
            let pshape: Vec<usize> = perm.iter().map(|&i| shape[i]).collect();
            let pstrides: Vec<usize> = perm.iter().map(|&i| st[i]).collect();
            let xt = strided_gather(x, &pshape, &pstrides);
            let r: usize = axes.iter().map(|&a| shape[a]).product();
            reduce3::<T, M>(
                &xt,
                Split3 {
                    outer: out_n,
                    r,
                    inner: 1,
                },
                &mut out,
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The primitive.

/// `reduce_<op>[axes](x)`: folds `axes` of `x` with `op`; the output drops them. An empty
/// reduced extent gives the identity (0, -inf, +inf, 1; the extreme integers for ints).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reduce {
    /// The monoid.
    pub op: ReduceOp,
    /// The reduced axes, strictly increasing.
    pub axes: Vec<usize>,
}

impl Primitive for Reduce {
    fn name(&self) -> &'static str {
        match self.op {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
            ReduceOp::Prod => "reduce_prod",
        }
    }
    fn params(&self) -> String {
        format!("axes={:?}", self.axes)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        for (i, &a) in self.axes.iter().enumerate() {
            if a >= x.rank() || (i > 0 && a <= self.axes[i - 1]) {
                return Err(Error::shape(
                    self.name(),
                    format!(
                        "axes {:?} must be strictly increasing and < {} for an operand of shape {:?}",
                        self.axes,
                        x.rank(),
                        x.shape
                    ),
                ));
            }
        }
        let shape: Vec<usize> = (0..x.rank())
            .filter(|i| !self.axes.contains(i))
            .map(|i| x.shape[i])
            .collect();
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let out = with_storage!(x.data, v, T => {
            with_monoid!(self.op, M => T::into_storage(reduce_axes::<T, M>(v, x.shape, &self.axes)))
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
        // Integer and bool reductions are not differentiable.
        if !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        let shape = x.shape();
        let kept = kept_axes(shape.len(), &self.axes);
        let g = match self.op {
            // Every folded element contributes with weight one.
            ReduceOp::Sum => broadcast_in_dim(ct, shape, &kept)?,
            // JAX's rule: the cotangent is split equally among the positions that attain the
            // extreme (`ct * [x == out] / count`), so ties share it and the rule is linear in
            // `ct`. The mask and count come from a comparison, so they carry no derivative
            // and the rule differentiates again (the second derivative is zero, as it should
            // be for a piecewise-linear function). A NaN extreme matches no position: the
            // count is 0 and the result NaN, as in JAX.
            ReduceOp::Max | ReduceOp::Min => {
                let out_b = broadcast_in_dim(out, shape, &kept)?;
                let loc = convert(&eq(x, &out_b)?, x.dtype())?;
                let counts = broadcast_in_dim(&reduce_sum(&loc, &self.axes)?, shape, &kept)?;
                div(&mul(&broadcast_in_dim(ct, shape, &kept)?, &loc)?, &counts)?
            }
            ReduceOp::Prod => prod_vjp(x, &self.axes, &kept, ct)?,
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
        // The batch axis stays where it is (no transpose copy): the reduced axes are
        // renumbered around it, and it lands in the output after the reduced axes before it
        // are dropped. Each output still folds the same elements in the same order, so the
        // result is bit-identical to a per-example loop.
        let axes: Vec<usize> = self.axes.iter().map(|&a| batched_axis(a, b)).collect();
        let out_b = b - self.axes.iter().filter(|&&a| a < b).count();
        let y = bind1(Reduce { op: self.op, axes }, &[x])?;
        Ok((vec![y], vec![Some(out_b)]))
    }
}

/// The axes of a rank-`rank` operand that a reduction over `axes` keeps, in order.
pub(crate) fn kept_axes(rank: usize, axes: &[usize]) -> Vec<usize> {
    (0..rank).filter(|a| !axes.contains(a)).collect()
}

/// Checks the arguments of a one-operand batching rule and returns the operand and its
/// batch axis (`None` = not batched).
pub(crate) fn unary_batch_operand<'a>(
    op: &'static str,
    args: &'a [Array],
    dims: &[Option<usize>],
) -> Result<(&'a Array, Option<usize>)> {
    let ([x], [d]) = (args, dims) else {
        return Err(Error::invalid(
            op,
            format!(
                "batching takes one operand and one batch dim, got {} and {}",
                args.len(),
                dims.len()
            ),
        ));
    };
    if let Some(b) = *d {
        if b >= x.rank() {
            return Err(Error::invalid(
                op,
                format!(
                    "batch axis {b} is out of range for an operand of shape {:?}",
                    x.shape()
                ),
            ));
        }
    }
    Ok((x, *d))
}

/// Where axis `a` of an example lives in the batched operand whose batch axis is `b`.
#[inline]
pub(crate) fn batched_axis(a: usize, b: usize) -> usize {
    if a >= b {
        a + 1
    } else {
        a
    }
}

/// `y` shifted by `s` positions along `axis` (towards higher indices for `s > 0`), the
/// vacated positions filled with `fill`: a `pad` with a negative crop on the other side, so
/// its own derivative is another pad (no gather).
pub(crate) fn shift(y: &Array, axis: usize, s: i64, fill: f64) -> Result<Array> {
    let mut config = vec![(0i64, 0i64, 0usize); y.rank()];
    config[axis] = (s, -s, 0);
    pad(y, &Array::full(&[], y.dtype(), fill), &config)
}

/// Cotangent of `reduce_prod` over `axes`: `ct * prod_{j != i} x_j` for each folded element
/// `i`, computed as the product of the exclusive prefix and exclusive suffix products of the
/// lane (JAX's zero-safe formulation; no division, so zeros in `x`, even several, give the
/// exact gradient). The prefix/suffix products are `cumprod`s, whose own rule is
/// division-free, so every order of derivative stays exact at zeros.
fn prod_vjp(x: &Array, axes: &[usize], kept: &[usize], ct: &Array) -> Result<Array> {
    let shape = x.shape();
    if x.numel() == 0 {
        return Ok(Array::zeros(shape, x.dtype()));
    }
    let n: usize = axes.iter().map(|&a| shape[a]).product();
    // Bring the reduced axes last and flatten them into one lane axis of length `n`.
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let permuted: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let mut flat: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let last = flat.len();
    flat.push(n);
    let ct_f = broadcast_in_dim(ct, &flat, &(0..last).collect::<Vec<_>>())?;
    let g = if n == 1 {
        // A single factor: its derivative is 1.
        ct_f
    } else {
        let xf = reshape(&transpose(x, &perm)?, &flat)?;
        let before = shift(&cumprod(&xf, last, false)?, last, 1, 1.0)?;
        let after = shift(&cumprod(&xf, last, true)?, last, -1, 1.0)?;
        mul(&ct_f, &mul(&before, &after)?)?
    };
    transpose(&reshape(&g, &permuted)?, &inverse_perm(&perm))
}

/// Sorts `axes`, checking they are in range for rank `rank` and distinct.
pub(crate) fn canonical_axes(op: &'static str, axes: &[usize], rank: usize) -> Result<Vec<usize>> {
    let mut a = axes.to_vec();
    a.sort_unstable();
    for (i, &ax) in a.iter().enumerate() {
        if ax >= rank {
            return Err(Error::invalid(
                op,
                format!("axis {ax} is out of range for a rank-{rank} operand"),
            ));
        }
        if i > 0 && a[i - 1] == ax {
            return Err(Error::invalid(
                op,
                format!("axis {ax} appears twice in {axes:?}"),
            ));
        }
    }
    Ok(a)
}

/// `reduce_<op>` over `axes` (any order, no repeats). Empty `axes` returns `x` unchanged.
pub fn reduce(x: &Array, op: ReduceOp, axes: &[usize]) -> Result<Array> {
    let name = Reduce {
        op,
        axes: Vec::new(),
    }
    .name();
    let axes = canonical_axes(name, axes, x.rank())?;
    if axes.is_empty() {
        return Ok(x.clone());
    }
    bind1(Reduce { op, axes }, &[x])
}

/// Sum over `axes` (bool: any).
pub fn reduce_sum(x: &Array, axes: &[usize]) -> Result<Array> {
    reduce(x, ReduceOp::Sum, axes)
}
/// Maximum over `axes` (NaN propagates; `-inf` for an empty extent).
pub fn reduce_max(x: &Array, axes: &[usize]) -> Result<Array> {
    reduce(x, ReduceOp::Max, axes)
}
/// Minimum over `axes` (NaN propagates; `+inf` for an empty extent).
pub fn reduce_min(x: &Array, axes: &[usize]) -> Result<Array> {
    reduce(x, ReduceOp::Min, axes)
}
/// Product over `axes` (bool: all).
pub fn reduce_prod(x: &Array, axes: &[usize]) -> Result<Array> {
    reduce(x, ReduceOp::Prod, axes)
}
/// Reduces every axis to a rank-0 array.
pub fn reduce_all(x: &Array, op: ReduceOp) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce(x, op, &axes)
}

/// The identity of `op` for `dtype`, as the value an empty reduction returns.
pub fn identity(op: ReduceOp, dtype: DType) -> Array {
    crate::with_dtype!(dtype, T => {
        let v: T = with_monoid!(op, M => T::store(<M as Monoid<<T as Load>::A>>::id()));
        Array::scalar(v)
    })
}
