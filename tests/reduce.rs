//! Reductions, argmax/argmin, cumulative ops, sort and the reduction composites, checked
//! against naive loops and ndarray on tables of shapes × axes × dtypes, plus the
//! determinism promise: bit-identical results for 1 vs 2 threads and across runs.

use ferrax::prim::argreduce::{argmax, argmin, argreduce, ArgOp};
use ferrax::prim::cumulative::cumulative;
use ferrax::prim::reduce::{reduce, ReduceOp};
use ferrax::prim::sort::{argsort, sort, sort_with_indices};
use ferrax::{Array, DType, Error, Tensor, C};

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

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Every multi-index of `shape`, row-major.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let st = strides(shape);
    (0..n)
        .map(|f| (0..shape.len()).map(|a| (f / st[a]) % shape[a]).collect())
        .collect()
}

fn subsets(rank: usize) -> Vec<Vec<usize>> {
    (0..1usize << rank)
        .map(|m| (0..rank).filter(|a| m >> a & 1 == 1).collect())
        .collect()
}

/// Naive reduction in f64 (or exact wrapping i32 arithmetic via `int`), visiting reduced
/// indices in row-major order.
fn naive_reduce(x: &[f64], shape: &[usize], axes: &[usize], op: ReduceOp, int: bool) -> Vec<f64> {
    let out_shape: Vec<usize> = (0..shape.len())
        .filter(|a| !axes.contains(a))
        .map(|a| shape[a])
        .collect();
    let red_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let st = strides(shape);
    indices(&out_shape)
        .into_iter()
        .map(|oi| {
            let mut acc: f64 = match op {
                ReduceOp::Sum => 0.0,
                ReduceOp::Prod => 1.0,
                ReduceOp::Max => f64::NEG_INFINITY,
                ReduceOp::Min => f64::INFINITY,
            };
            let mut acc_i: i32 = match op {
                ReduceOp::Sum => 0,
                ReduceOp::Prod => 1,
                ReduceOp::Max => i32::MIN,
                ReduceOp::Min => i32::MAX,
            };
            for ri in indices(&red_shape) {
                let (mut k, mut rk) = (0, 0);
                let mut flat = 0;
                for a in 0..shape.len() {
                    let i = if axes.contains(&a) {
                        rk += 1;
                        ri[rk - 1]
                    } else {
                        k += 1;
                        oi[k - 1]
                    };
                    flat += i * st[a];
                }
                let v = x[flat];
                acc = match op {
                    ReduceOp::Sum => acc + v,
                    ReduceOp::Prod => acc * v,
                    ReduceOp::Max => acc.max(v),
                    ReduceOp::Min => acc.min(v),
                };
                let vi = v as i32;
                acc_i = match op {
                    ReduceOp::Sum => acc_i.wrapping_add(vi),
                    ReduceOp::Prod => acc_i.wrapping_mul(vi),
                    ReduceOp::Max => acc_i.max(vi),
                    ReduceOp::Min => acc_i.min(vi),
                };
            }
            if int {
                acc_i as f64
            } else {
                acc
            }
        })
        .collect()
}

fn make(shape: &[usize], dt: DType, vals: &[f64]) -> Array {
    match dt {
        DType::F32 => Array::from_vec(shape.to_vec(), vals.iter().map(|&v| v as f32).collect()),
        DType::F64 => Array::from_vec(shape.to_vec(), vals.to_vec()),
        DType::I32 => Array::from_vec(shape.to_vec(), vals.iter().map(|&v| v as i32).collect()),
        _ => unreachable!(),
    }
    .unwrap()
}

