//! The one error type of ferrax-core: every fallible operation names the op and the values involved.

use crate::device::Device;
use crate::dtype::DType;

/// Errors returned by tensor operations, tracing and trees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A shape rule was violated at run time (only possible when a `Dyn` dim is involved,
    /// or through the untyped [`Array`](crate::Array) API).
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// Operand element types do not agree or are not supported by the op.
    #[error("{op}: {msg}")]
    DType { op: &'static str, msg: String },
    /// An argument value is out of its domain (an axis, a count, a probability).
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
    /// A traced value was asked for a concrete value.
    #[error("{0}")]
    Concretization(String),
    /// Tensors on different devices met in one op, or a device is unavailable.
    #[error("{0}")]
    Device(String),
    /// Operands committed to two different devices met in one op or one staged call.
    #[error("{op}: operands live on two devices, {a} and {b}; move one with `to_device` first")]
    DeviceMismatch { op: String, a: Device, b: Device },
    /// A tree did not have the expected structure.
    #[error("tree: {0}")]
    Tree(String),
    /// A NaN or Inf was produced while `debug_nans` is on.
    #[error("{0}")]
    NonFinite(String),
    /// The operation is not supported (yet) for these arguments.
    #[error("{op}: {msg}")]
    Unsupported { op: &'static str, msg: String },
}

impl Error {
    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::DType`].
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error::DType {
            op,
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Unsupported {
            op,
            msg: msg.into(),
        }
    }
    /// A dtype mismatch between two operands.
    pub fn dtype_mismatch(op: &'static str, a: DType, b: DType) -> Self {
        Error::dtype(op, format!("operand dtypes differ: {a} vs {b}"))
    }
}

/// `Result` with ferrax-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
