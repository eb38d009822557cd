//! General matrix multiply over strided slices: `C ← α·A·B + β·C`. One entry point
//! ([`gemm`]) hides which implementation runs, so the choice can change with measurements.
//!
//! The implementation is `matrixmultiply` (with its `threading` feature). Measured on the
//! 2-core AVX-512 (Zen 4) machine kind, square, both cores, while the machine was otherwise
//! idle; median GFLOP/s, range over 4 runs (`/tmp` harness calling both crates directly):
//!
//! | n | matrixmultiply 0.3.11 | `gemm` 0.18.2 (stable Rust) |
//! |---|---|---|
//! | f32 256 | 88–142 | 116–146 |
//! | f32 1024 | 139–176 | 123–169 |
//! | f32 2048 | 158–175 | 132–179 |
//! | f64 1024 | 67–85 | 61–82 |
//!
//! matrixmultiply had the higher median in 4/4 runs at f32 1024 and f64 1024 and 3/4 at
//! 2048; `gemm` in 3/4 at 256. `gemm` 0.18 enables its AVX-512 kernels only with its
//! `nightly` feature, so on stable it runs AVX2 kernels like matrixmultiply; its tree is
//! 47 crates against 8. One dependency is kept: matrixmultiply. Through the whole stack
//! (`cargo bench --bench ops -- b1`, idle machine) B1 measured 136 / 184 / 180 GFLOP/s f32
//! at n = 256 / 1024 / 2048 and 85 GFLOP/s f64 at 1024 (OpenBLAS: ~205 f32, ~103 f64).
//!
//! Determinism: matrixmultiply splits work over blocks of the output (its `m` and `n`
//! loops) and never over `k`; each output element is reduced in the same order whatever
//! the number of threads. The batched variant assigns whole matrices to rayon tasks, so the
//! same holds there.

use rayon::prelude::*;

/// Element types [`gemm`] runs on with a vectorized kernel.
pub trait GemmElem: Copy + Send + Sync + PartialEq + 'static {
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
    /// # Safety
    /// Pointers and strides must describe in-bounds matrices; `c` must not alias `a` or `b`
    /// and distinct `(i, j)` must address distinct elements of `c`.
    #[doc(hidden)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl GemmElem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract of `raw_gemm`.
        unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

impl GemmElem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract of `raw_gemm`.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

/// A read-only strided matrix inside a slice: element `(i, j)` is
/// `data[offset + i*rs + j*cs]`. Strides are in elements; a stride of 0 repeats.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The backing slice.
    pub data: &'a [T],
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [T], cols: usize) -> Self {
        MatRef {
            data,
            offset: 0,
            rs: cols,
            cs: 1,
        }
    }
    /// A strided view.
    pub fn new(data: &'a [T], offset: usize, rs: usize, cs: usize) -> Self {
        MatRef {
            data,
            offset,
            rs,
            cs,
        }
    }
    /// The transpose (swaps the strides; no copy).
    pub fn t(self) -> Self {
        MatRef {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    /// Panics (an internal invariant: callers build views from shapes they checked) unless
    /// every element of a `rows x cols` matrix lies inside `data`.
    fn check(&self, what: &str, rows: usize, cols: usize) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs;
        assert!(
            last < self.data.len(),
            "gemm: {what} view ({rows}x{cols}, offset {}, strides {}x{}) overruns its slice of {}",
            self.offset,
            self.rs,
            self.cs,
            self.data.len()
        );
    }
}

/// The mutable output matrix of [`gemm`]: element `(i, j)` is `data[i*rs + j*cs]`.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    /// The backing slice.
    pub data: &'a mut [T],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A row-major matrix with `cols` columns over `data`.
    pub fn row_major(data: &'a mut [T], cols: usize) -> Self {
        MatMut {
            data,
            rs: cols,
            cs: 1,
        }
    }
}

/// `C ← α·A·B + β·C` for an `m x k` matrix `A` and a `k x n` matrix `B` given as strided
/// views (transposes are free: swap the strides). When `β` is zero `C` is not read, so it
/// may hold anything (NaN included).
///
/// Panics if a view overruns its slice or if `C`'s strides make two elements overlap:
/// these are bugs of the caller, not properties of user data.
///
/// ```
/// use ferrax_cpu::{gemm, MatMut, MatRef};
/// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
/// let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
/// let mut c = [0.0f32; 4];
/// gemm(2, 3, 2, 1.0, MatRef::row_major(&a, 3), MatRef::row_major(&b, 2), 0.0,
///      MatMut::row_major(&mut c, 2));
/// assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
/// ```
pub fn gemm<T: GemmElem>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    a.check("A", m, k);
    b.check("B", k, n);
    let cv = MatRef {
        data: &*c.data,
        offset: 0,
        rs: c.rs,
        cs: c.cs,
    };
    cv.check("C", m, n);
    assert!(
        m <= 1
            || n <= 1
            || (c.rs != c.cs && c.rs.min(c.cs) > 0 && {
                let (small, big, small_n) = if c.cs < c.rs {
                    (c.cs, c.rs, n)
                } else {
                    (c.rs, c.cs, m)
                };
                small * small_n <= big
            }),
        "gemm: output strides {}x{} overlap for a {m}x{n} matrix",
        c.rs,
        c.cs
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the checks above keep every access of A, B and C inside their slices, C
    // does not overlap itself, and `&mut` guarantees C aliases neither A nor B.
    unsafe {
        T::raw_gemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr().add(a.offset),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.offset),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
        )
    }
}