fn as_f64(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

const SHAPES: &[&[usize]] = &[
    &[],
    &[0],
    &[1],
    &[7],
    &[3, 4],
    &[2, 0, 3],
    &[2, 3, 4],
    &[1, 3, 1, 2],
    &[3, 2, 4, 5],
    &[2, 300, 3],
];

// ---------------------------------------------------------------------------------------
// reduce

#[test]
fn reduce_matches_naive_loops() {
    let ops = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod];
    let mut cases = 0;
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for dt in [DType::F32, DType::F64, DType::I32] {
            for op in ops {
                // Products stay near 1 for floats; small integers exercise wrapping.
                let vals: Vec<f64> = match (op, dt) {
                    (ReduceOp::Prod, DType::I32) => rand_vals(n, si as u64, -4.0, 5.0),
                    (ReduceOp::Prod, _) => rand_vals(n, si as u64, 0.9, 1.1),
                    (_, DType::I32) => rand_vals(n, si as u64, -1000.0, 1000.0),
                    _ => rand_vals(n, si as u64, -1.0, 1.0),
                };
                let vals: Vec<f64> = if dt == DType::I32 {
                    vals.iter().map(|v| v.trunc()).collect()
                } else if dt == DType::F32 {
                    vals.iter().map(|&v| v as f32 as f64).collect()
                } else {
                    vals
                };
                let x = make(shape, dt, &vals);
                for axes in subsets(shape.len()) {
                    cases += 1;
                    let y = reduce(&x, op, &axes).unwrap();
                    let want_shape: Vec<usize> = (0..shape.len())
                        .filter(|a| !axes.contains(a))
                        .map(|a| shape[a])
                        .collect();
                    assert_eq!(y.shape(), &want_shape[..], "{op:?} {shape:?} {axes:?}");
                    assert_eq!(y.dtype(), dt);
                    let want = naive_reduce(&vals, shape, &axes, op, dt == DType::I32);
                    let got = as_f64(&y);
                    let red: usize = axes.iter().map(|&a| shape[a]).product();
                    // Tolerance: exact for ints and max/min; for float sums/products a few
                    // ulps per reduced element of the dtype.
                    let eps = match dt {
                        DType::F32 => 4.0 * f32::EPSILON as f64,
                        DType::F64 => 4.0 * f64::EPSILON,
                        _ => 0.0,
                    };
                    for (g, w) in got.iter().zip(&want) {
                        let tol = match op {
                            ReduceOp::Max | ReduceOp::Min => 0.0,
                            _ => eps * (red as f64 + 1.0) * w.abs().max(1.0),
                        };
                        assert!(
                            g == w || (g - w).abs() <= tol,
                            "{op:?} {dt} {shape:?} axes {axes:?}: got {g}, want {w}"
                        );
                    }
                }
            }
        }
    }
    assert!(cases > 500);
}

#[test]
fn reduce_sum_matches_ndarray() {
    let shape = [4usize, 5, 6];
    let vals = rand_vals(120, 9, -2.0, 2.0);
    let nd = ndarray::ArrayD::from_shape_vec(shape.to_vec(), vals.clone()).unwrap();
    let x = Array::from_vec(shape.to_vec(), vals).unwrap();
    for ax in 0..3 {
        let want = nd.sum_axis(ndarray::Axis(ax));
        let got = reduce(&x, ReduceOp::Sum, &[ax]).unwrap();
        assert_eq!(got.shape(), want.shape());
        for (g, w) in as_f64(&got).iter().zip(want.iter()) {
            assert!((g - w).abs() <= 1e-12, "axis {ax}: {g} vs {w}");
        }
        let want_max = nd.fold_axis(ndarray::Axis(ax), f64::NEG_INFINITY, |a, b| a.max(*b));
        let got_max = reduce(&x, ReduceOp::Max, &[ax]).unwrap();
        assert_eq!(
            as_f64(&got_max),
            want_max.iter().copied().collect::<Vec<_>>()
        );
    }
}

#[test]
fn reduce_identities_on_empty_extents() {
    for (op, f, i) in [
        (ReduceOp::Sum, 0.0, 0i32),
        (ReduceOp::Prod, 1.0, 1),
        (ReduceOp::Max, f32::NEG_INFINITY, i32::MIN),
        (ReduceOp::Min, f32::INFINITY, i32::MAX),
    ] {
        let x = Array::from_vec(vec![3, 0], Vec::<f32>::new()).unwrap();
        let y = reduce(&x, op, &[1]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![f; 3], "{op:?}");
        let xi = Array::from_vec(vec![0, 2], Vec::<i32>::new()).unwrap();
        assert_eq!(
            reduce(&xi, op, &[0]).unwrap().to_vec::<i32>().unwrap(),
            vec![i; 2]
        );
        // Reducing nothing is the identity copy, keeping -0.0.
        let z = Array::from_vec(vec![2], vec![-0.0f32, 1.0]).unwrap();
        let y = reduce(&z, op, &[]).unwrap();
        assert!(y.bit_eq(&z));
    }
}

