//! Reverse-mode (`vjp`) and batching (`batch`) rules of `dot_general` and
//! `conv_general_dilated`. Gradients are checked against central finite differences in f64
//! (first and second order, reverse and forward mode) over the same kinds of cases as
//! `tests/linalg.rs`, and against JAX reference values (`tests/reference/grads_shared.json`,
//! float64 and float32). Batching rules are checked against a per-example loop: the
//! batched program must equal it bit for bit.

use ferrax::ad::{grad, jvp, value_and_grad};
use ferrax::ops::composite::{log_softmax, logsumexp};
use ferrax::ops::linalg::one_hot_array;
use ferrax::prim::binary::{add, mul};
use ferrax::prim::conv::{conv, conv_general_dilated, ConvGeneralDilated, Padding};
use ferrax::prim::convert::convert;
use ferrax::prim::dot_general::{dot_general, matmul, DotGeneral};
use ferrax::prim::reduce::reduce_sum;
use ferrax::prim::reshape::reshape;
use ferrax::prim::transpose::transpose;
use ferrax::prim::unary::tanh;
use ferrax::prim::Primitive;
use ferrax::testing::{check_grads, GradCheck};
use ferrax::vmap::{index_axis, move_axis, vmap};
use ferrax::{Array, DType, Result};
use std::sync::Arc;

mod common;

// ---------------------------------------------------------------------------------------
// Helpers.

