// Row gather and scatter-add along the leading axis of a [rows, width] operand (embedding
// lookups and their gradients). Indices wrap once if negative and clamp into range, as the
// host `gather` does.

__device__ __forceinline__ fx_u64 fx_clip_index(fx_i64 i, fx_u64 d) {
    fx_i64 n = (fx_i64)d;
    if (i < 0) i += n;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return (fx_u64)i;
}

template <typename T, typename I>
__device__ void fx_take_rows(const T* __restrict__ x, const I* __restrict__ idx, T* __restrict__ out,
                             fx_u64 rows, fx_u64 width, fx_u64 count) {
    fx_u64 n = count * width;
    for (fx_u64 t = (fx_u64)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (fx_u64)blockDim.x * gridDim.x) {
        fx_u64 k = t / width, c = t % width;
        out[t] = x[fx_clip_index((fx_i64)idx[k], rows) * width + c];
    }
}

// Atomic accumulation: the summation order of duplicate indices is not fixed, so f32
// results may differ from the host in the last bits where indices repeat.
template <typename T, typename I>
__device__ void fx_scatter_add_rows(T* __restrict__ acc, const I* __restrict__ idx, const T* __restrict__ upd,
                                    fx_u64 rows, fx_u64 width, fx_u64 count) {
    fx_u64 n = count * width;
    for (fx_u64 t = (fx_u64)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (fx_u64)blockDim.x * gridDim.x) {
        fx_u64 k = t / width, c = t % width;
        atomicAdd(&acc[fx_clip_index((fx_i64)idx[k], rows) * width + c], upd[t]);
    }
}

extern "C" __global__ void fx_take_rows_f32_i32(const float* x, const int* idx, float* out, fx_u64 rows, fx_u64 width, fx_u64 count) { fx_take_rows(x, idx, out, rows, width, count); }
extern "C" __global__ void fx_take_rows_f64_i32(const double* x, const int* idx, double* out, fx_u64 rows, fx_u64 width, fx_u64 count) { fx_take_rows(x, idx, out, rows, width, count); }
extern "C" __global__ void fx_scatter_add_rows_f32_i32(float* acc, const int* idx, const float* upd, fx_u64 rows, fx_u64 width, fx_u64 count) { fx_scatter_add_rows(acc, idx, upd, rows, width, count); }
extern "C" __global__ void fx_scatter_add_rows_f64_i32(double* acc, const int* idx, const double* upd, fx_u64 rows, fx_u64 width, fx_u64 count) { fx_scatter_add_rows(acc, idx, upd, rows, width, count); }
