// ferrax CUDA prelude: device helpers shared by generated fused kernels and the
// hand-written kernels. Plain C++ over `float`/`double`/`unsigned short`, so the same text
// compiles under NVRTC (no CUDA headers needed: bf16/f16 are carried as their bits) and,
// with a small stub header, under a host C++ compiler for the checks that run without a GPU.

typedef unsigned long long fx_u64;
typedef long long fx_i64;

// --- bf16 / f16 <-> f32, round to nearest even (the `half` crate's conversions) ----------

__device__ __forceinline__ float fx_bf16_to_f32(unsigned short h) {
    return __uint_as_float(((unsigned)h) << 16);
}

__device__ __forceinline__ unsigned short fx_f32_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (unsigned short)((u >> 16) | 0x40u);  // quiet the NaN, keep sign and payload
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

__device__ __forceinline__ float fx_f16_to_f32(unsigned short h) {
    unsigned sign = ((unsigned)h & 0x8000u) << 16;
    unsigned e = ((unsigned)h >> 10) & 0x1fu;
    unsigned m = (unsigned)h & 0x3ffu;
    if (e == 0x1fu) {
        return __uint_as_float(sign | 0x7f800000u | (m << 13));
    }
    if (e == 0u) {
        // Zero or subnormal: m * 2^-24 is exact in f32.
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

__device__ __forceinline__ unsigned short fx_f32_to_f16(float f) {
    unsigned x = __float_as_uint(f);
    unsigned sign = (x >> 16) & 0x8000u;
    unsigned ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        unsigned nan = ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0u;
        return (unsigned short)(sign | 0x7c00u | nan);
    }
    if (ax >= 0x477ff000u) {
        return (unsigned short)(sign | 0x7c00u);  // rounds past 65504: infinity
    }
    if (ax < 0x38800000u) {
        // Below the smallest normal f16 (2^-14): the result is a subnormal in units of 2^-24.
        unsigned e = ax >> 23;
        unsigned shift = 126u - e;
        if (shift > 25u) {
            return (unsigned short)sign;
        }
        unsigned m = (ax & 0x7fffffu) | 0x800000u;
        unsigned r = m >> shift;
        unsigned rem = m & ((1u << shift) - 1u);
        unsigned half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) {
            r += 1u;
        }
        return (unsigned short)(sign | r);
    }
    unsigned r = (ax >> 13) - (112u << 10);
    unsigned rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) {
        r += 1u;  // a carry into the exponent is the correct rounding, up to infinity
    }
    return (unsigned short)(sign | r);
}

// bf16/f16 compute in f32 and round once per primitive, as on the host.
__device__ __forceinline__ float fx_round_bf16(float x) { return fx_bf16_to_f32(fx_f32_to_bf16(x)); }
__device__ __forceinline__ float fx_round_f16(float x) { return fx_f16_to_f32(fx_f32_to_f16(x)); }

// Infinity and NaN without <math.h> (NVRTC has no C headers).
__device__ __forceinline__ double fx_inf() { return __longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ double fx_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

// --- scalar helpers with the host forms' semantics ---------------------------------------

// sign: ±0 and NaN map to themselves.
__device__ __forceinline__ float fx_sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }
__device__ __forceinline__ double fx_sign(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x); }

// max/min propagate NaN (CUDA's fmaxf/fminf drop it), as jnp.maximum.
__device__ __forceinline__ float fx_max(float a, float b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
__device__ __forceinline__ double fx_max(double a, double b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
__device__ __forceinline__ float fx_min(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
__device__ __forceinline__ double fx_min(double a, double b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

// logistic without overflow: e = exp(-|x|) <= 1.
__device__ __forceinline__ float fx_logistic(float x) {
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}
__device__ __forceinline__ double fx_logistic(double x) {
    double e = exp(-fabs(x));
    double r = 1.0 / (1.0 + e);
    return x >= 0.0 ? r : e * r;
}

// digamma: reflection below 1/2, recurrence up to 10, then the asymptotic series (the host
// form, `digamma_f64`); NaN at non-positive integers.
__device__ __forceinline__ double fx_digamma(double x) {
    const double pi = 3.141592653589793238462643383279502884;
    if (x != x || x == -fx_inf()) return fx_nan();
    if (x == fx_inf()) return x;
    if (x <= 0.0 && x == floor(x)) return fx_nan();
    double acc = 0.0;
    if (x < 0.5) {
        double r = x - round(x);
        acc -= pi / tan(pi * r);
        x = 1.0 - x;
    }
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    double z = 1.0 / (x * x);
    double series = z * (1.0 / 12.0 - z * (1.0 / 120.0 - z * (1.0 / 252.0 - z * (1.0 / 240.0
        - z * (1.0 / 132.0 - z * (691.0 / 32760.0 - z / 12.0))))));
    return acc + log(x) - 0.5 / x - series;
}
__device__ __forceinline__ float fx_digamma(float x) { return (float)fx_digamma((double)x); }
