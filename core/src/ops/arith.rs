//! Typed elementwise ops: math methods (`x.exp()`), comparisons (`x.lt(&y)`), `where_`,
//! `cast`, the std operators with numpy broadcasting typed by [`BroadcastWith`], and the
//! elementwise activation composites (relu, gelu, silu, softplus, ...).
//!
//! Broadcasting mistakes between static dims are compile errors. With `Dyn` dims the sizes
//! are checked when the op runs: the `try_*` methods return the error, while the std
//! operators and the named binary methods (`pow`, `maximum`, `lt`, ...) panic with it, like
//! slice indexing does. Static shapes never fail at run time.
//!
//! ```
//! use ferrax_core::{Tensor, C};
//! use ferrax_core::ops::arith::where_;
//! let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![-1., 0., 1., 2., -2., 3.]).unwrap();
//! let b = Tensor::<(C<3>,)>::from_vec(vec![10., 20., 30.]).unwrap();
//! let y = &x * 2.0 + &b; // (2, 3) + (3,) broadcasts to (2, 3)
//! assert_eq!(y.to_vec().unwrap(), vec![8., 20., 32., 14., 16., 36.]);
//! let r = where_(&x.gt(&Tensor::scalar(0.0)), &x, &x.exp());
//! assert_eq!(r.to_vec().unwrap()[3], 2.0);
//! assert_eq!(x.relu().to_vec().unwrap(), vec![0., 0., 1., 2., 0., 3.]);
//! let n: Tensor<(C<2>, C<3>), i32> = x.cast();
//! assert_eq!(n.to_vec().unwrap(), vec![-1, 0, 1, 2, -2, 3]);
//! ```

use crate::array::Array;
use crate::broadcast::BroadcastWith;
use crate::dtype::{Elem, Float};
use crate::error::Result;
use crate::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use crate::prim::compare::{compare_bcast, CompareOp};
use crate::prim::convert::convert;
use crate::prim::select::select_bcast;
use crate::prim::unary::{unary, UnaryOp};
use crate::shape::Shape;
use crate::tensor::Tensor;
use half::{bf16, f16};
use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Sub};

/// Numeric elements (floats and integers): the ones arithmetic is defined on.
pub trait Num: Elem {}
impl Num for f32 {}
impl Num for f64 {}
impl Num for bf16 {}
impl Num for f16 {}
impl Num for i32 {}
impl Num for i64 {}
impl Num for u32 {}

/// Elements with bitwise / logical ops (`&`, `|`, `^`, `!`): bool and integers.
pub trait Logical: Elem {}
impl Logical for bool {}
impl Logical for i32 {}
impl Logical for i64 {}
impl Logical for u32 {}

/// Unwraps the result of an op whose failure the types rule out, or that mirrors the std
/// operators (a `Dyn` size mismatch): the error message becomes the panic message.
#[track_caller]
fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

type Bcast<L, R> = <L as BroadcastWith<R>>::Out;

/// Applies an untyped two-operand function and types the broadcast result.
fn bcast2<L, R, E, EO>(
    a: &Tensor<L, E>,
    b: &Tensor<R, E>,
    f: impl FnOnce(&Array, &Array) -> Result<Array>,
) -> Result<Tensor<Bcast<L, R>, EO>>
where
    L: Shape + BroadcastWith<R>,
    R: Shape,
    E: Elem,
    EO: Elem,
{
    // The output fits `Out`: a static dim there comes from equal static operand dims.
    Ok(Tensor::from_array_unchecked(f(a.array(), b.array())?))
}

// ---------------------------------------------------------------------------------------
// Array-level elementwise composites (written once, exposed typed below).

fn scalar_like(x: &Array, c: f64) -> Array {
    Array::full(&[], x.dtype(), c)
}

/// `max(x, 0)` (NaN stays NaN).
pub fn relu(x: &Array) -> Result<Array> {
    binary_scalar(BinaryOp::Max, x, 0.0)
}

/// GELU as `jax.nn.gelu` computes it by default (`approximate=True`): the tanh
/// approximation, the same function as [`gelu_tanh`]. [`gelu_exact`] is the erf form.
pub fn gelu(x: &Array) -> Result<Array> {
    gelu_tanh(x)
}

