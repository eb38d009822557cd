// General transpose (axis permutation) up to rank 6 by element size: each output element
// reads the input at the permuted offset. Shapes and strides travel by value in FxPerm.

struct FxPerm {
    fx_u64 rank;
    fx_u64 out_shape[6];
    fx_u64 in_stride[6];  // input stride of the axis that lands at each output axis
};

template <typename T>
__device__ void fx_transpose(const T* __restrict__ x, T* __restrict__ out, FxPerm p, fx_u64 n) {
    for (fx_u64 i = (fx_u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (fx_u64)blockDim.x * gridDim.x) {
        fx_u64 rem = i, off = 0;
        for (int d = (int)p.rank - 1; d >= 0; --d) {
            off += (rem % p.out_shape[d]) * p.in_stride[d];
            rem /= p.out_shape[d];
        }
        out[i] = x[off];
    }
}

extern "C" __global__ void fx_transpose_b1(const unsigned char* x, unsigned char* out, FxPerm p, fx_u64 n) { fx_transpose(x, out, p, n); }
extern "C" __global__ void fx_transpose_b2(const unsigned short* x, unsigned short* out, FxPerm p, fx_u64 n) { fx_transpose(x, out, p, n); }
extern "C" __global__ void fx_transpose_b4(const unsigned* x, unsigned* out, FxPerm p, fx_u64 n) { fx_transpose(x, out, p, n); }
extern "C" __global__ void fx_transpose_b8(const fx_u64* x, fx_u64* out, FxPerm p, fx_u64 n) { fx_transpose(x, out, p, n); }
