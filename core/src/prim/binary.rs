//! The elementwise binary family: one [`Binary`] primitive parameterised by a [`BinaryOp`],
//! over two operands of identical shape and dtype (implicit broadcasting is the composite
//! [`binary_bcast`]). One registry ([`BinaryOp::ALL`] / [`BinaryOp::info`]) as for unary.
//!
//! Semantics worth knowing:
//! - Integers wrap on overflow. Integer division truncates toward zero; division by zero
//!   does not panic: `x / 0 = -1` (all bits set, so `u32::MAX` for u32) and `x % 0 = x`;
//!   `MIN / -1 = MIN` and `MIN % -1 = 0`. These are the values XLA produces on CPU and GPU.
//! - Float `rem` is C's `fmod` (result has the sign of the dividend), as `lax.rem`.
//! - `max`/`min` propagate NaN (as `jnp.maximum`); on bool they are `or`/`and`.
//! - `and`/`or`/`xor` are logical on bool and bitwise on integers.
//! - Derivatives follow JAX's `lax` rules: on a tie `max`/`min` give each operand half the
//!   cotangent; `pow`'s derivative in the base is 0 where the exponent is 0, and in the
//!   exponent is 0 where the base is 0; `rem(a, b)` has d/db = -trunc(a/b).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::broadcast_pair;
use crate::prim::unary::{align_batched, full_like, half_binary, map2, Domain, IntElem};
use crate::prim::{Elementwise, Primitive};
use crate::storage::Storage;

/// Registry entry of a binary op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BinaryInfo {
    /// Name in program text (`add`, `atan2`).
    pub name: &'static str,
    /// Accepted operand dtypes.
    pub domain: Domain,
}

