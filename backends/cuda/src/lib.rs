//! ferrax-cuda: the CUDA device backend. Fused elementwise regions become CUDA C generated
//! from the IR ([`codegen`]) and compiled by NVRTC with a memory and disk cache
//! ([`compile`]); `dot_general` runs through cuBLAS; reductions, transposes, gathers and
//! sorts are hand-written kernels ([`kernels`]). Everything loads CUDA dynamically: the
//! crate builds anywhere, and a machine without a driver gets an [`Error`], never a panic.
//!
//! [`backend`] plugs all of this into ferrax-core as the `cuda` device ([`register`]; the
//! facade's `cuda` feature registers it at start-up).
//!
//! Code generation needs no GPU, so it is tested everywhere (the generated source is
//! compiled, and run, by the host C++ compiler against a stub header; see `tests/`).

pub mod backend;
pub mod codegen;
pub mod compile;
pub mod device;
mod error;
pub mod exec;
pub mod kernels;

pub use backend::{register, CudaBackend};
pub use device::{
    default_device, device_count, libraries, parse_device, probe, CudaDevice, DeviceBuffer,
    Libraries,
};
pub use error::{Error, Result};
pub use exec::{CudaExecutable, DeviceArray, StepRoute};
