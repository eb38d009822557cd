//! Element types: the run-time [`DType`] tag and the compile-time [`Elem`] trait that maps a
//! Rust type to it.

use crate::storage::Storage;
use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor, as a run-time value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    BF16,
    F16,
    I32,
    I64,
    U32,
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order (used by table-driven tests).
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F64,
        DType::BF16,
        DType::F16,
        DType::I32,
        DType::I64,
        DType::U32,
        DType::Bool,
    ];
    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::Bool => 1,
        }
    }
    /// Floating-point dtypes (the differentiable ones).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::BF16 | DType::F16)
    }
    /// Signed or unsigned integers.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64 | DType::U32)
    }
    /// The numpy / safetensors-style name (`f32`, `bf16`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U32 => "u32",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type usable as a tensor element. Sealed: the set is f32, f64, bf16, f16, i32, i64,
/// u32, bool.
pub trait Elem:
    sealed::Sealed + Copy + Send + Sync + PartialEq + PartialOrd + fmt::Debug + fmt::Display + 'static
{
    /// The run-time tag.
    const DTYPE: DType;
    /// Wraps a vector in a [`Storage`].
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Borrows the elements of a storage of this dtype.
    fn slice(s: &Storage) -> Option<&[Self]>;
    /// Lossy conversion from f64 (used for constants: `full`, `arange`, scalars).
    fn from_f64(x: f64) -> Self;
    /// Lossy conversion to f64.
    fn to_f64(self) -> f64;
    /// The additive identity.
    fn zero() -> Self;
    /// The multiplicative identity.
    fn one() -> Self;
}

/// Floating-point elements (the ones gradients flow through).
pub trait Float: Elem {}
impl Float for f32 {}
impl Float for f64 {}
impl Float for bf16 {}
impl Float for f16 {}

/// Integer elements (indices, labels, counts).
pub trait Int: Elem {}
impl Int for i32 {}
impl Int for i64 {}
impl Int for u32 {}

macro_rules! elem {
    ($t:ty, $dt:ident, $from:expr, $to:expr, $zero:expr, $one:expr) => {
        impl sealed::Sealed for $t {}
        impl Elem for $t {
            const DTYPE: DType = DType::$dt;
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$dt(v)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$dt(v) => Some(v),
                    _ => None,
                }
            }
            #[allow(clippy::redundant_closure_call)]
            fn from_f64(x: f64) -> Self {
                ($from)(x)
            }
            #[allow(clippy::redundant_closure_call)]
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn zero() -> Self {
                $zero
            }
            fn one() -> Self {
                $one
            }
        }
    };
}

elem!(f32, F32, |x: f64| x as f32, |x: f32| x as f64, 0.0, 1.0);
elem!(f64, F64, |x: f64| x, |x: f64| x, 0.0, 1.0);
elem!(
    bf16,
    BF16,
    bf16::from_f64,
    |x: bf16| x.to_f64(),
    bf16::ZERO,
    bf16::ONE
);
elem!(
    f16,
    F16,
    f16::from_f64,
    |x: f16| x.to_f64(),
    f16::ZERO,
    f16::ONE
);
elem!(i32, I32, |x: f64| x as i32, |x: i32| x as f64, 0, 1);
elem!(i64, I64, |x: f64| x as i64, |x: i64| x as f64, 0, 1);
elem!(u32, U32, |x: f64| x as u32, |x: u32| x as f64, 0, 1);
elem!(
    bool,
    Bool,
    |x: f64| x != 0.0,
    |x: bool| if x { 1.0 } else { 0.0 },
    false,
    true
);