/// A batch of strided matrices: matrix `p` starts at `offset + p*bs`. A batch stride of 0
/// reuses one matrix for every batch entry.
#[derive(Clone, Copy, Debug)]
pub struct BatchRef<'a, T> {
    /// The first matrix.
    pub mat: MatRef<'a, T>,
    /// Distance between consecutive matrices, in elements.
    pub bs: usize,
}

/// Below this many multiply-adds per matrix, batch entries are spread over rayon tasks;
/// above it, each gemm call is big enough to use both cores on its own.
const BATCH_PAR_FLOPS: usize = 1 << 21;

/// `C[p] ← A[p]·B[p]` for `p < batch`, with `C` a contiguous row-major `[batch, m, n]`
/// buffer. Small matrices run in parallel across the batch (each matrix on one task, so
/// results do not depend on the number of threads); large ones one after another with the
/// gemm's own threading.
pub fn gemm_batched<T: GemmElem>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a: BatchRef<'_, T>,
    b: BatchRef<'_, T>,
    c: &mut [T],
) {
    assert_eq!(c.len(), batch * m * n, "gemm_batched: output size");
    if c.is_empty() {
        return;
    }
    let one = |p: usize, cp: &mut [T]| {
        let ap = MatRef {
            offset: a.mat.offset + p * a.bs,
            ..a.mat
        };
        let bp = MatRef {
            offset: b.mat.offset + p * b.bs,
            ..b.mat
        };
        gemm(m, k, n, T::ONE, ap, bp, T::ZERO, MatMut::row_major(cp, n));
    };
    if batch > 1 && m * k * n < BATCH_PAR_FLOPS && batch * m * k * n >= BATCH_PAR_FLOPS / 4 {
        c.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(p, cp)| one(p, cp));
    } else {
        c.chunks_mut(m * n)
            .enumerate()
            .for_each(|(p, cp)| one(p, cp));
    }
}

/// Arithmetic for [`gemm_naive`]: integers wrap (as XLA's do), bools use or/and.
pub trait NaiveElem: Copy + Send + Sync + 'static {
    /// The additive identity.
    const ZERO: Self;
    /// `acc + a*b` in the type's ring.
    fn mul_add(acc: Self, a: Self, b: Self) -> Self;
}
macro_rules! naive_int {
    ($($t:ty),*) => {$(
        impl NaiveElem for $t {
            const ZERO: Self = 0;
            #[inline]
            fn mul_add(acc: Self, a: Self, b: Self) -> Self {
                acc.wrapping_add(a.wrapping_mul(b))
            }
        }
    )*};
}
naive_int!(i32, i64, u32);
impl NaiveElem for bool {
    const ZERO: Self = false;
    #[inline]
    fn mul_add(acc: Self, a: Self, b: Self) -> Self {
        acc | (a & b)
    }
}
impl NaiveElem for f32 {
    const ZERO: Self = 0.0;
    #[inline]
    fn mul_add(acc: Self, a: Self, b: Self) -> Self {
        acc + a * b
    }
}
impl NaiveElem for f64 {
    const ZERO: Self = 0.0;
    #[inline]
    fn mul_add(acc: Self, a: Self, b: Self) -> Self {
        acc + a * b
    }
}

/// A straightforward matrix product `C ← A·B` (C not read) for element types without a
/// vectorized kernel (integers, bool); `k` is reduced in increasing order.
pub fn gemm_naive<T: NaiveElem>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
) {
    a.check("A", m, k);
    b.check("B", k, n);
    MatRef {
        data: &*c.data,
        offset: 0,
        rs: c.rs,
        cs: c.cs,
    }
    .check("C", m, n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            for l in 0..k {
                acc = T::mul_add(
                    acc,
                    a.data[a.offset + i * a.rs + l * a.cs],
                    b.data[b.offset + l * b.rs + j * b.cs],
                );
            }
            c.data[i * c.rs + j * c.cs] = acc;
        }
    }
}

/// [`gemm_naive`] over a batch; same views and output layout as [`gemm_batched`].
pub fn gemm_naive_batched<T: NaiveElem>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a: BatchRef<'_, T>,
    b: BatchRef<'_, T>,
    c: &mut [T],
) {
    assert_eq!(c.len(), batch * m * n, "gemm_naive_batched: output size");
    if c.is_empty() {
        return;
    }
    for (p, cp) in c.chunks_mut(m * n).enumerate() {
        let ap = MatRef {
            offset: a.mat.offset + p * a.bs,
            ..a.mat
        };
        let bp = MatRef {
            offset: b.mat.offset + p * b.bs,
            ..b.mat
        };
        gemm_naive(m, k, n, ap, bp, MatMut::row_major(cp, n));
    }
}
