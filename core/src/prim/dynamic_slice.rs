//! The `dynamic_slice` primitive: a window of static size whose start indices are run-time
//! (rank-0 integer) operands. As in `lax.dynamic_slice`, each start is clamped into
//! `0..=dim - size` so the window always fits; indices are never an error.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::strided_gather_offset;
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `dynamic_slice[sizes](x, i0, i1, ...)`: one rank-0 integer start per axis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynamicSlice {
    /// Window size per axis (`<= dim`).
    pub sizes: Vec<usize>,
}

/// Checks that `idx[k]` are rank-0 integers, one per axis of a rank-`rank` operand.
pub(crate) fn check_start_indices(op: &'static str, idx: &[AVal], rank: usize) -> Result<()> {
    if idx.len() != rank {
        return Err(Error::shape(
            op,
            format!(
                "a rank-{rank} operand needs {rank} start indices, got {}",
                idx.len()
            ),
        ));
    }
    for (k, a) in idx.iter().enumerate() {
        if a.rank() != 0 || !a.dtype.is_int() {
            return Err(Error::dtype(
                op,
                format!("start index {k} must be a rank-0 integer, got {a}"),
            ));
        }
    }
    Ok(())
}

/// Reads element `i` of an integer buffer as `i64` (indices of every integer dtype).
pub(crate) fn index_at(op: &'static str, s: &Storage, i: usize) -> Result<i64> {
    match s {
        Storage::I32(v) => Ok(v[i] as i64),
        Storage::I64(v) => Ok(v[i]),
        Storage::U32(v) => Ok(v[i] as i64),
        other => Err(Error::dtype(
            op,
            format!("indices must be integers, got {}", other.dtype()),
        )),
    }
}

