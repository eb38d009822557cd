//! Reverse-mode (and, derived from it, forward-mode and second-order) rules of the reduction
//! family — reduce_{sum,max,min,prod}, argmax/argmin, cum{sum,prod,max,min}, sort — and of
//! the reduction composites (mean, var, std, logsumexp, softmax, log_softmax, norm):
//! table-driven `check_grads` in f64 against central finite differences, the tie and zero
//! conventions against hand-derived JAX values, the shared JAX reference set
//! (`tests/reference/grads_shared.json`), and every batching rule against a per-example loop.

use ferrax::ad::{grad, jvp, value_and_grad};
use ferrax::ops::composite::{log_softmax, logsumexp, mean, norm, softmax, std, var, NormOrd};
use ferrax::prim::argreduce::{argmax, ArgOp, ArgReduce};
use ferrax::prim::binary::{add, binary_scalar, mul, BinaryOp};
use ferrax::prim::concatenate::stack;
use ferrax::prim::convert::convert;
use ferrax::prim::cumulative::{cumulative, Cumulative};
use ferrax::prim::reduce::{reduce, reduce_sum, Reduce, ReduceOp};
use ferrax::prim::reshape::reshape;
use ferrax::prim::slice::slice_in_dim;
use ferrax::prim::sort::{sort, Sort};
use ferrax::prim::Primitive;
use ferrax::testing::{check_grads, GradCheck};
use ferrax::{bind, Array, DType, Result};
use std::sync::Arc;

mod common;

// ---------------------------------------------------------------------------------------
// Helpers.

/// Deterministic pseudo-random values in `[lo, hi)`.
fn rand_vals(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// `n` values at least 0.2 apart (a shuffled ladder with small jitter), so max/min/sort
/// have no ties and stay away from them by far more than the finite-difference step.
fn distinct_vals(n: usize, seed: u64) -> Vec<f64> {
    let keys = rand_vals(n, seed, 0.0, 1.0);
    let jitter = rand_vals(n, seed ^ 0x5555, 0.0, 0.1);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut v = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = rank as f64 * 0.3 - 0.15 * n as f64 + jitter[i];
    }
    v
}

fn arr(shape: &[usize], v: Vec<f64>) -> Array {
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn f64s(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

/// The default check of this file: f64, eps 1e-4, rtol 1e-5, first and second order.
fn opts(seed: u64) -> GradCheck {
    GradCheck {
        eps: 1e-4,
        rtol: 1e-5,
        atol: 1e-7,
        directions: 3,
        second_order: true,
        seed,
    }
}

/// A scalar loss of a non-scalar result `y` that is not linear in `y`, so the second-order
/// check differentiates the rule's output again: `sum(w * y + y * y / 2)` with fixed
/// weights `w` (made from `seed`).
fn loss(y: &Array, seed: u64) -> Result<Array> {
    let w = arr(y.shape(), rand_vals(y.numel(), seed, -1.0, 1.0));
    let half_sq = binary_scalar(BinaryOp::Mul, &mul(y, y)?, 0.5)?;
    let t = add(&mul(&w, y)?, &half_sq)?;
    let all: Vec<usize> = (0..t.rank()).collect();
    reduce_sum(&t, &all)
}

fn check(what: &str, f: &dyn Fn(&[Array]) -> Result<Array>, x: &Array, o: GradCheck) {
    if let Err(e) = check_grads(f, std::slice::from_ref(x), o) {
        panic!("{what}: {e}");
    }
}

/// Every axis subset we test for a shape (non-empty ones; empty reduces are the identity).
fn axis_sets(rank: usize) -> Vec<Vec<usize>> {
    (1..1usize << rank)
        .map(|m| (0..rank).filter(|a| m >> a & 1 == 1).collect())
        .collect()
}

const SHAPES: &[&[usize]] = &[&[5], &[3, 4], &[2, 3, 4]];

// ---------------------------------------------------------------------------------------
// Reductions.

#[test]
fn reduce_grads_all_ops_and_axes() {
    for (si, shape) in SHAPES.iter().enumerate() {
        for axes in axis_sets(shape.len()) {
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod] {
                let n = numel(shape);
                let seed = (si * 100 + axes.len() * 10) as u64;
                let x = match op {
                    // Distinct values: no ties, so max/min are differentiable at x.
                    ReduceOp::Max | ReduceOp::Min => distinct_vals(n, seed),
                    // Magnitudes near 1 with both signs keep products of up to 24 factors
                    // in a range where rtol 1e-5 is meaningful.
                    ReduceOp::Prod => rand_vals(n, seed, 0.7, 1.3)
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| if i % 3 == 1 { -v } else { v })
                        .collect(),
                    ReduceOp::Sum => rand_vals(n, seed, -2.0, 2.0),
                };
                let x = arr(shape, x);
                let ax = axes.clone();
                let f = move |a: &[Array]| loss(&reduce(&a[0], op, &ax)?, 7);
                check(
                    &format!("reduce_{} {shape:?} axes {axes:?}", op.as_str()),
                    &f,
                    &x,
                    opts(seed),
                );
            }
        }
    }
}