macro_rules! binary_registry {
    ($($(#[$m:meta])* $op:ident = $name:literal, $dom:ident;)*) => {
        /// An elementwise binary operation (the static parameter of [`Binary`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BinaryOp {
            $($(#[$m])* $op,)*
        }
        impl BinaryOp {
            /// Every binary op, in registry order (drives the table-driven tests).
            pub const ALL: &'static [BinaryOp] = &[$(BinaryOp::$op,)*];
            /// The registry entry: name and accepted dtypes.
            pub const fn info(self) -> BinaryInfo {
                match self {
                    $(BinaryOp::$op => BinaryInfo { name: $name, domain: Domain::$dom },)*
                }
            }
        }
    };
}

binary_registry! {
    /// `a + b`.
    Add = "add", Numeric;
    /// `a - b`.
    Sub = "sub", Numeric;
    /// `a * b`.
    Mul = "mul", Numeric;
    /// `a / b` (truncating on integers).
    Div = "div", Numeric;
    /// Remainder with the sign of `a`.
    Rem = "rem", Numeric;
    /// `a ^ b` for floats.
    Pow = "pow", Float;
    /// Elementwise maximum (NaN-propagating).
    Max = "max", Any;
    /// Elementwise minimum (NaN-propagating).
    Min = "min", Any;
    /// `atan2(a, b)`: the angle of the point `(b, a)`.
    Atan2 = "atan2", Float;
    /// Logical / bitwise and.
    And = "and", Logical;
    /// Logical / bitwise or.
    Or = "or", Logical;
    /// Logical / bitwise xor.
    Xor = "xor", Logical;
}

macro_rules! float_forms {
    ($t:ty, $scalar:ident, $apply:ident, $apply_c:ident) => {
        /// The scalar form (bitwise ops have no float form and return NaN).
        #[inline]
        pub fn $scalar(self, a: $t, b: $t) -> $t {
            use BinaryOp::*;
            match self {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => a / b,
                Rem => a % b,
                Pow => a.powf(b),
                Max => {
                    if a.is_nan() | b.is_nan() {
                        a + b
                    } else if a > b {
                        a
                    } else {
                        b
                    }
                }
                Min => {
                    if a.is_nan() | b.is_nan() {
                        a + b
                    } else if a < b {
                        a
                    } else {
                        b
                    }
                }
                Atan2 => a.atan2(b),
                And | Or | Xor => <$t>::NAN,
            }
        }
        /// The slice form: the op is chosen once, then a tight loop runs.
        pub fn $apply(self, a: &[$t], b: &[$t], out: &mut [$t]) {
            assert!(
                a.len() == out.len() && b.len() == out.len(),
                "binary slice form: length mismatch"
            );
            macro_rules! each {
                ($f:expr) => {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        *o = $f(x, y);
                    }
                };
            }
            use BinaryOp::*;
            match self {
                Add => each!(|x: $t, y: $t| x + y),
                Sub => each!(|x: $t, y: $t| x - y),
                Mul => each!(|x: $t, y: $t| x * y),
                Div => each!(|x: $t, y: $t| x / y),
                Max => each!(|x, y| Max.$scalar(x, y)),
                Min => each!(|x, y| Min.$scalar(x, y)),
                op => each!(|x, y| op.$scalar(x, y)),
            }
        }
        /// The slice form with one operand a constant `c` held in a register: `x op c`
        /// when `c_left` is false, `c op x` when true. Element by element the same IEEE
        /// operation, in the same operand order, as the two-slice form with `c` repeated.
        pub fn $apply_c(self, xs: &[$t], c: $t, c_left: bool, out: &mut [$t]) {
            assert!(
                xs.len() == out.len(),
                "binary scalar slice form: length mismatch"
            );
            macro_rules! each {
                ($f:expr) => {
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = $f(x);
                    }
                };
            }
            use BinaryOp::*;
            match (self, c_left) {
                (Add, false) => each!(|x: $t| x + c),
                (Add, true) => each!(|x: $t| c + x),
                (Sub, false) => each!(|x: $t| x - c),
                (Sub, true) => each!(|x: $t| c - x),
                (Mul, false) => each!(|x: $t| x * c),
                (Mul, true) => each!(|x: $t| c * x),
                (Div, false) => each!(|x: $t| x / c),
                (Div, true) => each!(|x: $t| c / x),
                (op, false) => each!(|x| op.$scalar(x, c)),
                (op, true) => each!(|x| op.$scalar(c, x)),
            }
        }
    };
}

impl BinaryOp {
    /// The name in program text.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    float_forms!(f32, f32, apply_f32, apply_scalar_f32);
    float_forms!(f64, f64, apply_f64, apply_scalar_f64);

    /// The integer scalar form (see the module docs for division by zero).
    #[inline]
    pub fn int<T: IntElem>(self, a: T, b: T) -> T {
        use BinaryOp::*;
        match self {
            Add => a.wadd(b),
            Sub => a.wsub(b),
            Mul => a.wmul(b),
            Div => a.div_(b),
            Rem => a.rem_(b),
            Max => {
                if a > b {
                    a
                } else {
                    b
                }
            }
            Min => {
                if a < b {
                    a
                } else {
                    b
                }
            }
            And => a.and_(b),
            Or => a.or_(b),
            Xor => a.xor_(b),
            Pow | Atan2 => unreachable!("{} is not defined on integers", self.name()),
        }
    }

    /// The integer slice form.
    pub fn apply_int<T: IntElem>(self, a: &[T], b: &[T], out: &mut [T]) {
        assert!(
            a.len() == out.len() && b.len() == out.len(),
            "binary slice form: length mismatch"
        );
        macro_rules! each {
            ($f:expr) => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = $f(x, y);
                }
            };
        }
        use BinaryOp::*;
        match self {
            Add => each!(T::wadd),
            Sub => each!(T::wsub),
            Mul => each!(T::wmul),
            Div => each!(T::div_),
            Rem => each!(T::rem_),
            And => each!(T::and_),
            Or => each!(T::or_),
            Xor => each!(T::xor_),
            op => each!(|x, y| op.int(x, y)),
        }
    }

    /// The integer slice form with one operand a constant `c`: `x op c`, or `c op x` when
    /// `c_left`.
    pub fn apply_scalar_int<T: IntElem>(self, xs: &[T], c: T, c_left: bool, out: &mut [T]) {
        assert!(
            xs.len() == out.len(),
            "binary scalar slice form: length mismatch"
        );
        macro_rules! each {
            ($f:expr) => {
                for (o, &x) in out.iter_mut().zip(xs) {
                    *o = $f(x);
                }
            };
        }
        use BinaryOp::*;
        match (self, c_left) {
            (Add, false) => each!(|x: T| x.wadd(c)),
            (Add, true) => each!(|x: T| c.wadd(x)),
            (Sub, false) => each!(|x: T| x.wsub(c)),
            (Sub, true) => each!(|x: T| c.wsub(x)),
            (Mul, false) => each!(|x: T| x.wmul(c)),
            (Mul, true) => each!(|x: T| c.wmul(x)),
            (op, false) => each!(|x| op.int(x, c)),
            (op, true) => each!(|x| op.int(c, x)),
        }
    }

    /// The bool slice form with one operand a constant `c` (every bool op is commutative,
    /// so the side `c` stands on does not matter).
    pub fn apply_scalar_bool(self, xs: &[bool], c: bool, out: &mut [bool]) {
        assert!(
            xs.len() == out.len(),
            "binary scalar slice form: length mismatch"
        );
        macro_rules! each {
            ($f:expr) => {
                for (o, &x) in out.iter_mut().zip(xs) {
                    *o = $f(x);
                }
            };
        }
        use BinaryOp::*;
        match self {
            And | Min => each!(|x: bool| x & c),
            Or | Max => each!(|x: bool| x | c),
            Xor => each!(|x: bool| x ^ c),
            op => unreachable!("{} is not defined on bool", op.name()),
        }
    }

    /// The bool slice form (`and`, `or`, `xor`, `max` = or, `min` = and).
    pub fn apply_bool(self, a: &[bool], b: &[bool], out: &mut [bool]) {
        assert!(
            a.len() == out.len() && b.len() == out.len(),
            "binary slice form: length mismatch"
        );
        macro_rules! each {
            ($f:expr) => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = $f(x, y);
                }
            };
        }
        use BinaryOp::*;
        match self {
            And | Min => each!(|x: bool, y: bool| x & y),
            Or | Max => each!(|x: bool, y: bool| x | y),
            Xor => each!(|x: bool, y: bool| x ^ y),
            op => unreachable!("{} is not defined on bool", op.name()),
        }
    }
}