#[test]
fn reduce_nan_propagates_and_bool_is_any_all() {
    let x = Array::from_vec(vec![2, 3], vec![1.0f32, f32::NAN, 3.0, 4.0, 5.0, 6.0]).unwrap();
    for op in [ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum] {
        let y = reduce(&x, op, &[1]).unwrap().to_vec::<f32>().unwrap();
        assert!(y[0].is_nan(), "{op:?}");
        assert!(!y[1].is_nan(), "{op:?}");
    }
    let b = Array::from_vec(vec![2, 2], vec![true, false, false, false]).unwrap();
    assert_eq!(
        reduce(&b, ReduceOp::Max, &[1])
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        reduce(&b, ReduceOp::Sum, &[1])
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        reduce(&b, ReduceOp::Min, &[0])
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![false, false]
    );
    let t = Array::from_vec(vec![2], vec![true, true]).unwrap();
    assert_eq!(
        reduce(&t, ReduceOp::Prod, &[0])
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true]
    );
}

#[test]
fn reduce_half_accumulates_in_f32() {
    use ferrax::{bf16, f16};
    // 4096 ones: a bf16 accumulator would stall at 256.
    let x = Array::from_vec(vec![4096], vec![bf16::ONE; 4096]).unwrap();
    let y = reduce(&x, ReduceOp::Sum, &[0])
        .unwrap()
        .to_vec::<bf16>()
        .unwrap();
    assert_eq!(y[0].to_f32(), 4096.0);
    let x = Array::from_vec(vec![4, 3000], vec![f16::from_f32(0.5); 12000]).unwrap();
    let y = reduce(&x, ReduceOp::Sum, &[1])
        .unwrap()
        .to_vec::<f16>()
        .unwrap();
    assert!(y.iter().all(|v| v.to_f32() == 1500.0));
}

#[test]
fn reduce_errors_name_the_op() {
    let x = Array::zeros(&[2, 3], DType::F32);
    let e = reduce(&x, ReduceOp::Sum, &[2]).unwrap_err();
    assert!(
        e.to_string().contains("reduce_sum") && e.to_string().contains("out of range"),
        "{e}"
    );
    let e = reduce(&x, ReduceOp::Max, &[1, 1]).unwrap_err();
    assert!(e.to_string().contains("reduce_max"), "{e}");
    // The primitive itself rejects non-canonical axes.
    let e = ferrax::bind1(
        ferrax::prim::reduce::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1, 0],
        },
        &[&x],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shape {
                op: "reduce_sum",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("[2, 3]"), "{e}");
}

#[test]
fn f32_sum_is_accurate() {
    // Sequential f32 accumulation of 3M * 0.1 is off by ~1e-3 relative; the pairwise
    // order stays within a few ulps.
    let n = 3_000_000;
    let x = Array::from_vec(vec![n], vec![0.1f32; n]).unwrap();
    let got = reduce(&x, ReduceOp::Sum, &[0])
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0] as f64;
    let want = 0.1f32 as f64 * n as f64;
    assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn reduction_bits_do_not_depend_on_layout() {
    // Summing axis 0 of X and axis 1 of X^T fold the same sequences in the same order.
    let (r, c) = (700, 300);
    let v: Vec<f32> = rand_vals(r * c, 3, -1.0, 1.0)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let mut vt = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            vt[j * r + i] = v[i * c + j];
        }
    }
    let x = Array::from_vec(vec![r, c], v).unwrap();
    let xt = Array::from_vec(vec![c, r], vt).unwrap();
    for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max] {
        let a = reduce(&x, op, &[0]).unwrap();
        let b = reduce(&xt, op, &[1]).unwrap();
        assert!(a.bit_eq(&b), "{op:?}");
    }
}

// ---------------------------------------------------------------------------------------
// argmax / argmin

fn naive_arg(x: &[f64], shape: &[usize], axis: usize, max: bool) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let r = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for j in 0..inner {
            let at = |k: usize| x[(o * r + k) * inner + j];
            let mut best = 0;
            for k in 0..r {
                if at(k).is_nan() {
                    best = k;
                    break;
                }
                if (max && at(k) > at(best)) || (!max && at(k) < at(best)) {
                    best = k;
                }
            }
            out.push(best as f64);
        }
    }
    out
}