/// JAX's convention for ties: the cotangent is split equally among the tied positions.
#[test]
fn reduce_max_min_ties_split_equally() {
    // Row 0 has a two-way tie for the max, row 1 a three-way tie (all equal).
    let x = arr(&[2, 3], vec![1.0, 3.0, 3.0, 2.0, 2.0, 2.0]);
    let w = arr(&[2], vec![0.6, -1.5]);
    let f = |x: &Array| {
        mul(&reduce(x, ReduceOp::Max, &[1]).unwrap(), &w)
            .and_then(|y| reduce_sum(&y, &[0]))
            .unwrap()
    };
    let g = grad(&x, f).unwrap();
    assert_eq!(f64s(&g), vec![0.0, 0.3, 0.3, -0.5, -0.5, -0.5]);
    // min over both axes: 1.0 is unique in `x`; in `y` the minimum -1 appears twice.
    let y = arr(&[2, 3], vec![-1.0, 3.0, 0.0, 2.0, -1.0, 4.0]);
    let g = grad(&y, |y| reduce(y, ReduceOp::Min, &[0, 1]).unwrap()).unwrap();
    assert_eq!(f64s(&g), vec![0.5, 0.0, 0.0, 0.0, 0.5, 0.0]);
    // Ties across two reduced axes of a 3-d array, with the max over the middle/last axes.
    let z = arr(&[2, 2, 2], vec![5.0, 1.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0]);
    let g = grad(&z, |z| {
        reduce_sum(&reduce(z, ReduceOp::Max, &[1, 2]).unwrap(), &[0]).unwrap()
    })
    .unwrap();
    let t = 1.0 / 3.0;
    assert_eq!(f64s(&g), vec![t, 0.0, t, t, 0.25, 0.25, 0.25, 0.25]);
}

/// reduce_prod with zeros: the gradient is the product of the other factors (no NaN), to
/// first and second order, with one zero and with two zeros in a lane.
#[test]
fn reduce_prod_with_zeros() {
    let x = arr(
        &[3, 4],
        vec![1.5, 0.0, -2.0, 0.5, 0.0, 3.0, 0.0, 2.0, 1.0, 2.0, -1.0, 0.5],
    );
    let g = grad(&x, |x| {
        reduce_sum(&reduce(x, ReduceOp::Prod, &[1]).unwrap(), &[0]).unwrap()
    })
    .unwrap();
    // Row 0: one zero (only it gets a nonzero gradient); row 1: two zeros (all zero);
    // row 2: no zero.
    let want = vec![
        0.0, -1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -0.5, 1.0, -2.0,
    ];
    assert_eq!(f64s(&g), want);
    // Second order at zeros is exact too (the rule is division-free all the way down).
    for axes in [vec![0], vec![1], vec![0, 1]] {
        let ax = axes.clone();
        check(
            &format!("reduce_prod zeros axes {axes:?}"),
            &move |a: &[Array]| loss(&reduce(&a[0], ReduceOp::Prod, &ax)?, 3),
            &x,
            opts(11),
        );
    }
    // The Hessian of prod at a point with one zero, against the closed form
    // H[i][j] = prod_{k != i, j} x_k (i != j), H[i][i] = 0, as a Hessian-vector product
    // (forward over reverse).
    let v = vec![2.0, 0.0, -3.0, 0.5];
    let t = vec![0.25, -1.0, 0.5, 2.0];
    let (xa, ta) = (arr(&[4], v.clone()), arr(&[4], t.clone()));
    let (_, hv) = jvp(&xa, &ta, |x| {
        grad(x, |x| reduce(x, ReduceOp::Prod, &[0]).unwrap()).unwrap()
    })
    .unwrap();
    let want: Vec<f64> = (0..4)
        .map(|i| {
            (0..4)
                .filter(|&j| j != i)
                .map(|j| {
                    let p: f64 = (0..4).filter(|&k| k != i && k != j).map(|k| v[k]).product();
                    p * t[j]
                })
                .sum()
        })
        .collect();
    assert_eq!(f64s(&hv), want);
}

