//! ferrax-cpu: host kernels (gemm, convolution helpers, chunked elementwise loops, deterministic reductions) over plain slices; ferrax-core calls them.
