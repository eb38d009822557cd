//! Wider-vector copies of the commonest f32 member kernels for the fused executor. The
//! crate is built for baseline x86-64 (SSE2: 4 lanes); on a CPU with AVX2 + FMA (8 lanes)
//! or AVX-512F + FMA (16 lanes) these run the same scalar formulas (the `#[inline(always)]`
//! `exp_f32`/`tanh_f32`/`logistic_f32` of `prim::unary`: IEEE arithmetic whose only fused
//! operations are explicit `mul_add`s, which are exact-then-rounded on every path, and no
//! FMA contraction elsewhere), so the bits equal the primitives' own slice forms and the
//! scalar form on any CPU.

use crate::prim::binary::{Binary, BinaryOp};
use crate::prim::unary::{exp_f32, logistic_f32, tanh_f32, Unary, UnaryOp};
use crate::prim::Primitive;

/// A member op with a multiversioned kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Abs,
    Exp,
    Tanh,
    Logistic,
    Sqrt,
}

/// The fast kernel of a primitive, if it has one.
pub(crate) fn classify(p: &dyn Primitive) -> Option<Fast> {
    let any = p.as_any();
    if let Some(Binary(op)) = any.downcast_ref::<Binary>() {
        return match op {
            BinaryOp::Add => Some(Fast::Add),
            BinaryOp::Sub => Some(Fast::Sub),
            BinaryOp::Mul => Some(Fast::Mul),
            BinaryOp::Div => Some(Fast::Div),
            _ => None,
        };
    }
    if let Some(Unary(op)) = any.downcast_ref::<Unary>() {
        return match op {
            UnaryOp::Neg => Some(Fast::Neg),
            UnaryOp::Abs => Some(Fast::Abs),
            UnaryOp::Exp => Some(Fast::Exp),
            UnaryOp::Tanh => Some(Fast::Tanh),
            UnaryOp::Logistic => Some(Fast::Logistic),
            UnaryOp::Sqrt => Some(Fast::Sqrt),
            _ => None,
        };
    }
    None
}

#[inline(always)]
fn body(op: Fast, ins: &[&[f32]], out: &mut [f32]) {
    macro_rules! un {
        ($f:expr) => {{
            let a = &ins[0][..out.len()];
            for (o, &x) in out.iter_mut().zip(a) {
                *o = $f(x);
            }
        }};
    }
    macro_rules! bin {
        ($f:expr) => {{
            let a = &ins[0][..out.len()];
            let b = &ins[1][..out.len()];
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = $f(x, y);
            }
        }};
    }
    match op {
        Fast::Add => bin!(|x: f32, y: f32| x + y),
        Fast::Sub => bin!(|x: f32, y: f32| x - y),
        Fast::Mul => bin!(|x: f32, y: f32| x * y),
        Fast::Div => bin!(|x: f32, y: f32| x / y),
        Fast::Neg => un!(|x: f32| -x),
        Fast::Abs => un!(|x: f32| x.abs()),
        Fast::Exp => un!(exp_f32),
        Fast::Tanh => un!(tanh_f32),
        Fast::Logistic => un!(logistic_f32),
        Fast::Sqrt => un!(|x: f32| x.sqrt()),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn body_avx512(op: Fast, ins: &[&[f32]], out: &mut [f32]) {
    body(op, ins, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_avx2(op: Fast, ins: &[&[f32]], out: &mut [f32]) {
    body(op, ins, out)
}

/// `out = op(ins...)` elementwise, on the widest vectors this CPU has.
pub(crate) fn apply_f32(op: Fast, ins: &[&[f32]], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // Without FMA the `mul_add`s of exp/tanh/logistic would be libcalls.
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { body_avx512(op, ins, out) };
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { body_avx2(op, ins, out) };
        }
    }
    body(op, ins, out)
}

/// Copies `len` elements from `src` to `dst` with non-temporal stores: a region's output
/// of many megabytes is not read again soon, and streaming it skips the read-for-ownership
/// of every destination line (a third of the memory traffic). Call [`store_fence`] before
/// other threads read `dst`.
///
/// # Safety
/// `src` and `dst` must be valid for `len` elements and must not overlap.
pub(crate) unsafe fn stream_copy<T: Copy>(src: *const T, dst: *mut T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let bytes = len * std::mem::size_of::<T>();
        let (s, d) = (src as *const u8, dst as *mut u8);
        let head = d.align_offset(16).min(bytes);
        let end = head + (bytes - head) / 16 * 16;
        // SAFETY: all offsets stay below `bytes`; the body's stores are 16-byte aligned.
        unsafe {
            std::ptr::copy_nonoverlapping(s, d, head);
            let mut i = head;
            while i < end {
                let v = _mm_loadu_si128(s.add(i) as *const __m128i);
                _mm_stream_si128(d.add(i) as *mut __m128i, v);
                i += 16;
            }
            std::ptr::copy_nonoverlapping(s.add(end), d.add(end), bytes - end);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: as the caller promised.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, len)
    }
}

/// Orders earlier non-temporal stores before later stores (see [`stream_copy`]).
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions (SSE is part of x86-64).
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}
