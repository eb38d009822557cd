//! The `dynamic_update_slice` primitive: writes `update` into a copy of the operand at
//! run-time start indices, clamped (as in `lax.dynamic_update_slice`) so the update fits.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::dynamic_slice::{check_start_indices, clamped_starts};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `dynamic_update_slice(x, update, i0, i1, ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynamicUpdateSlice;

impl Primitive for DynamicUpdateSlice {
    fn name(&self) -> &'static str {
        "dynamic_update_slice"
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        const OP: &str = "dynamic_update_slice";
        let (x, u) = (&ins[0], &ins[1]);
        if x.dtype != u.dtype {
            return Err(Error::dtype_mismatch(OP, x.dtype, u.dtype));
        }
        if u.rank() != x.rank() || u.shape.iter().zip(&x.shape).any(|(a, b)| a > b) {
            return Err(Error::shape(
                OP,
                format!(
                    "update of shape {:?} does not fit operand shape {:?}",
                    u.shape, x.shape
                ),
            ));
        }
        check_start_indices(OP, &ins[2..], x.rank())?;
        Ok(vec![x.clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let (x, u) = (ins[0], ins[1]);
        let start = clamped_starts("dynamic_update_slice", &ins[2..], x.shape, u.shape)?;
        let out = with_storage!(x.data, v, T => {
            let src = <T as crate::dtype::Elem>::slice(u.data).expect("dtype checked");
            let mut out = v.clone();
            write_window(&mut out, x.shape, src, u.shape, &start);
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
        let mut res = vec![None; primals.len()];
        let Some(ct) = &cts[0] else { return Ok(res) };
        let (x, u) = (&primals[0], &primals[1]);
        if !x.dtype().is_float() {
            return Ok(res);
        }
        // Both sides see the same clamped window (same update size): the operand keeps the
        // cotangent outside it, the update receives the part inside it. Start indices are
        // integers: no cotangent.
        let starts: Vec<&Array> = primals[2..].iter().collect();
        let hole = crate::prim::unary::full_like(u, 0.0)?;
        res[0] = Some(dynamic_update_slice(ct, &hole, &starts)?);
        res[1] = Some(crate::prim::dynamic_slice::dynamic_slice(
            ct,
            &starts,
            u.shape(),
        )?);
        Ok(res)
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        use crate::prim::binary::{binary, binary_scalar, BinaryOp};
        use crate::prim::broadcast_in_dim::{batch_size, batch_to_front, broadcast_in_dim};
        use crate::prim::compare::{compare, CompareOp};
        if args.len() < 2 || dims.len() != args.len() {
            return Err(Error::invalid(
                "dynamic_update_slice",
                format!(
                    "batching: {} operands and {} batch dims",
                    args.len(),
                    dims.len()
                ),
            ));
        }
        if dims.iter().all(Option::is_none) {
            let refs: Vec<&Array> = args.iter().collect();
            return Ok((vec![bind1(self.clone(), &refs)?], vec![None]));
        }
        let n = batch_size("dynamic_update_slice", args, dims)?;
        let x = batch_to_front(&args[0], dims[0], n)?;
        let u = batch_to_front(&args[1], dims[1], n)?;
        if dims[2..].iter().all(Option::is_none) {
            // Shared starts: one update over the batched operands, the batch axis whole.
            let zero = Array::zeros(
                &[],
                args.get(2).map_or(crate::dtype::DType::I32, Array::dtype),
            );
            let mut starts: Vec<&Array> = vec![&zero];
            starts.extend(args[2..].iter());
            return Ok((vec![dynamic_update_slice(&x, &u, &starts)?], vec![Some(0)]));
        }
        if u.numel() == 0 {
            // An empty update writes nothing.
            return Ok((vec![x], vec![Some(0)]));
        }
        // Per-example starts: spread the update over the operand's shape with one gather per
        // axis (position p reads update index p - start, clamped), and keep it only inside
        // each example's window (start <= p < start + size on every axis). Elements are
        // chosen, never computed, so the result is bit-identical to a per-example loop.
        let mut spread = u;
        let mut inside: Option<Array> = None;
        for k in 0..x.rank() - 1 {
            let (dim, size) = (x.shape()[k + 1], spread.shape()[k + 1]);
            let s = match dims[k + 2] {
                Some(_) => args[k + 2].clone(),
                None => broadcast_in_dim(&args[k + 2], &[n], &[])?,
            };
            let hi = dim.checked_sub(size).ok_or_else(|| {
                Error::shape(
                    "dynamic_update_slice",
                    format!(
                        "update of shape {:?} does not fit operand shape {:?}",
                        args[1].shape(),
                        args[0].shape()
                    ),
                )
            })?;
            let s = crate::prim::dynamic_slice::clamp_start(&s, hi)?;
            let mut shape = spread.shape().to_vec();
            shape[k + 1] = dim;
            let pos = crate::prim::iota::iota(s.dtype(), &shape, k + 1)?;
            let sb = broadcast_in_dim(&s, &shape, &[0])?;
            let rel = binary(BinaryOp::Sub, &pos, &sb)?;
            let idx = binary_scalar(
                BinaryOp::Max,
                &binary_scalar(BinaryOp::Min, &rel, (size - 1) as f64)?,
                0.0,
            )?;
            spread = crate::prim::gather::take_along_axis(&spread, &idx, k + 1)?;
            // The window test on this axis, over the full batched shape.
            let full_pos = crate::prim::iota::iota(s.dtype(), x.shape(), k + 1)?;
            let full_s = broadcast_in_dim(&s, x.shape(), &[0])?;
            let lo = compare(CompareOp::Ge, &full_pos, &full_s)?;
            let end = binary_scalar(BinaryOp::Add, &full_s, size as f64)?;
            let hi = compare(CompareOp::Lt, &full_pos, &end)?;
            let m = binary(BinaryOp::And, &lo, &hi)?;
            inside = Some(match inside {
                None => m,
                Some(acc) => binary(BinaryOp::And, &acc, &m)?,
            });
        }
        let out = match inside {
            Some(m) => crate::prim::select::select(&m, &spread, &x)?,
            // A rank-0 operand: the update replaces it.
            None => spread,
        };
        Ok((vec![out], vec![Some(0)]))
    }
}

/// Copies the row-major block `src` (of shape `shape`) into `dst` (of shape `dst_shape`)
/// at `start`, one contiguous last-axis row at a time.
pub(crate) fn write_window<T: Copy>(
    dst: &mut [T],
    dst_shape: &[usize],
    src: &[T],
    shape: &[usize],
    start: &[usize],
) {
    if src.is_empty() {
        return;
    }
    let r = shape.len();
    if r == 0 {
        dst[0] = src[0];
        return;
    }
    let ds = strides(dst_shape);
    let row = shape[r - 1];
    let mut idx = vec![0usize; r - 1];
    for chunk in src.chunks(row) {
        let base: usize = (0..r)
            .map(|k| (start[k] + if k < r - 1 { idx[k] } else { 0 }) * ds[k])
            .sum();
        dst[base..base + row].copy_from_slice(chunk);
        // Odometer over the outer axes.
        for k in (0..r - 1).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// `dynamic_update_slice` on arrays: `starts` are rank-0 integer arrays, one per axis.
pub fn dynamic_update_slice(x: &Array, update: &Array, starts: &[&Array]) -> Result<Array> {
    let mut ins = Vec::with_capacity(starts.len() + 2);
    ins.push(x);
    ins.push(update);
    ins.extend_from_slice(starts);
    bind1(DynamicUpdateSlice, &ins)
}