#[test]
fn argreduce_has_zero_cotangent() {
    let x = arr(&[2, 3], distinct_vals(6, 1));
    let p = ArgReduce {
        op: ArgOp::ArgMax,
        axis: 1,
        index_dtype: DType::I32,
    };
    let out = argmax(&x, 1).unwrap();
    let ct = Array::zeros(&[2], DType::I32);
    let r = p
        .vjp(std::slice::from_ref(&x), &[out], &[Some(ct)])
        .unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0].is_none());
    // Through the engine: the index output is an integer, so only the float path counts.
    let f = |a: &[Array]| {
        let idx = convert(&argmax(&a[0], 1)?, DType::F64)?;
        add(&reduce_sum(&a[0], &[0, 1])?, &reduce_sum(&idx, &[0])?)
    };
    check("sum + argmax", &f, &x, opts(2));
}

// ---------------------------------------------------------------------------------------
// Cumulative ops.

#[test]
fn cumulative_grads_all_ops_axes_and_directions() {
    for (si, shape) in SHAPES.iter().enumerate() {
        for axis in 0..shape.len() {
            for reverse in [false, true] {
                for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
                    let n = numel(shape);
                    let seed = (si * 100 + axis * 10 + reverse as usize) as u64;
                    let x = match op {
                        ReduceOp::Max | ReduceOp::Min => distinct_vals(n, seed),
                        ReduceOp::Prod => rand_vals(n, seed, 0.6, 1.4)
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| if i % 4 == 2 { -v } else { v })
                            .collect(),
                        ReduceOp::Sum => rand_vals(n, seed, -2.0, 2.0),
                    };
                    let x = arr(shape, x);
                    let f = move |a: &[Array]| loss(&cumulative(&a[0], op, axis, reverse)?, 5);
                    let what =
                        format!("cum{} {shape:?} axis {axis} reverse {reverse}", op.as_str());
                    check(&what, &f, &x, opts(seed));
                }
            }
        }
    }
}

/// Brute-force gradient of `sum(ct * cumprod(x))` along a 1-d lane: `sum_{i >= k} ct_i *
/// prod_{j <= i, j != k} x_j`.
fn cumprod_grad_naive(x: &[f64], ct: &[f64], reverse: bool) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|k| {
            let mut g = 0.0;
            for i in 0..n {
                let range: Vec<usize> = if reverse {
                    (i..n).collect()
                } else {
                    (0..=i).collect()
                };
                if !range.contains(&k) {
                    continue;
                }
                let p: f64 = range.iter().filter(|&&j| j != k).map(|&j| x[j]).product();
                g += ct[i] * p;
            }
            g
        })
        .collect()
}

#[test]
fn cumprod_with_zeros() {
    let lanes: Vec<Vec<f64>> = vec![
        vec![1.5, 0.0, -2.0, 0.5, 3.0],
        vec![0.0, 2.0, 0.0, 1.5, -1.0],
        vec![2.0, -0.5, 1.5, 3.0, 0.0],
        vec![0.0, 0.0, 0.0, 2.0, 1.0],
    ];
    let ct = vec![0.3, -1.2, 0.7, 2.0, -0.4];
    for reverse in [false, true] {
        for lane in &lanes {
            let x = arr(&[5], lane.clone());
            let cta = arr(&[5], ct.clone());
            let g = grad(&x, |x| {
                reduce_sum(
                    &mul(&cumulative(x, ReduceOp::Prod, 0, reverse).unwrap(), &cta).unwrap(),
                    &[0],
                )
                .unwrap()
            })
            .unwrap();
            let got = f64s(&g);
            let want = cumprod_grad_naive(lane, &ct, reverse);
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "lane {lane:?} reverse {reverse} k {k}: {a} vs {b}"
                );
            }
            let what = format!("cumprod zeros {lane:?} reverse {reverse}");
            check(
                &what,
                &move |a: &[Array]| loss(&cumulative(&a[0], ReduceOp::Prod, 0, reverse)?, 9),
                &x,
                opts(4),
            );
        }
    }
}

