//! The `select` primitive (`lax.select`): `select(pred, on_true, on_false)` picks elementwise
//! from two operands of equal shape and dtype by a bool predicate of the same shape.
//! Broadcasting is the composite [`select_bcast`] (`jnp.where`).

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::{DType, Elem};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::{broadcast_shapes, broadcast_to};
use crate::prim::unary::{align_batched, full_like, map3};
use crate::prim::{Elementwise, Primitive};
use crate::storage::Storage;

/// `select(pred, on_true, on_false)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Select;

impl Primitive for Select {
    fn name(&self) -> &'static str {
        "select"
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        if ins.len() != 3 {
            return Err(Error::invalid(
                "select",
                format!(
                    "takes 3 operands (pred, on_true, on_false), got {}",
                    ins.len()
                ),
            ));
        }
        let (p, t, f) = (&ins[0], &ins[1], &ins[2]);
        if p.dtype != DType::Bool {
            return Err(Error::dtype(
                "select",
                format!("the predicate must be bool, got {}", p.dtype),
            ));
        }
        if p.shape != t.shape || t.shape != f.shape {
            return Err(Error::shape(
                "select",
                format!(
                    "pred, on_true and on_false must have equal shapes, got {:?}, {:?} and {:?}",
                    p.shape, t.shape, f.shape
                ),
            ));
        }
        if t.dtype != f.dtype {
            return Err(Error::dtype(
                "select",
                format!(
                    "on_true and on_false dtypes differ: {} vs {}",
                    t.dtype, f.dtype
                ),
            ));
        }
        Ok(vec![t.clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let Storage::Bool(p) = ins[0].data else {
            return Err(Error::dtype("select", "the predicate must be bool"));
        };
        let (t, f) = (ins[1].data, ins[2].data);
        let out = with_storage!(t, a, T => {
            let b = <T as Elem>::slice(f)
                .ok_or_else(|| Error::dtype_mismatch("select", t.dtype(), f.dtype()))?;
            T::into_storage(map3(p, a, b, |p, a, b, o| {
                for (((o, &p), &x), &y) in o.iter_mut().zip(p).zip(a).zip(b) {
                    *o = if p { x } else { y };
                }
            }))
        });
        Ok(vec![out])
    }
    fn elementwise(&self) -> Option<&dyn Elementwise> {
        Some(self)
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(g) = &cts[0] else {
            return Ok(vec![None, None, None]);
        };
        let (pred, on_true) = (&primals[0], &primals[1]);
        // The predicate is bool (no cotangent); integer branches are not differentiable.
        if !on_true.dtype().is_float() {
            return Ok(vec![None, None, None]);
        }
        // Each branch gets the cotangent where it was selected and zero elsewhere. The zero
        // is a broadcast scalar, so tracing does not materialize a full-size constant.
        let zero = full_like(g, 0.0)?;
        Ok(vec![
            None,
            Some(select(pred, g, &zero)?),
            Some(select(pred, &zero, g)?),
        ])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (xs, d) = align_batched("select", args, dims)?;
        let [p, t, f] = xs.as_slice() else {
            return Err(Error::invalid(
                "select",
                format!("takes 3 operands, got {}", xs.len()),
            ));
        };
        Ok((vec![select(p, t, f)?], vec![d]))
    }
}

/// The fusion form. Inside a fused float region the bool predicate is a mask element of
/// the region's type (nonzero is true; see `exec::fused`).
impl Elementwise for Select {
    fn arity(&self) -> usize {
        3
    }
    fn apply_f32(&self, ins: &[&[f32]], out: &mut [f32]) -> bool {
        pick(ins, out)
    }
    fn apply_f64(&self, ins: &[&[f64]], out: &mut [f64]) -> bool {
        pick(ins, out)
    }
    fn cuda_expr(&self, args: &[String], _dtype: DType) -> Option<String> {
        let [p, t, f] = args else {
            return None;
        };
        Some(format!("({p} ? {t} : {f})"))
    }
}

fn pick<T: Copy + PartialEq + Default>(ins: &[&[T]], out: &mut [T]) -> bool {
    let [p, t, f] = ins else {
        return false;
    };
    let zero = T::default();
    for (((o, &p), &x), &y) in out.iter_mut().zip(*p).zip(*t).zip(*f) {
        *o = if p != zero { x } else { y };
    }
    true
}

/// `select(pred, on_true, on_false)` on arrays of equal shape.
pub fn select(pred: &Array, on_true: &Array, on_false: &Array) -> Result<Array> {
    bind1(Select, &[pred, on_true, on_false])
}

/// `jnp.where(pred, on_true, on_false)`: [`select`] after broadcasting all three operands to
/// their common numpy shape.
pub fn select_bcast(pred: &Array, on_true: &Array, on_false: &Array) -> Result<Array> {
    let s = broadcast_shapes("where", on_true.shape(), on_false.shape())?;
    let s = broadcast_shapes("where", pred.shape(), &s)?;
    select(
        &broadcast_to(pred, &s)?,
        &broadcast_to(on_true, &s)?,
        &broadcast_to(on_false, &s)?,
    )
}
