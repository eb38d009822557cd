//! The one error type of ferrax-cuda. Every variant says what was missing or what failed,
//! so a machine without CUDA gets a sentence, never a panic.

use ferrax_core::DType;

/// Errors of the CUDA backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CUDA library could not be loaded (driver, NVRTC or cuBLAS).
    #[error("CUDA unavailable: {0}")]
    Unavailable(String),
    /// The driver loaded but the requested device does not exist.
    #[error("no CUDA device {ordinal} (the driver reports {count})")]
    NoDevice { ordinal: usize, count: usize },
    /// A driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(String),
    /// NVRTC rejected generated or embedded source; the log names the line.
    #[error("NVRTC compile of {name} failed: {log}")]
    Compile { name: String, log: String },
    /// A cuBLAS call failed.
    #[error("cuBLAS: {0}")]
    Blas(String),
    /// The operation has no device form for these arguments.
    #[error("{op}: not supported on CUDA: {msg}")]
    Unsupported { op: String, msg: String },
    /// A buffer had the wrong dtype or length.
    #[error("{op}: expected {expected}, got {got}")]
    Mismatch {
        op: &'static str,
        expected: String,
        got: String,
    },
    /// A device string (`FERRAX_DEVICE`) could not be parsed.
    #[error("bad device {0:?}: expected `cpu` or `cuda:N`")]
    BadDevice(String),
    /// An error of ferrax-core (shape rules, host kernels of fallback steps).
    #[error(transparent)]
    Core(#[from] ferrax_core::Error),
    /// Reading or writing the on-disk kernel cache.
    #[error("kernel cache {path}: {msg}")]
    Cache { path: String, msg: String },
}

impl Error {
    pub(crate) fn unsupported(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Unsupported {
            op: op.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn dtype(op: &'static str, expected: DType, got: DType) -> Self {
        Error::Mismatch {
            op,
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

impl From<cudarc::driver::DriverError> for Error {
    fn from(e: cudarc::driver::DriverError) -> Self {
        Error::Driver(e.to_string())
    }
}

impl From<cudarc::cublas::result::CublasError> for Error {
    fn from(e: cudarc::cublas::result::CublasError) -> Self {
        Error::Blas(e.to_string())
    }
}

/// `Result` with ferrax-cuda's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