/// cummax/cummin send each output's cotangent to the element its running extreme came
/// from; on ties, the most recent tied element (`torch.cummax` indices' convention).
#[test]
fn cummax_cummin_route_to_source() {
    let x = arr(&[6], vec![1.0, 3.0, 2.0, 3.0, 0.5, 4.0]);
    let ct = arr(&[6], vec![1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0]);
    let g = |op, reverse| {
        f64s(
            &grad(&x, |x| {
                reduce_sum(
                    &mul(&cumulative(x, op, 0, reverse).unwrap(), &ct).unwrap(),
                    &[0],
                )
                .unwrap()
            })
            .unwrap(),
        )
    };
    // cummax: [1, 3, 3, 3(tie: from index 3), 3, 4].
    assert_eq!(
        g(ReduceOp::Max, false),
        vec![1.0, 110.0, 0.0, 11000.0, 0.0, 100000.0]
    );
    // reverse cummax: [4, 4, 4, 4, 4, 4] all from index 5.
    assert_eq!(
        g(ReduceOp::Max, true),
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 111111.0]
    );
    // cummin: [1, 1, 1, 1, 0.5, 0.5].
    assert_eq!(
        g(ReduceOp::Min, false),
        vec![1111.0, 0.0, 0.0, 0.0, 110000.0, 0.0]
    );
    // reverse cummin: [0.5, 0.5, 0.5, 0.5, 0.5, 4].
    assert_eq!(
        g(ReduceOp::Min, true),
        vec![0.0, 0.0, 0.0, 0.0, 11111.0, 100000.0]
    );
    // A NaN propagates along the scan; the cotangents of the NaN outputs go to the NaN input
    // (no panic, no out-of-range source index).
    let xn = arr(&[4], vec![1.0, f64::NAN, 2.0, 0.5]);
    let ct4 = arr(&[4], vec![1.0, 10.0, 100.0, 1000.0]);
    for (op, reverse, want) in [
        // cummax: [1, NaN, NaN, NaN], sources [0, 1, 1, 1].
        (ReduceOp::Max, false, vec![1.0, 1110.0, 0.0, 0.0]),
        // reverse cummin: [NaN, NaN, 0.5, 0.5], sources [1, 1, 3, 3].
        (ReduceOp::Min, true, vec![0.0, 11.0, 0.0, 1100.0]),
    ] {
        let g = grad(&xn, |x| {
            let y = cumulative(x, op, 0, reverse).unwrap();
            reduce_sum(&mul(&y, &ct4).unwrap(), &[0]).unwrap()
        })
        .unwrap();
        assert_eq!(f64s(&g), want, "{op:?} reverse {reverse}");
    }
}

// ---------------------------------------------------------------------------------------
// Sort.

#[test]
fn sort_values_grads() {
    for (si, shape) in SHAPES.iter().enumerate() {
        for axis in 0..shape.len() {
            for descending in [false, true] {
                let seed = (si * 10 + axis) as u64;
                let x = arr(shape, distinct_vals(numel(shape), seed));
                let f = move |a: &[Array]| loss(&sort(&a[0], axis, descending)?, 13);
                check(
                    &format!("sort {shape:?} axis {axis} descending {descending}"),
                    &f,
                    &x,
                    opts(seed),
                );
            }
        }
    }
    // The permutation is applied exactly: d/dx sum(sorted * w) = w at each source position.
    let x = arr(&[4], vec![3.0, -1.0, 2.0, 0.0]);
    let w = arr(&[4], vec![1.0, 2.0, 3.0, 4.0]);
    let g = grad(&x, |x| {
        reduce_sum(&mul(&sort(x, 0, false).unwrap(), &w).unwrap(), &[0]).unwrap()
    })
    .unwrap();
    assert_eq!(f64s(&g), vec![4.0, 1.0, 3.0, 2.0]);
}

