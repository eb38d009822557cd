//! The `argmax` / `argmin` primitive: the index of the extreme element along one axis, with
//! numpy's rules (first occurrence on ties; the first NaN wins, as in `jnp.argmax`). The
//! answer is exact, so splitting a long axis across threads cannot change it.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::reduce::{
    batched_axis, split_at_axis, unary_batch_operand, Acc, Load, Split3, PAR_MIN,
};
use crate::prim::{check_axis, Primitive};
use crate::storage::Storage;
use rayon::prelude::*;

/// Which extreme an [`ArgReduce`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgOp {
    /// Index of the largest element.
    ArgMax,
    /// Index of the smallest element.
    ArgMin,
}

/// `argmax[axis, index_dtype](x)` / `argmin[...]`: drops `axis`, returning indices into it.
/// The axis must be non-empty (there is no index to return otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArgReduce {
    /// Which extreme.
    pub op: ArgOp,
    /// The reduced axis.
    pub axis: usize,
    /// The integer dtype of the result.
    pub index_dtype: DType,
}

/// Whether candidate `b` replaces the current best `a` (`b` comes later in the axis).
#[inline(always)]
fn better<A: Acc>(op: ArgOp, a: A, b: A) -> bool {
    if a.is_nan() {
        return false;
    }
    if b.is_nan() {
        return true;
    }
    match op {
        ArgOp::ArgMax => b > a,
        ArgOp::ArgMin => b < a,
    }
}

/// Best `(index, value)` of a contiguous non-empty run starting at index `start`.
fn scan<T: Load>(op: ArgOp, x: &[T], start: usize) -> (usize, T::A) {
    let mut bi = 0;
    let mut bv = x[0].load();
    for (i, v) in x.iter().enumerate().skip(1) {
        let v = v.load();
        if better(op, bv, v) {
            bi = i;
            bv = v;
            if bv.is_nan() {
                break;
            }
        }
    }
    (start + bi, bv)
}

/// Index of the best element of a contiguous non-empty row.
fn arg_row<T: Load>(op: ArgOp, x: &[T]) -> usize {
    if x.len() < 2 * PAR_MIN {
        return scan(op, x, 0).0;
    }
    // Fixed chunks scanned in parallel, then combined left to right: ties keep the earlier
    // chunk, so the result is the sequential one.
    let parts: Vec<(usize, T::A)> = x
        .par_chunks(PAR_MIN)
        .enumerate()
        .map(|(c, chunk)| scan(op, chunk, c * PAR_MIN))
        .collect();
    let mut best = parts[0];
    for &p in &parts[1..] {
        if better(op, best.1, p.1) {
            best = p;
        }
    }
    best.0
}

/// Fills `out` (`outer * inner` indices) for the canonical problem `p` (`p.r > 0`).
fn argreduce3<T: Load>(op: ArgOp, x: &[T], p: Split3, out: &mut [usize]) {
    let Split3 { outer, r, inner } = p;
    let total = outer * r * inner;
    let block = |o: usize, orow: &mut [usize]| {
        let base = &x[o * r * inner..(o + 1) * r * inner];
        if inner == 1 {
            orow[0] = arg_row(op, base);
            return;
        }
        let mut best: Vec<T::A> = base[..inner].iter().map(|v| v.load()).collect();
        orow.fill(0);
        for k in 1..r {
            let row = &base[k * inner..(k + 1) * inner];
            for ((bv, bi), v) in best.iter_mut().zip(orow.iter_mut()).zip(row) {
                let v = v.load();
                if better(op, *bv, v) {
                    *bv = v;
                    *bi = k;
                }
            }
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

impl Primitive for ArgReduce {
    fn name(&self) -> &'static str {
        match self.op {
            ArgOp::ArgMax => "argmax",
            ArgOp::ArgMin => "argmin",
        }
    }
    fn params(&self) -> String {
        format!("axis={} index_dtype={}", self.axis, self.index_dtype)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        check_axis(self.name(), self.axis, x.rank())?;
        if !self.index_dtype.is_int() {
            return Err(Error::dtype(
                self.name(),
                format!(
                    "index_dtype must be an integer dtype, got {}",
                    self.index_dtype
                ),
            ));
        }
        let n = x.shape[self.axis];
        if n == 0 {
            return Err(Error::shape(
                self.name(),
                format!(
                    "axis {} of shape {:?} is empty: there is no index to return",
                    self.axis, x.shape
                ),
            ));
        }
        let max = match self.index_dtype {
            DType::I32 => i32::MAX as u64,
            DType::U32 => u32::MAX as u64,
            _ => i64::MAX as u64,
        };
        if n as u64 - 1 > max {
            return Err(Error::shape(
                self.name(),
                format!(
                    "axis {} of shape {:?} has more elements than {} can index",
                    self.axis, x.shape, self.index_dtype
                ),
            ));
        }
        let mut shape = x.shape.clone();
        shape.remove(self.axis);
        Ok(vec![AVal::new(shape, self.index_dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let p = split_at_axis(x.shape, self.axis);
        let mut idx = vec![0usize; outs[0].numel()];
        if !idx.is_empty() {
            with_storage!(x.data, v, T => argreduce3::<T>(self.op, v, p, &mut idx));
        }
        Ok(vec![index_storage(self.index_dtype, &idx)])
    }
    fn vjp(
        &self,
        _primals: &[Array],
        _outs: &[Array],
        _cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // Integer indices: piecewise constant in `x`, so the operand's cotangent is zero.
        Ok(vec![None])
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
        // The batch axis stays in place; the reduced axis is renumbered around it, and the
        // batch axis moves down by one in the output if the reduced axis was before it.
        let prim = ArgReduce {
            op: self.op,
            axis: batched_axis(self.axis, b),
            index_dtype: self.index_dtype,
        };
        let out_b = if self.axis < b { b - 1 } else { b };
        Ok((vec![bind1(prim, &[x])?], vec![Some(out_b)]))
    }
}

/// Indices as a storage of an integer dtype (the shape rules bound them).
pub(crate) fn index_storage(dtype: DType, idx: &[usize]) -> Storage {
    match dtype {
        DType::I64 => Storage::I64(idx.iter().map(|&i| i as i64).collect()),
        DType::U32 => Storage::U32(idx.iter().map(|&i| i as u32).collect()),
        _ => Storage::I32(idx.iter().map(|&i| i as i32).collect()),
    }
}

/// `argmax` / `argmin` of `x` along `axis`, as `index_dtype` indices.
pub fn argreduce(x: &Array, op: ArgOp, axis: usize, index_dtype: DType) -> Result<Array> {
    bind1(
        ArgReduce {
            op,
            axis,
            index_dtype,
        },
        &[x],
    )
}

/// Index of the largest element along `axis` (i32; first on ties; NaN wins).
pub fn argmax(x: &Array, axis: usize) -> Result<Array> {
    argreduce(x, ArgOp::ArgMax, axis, DType::I32)
}

/// Index of the smallest element along `axis` (i32; first on ties; NaN wins).
pub fn argmin(x: &Array, axis: usize) -> Result<Array> {
    argreduce(x, ArgOp::ArgMin, axis, DType::I32)
}