#[test]
fn argreduce_matches_naive_with_ties_and_nans() {
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        // Few distinct values so ties are common; sprinkle NaNs for floats.
        let mut vals: Vec<f64> = rand_vals(n, si as u64 + 40, 0.0, 4.0)
            .iter()
            .map(|v| v.floor())
            .collect();
        for (i, v) in vals.iter_mut().enumerate() {
            if i % 11 == 5 {
                *v = f64::NAN;
            }
        }
        for dt in [DType::F32, DType::F64, DType::I32] {
            let vals: Vec<f64> = if dt == DType::I32 {
                vals.iter()
                    .map(|v| if v.is_nan() { 9.0 } else { *v })
                    .collect()
            } else {
                vals.clone()
            };
            let x = make(shape, dt, &vals);
            for axis in 0..shape.len() {
                for max in [true, false] {
                    let r = if max {
                        argmax(&x, axis)
                    } else {
                        argmin(&x, axis)
                    };
                    if shape[axis] == 0 {
                        let e = r.unwrap_err();
                        assert!(e.to_string().contains("empty"), "{e}");
                        continue;
                    }
                    let y = r.unwrap();
                    assert_eq!(y.dtype(), DType::I32);
                    assert_eq!(
                        as_f64(&y),
                        naive_arg(&vals, shape, axis, max),
                        "{dt} {shape:?} axis {axis} max {max}"
                    );
                }
            }
        }
    }
    // Other index dtypes.
    let x = Array::from_vec(vec![2, 2], vec![1.0f32, 2.0, 4.0, 3.0]).unwrap();
    let y = argreduce(&x, ArgOp::ArgMax, 1, DType::I64).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![1, 0]);
    assert!(argreduce(&x, ArgOp::ArgMax, 1, DType::F32).is_err());
}

#[test]
fn argmax_first_nan_and_first_tie_on_long_rows() {
    // Rows long enough to be split across threads.
    let n = 200_000;
    let mut v = vec![0.0f32; n];
    v[70_000] = 5.0;
    v[150_000] = 5.0;
    let x = Array::from_vec(vec![n], v.clone()).unwrap();
    assert_eq!(
        argmax(&x, 0).unwrap().to_vec::<i32>().unwrap(),
        vec![70_000]
    );
    v[120_000] = f32::NAN;
    v[190_000] = f32::NAN;
    let x = Array::from_vec(vec![n], v).unwrap();
    assert_eq!(
        argmax(&x, 0).unwrap().to_vec::<i32>().unwrap(),
        vec![120_000]
    );
    assert_eq!(
        argmin(&x, 0).unwrap().to_vec::<i32>().unwrap(),
        vec![120_000]
    );
}

// ---------------------------------------------------------------------------------------
// cumulative