/// `binary[op](a, b)`: an elementwise binary op over operands of equal shape and dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binary(pub BinaryOp);

/// Shared shape/dtype rule of the two-operand elementwise primitives.
pub(crate) fn check_same(op: &'static str, a: &AVal, b: &AVal) -> Result<()> {
    if a.shape != b.shape {
        return Err(Error::shape(
            op,
            format!(
                "operand shapes differ: {:?} vs {:?} (the primitive needs equal shapes; \
                 broadcast first, e.g. with the broadcasting variant)",
                a.shape, b.shape
            ),
        ));
    }
    if a.dtype != b.dtype {
        return Err(Error::dtype_mismatch(op, a.dtype, b.dtype));
    }
    Ok(())
}

impl Primitive for Binary {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    /// Bit-exact identities only: `x * 1`, `1 * x`, `x / 1`, `x - 0`, `x + (-0.0)` (and
    /// `x + 0` for integers). Float `x + 0.0` is not an identity: it turns `-0.0` into `0.0`.
    fn simplify(&self, ctx: &dyn crate::prim::SimplifyCtx) -> Option<crate::prim::Simplified> {
        use crate::prim::Simplified::Operand;
        let is = |i: usize, v: f64| ctx.splat(i).is_some_and(|s| s.to_bits() == v.to_bits());
        let float = ctx.out_aval().dtype.is_float();
        match self.0 {
            BinaryOp::Mul if is(1, 1.0) => Some(Operand(0)),
            BinaryOp::Mul if is(0, 1.0) => Some(Operand(1)),
            BinaryOp::Div if is(1, 1.0) => Some(Operand(0)),
            BinaryOp::Sub if is(1, 0.0) => Some(Operand(0)),
            BinaryOp::Add if is(1, -0.0) || (!float && is(1, 0.0)) => Some(Operand(0)),
            BinaryOp::Add if is(0, -0.0) || (!float && is(0, 0.0)) => Some(Operand(1)),
            _ => None,
        }
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let info = self.0.info();
        if ins.len() != 2 {
            return Err(Error::invalid(
                info.name,
                format!("takes 2 operands, got {}", ins.len()),
            ));
        }
        let (a, b) = (&ins[0], &ins[1]);
        check_same(info.name, a, b)?;
        if !info.domain.accepts(a.dtype) {
            return Err(Error::dtype(
                info.name,
                format!(
                    "operands of dtype {} are not supported; {} takes {}",
                    a.dtype,
                    info.name,
                    info.domain.describe()
                ),
            ));
        }
        Ok(vec![a.clone()])
    }
    fn elementwise(&self) -> Option<&dyn Elementwise> {
        (self.0.info().domain != Domain::Logical).then_some(self as &dyn Elementwise)
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let op = self.0;
        let out = match (ins[0].data, ins[1].data) {
            (Storage::F32(a), Storage::F32(b)) => {
                Storage::F32(map2(a, b, |a, b, o| op.apply_f32(a, b, o)))
            }
            (Storage::F64(a), Storage::F64(b)) => {
                Storage::F64(map2(a, b, |a, b, o| op.apply_f64(a, b, o)))
            }
            (Storage::BF16(a), Storage::BF16(b)) => Storage::BF16(map2(a, b, |a, b, o| {
                half_binary(a, b, o, |a, b, o| op.apply_f32(a, b, o))
            })),
            (Storage::F16(a), Storage::F16(b)) => Storage::F16(map2(a, b, |a, b, o| {
                half_binary(a, b, o, |a, b, o| op.apply_f32(a, b, o))
            })),
            (Storage::I32(a), Storage::I32(b)) => {
                Storage::I32(map2(a, b, |a, b, o| op.apply_int(a, b, o)))
            }
            (Storage::I64(a), Storage::I64(b)) => {
                Storage::I64(map2(a, b, |a, b, o| op.apply_int(a, b, o)))
            }
            (Storage::U32(a), Storage::U32(b)) => {
                Storage::U32(map2(a, b, |a, b, o| op.apply_int(a, b, o)))
            }
            (Storage::Bool(a), Storage::Bool(b)) => {
                Storage::Bool(map2(a, b, |a, b, o| op.apply_bool(a, b, o)))
            }
            (a, b) => return Err(Error::dtype_mismatch(op.name(), a.dtype(), b.dtype())),
        };
        Ok(vec![out])
    }
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(g) = &cts[0] else {
            return Ok(vec![None, None]);
        };
        let (a, b) = (&primals[0], &primals[1]);
        // Integer and bool operands are not differentiable (their cotangent is zero).
        if !a.dtype().is_float() {
            return Ok(vec![None, None]);
        }
        let (ca, cb) = binary_vjp(self.0, a, b, &outs[0], g)?;
        Ok(vec![ca, cb])
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
        Ok((vec![binary(self.0, a, b)?], vec![d]))
    }
}

