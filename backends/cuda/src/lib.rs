//! ferrax-cuda: the CUDA device backend (cudarc, NVRTC-fused kernels, cuBLAS); filled in by [E9].
