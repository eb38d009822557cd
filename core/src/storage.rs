//! Host storage: one contiguous, row-major vector per buffer, tagged by dtype.

use crate::dtype::DType;
use half::{bf16, f16};

/// A contiguous row-major host buffer of one dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    Bool(Vec<bool>),
}

/// Runs `$body` with `$v` bound to the typed vector inside a storage (by reference), and
/// `$T` naming its element type. All eight dtypes.
#[macro_export]
#[doc(hidden)]
macro_rules! with_storage {
    ($s:expr, $v:ident, $T:ident => $body:expr) => {
        match $s {
            $crate::Storage::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::Storage::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::Storage::BF16($v) => {
                #[allow(dead_code)]
                type $T = ::half::bf16;
                $body
            }
            $crate::Storage::F16($v) => {
                #[allow(dead_code)]
                type $T = ::half::f16;
                $body
            }
            $crate::Storage::I32($v) => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            $crate::Storage::I64($v) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::Storage::U32($v) => {
                #[allow(dead_code)]
                type $T = u32;
                $body
            }
            $crate::Storage::Bool($v) => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$T` naming the Rust element type of a [`DType`].
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::BF16 => {
                type $T = ::half::bf16;
                $body
            }
            $crate::DType::F16 => {
                type $T = ::half::f16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}

impl Storage {
    /// The dtype tag.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::BF16(_) => DType::BF16,
            Storage::F16(_) => DType::F16,
            Storage::I32(_) => DType::I32,
            Storage::I64(_) => DType::I64,
            Storage::U32(_) => DType::U32,
            Storage::Bool(_) => DType::Bool,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        with_storage!(self, v, T => v.len())
    }
    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len() * self.dtype().size_bytes()
    }
    /// A buffer of `n` zeros (false for bool).
    pub fn zeros(dtype: DType, n: usize) -> Storage {
        match dtype {
            DType::F32 => Storage::F32(vec![0.0; n]),
            DType::F64 => Storage::F64(vec![0.0; n]),
            DType::BF16 => Storage::BF16(vec![bf16::ZERO; n]),
            DType::F16 => Storage::F16(vec![f16::ZERO; n]),
            DType::I32 => Storage::I32(vec![0; n]),
            DType::I64 => Storage::I64(vec![0; n]),
            DType::U32 => Storage::U32(vec![0; n]),
            DType::Bool => Storage::Bool(vec![false; n]),
        }
    }
    /// A buffer of `n` copies of `x` converted (lossily) to `dtype`.
    pub fn full(dtype: DType, n: usize, x: f64) -> Storage {
        match dtype {
            DType::F32 => Storage::F32(vec![x as f32; n]),
            DType::F64 => Storage::F64(vec![x; n]),
            DType::BF16 => Storage::BF16(vec![bf16::from_f64(x); n]),
            DType::F16 => Storage::F16(vec![f16::from_f64(x); n]),
            DType::I32 => Storage::I32(vec![x as i32; n]),
            DType::I64 => Storage::I64(vec![x as i64; n]),
            DType::U32 => Storage::U32(vec![x as u32; n]),
            DType::Bool => Storage::Bool(vec![x != 0.0; n]),
        }
    }
    /// Element `i` converted (lossily) to f64; for printing and tests.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Storage::F32(v) => v[i] as f64,
            Storage::F64(v) => v[i],
            Storage::BF16(v) => v[i].to_f64(),
            Storage::F16(v) => v[i].to_f64(),
            Storage::I32(v) => v[i] as f64,
            Storage::I64(v) => v[i] as f64,
            Storage::U32(v) => v[i] as f64,
            Storage::Bool(v) => {
                if v[i] {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
    /// All elements converted (lossily) to f64.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.get_f64(i)).collect()
    }
}