/// JAX's `_balanced_eq(x, z, y)`: 1 where `x == z` alone, 0.5 where both `x` and `y` equal
/// `z`, 0 elsewhere. The derivative of `max`/`min` (result `z`) with respect to `x`: on a
/// tie the cotangent is split evenly, so `max(x, x)` has derivative 1 in `x`.
fn balanced_eq(x: &Array, z: &Array, y: &Array) -> Result<Array> {
    use crate::prim::compare::eq;
    use crate::prim::select::select;
    let tie = select(&eq(y, z)?, &full_like(x, 0.5)?, &full_like(x, 1.0)?)?;
    select(&eq(x, z)?, &tie, &full_like(x, 0.0)?)
}

/// `select(x == 0, 1, x)` (JAX's `_replace_zero`): keeps the unselected branch of `pow`'s
/// rules finite at 0, so that the zero cotangent `select` sends it does not become NaN.
fn replace_zero(x: &Array) -> Result<Array> {
    use crate::prim::compare::eq;
    use crate::prim::select::select;
    let zero = full_like(x, 0.0)?;
    select(&eq(x, &zero)?, &full_like(x, 1.0)?, x)
}

/// The cotangents of a float binary op's operands `a`, `b`, given the result `y` and its
/// cotangent `g` (all of one shape and dtype). Forms follow JAX's `lax` jvp rules.
fn binary_vjp(
    op: BinaryOp,
    a: &Array,
    b: &Array,
    y: &Array,
    g: &Array,
) -> Result<(Option<Array>, Option<Array>)> {
    use crate::prim::compare::eq;
    use crate::prim::select::select;
    use crate::prim::unary::{abs, floor, log, neg, sign};
    use BinaryOp::*;
    Ok(match op {
        Add => (Some(g.clone()), Some(g.clone())),
        Sub => (Some(g.clone()), Some(neg(g)?)),
        Mul => (Some(mul(g, b)?), Some(mul(g, a)?)),
        // d(a/b)/db = -a/b² = -y/b, reusing the result.
        Div => (Some(div(g, b)?), Some(div(&mul(&neg(g)?, y)?, b)?)),
        // rem(a, b) = a - b·trunc(a/b), with trunc piecewise constant: d/da = 1 and
        // d/db = -trunc(a/b), trunc written as sign(q)·floor(|q|) (JAX's form).
        Rem => {
            let q = div(a, b)?;
            let t = mul(&sign(&q)?, &floor(&abs(&q)?)?)?;
            (Some(g.clone()), Some(mul(&neg(g)?, &t)?))
        }
        // JAX's conventions: d/da = b·a^(b-1), taken as 0 where b == 0 (so 0**0 has zero
        // derivative in the base); d/db = log(a)·a^b with log(0) replaced by log(1) = 0, so
        // the derivative in the exponent at a == 0 is 0 rather than NaN.
        Pow => {
            let zero = full_like(b, 0.0)?;
            let bm1 = sub(b, &full_like(b, 1.0)?)?;
            let jac = mul(&replace_zero(b)?, &pow(a, &bm1)?)?;
            let jac = select(&eq(b, &zero)?, &zero, &jac)?;
            let ja = mul(g, &jac)?;
            let jb = mul(g, &mul(&log(&replace_zero(a)?)?, y)?)?;
            (Some(ja), Some(jb))
        }
        // Ties split the cotangent evenly between the operands (JAX's choice); a NaN result
        // equals neither operand, so neither gets a cotangent there.
        Max | Min => (
            Some(mul(g, &balanced_eq(a, y, b)?)?),
            Some(mul(g, &balanced_eq(b, y, a)?)?),
        ),
        // atan2(a, b) = angle of (b, a): d/da = b/(a²+b²), d/db = -a/(a²+b²).
        Atan2 => {
            let den = add(&mul(a, a)?, &mul(b, b)?)?;
            (
                Some(div(&mul(g, b)?, &den)?),
                Some(div(&mul(&neg(g)?, a)?, &den)?),
            )
        }
        And | Or | Xor => (None, None),
    })
}

