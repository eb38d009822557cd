//! The comparison primitive: `compare[op](a, b) -> bool` over operands of equal shape and
//! dtype, for every dtype. Floats compare by IEEE rules (NaN is unordered: every comparison
//! with NaN is false except `ne`); bool orders `false < true`.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::binary::check_same;
use crate::prim::broadcast_in_dim::broadcast_pair;
use crate::prim::unary::{align_batched, map2};
use crate::prim::{Elementwise, Primitive};
use crate::storage::Storage;

/// A comparison (the static parameter of [`Compare`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CompareOp {
    /// Every comparison (drives the table-driven tests).
    pub const ALL: &'static [CompareOp] = &[
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];
    /// The name in program text.
    pub const fn name(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }
    /// The scalar form, for any partially ordered element.
    #[inline]
    pub fn scalar<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        }
    }
    /// The slice form: the comparison is chosen once, then a tight loop runs.
    pub fn apply<T: PartialOrd + Copy>(self, a: &[T], b: &[T], out: &mut [bool]) {
        assert!(
            a.len() == out.len() && b.len() == out.len(),
            "compare slice form: length mismatch"
        );
        macro_rules! each {
            ($f:expr) => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = $f(x, y);
                }
            };
        }
        match self {
            CompareOp::Eq => each!(|x: T, y: T| x == y),
            CompareOp::Ne => each!(|x: T, y: T| x != y),
            CompareOp::Lt => each!(|x: T, y: T| x < y),
            CompareOp::Le => each!(|x: T, y: T| x <= y),
            CompareOp::Gt => each!(|x: T, y: T| x > y),
            CompareOp::Ge => each!(|x: T, y: T| x >= y),
        }
    }
}

/// `compare[op](a, b)`: elementwise comparison producing bool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Compare(pub CompareOp);

impl Primitive for Compare {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let name = self.0.name();
        if ins.len() != 2 {
            return Err(Error::invalid(
                name,
                format!("takes 2 operands, got {}", ins.len()),
            ));
        }
        check_same(name, &ins[0], &ins[1])?;
        Ok(vec![AVal::new(ins[0].shape.clone(), DType::Bool)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let op = self.0;
        let (a, b) = (ins[0].data, ins[1].data);
        let out = with_storage!(a, x, T => {
            let y = <T as crate::dtype::Elem>::slice(b)
                .ok_or_else(|| Error::dtype_mismatch(op.name(), a.dtype(), b.dtype()))?;
            map2(x, y, |x, y, o| op.apply(x, y, o))
        });
        Ok(vec![Storage::Bool(out)])
    }
    fn elementwise(&self) -> Option<&dyn Elementwise> {
        Some(self)
    }
    fn vjp(
        &self,
        _primals: &[Array],
        _outs: &[Array],
        _cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // A comparison is piecewise constant (and its result is bool): zero cotangents.
        Ok(vec![None, None])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (xs, d) = align_batched(self.0.name(), args, dims)?;
        let [a, b] = xs.as_slice() else {
            return Err(Error::invalid(
                self.0.name(),
                format!("takes 2 operands, got {}", xs.len()),
            ));
        };
        Ok((vec![compare(self.0, a, b)?], vec![d]))
    }
}

/// The fusion form. Inside a fused float region a bool is a mask element of the region's
/// type (1 true, 0 false; see `exec::fused`), so the result is written as such a mask.
impl Elementwise for Compare {
    fn arity(&self) -> usize {
        2
    }
    fn apply_f32(&self, ins: &[&[f32]], out: &mut [f32]) -> bool {
        mask_of(self.0, ins, out)
    }
    fn apply_f64(&self, ins: &[&[f64]], out: &mut [f64]) -> bool {
        mask_of(self.0, ins, out)
    }
    fn cuda_expr(&self, args: &[String], _dtype: DType) -> Option<String> {
        let [a, b] = args else {
            return None;
        };
        let op = match self.0 {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        };
        Some(format!("({a} {op} {b})"))
    }
}

/// `out[i] = op(a[i], b[i]) ? 1 : 0`, the comparison chosen once per chunk.
fn mask_of<T: PartialOrd + Copy + From<u8>>(op: CompareOp, ins: &[&[T]], out: &mut [T]) -> bool {
    let [a, b] = ins else {
        return false;
    };
    let (one, zero) = (T::from(1), T::from(0));
    macro_rules! each {
        ($f:expr) => {
            for ((o, &x), &y) in out.iter_mut().zip(*a).zip(*b) {
                *o = if $f(x, y) { one } else { zero };
            }
        };
    }
    match op {
        CompareOp::Eq => each!(|x: T, y: T| x == y),
        CompareOp::Ne => each!(|x: T, y: T| x != y),
        CompareOp::Lt => each!(|x: T, y: T| x < y),
        CompareOp::Le => each!(|x: T, y: T| x <= y),
        CompareOp::Gt => each!(|x: T, y: T| x > y),
        CompareOp::Ge => each!(|x: T, y: T| x >= y),
    }
    true
}

/// Compares two arrays of equal shape and dtype.
pub fn compare(op: CompareOp, a: &Array, b: &Array) -> Result<Array> {
    bind1(Compare(op), &[a, b])
}

/// Compares with numpy broadcasting (dtypes must agree).
pub fn compare_bcast(op: CompareOp, a: &Array, b: &Array) -> Result<Array> {
    if a.dtype() != b.dtype() {
        return Err(Error::dtype_mismatch(op.name(), a.dtype(), b.dtype()));
    }
    let (a, b) = broadcast_pair(op.name(), a, b)?;
    compare(op, &a, &b)
}

macro_rules! lax_compare {
    ($($fn_name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($fn_name), "` on two arrays of equal shape and dtype, producing bool.")]
            pub fn $fn_name(a: &Array, b: &Array) -> Result<Array> {
                compare(CompareOp::$op, a, b)
            }
        )*
    };
}

lax_compare!(eq => Eq, ne => Ne, lt => Lt, le => Le, gt => Gt, ge => Ge);
