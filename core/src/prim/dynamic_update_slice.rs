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