/// The fusion form: the float slice forms (not the bitwise ops; see `elementwise`).
impl Elementwise for Binary {
    fn arity(&self) -> usize {
        2
    }
    fn apply_f32(&self, ins: &[&[f32]], out: &mut [f32]) -> bool {
        self.0.apply_f32(ins[0], ins[1], out);
        true
    }
    fn apply_f64(&self, ins: &[&[f64]], out: &mut [f64]) -> bool {
        self.0.apply_f64(ins[0], ins[1], out);
        true
    }
    fn cuda_expr(&self, args: &[String], dtype: crate::dtype::DType) -> Option<String> {
        match args {
            [a, b] => self.0.cuda_expr(a, b, dtype),
            _ => None,
        }
    }
}

impl BinaryOp {
    /// The CUDA C expression for this op on `a` and `b` (compute type `float`, or `double`
    /// when `dtype` is f64). `max`/`min` use NaN-propagating helpers (CUDA's `fmaxf` drops
    /// NaN); `rem` is `fmod`, as the host form. `None` for the bitwise ops.
    pub fn cuda_expr(self, a: &str, b: &str, dtype: crate::dtype::DType) -> Option<String> {
        use BinaryOp::*;
        let f = if dtype == crate::dtype::DType::F64 {
            ""
        } else {
            "f"
        };
        Some(match self {
            Add => format!("({a} + {b})"),
            Sub => format!("({a} - {b})"),
            Mul => format!("({a} * {b})"),
            Div => format!("({a} / {b})"),
            Rem => format!("fmod{f}({a}, {b})"),
            Pow => format!("pow{f}({a}, {b})"),
            Max => format!("fx_max({a}, {b})"),
            Min => format!("fx_min({a}, {b})"),
            Atan2 => format!("atan2{f}({a}, {b})"),
            And | Or | Xor => return None,
        })
    }
}

/// Applies a binary op to two arrays of equal shape and dtype.
pub fn binary(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    bind1(Binary(op), &[a, b])
}

/// Applies a binary op with numpy broadcasting (a composite: `broadcast_in_dim` then the
/// primitive). Dtypes must still agree.
///
/// Eagerly, when one host operand holds a single element (`&x * 2.0`, `2.0 / x`), this runs
/// one pass over the other operand with that element in a register rather than
/// materializing it at full size first; the results are bit-identical to the general path.
/// With a tracer operand the composite is recorded as always.
pub fn binary_bcast(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    if a.dtype() != b.dtype() {
        return Err(Error::dtype_mismatch(op.name(), a.dtype(), b.dtype()));
    }
    if let Some(r) = binary_with_host_scalar(op, a, b) {
        return r;
    }
    let (a, b) = broadcast_pair(op.name(), a, b)?;
    binary(op, &a, &b)
}