/// The starts of a window of `sizes` into `shape`, clamped so the window fits.
pub(crate) fn clamped_starts(
    op: &'static str,
    idx: &[HostView<'_>],
    shape: &[usize],
    sizes: &[usize],
) -> Result<Vec<usize>> {
    idx.iter()
        .enumerate()
        .map(|(k, v)| {
            let hi = (shape[k] - sizes[k]) as i64;
            Ok(index_at(op, v.data, 0)?.clamp(0, hi) as usize)
        })
        .collect()
}

impl Primitive for DynamicSlice {
    fn name(&self) -> &'static str {
        "dynamic_slice"
    }
    fn params(&self) -> String {
        format!("sizes={:?}", self.sizes)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        check_start_indices("dynamic_slice", &ins[1..], x.rank())?;
        if self.sizes.len() != x.rank() || self.sizes.iter().zip(&x.shape).any(|(s, d)| s > d) {
            return Err(Error::shape(
                "dynamic_slice",
                format!(
                    "window sizes {:?} do not fit operand shape {:?}",
                    self.sizes, x.shape
                ),
            ));
        }
        Ok(vec![AVal::new(self.sizes.clone(), x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let start = clamped_starts("dynamic_slice", &ins[1..], x.shape, &self.sizes)?;
        let xs = strides(x.shape);
        let offset: usize = start.iter().zip(&xs).map(|(s, st)| s * st).sum();
        let out = with_storage!(x.data, v, T => {
            <T as crate::dtype::Elem>::into_storage(strided_gather_offset(v, offset, &outs[0].shape, &xs))
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
        let x = &primals[0];
        if !x.dtype().is_float() {
            return Ok(res);
        }
        // Write the window's cotangent into zeros at the same starts: `dynamic_update_slice`
        // clamps them exactly as the slice did (same window size), so it lands where the
        // window was read. Start indices are integers: no cotangent.
        let zeros = crate::prim::unary::full_like(x, 0.0)?;
        let starts: Vec<&Array> = primals[1..].iter().collect();
        res[0] = Some(crate::prim::dynamic_update_slice::dynamic_update_slice(
            &zeros, ct, &starts,
        )?);
        Ok(res)
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        if args.len() != self.sizes.len() + 1 || dims.len() != args.len() {
            return Err(Error::invalid(
                "dynamic_slice",
                format!(
                    "batching: {} operands and {} batch dims for a rank-{} window",
                    args.len(),
                    dims.len(),
                    self.sizes.len()
                ),
            ));
        }
        if dims.iter().all(Option::is_none) {
            let refs: Vec<&Array> = args.iter().collect();
            return Ok((vec![bind1(self.clone(), &refs)?], vec![None]));
        }
        let n = crate::prim::broadcast_in_dim::batch_size("dynamic_slice", args, dims)?;
        let x = crate::prim::broadcast_in_dim::batch_to_front(&args[0], dims[0], n)?;
        // Shared starts go into one dynamic_slice over the batched operand (batch axis
        // whole); an axis with per-example starts is kept whole there and cut afterwards by
        // a gather whose indices are each example's clamped start plus 0..size.
        let zeros: Vec<Array> = args.iter().map(|a| Array::zeros(&[], a.dtype())).collect();
        let mut starts: Vec<&Array> = vec![&zeros[1]];
        let mut sizes = vec![n];
        for (k, &size) in self.sizes.iter().enumerate() {
            if dims[k + 1].is_some() {
                starts.push(&zeros[k + 1]);
                sizes.push(x.shape()[k + 1]);
            } else {
                starts.push(&args[k + 1]);
                sizes.push(size);
            }
        }
        let mut y = dynamic_slice(&x, &starts, &sizes)?;
        for (k, &size) in self.sizes.iter().enumerate() {
            if dims[k + 1].is_none() {
                continue;
            }
            // A batched rank-0 start has shape [n].
            let hi = x.shape()[k + 1].checked_sub(size).ok_or_else(|| {
                Error::shape(
                    "dynamic_slice",
                    format!(
                        "window sizes {:?} do not fit operand shape {:?}",
                        self.sizes,
                        args[0].shape()
                    ),
                )
            })?;
            let s = clamp_start(&args[k + 1], hi)?;
            let mut shape = y.shape().to_vec();
            shape[k + 1] = size;
            let base = crate::prim::broadcast_in_dim::broadcast_in_dim(&s, &shape, &[0])?;
            let offs = crate::prim::iota::iota(s.dtype(), &shape, k + 1)?;
            let idx = crate::prim::binary::add(&base, &offs)?;
            y = crate::prim::gather::take_along_axis(&y, &idx, k + 1)?;
        }
        Ok((vec![y], vec![Some(0)]))
    }
}

/// Start indices clamped into `0..=hi` elementwise, as the kernels clamp them: the
/// lax-level form batching rules use when starts differ per example.
pub(crate) fn clamp_start(s: &Array, hi: usize) -> Result<Array> {
    use crate::prim::binary::{binary_scalar, BinaryOp};
    let s = binary_scalar(BinaryOp::Min, s, hi as f64)?;
    binary_scalar(BinaryOp::Max, &s, 0.0)
}

/// `dynamic_slice` on arrays: `starts` are rank-0 integer arrays, one per axis.
pub fn dynamic_slice(x: &Array, starts: &[&Array], sizes: &[usize]) -> Result<Array> {
    let mut ins = Vec::with_capacity(starts.len() + 1);
    ins.push(x);
    ins.extend_from_slice(starts);
    bind1(
        DynamicSlice {
            sizes: sizes.to_vec(),
        },
        &ins,
    )
}

/// Slices `size` elements of one axis from a run-time `start` (`lax.dynamic_slice_in_dim`).
pub fn dynamic_slice_in_dim(x: &Array, start: &Array, size: usize, axis: usize) -> Result<Array> {
    crate::prim::check_axis("dynamic_slice_in_dim", axis, x.rank())?;
    let zero = Array::zeros(&[], start.dtype());
    let starts: Vec<&Array> = (0..x.rank())
        .map(|i| if i == axis { start } else { &zero })
        .collect();
    let mut sizes = x.shape().to_vec();
    sizes[axis] = size;
    dynamic_slice(x, &starts, &sizes)
}