/// Exact GELU (`jax.nn.gelu(x, approximate=False)`): `x Φ(x) = x/2 · erfc(-x/√2)` (erfc
/// keeps the far negative tail accurate).
pub fn gelu_exact(x: &Array) -> Result<Array> {
    let t = binary_scalar(BinaryOp::Mul, x, -std::f64::consts::FRAC_1_SQRT_2)?;
    let c = unary(UnaryOp::Erfc, &t)?;
    let h = binary_scalar(BinaryOp::Mul, x, 0.5)?;
    binary_bcast(BinaryOp::Mul, &h, &c)
}

/// GELU, tanh approximation (what [`gelu`] computes, under its explicit name):
/// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`, evaluated as
/// `x · σ(2√(2/π) (x + 0.044715 x³))` (the same function, since `(1 + tanh u)/2 = σ(2u)`),
/// which avoids the cancellation of `1 + tanh` for negative x and takes fewer ops.
pub fn gelu_tanh(x: &Array) -> Result<Array> {
    let k2 = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
    let x2 = binary_bcast(BinaryOp::Mul, x, x)?;
    let p = binary_scalar(BinaryOp::Mul, &x2, 0.044715 * k2)?;
    let p = binary_scalar(BinaryOp::Add, &p, k2)?;
    let inner = binary_bcast(BinaryOp::Mul, x, &p)?;
    let s = unary(UnaryOp::Logistic, &inner)?;
    binary_bcast(BinaryOp::Mul, x, &s)
}

/// SiLU / swish: `x · σ(x)`.
pub fn silu(x: &Array) -> Result<Array> {
    let s = unary(UnaryOp::Logistic, x)?;
    binary_bcast(BinaryOp::Mul, x, &s)
}

/// Softplus `ln(1 + e^x)`, computed as `max(x, 0) + ln1p(e^{-|x|})` so it neither overflows
/// nor loses the small tail.
pub fn softplus(x: &Array) -> Result<Array> {
    let a = unary(UnaryOp::Abs, x)?;
    let na = unary(UnaryOp::Neg, &a)?;
    let e = unary(UnaryOp::Exp, &na)?;
    let l = unary(UnaryOp::Log1p, &e)?;
    binary_bcast(BinaryOp::Add, &relu(x)?, &l)
}

/// `ln σ(x) = -softplus(-x)`.
pub fn log_sigmoid(x: &Array) -> Result<Array> {
    let n = unary(UnaryOp::Neg, x)?;
    unary(UnaryOp::Neg, &softplus(&n)?)
}

/// `x` where `x ≥ 0`, else `alpha · x`.
pub fn leaky_relu(x: &Array, alpha: f64) -> Result<Array> {
    let pos = compare_bcast(CompareOp::Ge, x, &scalar_like(x, 0.0))?;
    let neg = binary_scalar(BinaryOp::Mul, x, alpha)?;
    select_bcast(&pos, x, &neg)
}

/// `x` where `x > 0`, else `alpha · (e^x - 1)`.
pub fn elu(x: &Array, alpha: f64) -> Result<Array> {
    let pos = compare_bcast(CompareOp::Gt, x, &scalar_like(x, 0.0))?;
    // expm1 of min(x, 0) so the unused branch does not overflow.
    let m = binary_scalar(BinaryOp::Min, x, 0.0)?;
    let e = unary(UnaryOp::Expm1, &m)?;
    let neg = binary_scalar(BinaryOp::Mul, &e, alpha)?;
    select_bcast(&pos, x, &neg)
}

/// `min(max(x, lo), hi)` with array bounds (broadcast).
pub fn clip(x: &Array, lo: &Array, hi: &Array) -> Result<Array> {
    let m = binary_bcast(BinaryOp::Max, x, lo)?;
    binary_bcast(BinaryOp::Min, &m, hi)
}

/// `x · x`.
pub fn square(x: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Mul, x, x)
}

/// `1 / x`.
pub fn reciprocal(x: &Array) -> Result<Array> {
    let one = scalar_like(x, 1.0);
    binary_bcast(BinaryOp::Div, &one, x)
}

// ---------------------------------------------------------------------------------------
// Typed unary methods.