/// The eager fast path of [`binary_bcast`]: both operands on the host and one of them (`b`
/// if both) a single element `c`. `None` when it does not apply. Broadcasting a size-1
/// operand only prepends or stretches unit axes, so the output's elements are those of the
/// larger operand in its own order, each combined with `c` by the same scalar form (and on
/// the same side) as the primitive's kernel uses; shape and dtype errors are the general
/// path's.
fn binary_with_host_scalar(op: BinaryOp, a: &Array, b: &Array) -> Option<Result<Array>> {
    use crate::array::Repr;
    let (Repr::Host(sa), Repr::Host(sb)) = (&a.repr, &b.repr) else {
        return None;
    };
    let (xs, c, c_left) = if b.numel() == 1 {
        (&**sa, &**sb, false)
    } else if a.numel() == 1 {
        (&**sb, &**sa, true)
    } else {
        return None;
    };
    Some(host_scalar_kernel(op, a, b, xs, c, c_left))
}

/// [`binary_with_host_scalar`] once it applies: `xs` the larger operand's data, `c` the
/// single element's.
fn host_scalar_kernel(
    op: BinaryOp,
    a: &Array,
    b: &Array,
    xs: &Storage,
    c: &Storage,
    c_left: bool,
) -> Result<Array> {
    use crate::prim::unary::{half_unary, map1};
    let shape = crate::prim::broadcast_in_dim::broadcast_shapes(op.name(), a.shape(), b.shape())?;
    let aval = AVal {
        shape,
        dtype: a.dtype(),
    };
    // The primitive's shape and dtype rule, for its domain errors.
    Binary(op).abstract_eval(&[aval.clone(), aval.clone()])?;
    let t0 = crate::profiler::is_active().then(std::time::Instant::now);
    let out = match (xs, c) {
        (Storage::F32(x), Storage::F32(c)) => {
            let c = c[0];
            Storage::F32(map1(x, |x, o| op.apply_scalar_f32(x, c, c_left, o)))
        }
        (Storage::F64(x), Storage::F64(c)) => {
            let c = c[0];
            Storage::F64(map1(x, |x, o| op.apply_scalar_f64(x, c, c_left, o)))
        }
        // Widening to f32 is exact, as in the two-operand kernel's staging.
        (Storage::BF16(x), Storage::BF16(c)) => {
            let c = c[0].to_f32();
            Storage::BF16(map1(x, |x, o| {
                half_unary(x, o, |x, o| op.apply_scalar_f32(x, c, c_left, o))
            }))
        }
        (Storage::F16(x), Storage::F16(c)) => {
            let c = c[0].to_f32();
            Storage::F16(map1(x, |x, o| {
                half_unary(x, o, |x, o| op.apply_scalar_f32(x, c, c_left, o))
            }))
        }
        (Storage::I32(x), Storage::I32(c)) => {
            let c = c[0];
            Storage::I32(map1(x, |x, o| op.apply_scalar_int(x, c, c_left, o)))
        }
        (Storage::I64(x), Storage::I64(c)) => {
            let c = c[0];
            Storage::I64(map1(x, |x, o| op.apply_scalar_int(x, c, c_left, o)))
        }
        (Storage::U32(x), Storage::U32(c)) => {
            let c = c[0];
            Storage::U32(map1(x, |x, o| op.apply_scalar_int(x, c, c_left, o)))
        }
        (Storage::Bool(x), Storage::Bool(c)) => {
            let c = c[0];
            Storage::Bool(map1(x, |x, o| op.apply_scalar_bool(x, c, o)))
        }
        (x, c) => return Err(Error::dtype_mismatch(op.name(), x.dtype(), c.dtype())),
    };
    if let Some(t0) = t0 {
        crate::profiler::record_step(op.name(), t0.elapsed());
    }
    let out = Array::from_storage(aval.shape, out)?;
    crate::debug::check_outputs(op.name(), std::slice::from_ref(&out))?;
    Ok(out)
}

/// Applies a binary op between an array and a constant (converted to the array's dtype),
/// broadcasting the constant.
pub fn binary_scalar(op: BinaryOp, a: &Array, c: f64) -> Result<Array> {
    let c = Array::full(&[], a.dtype(), c);
    binary_bcast(op, a, &c)
}

macro_rules! lax_binary {
    ($($fn_name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($fn_name), "` elementwise op on two arrays of equal shape and dtype (see [`BinaryOp::", stringify!($op), "`]).")]
            pub fn $fn_name(a: &Array, b: &Array) -> Result<Array> {
                binary(BinaryOp::$op, a, b)
            }
        )*
    };
}

lax_binary!(
    add => Add, sub => Sub, mul => Mul, div => Div, rem => Rem, pow => Pow, max => Max,
    min => Min, atan2 => Atan2, and => And, or => Or, xor => Xor,
);
