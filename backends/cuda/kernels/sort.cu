// Row sort (ascending, NaN last, as the host sort) of rows up to FX_SORT_MAX elements: one
// block per row, a bitonic network in shared memory padded with +NaN-like sentinels. Longer
// rows are not handled here (the executor falls back to the host).

#define FX_SORT_MAX 2048

// a goes after b: NaN is greater than everything.
template <typename T>
__device__ __forceinline__ bool fx_gt(T a, T b) {
    if (b != b) return false;
    if (a != a) return true;
    return a > b;
}

template <typename T>
__device__ void fx_sort_rows(T* __restrict__ data, fx_u64 len) {
    __shared__ T s[FX_SORT_MAX];
    __shared__ unsigned char pad[FX_SORT_MAX];
    T* row = data + (fx_u64)blockIdx.x * len;
    unsigned p2 = 1;
    while (p2 < len) p2 <<= 1;
    for (unsigned i = threadIdx.x; i < p2; i += blockDim.x) {
        pad[i] = i >= len;
        s[i] = i < len ? row[i] : T(0);
    }
    __syncthreads();
    for (unsigned k = 2; k <= p2; k <<= 1) {
        for (unsigned j = k >> 1; j > 0; j >>= 1) {
            for (unsigned i = threadIdx.x; i < p2; i += blockDim.x) {
                unsigned l = i ^ j;
                if (l > i) {
                    bool up = (i & k) == 0;
                    // Padding sorts after every real element.
                    bool gt = pad[i] != pad[l] ? (pad[i] > pad[l]) : (!pad[i] && fx_gt(s[i], s[l]));
                    if (gt == up) {
                        T t = s[i]; s[i] = s[l]; s[l] = t;
                        unsigned char q = pad[i]; pad[i] = pad[l]; pad[l] = q;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (unsigned i = threadIdx.x; i < len; i += blockDim.x) {
        row[i] = s[i];
    }
}

extern "C" __global__ void fx_sort_rows_f32(float* data, fx_u64 len) { fx_sort_rows(data, len); }
extern "C" __global__ void fx_sort_rows_f64(double* data, fx_u64 len) { fx_sort_rows(data, len); }
