// Host stand-ins for the CUDA built-ins the generated and embedded kernels use, so a host
// C++ compiler can check their syntax and types (and, for the grid-stride fused kernels,
// run them: one "thread" with blockDim = gridDim = 1 walks every element). Not used on GPUs.
#pragma once
#include <math.h>
#include <string.h>
#include <stdint.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(n)

struct fx_dim3 { unsigned x, y, z; };
static fx_dim3 blockIdx = {0, 0, 0};
static fx_dim3 threadIdx = {0, 0, 0};
static fx_dim3 blockDim = {1, 1, 1};
static fx_dim3 gridDim = {1, 1, 1};
static const int warpSize = 32;

inline void __syncthreads() {}
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long u; memcpy(&u, &d, 8); return u; }
inline double __longlong_as_double(long long u) { double d; memcpy(&d, &u, 8); return d; }
inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline double atomicAdd(double* p, double v) { double o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }
inline unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { unsigned o = *p; if (o == c) *p = v; return o; }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long c, unsigned long long v) {
    unsigned long long o = *p; if (o == c) *p = v; return o;
}
inline float __shfl_down_sync(unsigned, float v, int, int = 32) { return v; }
inline double __shfl_down_sync(unsigned, double v, int, int = 32) { return v; }

// erfinv has no C library form: Newton on erf from a rough start (host checks only).
inline double erfinv(double y) {
    if (y != y || y < -1.0 || y > 1.0) return NAN;
    if (y == 1.0) return INFINITY;
    if (y == -1.0) return -INFINITY;
    double x = 0.0;
    for (int i = 0; i < 100; ++i) {
        double err = erf(x) - y;
        x -= err / (1.1283791670955126 * exp(-x * x));
    }
    return x;
}
inline float erfinvf(float y) { return (float)erfinv((double)y); }