macro_rules! typed_unary {
    ($($(#[$m:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$m])*
            pub fn $name(&self) -> Self {
                self.map_unary(UnaryOp::$op)
            }
        )*
    };
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    fn map_unary(&self, op: UnaryOp) -> Self {
        Tensor::from_array_unchecked(ok(unary(op, self.array())))
    }
    fn map_array(&self, f: impl FnOnce(&Array) -> Result<Array>) -> Self {
        Tensor::from_array_unchecked(ok(f(self.array())))
    }

    /// Converts the elements to `E2` (see [`crate::prim::convert`] for the rounding,
    /// truncation and saturation rules).
    pub fn cast<E2: Elem>(&self) -> Tensor<S, E2> {
        Tensor::from_array_unchecked(ok(convert(self.array(), E2::DTYPE)))
    }
}

impl<S: Shape, E: Float> Tensor<S, E> {
    typed_unary! {
        /// Rounds toward -inf.
        floor => Floor;
        /// Rounds toward +inf.
        ceil => Ceil;
        /// Rounds to nearest, ties to even (as `jnp.round`).
        round => Round;
        /// `e^x`.
        exp => Exp;
        /// `e^x - 1`, accurate near 0.
        expm1 => Expm1;
        /// Natural logarithm.
        log => Log;
        /// `ln(1 + x)`, accurate near 0.
        log1p => Log1p;
        /// Square root.
        sqrt => Sqrt;
        /// `1 / sqrt(x)`.
        rsqrt => Rsqrt;
        /// Cube root.
        cbrt => Cbrt;
        /// Sine.
        sin => Sin;
        /// Cosine.
        cos => Cos;
        /// Tangent.
        tan => Tan;
        /// Arcsine.
        asin => Asin;
        /// Arccosine.
        acos => Acos;
        /// Arctangent.
        atan => Atan;
        /// Hyperbolic sine.
        sinh => Sinh;
        /// Hyperbolic cosine.
        cosh => Cosh;
        /// Hyperbolic tangent.
        tanh => Tanh;
        /// Inverse hyperbolic sine.
        asinh => Asinh;
        /// Inverse hyperbolic cosine.
        acosh => Acosh;
        /// Inverse hyperbolic tangent.
        atanh => Atanh;
        /// The logistic sigmoid `1 / (1 + e^-x)`.
        logistic => Logistic;
        /// The logistic sigmoid (alias of [`Tensor::logistic`]).
        sigmoid => Logistic;
        /// The error function.
        erf => Erf;
        /// `1 - erf(x)`.
        erfc => Erfc;
        /// The inverse error function (`±inf` at `±1`, NaN outside).
        erf_inv => ErfInv;
        /// `ln|Γ(x)|`.
        lgamma => Lgamma;
        /// The digamma function `Γ'(x)/Γ(x)`.
        digamma => Digamma;
    }

    /// Whether each element is finite (not ±inf or NaN).
    pub fn is_finite(&self) -> Tensor<S, bool> {
        Tensor::from_array_unchecked(ok(unary(UnaryOp::IsFinite, self.array())))
    }
    /// GELU, tanh approximation `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`: what
    /// `jax.nn.gelu(x)` computes by default (`approximate=True`), and the same function as
    /// [`Tensor::gelu_tanh`]. [`Tensor::gelu_exact`] is the erf form.
    ///
    /// ```
    /// use ferrax_core::Tensor;
    /// let x = Tensor::<(), f64>::scalar(1.0);
    /// let (approx, exact) = (x.gelu().item().unwrap(), x.gelu_exact().item().unwrap());
    /// assert!((approx - 0.841_191_990_608_276_8).abs() < 1e-12); // jax.nn.gelu(1.0)
    /// assert!((exact - 0.841_344_746_068_542_9).abs() < 1e-12); // 1.0 * Φ(1.0)
    /// ```
    pub fn gelu(&self) -> Self {
        self.map_array(gelu)
    }
    /// Exact GELU `x Φ(x)` through the error function (`jax.nn.gelu(x, approximate=False)`).
    pub fn gelu_exact(&self) -> Self {
        self.map_array(gelu_exact)
    }
    /// GELU with the tanh approximation, by its explicit name (the same function as
    /// [`Tensor::gelu`], `jax.nn.gelu`'s default).
    pub fn gelu_tanh(&self) -> Self {
        self.map_array(gelu_tanh)
    }
    /// SiLU / swish `x σ(x)`.
    pub fn silu(&self) -> Self {
        self.map_array(silu)
    }
    /// `ln(1 + e^x)`, numerically stable.
    pub fn softplus(&self) -> Self {
        self.map_array(softplus)
    }
    /// `ln σ(x)`, numerically stable.
    pub fn log_sigmoid(&self) -> Self {
        self.map_array(log_sigmoid)
    }
    /// `x` for `x ≥ 0`, else `alpha x` (`jax.nn.leaky_relu`, default alpha 0.01).
    pub fn leaky_relu(&self, alpha: f64) -> Self {
        self.map_array(|x| leaky_relu(x, alpha))
    }
    /// `x` for `x > 0`, else `alpha (e^x - 1)`.
    pub fn elu(&self, alpha: f64) -> Self {
        self.map_array(|x| elu(x, alpha))
    }
    /// `1 / x`.
    pub fn reciprocal(&self) -> Self {
        self.map_array(reciprocal)
    }
    /// `self ^ p` for a scalar exponent.
    pub fn pow_scalar(&self, p: E) -> Self {
        self.map_array(|x| binary_bcast(BinaryOp::Pow, x, &Array::scalar(p)))
    }
}

impl<S: Shape, E: Num> Tensor<S, E> {
    typed_unary! {
        /// `|x|` (wrapping for signed integers: `abs(MIN) == MIN`).
        abs => Abs;
        /// -1, 0 or 1 (±0 and NaN map to themselves).
        sign => Sign;
    }
    /// `max(x, 0)`.
    pub fn relu(&self) -> Self {
        self.map_array(relu)
    }
    /// `x · x`.
    pub fn square(&self) -> Self {
        self.map_array(square)
    }
    /// Clamps into `[lo, hi]` (NaN stays NaN).
    pub fn clip(&self, lo: E, hi: E) -> Self {
        self.map_array(|x| clip(x, &Array::scalar(lo), &Array::scalar(hi)))
    }
}

// ---------------------------------------------------------------------------------------
// Typed binary methods with broadcasting.

macro_rules! typed_binary {
    ($bound:ident; $($(#[$m:meta])* $name:ident, $try_name:ident => $op:ident;)*) => {
        impl<L: Shape, E: $bound> Tensor<L, E> {
            $(
                $(#[$m])*
                ///
                /// Broadcasts like numpy; panics only if `Dyn` sizes disagree at run time
                #[doc = concat!("(see [`Tensor::", stringify!($try_name), "`]).")]
                #[track_caller]
                pub fn $name<R: Shape>(&self, rhs: &Tensor<R, E>) -> Tensor<Bcast<L, R>, E>
                where
                    L: BroadcastWith<R>,
                {
                    ok(self.$try_name(rhs))
                }
                #[doc = concat!("[`Tensor::", stringify!($name), "`], returning the run-time shape error of `Dyn` sizes.")]
                pub fn $try_name<R: Shape>(&self, rhs: &Tensor<R, E>) -> Result<Tensor<Bcast<L, R>, E>>
                where
                    L: BroadcastWith<R>,
                {
                    bcast2(self, rhs, |a, b| binary_bcast(BinaryOp::$op, a, b))
                }
            )*
        }
    };
}

typed_binary! { Num;
    /// Elementwise maximum, NaN-propagating (`jnp.maximum`).
    maximum, try_maximum => Max;
    /// Elementwise minimum, NaN-propagating (`jnp.minimum`).
    minimum, try_minimum => Min;
}
typed_binary! { Float;
    /// `self ^ rhs` elementwise.
    pow, try_pow => Pow;
    /// `atan2(self, rhs)`: the angle of the point `(rhs, self)`.
    atan2, try_atan2 => Atan2;
}

macro_rules! typed_try_arith {
    ($($try_name:ident => $op:ident, $sym:literal;)*) => {
        impl<L: Shape, E: Num> Tensor<L, E> {
            $(
                #[doc = concat!("`self ", $sym, " rhs` with numpy broadcasting, returning the run-time shape error of `Dyn` sizes instead of panicking like the operator.")]
                pub fn $try_name<R: Shape>(&self, rhs: &Tensor<R, E>) -> Result<Tensor<Bcast<L, R>, E>>
                where
                    L: BroadcastWith<R>,
                {
                    bcast2(self, rhs, |a, b| binary_bcast(BinaryOp::$op, a, b))
                }
            )*
        }
    };
}

typed_try_arith! {
    try_add => Add, "+";
    try_sub => Sub, "-";
    try_mul => Mul, "*";
    try_div => Div, "/";
    try_rem => Rem, "%";
}

macro_rules! typed_compare {
    ($($name:ident, $try_name:ident => $op:ident, $sym:literal;)*) => {
        impl<L: Shape, E: Elem> Tensor<L, E> {
            $(
                #[doc = concat!("`self ", $sym, " rhs` elementwise, with numpy broadcasting. Panics only if `Dyn` sizes disagree at run time (see [`Tensor::", stringify!($try_name), "`]).")]
                #[track_caller]
                pub fn $name<R: Shape>(&self, rhs: &Tensor<R, E>) -> Tensor<Bcast<L, R>, bool>
                where
                    L: BroadcastWith<R>,
                {
                    ok(self.$try_name(rhs))
                }
                #[doc = concat!("[`Tensor::", stringify!($name), "`], returning the run-time shape error of `Dyn` sizes.")]
                pub fn $try_name<R: Shape>(&self, rhs: &Tensor<R, E>) -> Result<Tensor<Bcast<L, R>, bool>>
                where
                    L: BroadcastWith<R>,
                {
                    bcast2(self, rhs, |a, b| compare_bcast(CompareOp::$op, a, b))
                }
            )*
        }
    };
}

typed_compare! {
    eq, try_eq => Eq, "==";
    ne, try_ne => Ne, "!=";
    lt, try_lt => Lt, "<";
    le, try_le => Le, "<=";
    gt, try_gt => Gt, ">";
    ge, try_ge => Ge, ">=";
}

/// `jnp.where(cond, a, b)`: picks `a` where `cond` is true, else `b`, broadcasting all three.
/// Panics only if `Dyn` sizes disagree at run time (see [`try_where`]).
///
/// ```
/// use ferrax_core::{Tensor, C};
/// use ferrax_core::ops::arith::where_;
/// let c = Tensor::<(C<2>, C<3>), bool>::from_vec(vec![true, true, true, false, false, false]).unwrap();
/// let a = Tensor::<(C<3>,)>::from_vec(vec![1., 2., 3.]).unwrap();
/// let b = Tensor::<()>::scalar(0.0);
/// let r = where_(&c, &a, &b);
/// assert_eq!(r.to_vec().unwrap(), vec![1., 2., 3., 0., 0., 0.]);
/// ```
#[track_caller]
pub fn where_<SC, SA, SB, E>(
    cond: &Tensor<SC, bool>,
    on_true: &Tensor<SA, E>,
    on_false: &Tensor<SB, E>,
) -> Tensor<Bcast<SC, Bcast<SA, SB>>, E>
where
    SA: Shape + BroadcastWith<SB>,
    SB: Shape,
    SC: Shape + BroadcastWith<Bcast<SA, SB>>,
    E: Elem,
{
    ok(try_where(cond, on_true, on_false))
}

/// [`where_`], returning the run-time shape error of `Dyn` sizes.
pub fn try_where<SC, SA, SB, E>(
    cond: &Tensor<SC, bool>,
    on_true: &Tensor<SA, E>,
    on_false: &Tensor<SB, E>,
) -> Result<Tensor<Bcast<SC, Bcast<SA, SB>>, E>>
where
    SA: Shape + BroadcastWith<SB>,
    SB: Shape,
    SC: Shape + BroadcastWith<Bcast<SA, SB>>,
    E: Elem,
{
    let out = select_bcast(cond.array(), on_true.array(), on_false.array())?;
    Ok(Tensor::from_array_unchecked(out))
}

// ---------------------------------------------------------------------------------------
// std operators.

macro_rules! std_binop {
    ($Trait:ident, $method:ident, $op:ident, $bound:ident) => {
        impl<'a, 'b, L, R, E> $Trait<&'b Tensor<R, E>> for &'a Tensor<L, E>
        where
            L: Shape + BroadcastWith<R>,
            R: Shape,
            E: $bound,
        {
            type Output = Tensor<Bcast<L, R>, E>;
            #[track_caller]
            fn $method(self, rhs: &'b Tensor<R, E>) -> Self::Output {
                ok(bcast2(self, rhs, |a, b| binary_bcast(BinaryOp::$op, a, b)))
            }
        }
        impl<'b, L, R, E> $Trait<&'b Tensor<R, E>> for Tensor<L, E>
        where
            L: Shape + BroadcastWith<R>,
            R: Shape,
            E: $bound,
        {
            type Output = Tensor<Bcast<L, R>, E>;
            #[track_caller]
            fn $method(self, rhs: &'b Tensor<R, E>) -> Self::Output {
                (&self).$method(rhs)
            }
        }
        impl<'a, L, R, E> $Trait<Tensor<R, E>> for &'a Tensor<L, E>
        where
            L: Shape + BroadcastWith<R>,
            R: Shape,
            E: $bound,
        {
            type Output = Tensor<Bcast<L, R>, E>;
            #[track_caller]
            fn $method(self, rhs: Tensor<R, E>) -> Self::Output {
                self.$method(&rhs)
            }
        }
        impl<L, R, E> $Trait<Tensor<R, E>> for Tensor<L, E>
        where
            L: Shape + BroadcastWith<R>,
            R: Shape,
            E: $bound,
        {
            type Output = Tensor<Bcast<L, R>, E>;
            #[track_caller]
            fn $method(self, rhs: Tensor<R, E>) -> Self::Output {
                (&self).$method(&rhs)
            }
        }
    };
}

macro_rules! std_scalar_op {
    ($Trait:ident, $method:ident, $op:ident; $($t:ty),*) => {
        impl<'a, S: Shape, E: Num> $Trait<E> for &'a Tensor<S, E> {
            type Output = Tensor<S, E>;
            fn $method(self, rhs: E) -> Self::Output {
                self.map_array(|x| binary_bcast(BinaryOp::$op, x, &Array::scalar(rhs)))
            }
        }
        impl<S: Shape, E: Num> $Trait<E> for Tensor<S, E> {
            type Output = Tensor<S, E>;
            fn $method(self, rhs: E) -> Self::Output {
                (&self).$method(rhs)
            }
        }
        $(
            impl<'a, S: Shape> $Trait<&'a Tensor<S, $t>> for $t {
                type Output = Tensor<S, $t>;
                fn $method(self, rhs: &'a Tensor<S, $t>) -> Self::Output {
                    rhs.map_array(|x| binary_bcast(BinaryOp::$op, &Array::scalar(self), x))
                }
            }
            impl<S: Shape> $Trait<Tensor<S, $t>> for $t {
                type Output = Tensor<S, $t>;
                fn $method(self, rhs: Tensor<S, $t>) -> Self::Output {
                    self.$method(&rhs)
                }
            }
        )*
    };
}

std_binop!(Add, add, Add, Num);
std_binop!(Sub, sub, Sub, Num);
std_binop!(Mul, mul, Mul, Num);
std_binop!(Div, div, Div, Num);
std_binop!(Rem, rem, Rem, Num);
std_binop!(BitAnd, bitand, And, Logical);
std_binop!(BitOr, bitor, Or, Logical);
std_binop!(BitXor, bitxor, Xor, Logical);
std_scalar_op!(Add, add, Add; f32, f64, bf16, f16, i32, i64, u32);
std_scalar_op!(Sub, sub, Sub; f32, f64, bf16, f16, i32, i64, u32);
std_scalar_op!(Mul, mul, Mul; f32, f64, bf16, f16, i32, i64, u32);
std_scalar_op!(Div, div, Div; f32, f64, bf16, f16, i32, i64, u32);
std_scalar_op!(Rem, rem, Rem; f32, f64, bf16, f16, i32, i64, u32);

impl<S: Shape, E: Num> Neg for &Tensor<S, E> {
    type Output = Tensor<S, E>;
    /// `-x` (wrapping for integers).
    fn neg(self) -> Tensor<S, E> {
        self.map_unary(UnaryOp::Neg)
    }
}
impl<S: Shape, E: Num> Neg for Tensor<S, E> {
    type Output = Tensor<S, E>;
    fn neg(self) -> Tensor<S, E> {
        -&self
    }
}
impl<S: Shape, E: Logical> Not for &Tensor<S, E> {
    type Output = Tensor<S, E>;
    /// Logical not on bool, bitwise not on integers.
    fn not(self) -> Tensor<S, E> {
        self.map_unary(UnaryOp::Not)
    }
}
impl<S: Shape, E: Logical> Not for Tensor<S, E> {
    type Output = Tensor<S, E>;
    fn not(self) -> Tensor<S, E> {
        !&self
    }
}