// ---------------------------------------------------------------------------------------
// Composites.

#[test]
fn composite_grads() {
    type Comp = fn(&Array, &[usize]) -> Result<Array>;
    let comps: Vec<(&str, Comp)> = vec![
        ("mean", |x, a| mean(x, a)),
        ("var", |x, a| var(x, a, 0)),
        ("var ddof 1", |x, a| var(x, a, 1)),
        ("std", |x, a| std(x, a, 0)),
        ("std ddof 1", |x, a| std(x, a, 1)),
        ("logsumexp", |x, a| logsumexp(x, a)),
        ("softmax", |x, a| softmax(x, a)),
        ("log_softmax", |x, a| log_softmax(x, a)),
        ("norm l1", |x, a| norm(x, a, NormOrd::L1)),
        ("norm l2", |x, a| norm(x, a, NormOrd::L2)),
        ("norm inf", |x, a| norm(x, a, NormOrd::Inf)),
    ];
    for (si, shape) in SHAPES.iter().enumerate() {
        for axes in axis_sets(shape.len()) {
            for (ci, (name, c)) in comps.iter().enumerate() {
                let seed = (si * 1000 + axes.len() * 100 + ci) as u64;
                // Distinct values (for norm inf's max of |x|, also distinct magnitudes and
                // away from 0, where |x| has a kink).
                let x = arr(
                    shape,
                    distinct_vals(numel(shape), seed)
                        .into_iter()
                        .map(|v| v + 0.07)
                        .collect(),
                );
                let ax = axes.clone();
                let c = *c;
                let f = move |a: &[Array]| loss(&c(&a[0], &ax)?, 17);
                check(
                    &format!("{name} {shape:?} axes {axes:?}"),
                    &f,
                    &x,
                    opts(seed),
                );
            }
        }
    }
}

/// logsumexp and softmax at large inputs (exp would overflow unshifted). The max-shift term
/// enters with no stop-gradient: its contributions cancel, so grad(logsumexp) must be the
/// softmax itself.
#[test]
fn logsumexp_softmax_large_values() {
    let shape = [3, 4];
    let x = arr(
        &shape,
        distinct_vals(12, 21)
            .into_iter()
            .map(|v| v + 1000.0)
            .collect(),
    );
    for axes in axis_sets(2) {
        let ax = axes.clone();
        check(
            &format!("logsumexp large {axes:?}"),
            &move |a: &[Array]| loss(&logsumexp(&a[0], &ax)?, 2),
            &x,
            opts(1),
        );
        let ax = axes.clone();
        check(
            &format!("softmax large {axes:?}"),
            &move |a: &[Array]| loss(&softmax(&a[0], &ax)?, 2),
            &x,
            opts(1),
        );
        let ax = axes.clone();
        check(
            &format!("log_softmax large {axes:?}"),
            &move |a: &[Array]| loss(&log_softmax(&a[0], &ax)?, 2),
            &x,
            opts(1),
        );
        let g = grad(&x, |x| {
            let l = logsumexp(x, &axes).unwrap();
            let all: Vec<usize> = (0..l.rank()).collect();
            reduce_sum(&l, &all).unwrap()
        })
        .unwrap();
        let sm = softmax(&x, &axes).unwrap();
        for (a, b) in f64s(&g).iter().zip(f64s(&sm)) {
            assert!(
                (a - b).abs() <= 1e-15,
                "grad logsumexp {axes:?}: {a} vs softmax {b}"
            );
        }
    }
    // Ties at the max (the shift's gradient is split, and still cancels).
    let t = arr(&[4], vec![1000.0, 1000.0, 999.0, 1000.0]);
    let g = grad(&t, |t| logsumexp(t, &[0]).unwrap()).unwrap();
    for (a, b) in f64s(&g).iter().zip(f64s(&softmax(&t, &[0]).unwrap())) {
        assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
    }
    // A masked entry (-inf, as attention masks use) gets a zero gradient, and the others
    // get exactly what they get without it (no NaN from exp(-inf) or the max's mask).
    let w = [0.3, -1.2, 0.8, 0.5];
    let wa = arr(&[4], w.to_vec());
    let masked = arr(&[4], vec![f64::NEG_INFINITY, 0.5, 1.0, -0.3]);
    let g = grad(&masked, |x| {
        reduce_sum(&mul(&softmax(x, &[0]).unwrap(), &wa).unwrap(), &[0]).unwrap()
    })
    .unwrap();
    let wb = arr(&[3], w[1..].to_vec());
    let rest = arr(&[3], vec![0.5, 1.0, -0.3]);
    let g3 = grad(&rest, |x| {
        reduce_sum(&mul(&softmax(x, &[0]).unwrap(), &wb).unwrap(), &[0]).unwrap()
    })
    .unwrap();
    let g = f64s(&g);
    assert_eq!(g[0], 0.0);
    for (a, b) in g[1..].iter().zip(f64s(&g3)) {
        assert!((a - b).abs() <= 1e-15, "masked softmax grad {a} vs {b}");
    }
}

