// Reductions over a contiguous block of axes: the operand is viewed as [outer, r, inner]
// and the result as [outer, inner]. One block per output element when inner == 1 (rows:
// a shared-memory tree, fixed order, so results do not depend on timing); otherwise one
// thread per output element walking r serially (coalesced across inner).

template <typename T> struct FxSum { __device__ static T id() { return T(0); } __device__ static T op(T a, T b) { return a + b; } };
template <typename T> struct FxProd { __device__ static T id() { return T(1); } __device__ static T op(T a, T b) { return a * b; } };
template <typename T> struct FxMax { __device__ static T id() { return -T(fx_inf()); } __device__ static T op(T a, T b) { return fx_max(a, b); } };
template <typename T> struct FxMin { __device__ static T id() { return T(fx_inf()); } __device__ static T op(T a, T b) { return fx_min(a, b); } };

#define FX_REDUCE_THREADS 256

template <typename T, typename Op>
__device__ void fx_reduce_rows(const T* __restrict__ x, T* __restrict__ out, fx_u64 r) {
    __shared__ T buf[FX_REDUCE_THREADS];
    const T* row = x + (fx_u64)blockIdx.x * r;
    T acc = Op::id();
    for (fx_u64 j = threadIdx.x; j < r; j += blockDim.x) {
        acc = Op::op(acc, row[j]);
    }
    buf[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            buf[threadIdx.x] = Op::op(buf[threadIdx.x], buf[threadIdx.x + s]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[blockIdx.x] = buf[0];
    }
}

template <typename T, typename Op>
__device__ void fx_reduce_strided(const T* __restrict__ x, T* __restrict__ out, fx_u64 outer, fx_u64 r, fx_u64 inner) {
    for (fx_u64 t = (fx_u64)blockIdx.x * blockDim.x + threadIdx.x; t < outer * inner; t += (fx_u64)blockDim.x * gridDim.x) {
        fx_u64 o = t / inner, k = t % inner;
        const T* p = x + o * r * inner + k;
        T acc = Op::id();
        for (fx_u64 j = 0; j < r; ++j) {
            acc = Op::op(acc, p[j * inner]);
        }
        out[t] = acc;
    }
}

#define FX_REDUCE(NAME, T, OP) \
    extern "C" __global__ void fx_reduce_rows_##NAME(const T* __restrict__ x, T* __restrict__ out, fx_u64 r) { \
        fx_reduce_rows<T, OP<T> >(x, out, r); } \
    extern "C" __global__ void fx_reduce_strided_##NAME(const T* __restrict__ x, T* __restrict__ out, fx_u64 outer, fx_u64 r, fx_u64 inner) { \
        fx_reduce_strided<T, OP<T> >(x, out, outer, r, inner); }

FX_REDUCE(sum_f32, float, FxSum)
FX_REDUCE(sum_f64, double, FxSum)
FX_REDUCE(prod_f32, float, FxProd)
FX_REDUCE(prod_f64, double, FxProd)
FX_REDUCE(max_f32, float, FxMax)
FX_REDUCE(max_f64, double, FxMax)
FX_REDUCE(min_f32, float, FxMin)
FX_REDUCE(min_f64, double, FxMin)
