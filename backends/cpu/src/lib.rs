//! ferrax-cpu: host kernels (gemm, convolution helpers, chunked elementwise loops,
//! deterministic reductions) over plain slices, shapes and strides; ferrax-core calls them.
//! Nothing here knows ferrax's types, and every kernel gives bit-identical results
//! whatever the number of threads.

pub mod conv;
pub mod gemm;

pub use conv::{conv, conv_with, im2col, ConvGeom};
pub use gemm::{
    gemm, gemm_batched, gemm_naive, gemm_naive_batched, BatchRef, GemmElem, MatMut, MatRef,
    NaiveElem,
};