// ---------------------------------------------------------------------------------------
// The shared JAX reference set.

mod reference {
    use super::*;
    use crate::common::{self, function, tensor_f64, Json};

    /// Inputs in the order of the function's 'differentiable' list (all inputs are float
    /// and differentiable for the functions used here).
    pub fn inputs(f: &Json, key: &str) -> (Vec<String>, Vec<Array>) {
        let names: Vec<String> = f["differentiable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), f["inputs"].as_object().unwrap().len());
        let arrays = names
            .iter()
            .map(|n| tensor_f64(&f[key][n.as_str()]))
            .collect();
        (names, arrays)
    }

    pub fn close(what: &str, got: &Array, want: &Array, (rtol, atol): (f64, f64)) {
        assert_eq!(got.shape(), want.shape(), "{what}: shape");
        for (i, (a, b)) in f64s(got).iter().zip(f64s(want)).enumerate() {
            assert!(
                (a - b).abs() <= atol + rtol * b.abs(),
                "{what}[{i}]: {a} vs JAX {b}"
            );
        }
    }

    /// Compares value, gradient, jvp (forward over the derived forward mode) and
    /// Hessian-vector product (forward over reverse, as `jax.jvp(jax.grad(f))`) with JAX's
    /// float64 results.
    pub fn compare(name: &str, f: fn(&[Array]) -> Array, value_only: bool) {
        let r = common::load("grads_shared.json");
        // The float64 tolerance the reference file suggests.
        let tol = common::tol(&r, "float64_vs_float64_ref");
        let fj = function(&r, name);
        let (names, xs) = inputs(fj, "inputs");
        let (_, ts) = inputs(fj, "tangent");
        let refs = &fj["float64"];
        let v = f(&xs);
        close(
            &format!("{name} value"),
            &v,
            &tensor_f64(&refs["value"]),
            tol,
        );
        if value_only {
            return;
        }
        let (v, g) = value_and_grad(&xs, |w: &Vec<Array>| f(w)).unwrap();
        close(
            &format!("{name} value (traced)"),
            &v,
            &tensor_f64(&refs["value"]),
            tol,
        );
        for (n, gi) in names.iter().zip(&g) {
            close(
                &format!("{name} grad {n}"),
                gi,
                &tensor_f64(&refs["grad"][n.as_str()]),
                tol,
            );
        }
        let (p, t) = jvp(&xs, &ts, |w: &Vec<Array>| f(w)).unwrap();
        close(
            &format!("{name} jvp primal"),
            &p,
            &tensor_f64(&refs["jvp"]["primal_out"]),
            tol,
        );
        close(
            &format!("{name} jvp tangent"),
            &t,
            &tensor_f64(&refs["jvp"]["tangent_out"]),
            tol,
        );
        let (_, hv) = jvp(&xs, &ts, |w: &Vec<Array>| {
            grad(w, |w: &Vec<Array>| f(w)).unwrap()
        })
        .unwrap();
        for (n, h) in names.iter().zip(&hv) {
            close(
                &format!("{name} hvp {n}"),
                h,
                &tensor_f64(&refs["hvp"][n.as_str()]),
                tol,
            );
        }
    }
}

fn sum_all(x: &Array) -> Array {
    let all: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(x, &all).unwrap()
}

/// `sum(max(x, axis=1) ** 2) + sum(mean(x, axis=0) * w) + sum(x, axis=(0, 1)) * 0.5`
#[test]
fn jax_reference_reductions_axes() {
    reference::compare(
        "reductions_axes",
        |a| {
            let (x, w) = (&a[0], &a[1]);
            let m = reduce(x, ReduceOp::Max, &[1]).unwrap();
            let t1 = sum_all(&mul(&m, &m).unwrap());
            let t2 = sum_all(&mul(&mean(x, &[0]).unwrap(), w).unwrap());
            let t3 = binary_scalar(BinaryOp::Mul, &reduce_sum(x, &[0, 1]).unwrap(), 0.5).unwrap();
            add(&add(&t1, &t2).unwrap(), &t3).unwrap()
        },
        false,
    );
}

/// `sum(cumsum(x, axis=1) ** 2 * w)`
#[test]
fn jax_reference_cumsum() {
    reference::compare(
        "cumsum",
        |a| {
            let c = cumulative(&a[0], ReduceOp::Sum, 1, false).unwrap();
            sum_all(&mul(&mul(&c, &c).unwrap(), &a[1]).unwrap())
        },
        false,
    );
}

/// `sum(softmax(x, axis=-1) * y) + sum(log_softmax(x, axis=-1)[:, 0])`
#[test]
fn jax_reference_softmax_log_softmax() {
    reference::compare(
        "softmax_log_softmax",
        |a| {
            let (x, y) = (&a[0], &a[1]);
            let t1 = sum_all(&mul(&softmax(x, &[1]).unwrap(), y).unwrap());
            let ls = log_softmax(x, &[1]).unwrap();
            let col = reshape(&slice_in_dim(&ls, 1, 0, 1, 1).unwrap(), &[x.shape()[0]]).unwrap();
            add(&t1, &sum_all(&col)).unwrap()
        },
        false,
    );
}

/// `sum(logsumexp(x @ W, axis=-1)) + logsumexp(x)`
fn logsumexp_ref_fn(a: &[Array]) -> Array {
    let (x, w) = (&a[0], &a[1]);
    let xw = ferrax::prim::dot_general::matmul(x, w).unwrap();
    let t1 = sum_all(&logsumexp(&xw, &[1]).unwrap());
    add(&t1, &logsumexp(x, &[0, 1]).unwrap()).unwrap()
}

/// The value needs only the forward matmul.
#[test]
fn jax_reference_logsumexp_value() {
    reference::compare("logsumexp", logsumexp_ref_fn, true);
}

/// Gradient, jvp and Hessian-vector product also go through `dot_general`'s rule.
#[test]
fn jax_reference_logsumexp_grads() {
    reference::compare("logsumexp", logsumexp_ref_fn, false);
}

// ---------------------------------------------------------------------------------------
// Batching rules against a per-example loop.

/// Applies `p` to one unbatched operand.
fn apply(p: &Arc<dyn Primitive>, x: &Array) -> Vec<Array> {
    bind(p.clone(), &[x]).unwrap()
}

fn bits(a: &Array) -> Vec<u64> {
    f64s(a).iter().map(|v| v.to_bits()).collect()
}

/// Runs `p`'s batching rule on `x` with batch axis `bd` and compares with slicing out each
/// example, applying `p` and stacking the results along the batch dims the rule reports.
/// Exact (bitwise) equality: a batching rule must not change any result.
fn check_batch(p: Arc<dyn Primitive>, example: &[usize], bd: Option<usize>, x: &Array) {
    let (outs, dims) = p
        .batch(std::slice::from_ref(x), &[bd])
        .unwrap_or_else(|e| panic!("{p:?} batch: {e}"));
    let what = format!("{p:?} example {example:?} batch dim {bd:?}");
    let Some(b) = bd else {
        assert!(
            dims.iter().all(|d| d.is_none()),
            "{what}: an unbatched operand gives unbatched results"
        );
        let want = apply(&p, x);
        for (o, w) in outs.iter().zip(&want) {
            assert_eq!(o.aval(), w.aval(), "{what}");
            assert_eq!(bits(o), bits(w), "{what}");
        }
        return;
    };
    let nb = x.shape()[b];
    let per: Vec<Vec<Array>> = (0..nb)
        .map(|i| {
            apply(
                &p,
                &reshape(&slice_in_dim(x, b, i, i + 1, 1).unwrap(), example).unwrap(),
            )
        })
        .collect();
    assert_eq!(outs.len(), per[0].len(), "{what}: output count");
    for (k, (o, d)) in outs.iter().zip(&dims).enumerate() {
        let d = d.unwrap_or_else(|| panic!("{what}: output {k} lost its batch dim"));
        let parts: Vec<&Array> = per.iter().map(|r| &r[k]).collect();
        let want = stack(&parts, d).unwrap();
        assert_eq!(o.aval(), want.aval(), "{what}: output {k}");
        assert_eq!(bits(o), bits(&want), "{what}: output {k}");
    }
}

/// Every primitive of the family, with every axis choice, for examples of rank 1..3 and
/// batch dims 0, 1 (where it exists) and None.
#[test]
fn batching_rules_match_per_example_loop() {
    let examples: &[&[usize]] = &[&[5], &[3, 4], &[2, 3, 4]];
    let nb = 3;
    for (ei, ex) in examples.iter().enumerate() {
        let rank = ex.len();
        let mut prims: Vec<Arc<dyn Primitive>> = Vec::new();
        for axes in axis_sets(rank) {
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod] {
                prims.push(Arc::new(Reduce {
                    op,
                    axes: axes.clone(),
                }));
            }
        }
        for axis in 0..rank {
            for op in [ArgOp::ArgMax, ArgOp::ArgMin] {
                prims.push(Arc::new(ArgReduce {
                    op,
                    axis,
                    index_dtype: DType::I32,
                }));
            }
            for reverse in [false, true] {
                for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
                    prims.push(Arc::new(Cumulative { op, axis, reverse }));
                }
            }
            for descending in [false, true] {
                prims.push(Arc::new(Sort { axis, descending }));
            }
        }
        for bd in [Some(0), Some(1), None] {
            let mut shape = ex.to_vec();
            if let Some(b) = bd {
                if b > rank {
                    continue;
                }
                shape.insert(b, nb);
            }
            // A few ties on purpose (values on a coarse grid): argmax/sort tie-breaking and
            // the reduction order must both survive batching.
            let vals: Vec<f64> = rand_vals(numel(&shape), ei as u64 * 7 + 1, -3.0, 3.0)
                .iter()
                .map(|v| (v * 4.0).round() / 4.0)
                .collect();
            let x = arr(&shape, vals);
            for p in &prims {
                check_batch(p.clone(), ex, bd, &x);
            }
        }
    }
    // Integer operands batch the same way.
    let x = Array::from_vec(
        vec![2, 3, 4],
        (0..24).map(|i: i32| i * 7 % 11 - 5).collect::<Vec<i32>>(),
    )
    .unwrap();
    for bd in [Some(0), Some(1), None] {
        let ex: Vec<usize> = match bd {
            Some(b) => {
                let mut s = vec![2, 3, 4];
                s.remove(b);
                s
            }
            None => vec![2, 3, 4],
        };
        let prims: Vec<Arc<dyn Primitive>> = vec![
            Arc::new(Reduce {
                op: ReduceOp::Sum,
                axes: vec![1],
            }),
            Arc::new(Cumulative {
                op: ReduceOp::Max,
                axis: 0,
                reverse: true,
            }),
            Arc::new(Sort {
                axis: 1,
                descending: false,
            }),
            Arc::new(ArgReduce {
                op: ArgOp::ArgMin,
                axis: 0,
                index_dtype: DType::I64,
            }),
        ];
        for p in prims {
            check_batch(p, &ex, bd, &x);
        }
    }
}

#[test]
fn batching_rejects_bad_batch_dims() {
    let x = arr(&[2, 3], vec![0.0; 6]);
    let p = Reduce {
        op: ReduceOp::Sum,
        axes: vec![0],
    };
    assert!(p.batch(std::slice::from_ref(&x), &[Some(2)]).is_err());
    assert!(p
        .batch(&[x.clone(), x.clone()], &[Some(0), Some(0)])
        .is_err());
    let s = Sort {
        axis: 0,
        descending: false,
    };
    assert!(s.batch(std::slice::from_ref(&x), &[Some(5)]).is_err());
}
