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