#[test]
fn cumulative_matches_naive_including_reverse() {
    let ops = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod];
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for dt in [DType::F32, DType::F64, DType::I32] {
            let raw = if dt == DType::I32 {
                rand_vals(n, si as u64 + 7, -3.0, 4.0)
                    .iter()
                    .map(|v| v.trunc())
                    .collect()
            } else {
                rand_vals(n, si as u64 + 7, 0.9, 1.1)
            };
            let x = make(shape, dt, &raw);
            let vals = as_f64(&x);
            for axis in 0..shape.len() {
                for op in ops {
                    for reverse in [false, true] {
                        let y = cumulative(&x, op, axis, reverse).unwrap();
                        assert_eq!(y.shape(), shape);
                        let outer: usize = shape[..axis].iter().product();
                        let r = shape[axis];
                        let inner: usize = shape[axis + 1..].iter().product();
                        let got = as_f64(&y);
                        for o in 0..outer {
                            for j in 0..inner {
                                let mut acc: Option<f64> = None;
                                let ks: Vec<usize> = if reverse {
                                    (0..r).rev().collect()
                                } else {
                                    (0..r).collect()
                                };
                                for k in ks {
                                    let at = (o * r + k) * inner + j;
                                    let v = vals[at];
                                    let a = match (acc, op) {
                                        (None, _) => v,
                                        (Some(a), ReduceOp::Sum) if dt == DType::I32 => {
                                            (a as i32).wrapping_add(v as i32) as f64
                                        }
                                        (Some(a), ReduceOp::Prod) if dt == DType::I32 => {
                                            (a as i32).wrapping_mul(v as i32) as f64
                                        }
                                        (Some(a), ReduceOp::Sum) => a + v,
                                        (Some(a), ReduceOp::Prod) => a * v,
                                        (Some(a), ReduceOp::Max) => a.max(v),
                                        (Some(a), ReduceOp::Min) => a.min(v),
                                    };
                                    acc = Some(a);
                                    let tol = if dt == DType::F32 {
                                        1e-5 * (r as f64)
                                    } else {
                                        1e-12 * (r as f64)
                                    };
                                    assert!((got[at] - a).abs() <= tol * a.abs().max(1.0), "{op:?} {dt} {shape:?} axis {axis} rev {reverse}: {} vs {a}", got[at]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let x = Array::from_vec(vec![4], vec![1i32, 2, 3, 4]).unwrap();
    assert_eq!(
        cumulative(&x, ReduceOp::Sum, 0, true)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![10, 9, 7, 4]
    );
    assert!(cumulative(&x, ReduceOp::Sum, 1, false).is_err());
}

// ---------------------------------------------------------------------------------------
// sort

/// Stable-sort oracle: orders positions by (rank of key, position) with NaN after numbers.
fn oracle_argsort(lane: &[f64], descending: bool) -> Vec<usize> {
    let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    let nan = |v: f64| v.is_nan() as u8;
    let mut idx: Vec<usize> = (0..lane.len()).collect();
    idx.sort_unstable_by(|&a, &b| {
        let (va, vb) = (lane[a], lane[b]);
        let o = nan(va)
            .cmp(&nan(vb))
            .then(key(va).partial_cmp(&key(vb)).unwrap());
        let o = if descending { o.reverse() } else { o };
        o.then(a.cmp(&b))
    });
    idx
}

#[test]
fn sort_is_stable_and_puts_nan_last() {
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let mut vals: Vec<f64> = rand_vals(n, si as u64 + 90, -2.0, 2.0)
            .iter()
            .map(|v| v.floor())
            .collect();
        for (i, v) in vals.iter_mut().enumerate() {
            if i % 7 == 3 {
                *v = f64::NAN;
            }
            if i % 13 == 1 {
                *v = -0.0;
            }
        }
        for dt in [DType::F32, DType::F64, DType::I32] {
            let vals: Vec<f64> = if dt == DType::I32 {
                vals.iter()
                    .map(|v| if v.is_nan() { 5.0 } else { *v })
                    .collect()
            } else {
                vals.clone()
            };
            let x = make(shape, dt, &vals);
            let vals = as_f64(&x);
            for axis in 0..shape.len() {
                for descending in [false, true] {
                    let (s, i) = sort_with_indices(&x, axis, descending).unwrap();
                    assert_eq!(i.dtype(), DType::I32);
                    assert_eq!(s.shape(), shape);
                    let (sv, iv) = (as_f64(&s), as_f64(&i));
                    let outer: usize = shape[..axis].iter().product();
                    let r = shape[axis];
                    let inner: usize = shape[axis + 1..].iter().product();
                    for o in 0..outer {
                        for j in 0..inner {
                            let at = |k: usize| (o * r + k) * inner + j;
                            let lane: Vec<f64> = (0..r).map(|k| vals[at(k)]).collect();
                            let want = oracle_argsort(&lane, descending);
                            for (k, &w) in want.iter().enumerate() {
                                assert_eq!(
                                    iv[at(k)],
                                    w as f64,
                                    "{dt} {shape:?} axis {axis} desc {descending}"
                                );
                                let (g, e) = (sv[at(k)], lane[w]);
                                assert!(
                                    g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                                    "{g} vs {e}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let x = Array::from_vec(vec![5], vec![2.0f64, f64::NAN, -1.0, 2.0, 0.0]).unwrap();
    assert_eq!(
        argsort(&x, 0, false).unwrap().to_vec::<i32>().unwrap(),
        vec![2, 4, 0, 3, 1]
    );
    assert_eq!(
        argsort(&x, 0, true).unwrap().to_vec::<i32>().unwrap(),
        vec![1, 0, 3, 4, 2]
    );
    let s = sort(&x, 0, false).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(&s[..4], &[-1.0, 0.0, 2.0, 2.0]);
    assert!(s[4].is_nan());
    assert!(sort(&x, 1, false).is_err());
}

// ---------------------------------------------------------------------------------------
// Typed surface.

#[test]
fn typed_reductions() {
    let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 5., 3., 4., 2., 6.]).unwrap();
    assert_eq!(x.sum().item().unwrap(), 21.0);
    assert_eq!(x.max().item().unwrap(), 6.0);
    assert_eq!(x.min().item().unwrap(), 1.0);
    assert_eq!(x.prod().item().unwrap(), 720.0);
    let s: Tensor<(C<3>,)> = x.sum_axis::<0>();
    assert_eq!(s.to_vec().unwrap(), vec![5., 7., 9.]);
    let m: Tensor<(C<2>,)> = x.max_axis::<1>();
    assert_eq!(m.to_vec().unwrap(), vec![5., 6.]);
    assert_eq!(x.min_axis::<0>().to_vec().unwrap(), vec![1., 2., 3.]);
    assert_eq!(x.prod_axis::<1>().to_vec().unwrap(), vec![15., 48.]);
    let a: Tensor<(C<2>,), i32> = x.argmax_axis::<1>();
    assert_eq!(a.to_vec().unwrap(), vec![1, 2]);
    assert_eq!(x.argmin_axis::<0>().to_vec().unwrap(), vec![0, 1, 0]);
    assert_eq!(
        x.cumsum::<1>().to_vec().unwrap(),
        vec![1., 6., 9., 4., 6., 12.]
    );
    assert_eq!(
        x.cumprod::<0>().to_vec().unwrap(),
        vec![1., 5., 3., 4., 10., 18.]
    );
    assert_eq!(
        x.cummax::<1>().to_vec().unwrap(),
        vec![1., 5., 5., 4., 4., 6.]
    );
    assert_eq!(
        x.cummin::<1>().to_vec().unwrap(),
        vec![1., 1., 1., 4., 2., 2.]
    );
    assert_eq!(
        x.sort_axis::<1>(false).to_vec().unwrap(),
        vec![1., 3., 5., 2., 4., 6.]
    );
    assert_eq!(
        x.sort_axis::<1>(true).to_vec().unwrap(),
        vec![5., 3., 1., 6., 4., 2.]
    );
    assert_eq!(
        x.argsort_axis::<1>(false).to_vec().unwrap(),
        vec![0, 2, 1, 1, 0, 2]
    );
    // Rank 0 and Dyn dims.
    let s0 = Tensor::<()>::scalar(3.5);
    assert_eq!(s0.sum().item().unwrap(), 3.5);
    let e =
        Tensor::<(ferrax::Dyn, C<2>), i32>::from_vec_shape((ferrax::Dyn(0), C), vec![]).unwrap();
    assert_eq!(e.sum_axis::<0>().to_vec().unwrap(), vec![0, 0]);
    assert!(e.try_argmax_axis::<0>().is_err());
    assert_eq!(e.max().item().unwrap(), i32::MIN);
}

// ---------------------------------------------------------------------------------------
// Determinism: bit-identical for 1 vs 2 threads and across runs.

fn big_input(n: usize) -> Array {
    let v: Vec<f32> = rand_vals(n, 1234, -1.0, 1.0)
        .iter()
        .map(|&x| x as f32)
        .collect();
    Array::from_vec(vec![n], v).unwrap()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn big_kernels_are_bit_identical_across_thread_counts() {
    let n = 3_000_000;
    let x = big_input(n);
    let x2 = Array::from_vec(vec![1500, 2000], x.to_vec::<f32>().unwrap()).unwrap();
    let run = || -> Vec<Array> {
        vec![
            reduce(&x, ReduceOp::Sum, &[0]).unwrap(),
            reduce(&x, ReduceOp::Max, &[0]).unwrap(),
            reduce(&x2, ReduceOp::Sum, &[0]).unwrap(),
            reduce(&x2, ReduceOp::Sum, &[1]).unwrap(),
            reduce(&x2, ReduceOp::Prod, &[0, 1]).unwrap(),
            argmax(&x, 0).unwrap(),
            argmin(&x2, 1).unwrap(),
            cumulative(&x, ReduceOp::Sum, 0, false).unwrap(),
            cumulative(&x2, ReduceOp::Sum, 1, true).unwrap(),
            sort_with_indices(&x, 0, false).unwrap().0,
            sort_with_indices(&x, 0, false).unwrap().1,
            sort(&x2, 0, true).unwrap(),
        ]
    };
    let one = in_pool(1, run);
    let two = in_pool(2, run);
    let again = in_pool(2, run);
    let default = run();
    for (i, a) in one.iter().enumerate() {
        assert!(
            a.bit_eq(&two[i]),
            "result {i} differs between 1 and 2 threads"
        );
        assert!(a.bit_eq(&again[i]), "result {i} differs between runs");
        assert!(
            a.bit_eq(&default[i]),
            "result {i} differs in the global pool"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Composites vs closed forms.

use ferrax::ops::composite::{log_softmax, logsumexp, mean, norm, softmax, std, var, NormOrd};

/// Per-output sequences of `axes` of `x` (kept axes row-major, reduced row-major).
fn groups(x: &[f64], shape: &[usize], axes: &[usize]) -> Vec<Vec<f64>> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let red_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let st = strides(shape);
    indices(&out_shape)
        .into_iter()
        .map(|oi| {
            indices(&red_shape)
                .into_iter()
                .map(|ri| {
                    let f: usize = kept
                        .iter()
                        .zip(&oi)
                        .map(|(&a, &i)| i * st[a])
                        .sum::<usize>()
                        + axes
                            .iter()
                            .zip(&ri)
                            .map(|(&a, &i)| i * st[a])
                            .sum::<usize>();
                    x[f]
                })
                .collect()
        })
        .collect()
}

#[test]
fn moments_and_norms_match_closed_forms() {
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for dt in [DType::F32, DType::F64] {
            let x = make(shape, dt, &rand_vals(n, si as u64 + 200, -3.0, 3.0));
            let vals = as_f64(&x);
            let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
            for axes in subsets(shape.len()) {
                let gs = groups(&vals, shape, &axes);
                let check = |name: &str, got: Array, f: &dyn Fn(&[f64]) -> f64| {
                    assert_eq!(got.dtype(), dt);
                    let got = as_f64(&got);
                    assert_eq!(got.len(), gs.len());
                    for (g, seq) in got.iter().zip(&gs) {
                        let w = f(seq);
                        let ok = (g.is_nan() && w.is_nan())
                            || g == &w
                            || (g - w).abs()
                                <= tol * (1.0 + w.abs()) * (1.0 + seq.len() as f64).sqrt();
                        assert!(ok, "{name} {dt} {shape:?} axes {axes:?}: {g} vs {w}");
                    }
                };
                let mean_of = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
                let var_of = |s: &[f64]| {
                    let m = mean_of(s);
                    s.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / s.len() as f64
                };
                check("mean", mean(&x, &axes).unwrap(), &mean_of);
                check("var", var(&x, &axes, 0).unwrap(), &var_of);
                check("std", std(&x, &axes, 0).unwrap(), &|s| var_of(s).sqrt());
                check("var ddof=1", var(&x, &axes, 1).unwrap(), &|s| {
                    let m = mean_of(s);
                    s.iter().map(|v| (v - m) * (v - m)).sum::<f64>()
                        / (s.len() as f64 - 1.0).max(0.0)
                });
                check("norm l2", norm(&x, &axes, NormOrd::L2).unwrap(), &|s| {
                    s.iter().map(|v| v * v).sum::<f64>().sqrt()
                });
                check("norm l1", norm(&x, &axes, NormOrd::L1).unwrap(), &|s| {
                    s.iter().map(|v| v.abs()).sum()
                });
                check("norm inf", norm(&x, &axes, NormOrd::Inf).unwrap(), &|s| {
                    s.iter().fold(0.0, |a, v| a.max(v.abs()))
                });
                check("logsumexp", logsumexp(&x, &axes).unwrap(), &|s| {
                    s.iter().map(|v| v.exp()).sum::<f64>().ln()
                });
            }
        }
    }
    assert!(mean(&Array::zeros(&[2], DType::I32), &[0]).is_err());
}

#[test]
fn softmax_family_is_stable_and_normalized() {
    for (si, &shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for dt in [DType::F32, DType::F64] {
            // Large offsets: exp would overflow without the max shift.
            let raw: Vec<f64> = rand_vals(n, si as u64 + 300, -5.0, 5.0)
                .iter()
                .map(|v| v + 1000.0)
                .collect();
            let x = make(shape, dt, &raw);
            let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
            for axis in 0..shape.len() {
                let p = softmax(&x, &[axis]).unwrap();
                let lp = log_softmax(&x, &[axis]).unwrap();
                assert_eq!(p.shape(), shape);
                let (pv, lpv) = (as_f64(&p), as_f64(&lp));
                assert!(
                    pv.iter().chain(&lpv).all(|v| v.is_finite()),
                    "{dt} {shape:?} axis {axis}"
                );
                // Each lane sums to 1; log_softmax is log(softmax).
                let sums = as_f64(&reduce(&p, ReduceOp::Sum, &[axis]).unwrap());
                assert!(
                    shape[axis] == 0 || sums.iter().all(|s| (s - 1.0).abs() <= tol * 10.0),
                    "{sums:?}"
                );
                for (a, b) in pv.iter().zip(&lpv) {
                    assert!(
                        (a.ln() - b).abs() <= tol * 10.0 * (1.0 + b.abs()),
                        "{a} {b}"
                    );
                }
                // Closed form in f64 on the shifted values.
                let vals = as_f64(&x);
                let outer: usize = shape[..axis].iter().product();
                let r = shape[axis];
                let inner: usize = shape[axis + 1..].iter().product();
                for o in 0..outer {
                    for j in 0..inner {
                        let at = |k: usize| (o * r + k) * inner + j;
                        let m = (0..r)
                            .map(|k| vals[at(k)])
                            .fold(f64::NEG_INFINITY, f64::max);
                        let z: f64 = (0..r).map(|k| (vals[at(k)] - m).exp()).sum();
                        for k in 0..r {
                            let w = (vals[at(k)] - m).exp() / z;
                            assert!((pv[at(k)] - w).abs() <= tol * 10.0, "{} vs {w}", pv[at(k)]);
                        }
                    }
                }
            }
        }
    }
    // logsumexp edge cases (jnp semantics).
    let lse = |v: Vec<f32>| {
        logsumexp(&Array::from_vec(vec![v.len()], v).unwrap(), &[0])
            .unwrap()
            .to_vec::<f32>()
            .unwrap()[0]
    };
    assert!((lse(vec![1000.0, 1000.0]) - (1000.0 + 2f32.ln())).abs() < 1e-3);
    assert!((lse(vec![-1000.0, -1000.0]) - (-1000.0 + 2f32.ln())).abs() < 1e-3);
    assert_eq!(lse(vec![f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    assert_eq!(lse(vec![1.0, f32::INFINITY]), f32::INFINITY);
    assert_eq!(lse(vec![]), f32::NEG_INFINITY);
    assert!(lse(vec![1.0, f32::NAN]).is_nan());
}

#[test]
fn composites_on_half_round_once() {
    use ferrax::bf16;
    // 3000 values of 1.5 and 1000 of 3.0: mean 1.875 exactly; a bf16 accumulator could not
    // represent the running sum.
    let mut v = vec![bf16::from_f32(1.5); 3000];
    v.extend(vec![bf16::from_f32(3.0); 1000]);
    let x = Array::from_vec(vec![4000], v).unwrap();
    let m = mean(&x, &[0]).unwrap();
    assert_eq!(m.dtype(), DType::BF16);
    assert_eq!(m.to_vec::<bf16>().unwrap()[0].to_f32(), 1.875);
    let p = softmax(&x, &[0]).unwrap();
    assert_eq!(p.dtype(), DType::BF16);
}

#[test]
fn typed_composites() {
    let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 6., 8.]).unwrap();
    assert_eq!(x.mean().item().unwrap(), 4.0);
    let m: Tensor<(C<2>,)> = x.mean_axis::<1>();
    assert_eq!(m.to_vec().unwrap(), vec![2.0, 6.0]);
    let v: Tensor<(C<3>,)> = x.var_axis::<0>();
    assert_eq!(v.to_vec().unwrap(), vec![2.25, 4.0, 6.25]);
    assert_eq!(x.std_axis::<0>().to_vec().unwrap(), vec![1.5, 2.0, 2.5]);
    assert!((x.var().item().unwrap() - 34.0 / 6.0).abs() < 1e-5);
    assert!((x.std().item().unwrap() - (34.0f32 / 6.0).sqrt()).abs() < 1e-5);
    // softmax() is over the last axis, like jax.nn.softmax.
    assert!(x
        .softmax()
        .to_vec()
        .unwrap()
        .iter()
        .zip(x.softmax_axis::<1>().to_vec().unwrap())
        .all(|(a, b)| *a == b));
    let lsm = x.log_softmax_axis::<0>().to_vec().unwrap();
    let sm = x.softmax_axis::<0>().to_vec().unwrap();
    assert!(lsm.iter().zip(&sm).all(|(a, b)| (a - b.ln()).abs() < 1e-6));
    assert!(x.log_softmax().to_vec().unwrap().iter().all(|v| *v < 0.0));
    let l: Tensor<(C<2>,)> = x.logsumexp_axis::<1>();
    assert!((l.to_vec().unwrap()[0] - (1f32.exp() + 2f32.exp() + 3f32.exp()).ln()).abs() < 1e-5);
    assert!((x.logsumexp().item().unwrap() - 8.151_673).abs() < 1e-5);
    assert!((x.norm().item().unwrap() - 130f32.sqrt()).abs() < 1e-5);
    assert_eq!(
        x.norm_axis::<1>(NormOrd::Inf).to_vec().unwrap(),
        vec![3.0, 8.0]
    );
    // Rank 0: softmax of a scalar is 1, log_softmax 0.
    let s = Tensor::<(), f64>::scalar(123.0);
    assert_eq!(s.softmax().item().unwrap(), 1.0);
    assert_eq!(s.log_softmax().item().unwrap(), 0.0);
    assert_eq!(s.mean().item().unwrap(), 123.0);
}
