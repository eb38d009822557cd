//! The `convert` primitive (`lax.convert_element_type`): changes the dtype elementwise, any
//! of the eight dtypes to any other.
//!
//! Rules (Rust's `as` where it applies): float → int truncates toward zero and saturates at
//! the target's range, NaN → 0; int → int wraps (keeps the low bits); int/float → float rounds
//! to nearest even once (i64 → bf16/f16 goes through f64, so only integers beyond 2^53 can be
//! rounded twice); anything → bool is `x != 0` (NaN → true); bool → number is 0 or 1.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::unary::{map1, single_batched};
use crate::prim::Primitive;
use crate::storage::Storage;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// `convert[to](x)`: the same values in dtype `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Convert {
    /// Target dtype.
    pub to: DType,
}

impl Primitive for Convert {
    fn name(&self) -> &'static str {
        "convert"
    }
    fn params(&self) -> String {
        format!("to={}", self.to)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        if ins.len() != 1 {
            return Err(Error::invalid(
                "convert",
                format!("takes 1 operand, got {}", ins.len()),
            ));
        }
        Ok(vec![AVal::new(ins[0].shape.clone(), self.to)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        Ok(vec![convert_storage(ins[0].data, self.to)])
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(g) = &cts[0] else {
            return Ok(vec![None]);
        };
        let from = primals[0].dtype();
        // Float -> float is differentiable with derivative 1: the cotangent goes back to the
        // operand's dtype (as JAX's transpose of convert_element_type). Integer or bool
        // operands, and float -> integer results, carry no gradient.
        if !from.is_float() || !self.to.is_float() {
            return Ok(vec![None]);
        }
        Ok(vec![Some(convert(g, from)?)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        // Elementwise on one operand: the batch axis can stay wherever it is.
        let (x, d) = single_batched("convert", args, dims)?;
        Ok((vec![convert(x, self.to)?], vec![d]))
    }
}

/// The number types Rust's `as` converts between, plus the half and bool targets.
trait AsNum: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
    fn to_i32(self) -> i32;
    fn to_i64(self) -> i64;
    fn to_u32(self) -> u32;
    fn to_bf16(self) -> bf16;
    fn to_f16(self) -> f16;
    fn nonzero(self) -> bool;
}

macro_rules! as_num {
    ($t:ty, $zero:expr, $bf:expr, $hf:expr) => {
        impl AsNum for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn to_u32(self) -> u32 {
                self as u32
            }
            #[inline(always)]
            #[allow(clippy::redundant_closure_call)]
            fn to_bf16(self) -> bf16 {
                ($bf)(self)
            }
            #[inline(always)]
            #[allow(clippy::redundant_closure_call)]
            fn to_f16(self) -> f16 {
                ($hf)(self)
            }
            #[inline(always)]
            fn nonzero(self) -> bool {
                self != $zero
            }
        }
    };
}
as_num!(f32, 0.0, bf16::from_f32, f16::from_f32);
as_num!(f64, 0.0, bf16::from_f64, f16::from_f64);
as_num!(i32, 0, |x: i32| bf16::from_f64(x as f64), |x: i32| {
    f16::from_f64(x as f64)
});
as_num!(i64, 0, |x: i64| bf16::from_f64(x as f64), |x: i64| {
    f16::from_f64(x as f64)
});
as_num!(u32, 0, |x: u32| bf16::from_f64(x as f64), |x: u32| {
    f16::from_f64(x as f64)
});

fn from_num<S: AsNum>(v: &[S], to: DType) -> Storage {
    macro_rules! conv {
        ($variant:ident, $f:ident) => {
            Storage::$variant(map1(v, |x, o| {
                for (o, &x) in o.iter_mut().zip(x) {
                    *o = x.$f();
                }
            }))
        };
    }
    match to {
        DType::F32 => conv!(F32, to_f32),
        DType::F64 => conv!(F64, to_f64),
        DType::BF16 => conv!(BF16, to_bf16),
        DType::F16 => conv!(F16, to_f16),
        DType::I32 => conv!(I32, to_i32),
        DType::I64 => conv!(I64, to_i64),
        DType::U32 => conv!(U32, to_u32),
        DType::Bool => conv!(Bool, nonzero),
    }
}

fn widen<H>(v: &[H]) -> Vec<f32>
where
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![0f32; v.len()];
    v.convert_to_f32_slice(&mut out);
    out
}

/// Converts a host buffer to `to` (see the module docs for the rules).
pub fn convert_storage(x: &Storage, to: DType) -> Storage {
    if x.dtype() == to {
        return x.clone();
    }
    match x {
        Storage::F32(v) => from_num(v, to),
        Storage::F64(v) => from_num(v, to),
        Storage::I32(v) => from_num(v, to),
        Storage::I64(v) => from_num(v, to),
        Storage::U32(v) => from_num(v, to),
        // Half → f32 is exact, so converting from the widened values rounds only once.
        Storage::BF16(v) => from_num(&widen(v), to),
        Storage::F16(v) => from_num(&widen(v), to),
        Storage::Bool(v) => {
            let ones: Vec<u32> = v.iter().map(|&b| b as u32).collect();
            from_num(&ones, to)
        }
    }
}

/// Converts an array to dtype `to` (returns the input itself when it already has it).
pub fn convert(x: &Array, to: DType) -> Result<Array> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    bind1(Convert { to }, &[x])
}