/// Deterministic pseudo-random values in `[-1, 1)`.
fn arr(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn f64s(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

fn sum_all(x: &Array) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(x, &axes)
}

/// A nonlinear scalar loss of `y`: `sum(tanh(y) * w)` with fixed weights `w`. The ops under
/// test are bilinear, so a plain sum would have a trivial Hessian; tanh makes the second
/// order check exercise the vjp rules differentiated again with non-constant cotangents.
fn loss(y: &Array) -> Result<Array> {
    let w = arr(y.shape(), 991);
    sum_all(&mul(&tanh(y)?, &w)?)
}

fn opts() -> GradCheck {
    GradCheck {
        eps: 1e-4,
        rtol: 1e-5,
        atol: 1e-7,
        directions: 3,
        second_order: true,
        seed: 7,
    }
}

// ---------------------------------------------------------------------------------------
// dot_general gradients.

struct DotCase {
    name: &'static str,
    a: &'static [usize],
    b: &'static [usize],
    lc: &'static [usize],
    rc: &'static [usize],
    lb: &'static [usize],
    rb: &'static [usize],
}

const DOT_CASES: &[DotCase] = &[
    DotCase {
        name: "matmul",
        a: &[3, 4],
        b: &[4, 5],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "a^T b",
        a: &[4, 3],
        b: &[4, 5],
        lc: &[0],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "a b^T",
        a: &[3, 4],
        b: &[5, 4],
        lc: &[1],
        rc: &[1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "a^T b^T",
        a: &[4, 3],
        b: &[5, 4],
        lc: &[0],
        rc: &[1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "vector dot",
        a: &[6],
        b: &[6],
        lc: &[0],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "matrix-vector",
        a: &[3, 4],
        b: &[4],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "vector-matrix",
        a: &[4],
        b: &[4, 5],
        lc: &[0],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "outer",
        a: &[3],
        b: &[4],
        lc: &[],
        rc: &[],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "batched",
        a: &[2, 3, 4],
        b: &[2, 4, 5],
        lc: &[2],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "batch axes elsewhere",
        a: &[3, 2, 4],
        b: &[4, 5, 2],
        lc: &[2],
        rc: &[0],
        lb: &[1],
        rb: &[2],
    },
    DotCase {
        name: "two batch axes, swapped order",
        a: &[2, 3, 4, 5],
        b: &[5, 2, 4, 3],
        lc: &[2],
        rc: &[2],
        lb: &[3, 0],
        rb: &[0, 1],
    },
    DotCase {
        name: "two contracting axes",
        a: &[3, 4, 2],
        b: &[2, 5, 4],
        lc: &[1, 2],
        rc: &[2, 0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "contract + batch + free mixed",
        a: &[2, 3, 4, 3],
        b: &[3, 4, 2, 5],
        lc: &[3, 2],
        rc: &[0, 1],
        lb: &[0],
        rb: &[2],
    },
    DotCase {
        name: "batched outer",
        a: &[2, 3],
        b: &[2, 4],
        lc: &[],
        rc: &[],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "size-1 dims",
        a: &[1, 4, 1],
        b: &[1, 4, 3],
        lc: &[1],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "full contraction",
        a: &[3, 4],
        b: &[4, 3],
        lc: &[0, 1],
        rc: &[1, 0],
        lb: &[],
        rb: &[],
    },
];

#[test]
fn dot_general_grads_match_finite_differences() {
    for (ci, c) in DOT_CASES.iter().enumerate() {
        let a = arr(c.a, 2 * ci as u64);
        let b = arr(c.b, 2 * ci as u64 + 1);
        let f = |xs: &[Array]| loss(&dot_general(&xs[0], &xs[1], c.lc, c.rc, c.lb, c.rb)?);
        check_grads(&f, &[a, b], opts()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

/// Empty free, contracted and batch axes: cotangents keep the operands' shapes and are
/// zero where nothing was contracted (an empty sum).
#[test]
fn dot_general_empty_axes_grads() {
    let cases: &[(&[usize], &[usize], &[usize], &[usize], &[usize], &[usize])] = &[
        (&[0, 4], &[4, 5], &[1], &[0], &[], &[]),
        (&[3, 0], &[0, 5], &[1], &[0], &[], &[]),
        (&[0, 3, 4], &[0, 4, 2], &[2], &[1], &[0], &[0]),
    ];
    for (sa, sb, lc, rc, lb, rb) in cases {
        let (a, b) = (arr(sa, 1), arr(sb, 2));
        let g = grad(&vec![a.clone(), b.clone()], |w: &Vec<Array>| {
            let y = dot_general(&w[0], &w[1], lc, rc, lb, rb).unwrap();
            sum_all(&mul(&y, &y).unwrap()).unwrap()
        })
        .unwrap();
        assert_eq!(g[0].shape(), a.shape());
        assert_eq!(g[1].shape(), b.shape());
        assert!(f64s(&g[0]).iter().chain(&f64s(&g[1])).all(|&v| v == 0.0));
    }
}

/// Reverse mode against the closed form of a plain matmul: for `C = A B` and `L = sum(G*C)`,
/// `dA = G B^T`, `dB = A^T G`.
#[test]
fn matmul_grad_closed_form() {
    let (a, b, g) = (arr(&[3, 4], 1), arr(&[4, 5], 2), arr(&[3, 5], 3));
    let gr = grad(&vec![a.clone(), b.clone()], |w: &Vec<Array>| {
        sum_all(&mul(&matmul(&w[0], &w[1]).unwrap(), &g).unwrap()).unwrap()
    })
    .unwrap();
    let want_a = dot_general(&g, &b, &[1], &[1], &[], &[]).unwrap();
    let want_b = dot_general(&a, &g, &[0], &[0], &[], &[]).unwrap();
    let close = |x: &Array, y: &Array| {
        assert_eq!(x.shape(), y.shape());
        for (p, q) in f64s(x).iter().zip(f64s(y)) {
            assert!((p - q).abs() <= 1e-13 * (1.0 + q.abs()), "{p} vs {q}");
        }
    };
    close(&gr[0], &want_a);
    close(&gr[1], &want_b);
}

#[test]
fn matmul_broadcasting_grads() {
    // (a shape, b shape): vectors, matrices, batch dims broadcasting against each other.
    let cases: &[(&[usize], &[usize])] = &[
        (&[4], &[4]),
        (&[3, 4], &[4]),
        (&[4], &[4, 5]),
        (&[2, 3, 4], &[4, 5]),
        (&[4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[1, 3, 4], &[2, 4, 5]),
    ];
    for (k, (sa, sb)) in cases.iter().enumerate() {
        let (a, b) = (arr(sa, 40 + k as u64), arr(sb, 60 + k as u64));
        let f = |xs: &[Array]| loss(&matmul(&xs[0], &xs[1])?);
        check_grads(&f, &[a, b], opts()).unwrap_or_else(|e| panic!("{sa:?} @ {sb:?}: {e}"));
    }
}

/// Integer products carry no gradient, and a missing cotangent gives none.
#[test]
fn dot_general_integer_and_zero_cotangents() {
    let p = DotGeneral {
        lhs_contract: vec![1],
        rhs_contract: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let a = Array::from_vec(vec![2, 2], vec![1i32, 2, 3, 4]).unwrap();
    let y = dot_general(&a, &a, &[1], &[0], &[], &[]).unwrap();
    let ct = Array::from_vec(vec![2, 2], vec![1i32; 4]).unwrap();
    let r = p
        .vjp(&[a.clone(), a], std::slice::from_ref(&y), &[Some(ct)])
        .unwrap();
    assert!(r.iter().all(|c| c.is_none()));
    let af = arr(&[2, 2], 5);
    let yf = dot_general(&af, &af, &[1], &[0], &[], &[]).unwrap();
    let r = p.vjp(&[af.clone(), af], &[yf], &[None]).unwrap();
    assert!(r.iter().all(|c| c.is_none()));
}

// ---------------------------------------------------------------------------------------
// conv_general_dilated gradients.

struct ConvCase {
    name: &'static str,
    x: &'static [usize],
    w: &'static [usize],
    strides: &'static [usize],
    pad: &'static [(i64, i64)],
    lhs_dil: &'static [usize],
    rhs_dil: &'static [usize],
    groups: usize,
}

const CONV_CASES: &[ConvCase] = &[
    ConvCase {
        name: "3x3 valid",
        x: &[2, 5, 4, 3],
        w: &[3, 3, 3, 2],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "3x3 pad 1",
        x: &[1, 4, 4, 2],
        w: &[3, 3, 2, 3],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "stride 2 asym pad (stride does not divide)",
        x: &[1, 7, 6, 2],
        w: &[3, 2, 2, 3],
        strides: &[2, 3],
        pad: &[(0, 1), (2, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "negative pad crops",
        x: &[1, 6, 6, 2],
        w: &[2, 2, 2, 2],
        strides: &[1, 1],
        pad: &[(-1, -2), (0, -1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "mixed negative and positive pad with stride",
        x: &[1, 7, 5, 1],
        w: &[2, 3, 1, 2],
        strides: &[2, 1],
        pad: &[(-1, 2), (2, -1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "rhs dilation",
        x: &[1, 7, 8, 2],
        w: &[3, 2, 2, 2],
        strides: &[1, 2],
        pad: &[(2, 2), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[2, 3],
        groups: 1,
    },
    ConvCase {
        name: "lhs dilation (transposed conv)",
        x: &[1, 3, 4, 2],
        w: &[3, 3, 2, 2],
        strides: &[1, 1],
        pad: &[(2, 2), (1, 2)],
        lhs_dil: &[2, 3],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "everything at once",
        x: &[2, 5, 4, 4],
        w: &[2, 3, 2, 4],
        strides: &[2, 1],
        pad: &[(1, 0), (-1, 2)],
        lhs_dil: &[2, 1],
        rhs_dil: &[1, 2],
        groups: 2,
    },
    ConvCase {
        name: "groups 2",
        x: &[2, 4, 4, 4],
        w: &[3, 3, 2, 6],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 2,
    },
    ConvCase {
        name: "depthwise, stride 2",
        x: &[1, 5, 5, 3],
        w: &[3, 3, 1, 3],
        strides: &[2, 2],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 3,
    },
    ConvCase {
        name: "depthwise multiplier 2",
        x: &[2, 4, 3, 2],
        w: &[2, 2, 1, 4],
        strides: &[1, 1],
        pad: &[(0, 1), (1, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 2,
    },
    ConvCase {
        name: "pointwise 1x1",
        x: &[2, 3, 3, 4],
        w: &[1, 1, 4, 3],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "1-D stride, pad, rhs dilation",
        x: &[2, 11, 3],
        w: &[4, 3, 2],
        strides: &[2],
        pad: &[(1, 2)],
        lhs_dil: &[1],
        rhs_dil: &[2],
        groups: 1,
    },
    ConvCase {
        name: "1-D groups, lhs dilation",
        x: &[2, 5, 4],
        w: &[3, 2, 4],
        strides: &[1],
        pad: &[(1, 1)],
        lhs_dil: &[2],
        rhs_dil: &[1],
        groups: 2,
    },
    ConvCase {
        name: "3-D",
        x: &[1, 3, 4, 3, 2],
        w: &[2, 2, 2, 2, 2],
        strides: &[1, 2, 1],
        pad: &[(0, 1), (1, 1), (0, 0)],
        lhs_dil: &[1, 1, 2],
        rhs_dil: &[1, 1, 1],
        groups: 1,
    },
    ConvCase {
        name: "window larger than the unpadded input",
        x: &[1, 2, 2, 1],
        w: &[3, 3, 1, 2],
        strides: &[1, 1],
        pad: &[(1, 0), (0, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
];

fn conv_case(c: &ConvCase, x: &Array, w: &Array) -> Result<Array> {
    conv_general_dilated(x, w, c.strides, c.pad, c.lhs_dil, c.rhs_dil, c.groups)
}

#[test]
fn conv_grads_match_finite_differences() {
    for (ci, c) in CONV_CASES.iter().enumerate() {
        let x = arr(c.x, 300 + 2 * ci as u64);
        let w = arr(c.w, 301 + 2 * ci as u64);
        let f = |xs: &[Array]| loss(&conv_case(c, &xs[0], &xs[1])?);
        check_grads(&f, &[x, w], opts()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

/// SAME and VALID padding (the composites over the primitive), 1-D and 2-D, with strides
/// and kernel dilation.
#[test]
fn conv_same_valid_grads() {
    let cases: &[(&[usize], &[usize], &[usize], &[usize], usize)] = &[
        // (x, w, strides, dilation, groups)
        (&[2, 6, 5, 2], &[3, 3, 2, 3], &[2, 2], &[1, 1], 1),
        (&[1, 7, 6, 4], &[2, 3, 2, 4], &[1, 3], &[2, 1], 2),
        (&[2, 9, 2], &[3, 2, 3], &[2], &[1], 1),
        (&[1, 8, 3], &[2, 3, 2], &[3], &[2], 1),
    ];
    for (k, (xs, ws, st, dil, g)) in cases.iter().enumerate() {
        for padding in [Padding::Same, Padding::Valid] {
            let x = arr(xs, 500 + k as u64);
            let w = arr(ws, 600 + k as u64);
            let f = |a: &[Array]| loss(&conv(&a[0], &a[1], st, &padding, dil, *g)?);
            check_grads(&f, &[x, w], opts())
                .unwrap_or_else(|e| panic!("case {k} {padding:?}: {e}"));
        }
    }
}

/// An empty batch: the cotangents are zeros of the operands' shapes.
#[test]
fn conv_empty_batch_grads_are_zero() {
    let x = arr(&[0, 4, 4, 2], 1);
    let w = arr(&[3, 3, 2, 2], 2);
    let g = grad(&vec![x.clone(), w.clone()], |a: &Vec<Array>| {
        sum_all(&conv2d_pad1(&a[0], &a[1])).unwrap()
    })
    .unwrap();
    assert_eq!(g[0].shape(), x.shape());
    assert_eq!(g[1].shape(), w.shape());
    assert!(f64s(&g[1]).iter().all(|&v| v == 0.0));
}

fn conv2d_pad1(x: &Array, w: &Array) -> Array {
    conv_general_dilated(x, w, &[1, 1], &[(1, 1), (1, 1)], &[1, 1], &[1, 1], 1).unwrap()
}

#[test]
fn conv_integer_operands_have_no_gradient() {
    let p = ConvGeneralDilated {
        window_strides: vec![1],
        padding: vec![(0, 0)],
        lhs_dilation: vec![1],
        rhs_dilation: vec![1],
        feature_group_count: 1,
    };
    let x = Array::from_vec(vec![1, 3, 1], vec![1i32, 2, 3]).unwrap();
    let w = Array::from_vec(vec![2, 1, 1], vec![1i32, -1]).unwrap();
    let y = conv_general_dilated(&x, &w, &[1], &[(0, 0)], &[1], &[1], 1).unwrap();
    let r = p
        .vjp(&[x, w], std::slice::from_ref(&y), &[Some(y.clone())])
        .unwrap();
    assert!(r.iter().all(|c| c.is_none()));
}

// ---------------------------------------------------------------------------------------
// JAX reference values.

mod reference {
    use super::*;
    use crate::common::{self, function, tensor, tol};

    pub fn close(what: &str, got: &Array, want: &Array, (rtol, atol): (f64, f64)) {
        assert_eq!(got.shape(), want.shape(), "{what}: shape");
        assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
        for (i, (a, b)) in f64s(got).iter().zip(f64s(want)).enumerate() {
            assert!(
                (a - b).abs() <= atol + rtol * b.abs(),
                "{what}[{i}]: {a} vs JAX {b}"
            );
        }
    }

    /// Compares value, gradient, jvp and Hessian-vector product (forward over reverse, as
    /// `jax.jvp(jax.grad(f))`) with JAX's results for `dtype` ("float64" with the
    /// float64-vs-float64 tolerance, "float32" with the float32-vs-float32 one). Inputs
    /// not in 'differentiable' (integer labels) are passed as constants after the
    /// differentiable ones.
    pub fn compare(name: &str, f: &dyn Fn(&[Array]) -> Array) {
        let r = common::load("grads_shared.json");
        let fj = function(&r, name);
        let names: Vec<String> = fj["differentiable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        let consts: Vec<Array> = fj["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !names.contains(k))
            .map(|(_, v)| tensor(v))
            .collect();
        for (dtype, tkey) in [
            ("float64", "float64_vs_float64_ref"),
            ("float32", "float32_vs_float32_ref"),
        ] {
            let tol = tol(&r, tkey);
            let cast = |a: Array| {
                if dtype == "float32" {
                    convert(&a, DType::F32).unwrap()
                } else {
                    a
                }
            };
            // Inputs are dyadic, so the cast to f32 is exact (as JAX's float32 run).
            let xs: Vec<Array> = names
                .iter()
                .map(|n| cast(tensor(&fj["inputs"][n.as_str()])))
                .collect();
            let ts: Vec<Array> = names
                .iter()
                .map(|n| cast(tensor(&fj["tangent"][n.as_str()])))
                .collect();
            let refs = &fj[dtype];
            let full = |w: &Vec<Array>| {
                let mut all = w.clone();
                all.extend(consts.iter().cloned());
                f(&all)
            };
            let what = |s: &str| format!("{name} {dtype} {s}");
            close(&what("value"), &full(&xs), &tensor(&refs["value"]), tol);
            let (v, g) = value_and_grad(&xs, full).unwrap();
            close(&what("value (traced)"), &v, &tensor(&refs["value"]), tol);
            for (n, gi) in names.iter().zip(&g) {
                close(
                    &what(&format!("grad {n}")),
                    gi,
                    &tensor(&refs["grad"][n.as_str()]),
                    tol,
                );
            }
            let (p, t) = jvp(&xs, &ts, full).unwrap();
            close(
                &what("jvp primal"),
                &p,
                &tensor(&refs["jvp"]["primal_out"]),
                tol,
            );
            close(
                &what("jvp tangent"),
                &t,
                &tensor(&refs["jvp"]["tangent_out"]),
                tol,
            );
            let (_, hv) = jvp(&xs, &ts, |w: &Vec<Array>| grad(w, full).unwrap()).unwrap();
            for (n, h) in names.iter().zip(&hv) {
                close(
                    &what(&format!("hvp {n}")),
                    h,
                    &tensor(&refs["hvp"][n.as_str()]),
                    tol,
                );
            }
        }
    }
}

/// A rank-0 array of `like`'s dtype.
fn scalar_like(like: &Array, v: f64) -> Array {
    convert(&Array::full(&[], DType::F64, v), like.dtype()).unwrap()
}

/// `sum(tanh(x @ W + b) ** 2)`
#[test]
fn jax_reference_matmul_tanh() {
    reference::compare("matmul_tanh", &|a| {
        let z = add(
            &matmul(&a[0], &a[1]).unwrap(),
            &broadcast_rows(&a[2], a[0].shape()[0]),
        )
        .unwrap();
        let t = tanh(&z).unwrap();
        sum_all(&mul(&t, &t).unwrap()).unwrap()
    });
}

/// `b` (shape `[n]`) repeated as `rows` rows.
fn broadcast_rows(b: &Array, rows: usize) -> Array {
    ferrax::prim::broadcast_in_dim::broadcast_to(b, &[rows, b.shape()[0]]).unwrap()
}

/// `cross_entropy(x @ W + b, labels)`: mean over rows of `-log_softmax(logits)[i, label_i]`,
/// the label pick written as a product with the one-hot matrix of the int32 labels.
#[test]
fn jax_reference_cross_entropy_int_labels() {
    reference::compare("cross_entropy_int_labels", &|a| {
        let (x, w, b, labels) = (&a[0], &a[1], &a[2], &a[3]);
        let logits = add(&matmul(x, w).unwrap(), &broadcast_rows(b, x.shape()[0])).unwrap();
        let ls = log_softmax(&logits, &[1]).unwrap();
        let oh = one_hot_array(labels, w.shape()[1], x.dtype()).unwrap();
        let picked = sum_all(&mul(&ls, &oh).unwrap()).unwrap();
        let scale = scalar_like(x, -1.0 / x.shape()[0] as f64);
        mul(&picked, &scale).unwrap()
    });
}

/// `sum(conv1d(x, w) ** 2)` with JAX's `('NCH', 'OIH', 'NCH')` layout: the NCH input and
/// OIH kernel are transposed to this primitive's NHC / HIO.
#[test]
fn jax_reference_conv1d_valid() {
    reference::compare("conv1d_valid", &|a| {
        let x = transpose(&a[0], &[0, 2, 1]).unwrap();
        let w = transpose(&a[1], &[2, 1, 0]).unwrap();
        let y = conv_general_dilated(&x, &w, &[1], &[(0, 0)], &[1], &[1], 1).unwrap();
        sum_all(&mul(&y, &y).unwrap()).unwrap()
    });
}

/// `sum((reshape(x, (4, 3)) @ transpose(W)) ** 2)`
#[test]
fn jax_reference_reshape_transpose() {
    reference::compare("reshape_transpose", &|a| {
        let x = reshape(&a[0], &[4, 3]).unwrap();
        let y = matmul(&x, &transpose(&a[1], &[1, 0]).unwrap()).unwrap();
        sum_all(&mul(&y, &y).unwrap()).unwrap()
    });
}

/// `sum(logsumexp(x @ W, axis=-1)) + logsumexp(x)`
#[test]
fn jax_reference_logsumexp() {
    reference::compare("logsumexp", &|a| {
        let xw = matmul(&a[0], &a[1]).unwrap();
        let t1 = sum_all(&logsumexp(&xw, &[1]).unwrap()).unwrap();
        add(&t1, &logsumexp(&a[0], &[0, 1]).unwrap()).unwrap()
    });
}

// ---------------------------------------------------------------------------------------
// Batching rules against a per-example loop.

/// `x` with a batch axis of size `n` at `d` (`None`: `x` itself, shared by all examples):
/// `n` distinct examples stacked.
fn batched(shape: &[usize], d: Option<usize>, n: usize, seed: u64) -> Array {
    match d {
        None => arr(shape, seed),
        Some(d) => {
            let mut s = shape.to_vec();
            s.insert(0, n);
            move_axis(&arr(&s, seed), 0, d).unwrap()
        }
    }
}

/// Runs `prim.batch` on operands with batch axes `dims` and checks every example against
/// the primitive applied to that example alone: bit-identical results.
fn check_batch_rule(
    prim: Arc<dyn Primitive>,
    args: &[Array],
    dims: &[Option<usize>],
    n: usize,
    what: &str,
) {
    let (outs, out_dims) = prim
        .batch(args, dims)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let od = out_dims[0].unwrap_or_else(|| panic!("{what}: output reported unbatched"));
    for i in 0..n {
        let ex: Vec<Array> = args
            .iter()
            .zip(dims)
            .map(|(a, d)| match d {
                Some(d) => index_axis(a, *d, i).unwrap(),
                None => a.clone(),
            })
            .collect();
        let refs: Vec<&Array> = ex.iter().collect();
        let want = &ferrax::bind(prim.clone(), &refs).unwrap()[0];
        let got = index_axis(&outs[0], od, i).unwrap();
        assert!(
            got.bit_eq(want),
            "{what}, example {i}: {:?} vs {:?}",
            f64s(&got),
            f64s(want)
        );
    }
}

/// Every placement of the vmapped axis on both operands (first, second, last, absent).
fn placements(rank: usize) -> Vec<Option<usize>> {
    let mut v = vec![None, Some(0), Some(rank)];
    if rank >= 1 {
        v.push(Some(1));
    }
    v.dedup();
    v
}

#[test]
fn dot_general_batch_rule_matches_loop() {
    let n = 3;
    for (ci, c) in DOT_CASES.iter().enumerate() {
        let prim = DotGeneral {
            lhs_contract: c.lc.to_vec(),
            rhs_contract: c.rc.to_vec(),
            lhs_batch: c.lb.to_vec(),
            rhs_batch: c.rb.to_vec(),
        };
        for ld in placements(c.a.len()) {
            for rd in placements(c.b.len()) {
                if ld.is_none() && rd.is_none() {
                    continue;
                }
                let a = batched(c.a, ld, n, 10 * ci as u64);
                let b = batched(c.b, rd, n, 10 * ci as u64 + 1);
                let what = format!("{} with batch dims {ld:?}, {rd:?}", c.name);
                check_batch_rule(Arc::new(prim.clone()), &[a, b], &[ld, rd], n, &what);
            }
        }
    }
}

#[test]
fn conv_batch_rule_matches_loop() {
    let n = 3;
    for (ci, c) in CONV_CASES.iter().enumerate() {
        let prim = ConvGeneralDilated {
            window_strides: c.strides.to_vec(),
            padding: c.pad.to_vec(),
            lhs_dilation: c.lhs_dil.to_vec(),
            rhs_dilation: c.rhs_dil.to_vec(),
            feature_group_count: c.groups,
        };
        for xd in placements(c.x.len()) {
            for wd in placements(c.w.len()) {
                if xd.is_none() && wd.is_none() {
                    continue;
                }
                let x = batched(c.x, xd, n, 20 * ci as u64);
                let w = batched(c.w, wd, n, 20 * ci as u64 + 1);
                let what = format!("{} with batch dims {xd:?}, {wd:?}", c.name);
                check_batch_rule(Arc::new(prim.clone()), &[x, w], &[xd, wd], n, &what);
            }
        }
    }
}

/// Integer operands batch through the same rules.
#[test]
fn batch_rules_on_integers() {
    let a = Array::from_vec(vec![2, 3, 2], (0..12).collect::<Vec<i32>>()).unwrap();
    let b = Array::from_vec(vec![3, 4], (0..12).map(|v| v - 3).collect::<Vec<i32>>()).unwrap();
    let p = DotGeneral {
        lhs_contract: vec![1],
        rhs_contract: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    check_batch_rule(Arc::new(p), &[a, b], &[Some(2), None], 2, "int dot_general");
    let x = Array::from_vec(vec![1, 2, 5, 2], (0..20).collect::<Vec<i32>>()).unwrap();
    let w = Array::from_vec(
        vec![2, 2, 1, 2],
        (0..8).map(|v| v % 3 - 1).collect::<Vec<i32>>(),
    )
    .unwrap();
    let p = ConvGeneralDilated {
        window_strides: vec![1],
        padding: vec![(1, 0)],
        lhs_dilation: vec![1],
        rhs_dilation: vec![1],
        feature_group_count: 2,
    };
    check_batch_rule(Arc::new(p), &[x, w], &[Some(1), Some(0)], 2, "int conv");
}

/// Per-example gradients: `vmap` of `grad` of a small conv + dense network. The backward
/// pass's transposed convolutions and products are batched too (with per-example kernels
/// and inputs), and must equal a loop of gradients exactly.
#[test]
fn vmap_of_grad_equals_loop() {
    let net = |xs: &[Array]| -> Result<Array> {
        let (x, w, v) = (&xs[0], &xs[1], &xs[2]);
        let h = tanh(&conv(x, w, &[2], &Padding::Same, &[1], 1)?)?;
        let flat = reshape(&h, &[h.shape()[0], h.shape()[1] * h.shape()[2]])?;
        sum_all(&tanh(&matmul(&flat, v)?)?)
    };
    let grads = |xs: &[Array]| -> Result<Vec<Array>> {
        grad(&xs.to_vec(), |w: &Vec<Array>| net(w).unwrap())
    };
    let n = 3;
    let x = batched(&[2, 7, 3], Some(0), n, 1);
    let w = batched(&[3, 3, 2], Some(3), n, 2);
    let v = arr(&[8, 2], 3);
    let dims = [Some(0), Some(3), None];
    let got = vmap(grads, &[x.clone(), w.clone(), v.clone()], &dims, &[Some(0)]).unwrap();
    for i in 0..n {
        let ex = [
            index_axis(&x, 0, i).unwrap(),
            index_axis(&w, 3, i).unwrap(),
            v.clone(),
        ];
        let want = grads(&ex).unwrap();
        for (k, (g, wk)) in got.iter().zip(&want).enumerate() {
            let gi = index_axis(g, 0, i).unwrap();
            assert!(
                gi.bit_eq(wk),
                "grad {k}, example {i}: {:?} vs {:?}",
                f64s(&gi),
                f64s(wk)
            );
        }
    }
}
