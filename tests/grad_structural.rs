//! Reverse-mode (`vjp`) and batching (`batch`) rules of the structural primitives (reshape,
//! transpose, slice, dynamic slices, pad, concatenate, rev, iota, gather, scatter_add,
//! broadcast_in_dim) and the transpose/reshape simplifications. Gradients are checked
//! against central finite differences in f64 (first and second order, reverse and forward
//! mode), against closed forms where indices repeat or are clamped, and against JAX
//! reference values; batching rules against a per-example loop, which must agree exactly.

use ferrax::ad::{grad, jvp};
use ferrax::exec::Executable;
use ferrax::prim::binary::{add, mul};
use ferrax::prim::broadcast_in_dim::{broadcast_in_dim, BroadcastInDim};
use ferrax::prim::concatenate::{concatenate, stack, Concatenate};
use ferrax::prim::dynamic_slice::{dynamic_slice, DynamicSlice};
use ferrax::prim::dynamic_update_slice::{dynamic_update_slice, DynamicUpdateSlice};
use ferrax::prim::gather::{gather, take, Gather, GatherMode};
use ferrax::prim::iota::{iota, Iota};
use ferrax::prim::pad::{pad, Pad};
use ferrax::prim::reduce::reduce_sum;
use ferrax::prim::reshape::{reshape, Reshape};
use ferrax::prim::rev::{rev, Rev};
use ferrax::prim::scatter_add::{scatter_add, IndexMode, ScatterAdd};
use ferrax::prim::slice::{slice, Slice};
use ferrax::prim::transpose::{inverse_perm, transpose, Transpose};
use ferrax::prim::Primitive;
use ferrax::testing::{check_grads, GradCheck};
use ferrax::trace::trace_fn;
use ferrax::vmap::{index_axis, vmap};
use ferrax::{AVal, Array, DType, Error, Result};
use std::sync::Arc;

mod common;

// ---------------------------------------------------------------------------------------
// Helpers.

/// Deterministic, non-degenerate f64 values (no two neighbours equal, none zero).
fn arr(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as u64 * 2_654_435_761 + seed * 97 + 13) % 1000) as f64 / 311.0 - 1.55)
        .collect();
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn i32s(shape: &[usize], v: &[i32]) -> Array {
    Array::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}

fn f64s(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

fn sum_all(x: &Array) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(x, &axes)
}

/// A nonlinear scalar loss of `y`: `sum(y * y * w)` with fixed weights `w`, so both the
/// first and the second derivative of the structural op under test are exercised (a plain
/// sum of a linear op has a constant gradient and a zero Hessian).
fn loss(y: &Array) -> Result<Array> {
    let w = arr(y.shape(), 991);
    sum_all(&mul(&mul(y, y)?, &w)?)
}

/// The project standard: eps 1e-4, rtol 1e-5, first and second order.
fn opts() -> GradCheck {
    GradCheck {
        eps: 1e-4,
        rtol: 1e-5,
        atol: 1e-7,
        directions: 3,
        second_order: true,
        seed: 11,
    }
}

fn check(what: &str, f: impl Fn(&[Array]) -> Result<Array>, args: &[Array]) {
    if let Err(e) = check_grads(&f, args, opts()) {
        panic!("{what}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Gradients vs finite differences (first and second order).

#[test]
fn reshape_grads() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[6, 4]),
        (&[2, 3, 4], &[4, 3, 2]),
        (&[2, 3, 4], &[24]),
        (&[6], &[1, 6, 1]),
        (&[1], &[]),
    ];
    for (k, (from, to)) in cases.iter().enumerate() {
        check(
            &format!("reshape {from:?} -> {to:?}"),
            |xs| loss(&reshape(&xs[0], to)?),
            &[arr(from, k as u64)],
        );
    }
}

#[test]
fn transpose_grads() {
    let perms: &[&[usize]] = &[&[1, 0, 2], &[2, 0, 1], &[2, 1, 0], &[0, 2, 1]];
    for (k, p) in perms.iter().enumerate() {
        check(
            &format!("transpose {p:?}"),
            |xs| loss(&transpose(&xs[0], p)?),
            &[arr(&[2, 3, 4], k as u64)],
        );
    }
}

#[test]
fn slice_grads() {
    // (start, limit, strides) on a [7, 5] operand: strided windows whose last element is not
    // at the limit, a window at the far edge, a single element and an empty one.
    type Case = (&'static [usize], &'static [usize], &'static [usize]);
    let cases: &[Case] = &[
        (&[0, 0], &[7, 5], &[2, 1]),
        (&[1, 1], &[6, 5], &[3, 2]),
        (&[2, 0], &[7, 4], &[1, 3]),
        (&[6, 4], &[7, 5], &[1, 1]),
        (&[3, 2], &[3, 5], &[1, 1]),
        (&[0, 1], &[7, 5], &[4, 4]),
    ];
    for (k, (s, l, st)) in cases.iter().enumerate() {
        check(
            &format!("slice {s:?}..{l:?} step {st:?}"),
            |xs| loss(&slice(&xs[0], s, l, Some(st))?),
            &[arr(&[7, 5], k as u64)],
        );
    }
}

#[test]
fn pad_grads() {
    // Both the operand and the padding value are differentiated.
    type Case = &'static [(i64, i64, usize)];
    let cases: &[Case] = &[
        &[(1, 2, 0), (0, 1, 0)],
        &[(0, 0, 2), (1, 0, 1)],
        &[(-1, 2, 1), (2, -2, 0)],
        &[(-2, -1, 0), (0, 0, 3)],
        &[(3, 1, 1), (-3, 0, 2)],
        // Everything along axis 0 cropped away: the operand's cotangent there is zero.
        &[(-5, 2, 0), (0, 0, 0)],
    ];
    for (k, cfg) in cases.iter().enumerate() {
        check(
            &format!("pad {cfg:?}"),
            |xs| loss(&pad(&xs[0], &xs[1], cfg)?),
            &[
                arr(&[4, 3], k as u64),
                Array::from_vec(vec![], vec![0.37 + k as f64 * 0.1]).unwrap(),
            ],
        );
    }
}

#[test]
fn dynamic_slice_grads() {
    // Starts in range, past the end (clamped to dim - size), negative (clamped to 0), and of
    // several integer dtypes.
    let cases: &[(i64, i64, [usize; 2])] = &[
        (1, 2, [3, 2]),
        (5, 9, [2, 3]),
        (-3, 1, [4, 1]),
        (0, 0, [5, 4]),
        (2, -1, [0, 2]),
    ];
    for (k, &(a, b, sizes)) in cases.iter().enumerate() {
        for dt in [DType::I32, DType::I64, DType::U32] {
            if dt == DType::U32 && (a < 0 || b < 0) {
                continue;
            }
            let (sa, sb) = (
                Array::full(&[], dt, a as f64),
                Array::full(&[], dt, b as f64),
            );
            check(
                &format!("dynamic_slice starts ({a}, {b}) sizes {sizes:?} {dt}"),
                |xs| loss(&dynamic_slice(&xs[0], &[&sa, &sb], &sizes)?),
                &[arr(&[5, 4], k as u64)],
            );
        }
    }
}

#[test]
fn dynamic_update_slice_grads() {
    let cases: &[(i64, i64, [usize; 2])] = &[
        (1, 2, [3, 2]),
        (5, 9, [2, 3]),
        (-3, 1, [4, 1]),
        (0, 0, [5, 4]),
    ];
    for (k, &(a, b, ushape)) in cases.iter().enumerate() {
        let (sa, sb) = (Array::scalar(a as i32), Array::scalar(b as i32));
        check(
            &format!("dynamic_update_slice starts ({a}, {b}) update {ushape:?}"),
            |xs| loss(&dynamic_update_slice(&xs[0], &xs[1], &[&sa, &sb])?),
            &[arr(&[5, 4], k as u64), arr(&ushape, 50 + k as u64)],
        );
    }
}

#[test]
fn concatenate_grads() {
    // Three operands of different lengths along the axis, on each axis.
    for axis in 0..3 {
        let shape = |len: usize| {
            let mut s = vec![2, 3, 2];
            s[axis] = len;
            s
        };
        check(
            &format!("concatenate axis {axis}"),
            |xs| loss(&concatenate(&[&xs[0], &xs[1], &xs[2]], axis)?),
            &[arr(&shape(1), 1), arr(&shape(3), 2), arr(&shape(2), 3)],
        );
    }
}

#[test]
fn rev_grads() {
    let cases: &[&[usize]] = &[&[0], &[1], &[0, 2], &[2, 1, 0]];
    for (k, axes) in cases.iter().enumerate() {
        check(
            &format!("rev {axes:?}"),
            |xs| loss(&rev(&xs[0], axes)?),
            &[arr(&[3, 2, 4], k as u64)],
        );
    }
}

#[test]
fn gather_grads() {
    // Repeated, negative (wrapped) and out-of-range (clamped) indices; both forms; int32 and
    // int64 indices.
    let take_idx = i32s(&[2, 3], &[0, 2, 0, -1, 7, 2]);
    for axis in 0..3 {
        check(
            &format!("take axis {axis}"),
            |xs| loss(&gather(&xs[0], &take_idx, axis, GatherMode::Take)?),
            &[arr(&[3, 4, 3], axis as u64)],
        );
    }
    let idx64 = Array::from_vec(vec![4], vec![1i64, 1, -4, 9]).unwrap();
    check(
        "take i64",
        |xs| loss(&take(&xs[0], &idx64, 1)?),
        &[arr(&[2, 3], 5)],
    );
    // take_along_axis on [3, 4] along each axis.
    let along0 = i32s(
        &[5, 4],
        &[0, 1, 2, 0, 2, 2, -1, 1, 0, 0, 0, 9, 1, 2, 1, 1, -3, 0, 2, 2],
    );
    let along1 = i32s(&[3, 2], &[3, 3, 0, -1, 8, 1]);
    check(
        "take_along_axis 0",
        |xs| loss(&gather(&xs[0], &along0, 0, GatherMode::AlongAxis)?),
        &[arr(&[3, 4], 6)],
    );
    check(
        "take_along_axis 1",
        |xs| loss(&gather(&xs[0], &along1, 1, GatherMode::AlongAxis)?),
        &[arr(&[3, 4], 7)],
    );
}

#[test]
fn gather_repeated_indices_accumulate() {
    // d/dx sum(take(x, [0, 0, 2, -1, 9])) counts how often each row is read: -1 wraps to 3
    // (the last row) and 9 clamps to 3.
    let x = arr(&[4, 2], 1);
    let idx = i32s(&[5], &[0, 0, 2, -1, 9]);
    let g = grad(&x, |x: &Array| sum_all(&take(x, &idx, 0).unwrap()).unwrap()).unwrap();
    assert_eq!(f64s(&g), vec![2.0, 2.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
}

#[test]
fn scatter_add_grads() {
    // Operand and updates are differentiated; out-of-range indices are dropped (`Drop`) or
    // clamped (`Clip`): finite differences see which.
    let take_idx = i32s(&[4], &[1, 1, -1, 5]);
    let along = i32s(&[3, 3], &[0, 2, 1, 2, 2, -4, 1, 3, 0]);
    for mode in [IndexMode::Drop, IndexMode::Clip] {
        for axis in 0..2 {
            let mut ushape = vec![3, 3];
            ushape[axis] = 4;
            check(
                &format!("scatter_add take axis {axis} {mode:?}"),
                |xs| {
                    loss(&scatter_add(
                        &xs[0],
                        &take_idx,
                        &xs[1],
                        axis,
                        GatherMode::Take,
                        mode,
                    )?)
                },
                &[arr(&[3, 3], 1), arr(&ushape, 2)],
            );
            check(
                &format!("scatter_add along axis {axis} {mode:?}"),
                |xs| {
                    loss(&scatter_add(
                        &xs[0],
                        &along,
                        &xs[1],
                        axis,
                        GatherMode::AlongAxis,
                        mode,
                    )?)
                },
                &[arr(&[3, 3], 3), arr(&[3, 3], 4)],
            );
        }
    }
}

#[test]
fn scatter_add_drop_gives_dropped_updates_zero_gradient() {
    // Updates whose index is out of range never reach the result (Drop): zero gradient. With
    // Clip they land on the clamped row.
    let x = arr(&[3], 1);
    let u = arr(&[4], 2);
    let idx = i32s(&[4], &[0, 3, -1, -4]);
    let weights = Array::from_vec(vec![3], vec![1.0, 10.0, 100.0]).unwrap();
    for (mode, want) in [
        (IndexMode::Drop, vec![1.0, 0.0, 100.0, 0.0]),
        (IndexMode::Clip, vec![1.0, 100.0, 100.0, 1.0]),
    ] {
        let g = grad(&u, |u: &Array| {
            let y = scatter_add(&x, &idx, u, 0, GatherMode::Take, mode).unwrap();
            sum_all(&mul(&y, &weights).unwrap()).unwrap()
        })
        .unwrap();
        assert_eq!(f64s(&g), want, "{mode:?}");
    }
}

#[test]
fn iota_has_no_operands_to_differentiate() {
    let ct = Array::zeros(&[3], DType::F64);
    let cts = Iota {
        shape: vec![3],
        dtype: DType::F64,
        dimension: 0,
    }
    .vjp(&[], &[], &[Some(ct)])
    .unwrap();
    assert!(cts.is_empty());
    // A function using iota differentiates through its other operands.
    check(
        "x * iota",
        |xs| loss(&mul(&xs[0], &iota(DType::F64, &[2, 3], 1)?)?),
        &[arr(&[2, 3], 1)],
    );
}

#[test]
fn integer_operands_get_no_cotangent() {
    let x = i32s(&[4], &[1, 2, 3, 4]);
    let ct = i32s(&[2], &[1, 1]);
    let s = Slice {
        start: vec![1],
        limit: vec![3],
        strides: vec![1],
    };
    let out = s
        .vjp(
            std::slice::from_ref(&x),
            std::slice::from_ref(&ct),
            &[Some(ct.clone())],
        )
        .unwrap();
    assert!(out[0].is_none());
    let g = Gather {
        axis: 0,
        mode: GatherMode::Take,
    };
    let idx = i32s(&[2], &[0, 3]);
    let out = g
        .vjp(&[x, idx], std::slice::from_ref(&ct), &[Some(ct.clone())])
        .unwrap();
    assert!(out.iter().all(Option::is_none));
    // A zero (absent) cotangent gives absent cotangents.
    let t = Transpose { perm: vec![1, 0] };
    assert!(t
        .vjp(&[arr(&[2, 3], 0)], &[arr(&[3, 2], 0)], &[None])
        .unwrap()[0]
        .is_none());
}

// ---------------------------------------------------------------------------------------
// JAX reference values.

/// The entry `name` of the shared JAX reference set.
fn reference(name: &str) -> common::Json {
    common::function(&common::load("grads_shared.json"), name).clone()
}

fn close(what: &str, got: &Array, want: &Array) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = f64s(want).iter().fold(0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in f64s(got).iter().zip(f64s(want)).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 + 1e-10 * scale,
            "{what}[{i}]: {g} vs JAX {w}"
        );
    }
}

/// Checks value, gradient, jvp and Hessian-vector product of `f` (over the differentiable
/// inputs `names`, in order) against the reference entry's float64 values.
fn check_reference(name: &str, names: &[&str], f: &dyn Fn(&[Array]) -> Result<Array>) {
    let r = reference(name);
    let xs: Vec<Array> = names
        .iter()
        .map(|n| common::tensor_f64(&r["inputs"][n]))
        .collect();
    let ts: Vec<Array> = names
        .iter()
        .map(|n| common::tensor_f64(&r["tangent"][n]))
        .collect();
    let f64r = &r["float64"];
    close(
        &format!("{name} value"),
        &f(&xs).unwrap(),
        &common::tensor_f64(&f64r["value"]),
    );
    let g = grad(&xs, |xs: &Vec<Array>| f(xs).unwrap()).unwrap();
    for (n, gi) in names.iter().zip(&g) {
        close(
            &format!("{name} grad {n}"),
            gi,
            &common::tensor_f64(&f64r["grad"][n]),
        );
    }
    let (_, t) = jvp(&xs, &ts, |xs: &Vec<Array>| f(xs).unwrap()).unwrap();
    close(
        &format!("{name} jvp"),
        &t,
        &common::tensor_f64(&f64r["jvp"]["tangent_out"]),
    );
    let (_, hv) = jvp(&xs, &ts, |xs: &Vec<Array>| {
        grad(xs, |ys: &Vec<Array>| f(ys).unwrap()).unwrap()
    })
    .unwrap();
    for (n, h) in names.iter().zip(&hv) {
        close(
            &format!("{name} hvp {n}"),
            h,
            &common::tensor_f64(&f64r["hvp"][n]),
        );
    }
}

#[test]
fn reference_concat_take() {
    // sum(take(concatenate([x, y], axis=0), idx, axis=0) ** 2 * w); idx is a constant.
    let idx = common::tensor(&reference("concat_take")["inputs"]["idx"]);
    check_reference("concat_take", &["x", "y", "w"], &|a| {
        let c = concatenate(&[&a[0], &a[1]], 0)?;
        let t = take(&c, &idx, 0)?;
        let w = broadcast_in_dim(&a[2], t.shape(), &[1])?;
        sum_all(&mul(&mul(&t, &t)?, &w)?)
    });
}

#[test]
fn reference_reshape_transpose_elementwise_matmul() {
    // sum((reshape(x, (4, 3)) @ transpose(W)) ** 2), with the matmul written as a broadcast
    // product summed over k, so that only the structural rules (and elementwise/reduction
    // ones) are involved.
    check_reference("reshape_transpose", &["x", "W"], &|a| {
        let xr = broadcast_in_dim(&reshape(&a[0], &[4, 3])?, &[4, 3, 2], &[0, 1])?;
        let wt = broadcast_in_dim(&transpose(&a[1], &[1, 0])?, &[4, 3, 2], &[1, 2])?;
        let y = reduce_sum(&mul(&xr, &wt)?, &[1])?;
        sum_all(&mul(&y, &y)?)
    });
}

#[test]
fn reference_reshape_transpose() {
    // The same through `matmul`, so it also needs dot_general's reverse rule.
    check_reference("reshape_transpose", &["x", "W"], &|a| {
        let y = ferrax::prim::dot_general::matmul(
            &reshape(&a[0], &[4, 3])?,
            &transpose(&a[1], &[1, 0])?,
        )?;
        sum_all(&mul(&y, &y)?)
    });
}

// ---------------------------------------------------------------------------------------
// Batching rules vs a per-example loop (exact).

/// Runs `prim`'s batching rule on `n` examples (argument `j` of example `i` is
/// `make(i, j)`; unbatched arguments use example 0), stacked along `dims[j]`, and checks
/// each example of the result bit for bit against the primitive on that example alone.
fn check_batch(
    what: &str,
    prim: Arc<dyn Primitive>,
    make: &dyn Fn(usize, usize) -> Array,
    dims: &[Option<usize>],
    n: usize,
) {
    let batched: Vec<Array> = dims
        .iter()
        .enumerate()
        .map(|(j, d)| match d {
            Some(d) => {
                let ex: Vec<Array> = (0..n).map(|i| make(i, j)).collect();
                stack(&ex.iter().collect::<Vec<_>>(), *d).unwrap()
            }
            None => make(0, j),
        })
        .collect();
    let (outs, out_dims) = match prim.batch(&batched, dims) {
        Ok(r) => r,
        Err(e) => panic!("{what} dims {dims:?}: batching rule failed: {e}"),
    };
    assert_eq!(outs.len(), 1, "{what}");
    for i in 0..n {
        let ex: Vec<Array> = (0..dims.len())
            .map(|j| {
                if dims[j].is_some() {
                    make(i, j)
                } else {
                    make(0, j)
                }
            })
            .collect();
        let want = &ferrax::bind(prim.clone(), &ex.iter().collect::<Vec<_>>()).unwrap()[0];
        let got = match out_dims[0] {
            Some(d) => index_axis(&outs[0], d, i).unwrap(),
            None => outs[0].clone(),
        };
        assert!(
            got.bit_eq(want),
            "{what} dims {dims:?} example {i}: {got:?} vs {want:?}"
        );
    }
}

/// Every single-operand placement of the batch axis: front, middle, back.
fn unary_dims(rank: usize) -> Vec<Vec<Option<usize>>> {
    vec![vec![Some(0)], vec![Some(1.min(rank))], vec![Some(rank)]]
}

/// Every combination of batch axes 0, 1 and None (not all None) for operands of the given
/// example ranks.
fn all_dims(ranks: &[usize]) -> Vec<Vec<Option<usize>>> {
    let mut out: Vec<Vec<Option<usize>>> = vec![vec![]];
    for &r in ranks {
        let choices: Vec<Option<usize>> = if r == 0 {
            vec![Some(0), None]
        } else {
            vec![Some(0), Some(1), None]
        };
        out = out
            .iter()
            .flat_map(|p| choices.iter().map(move |c| [p.clone(), vec![*c]].concat()))
            .collect();
    }
    out.retain(|d| d.iter().any(Option::is_some));
    out
}

#[test]
fn batch_single_operand_rules() {
    let x = |i: usize, _: usize| arr(&[3, 4, 2], 10 + i as u64);
    let prims: Vec<(&str, Arc<dyn Primitive>)> = vec![
        (
            "reshape",
            Arc::new(Reshape {
                new_shape: vec![4, 6],
            }),
        ),
        (
            "reshape flat",
            Arc::new(Reshape {
                new_shape: vec![24],
            }),
        ),
        (
            "transpose",
            Arc::new(Transpose {
                perm: vec![2, 0, 1],
            }),
        ),
        (
            "transpose swap",
            Arc::new(Transpose {
                perm: vec![1, 0, 2],
            }),
        ),
        (
            "slice",
            Arc::new(Slice {
                start: vec![1, 0, 1],
                limit: vec![3, 4, 2],
                strides: vec![1, 2, 1],
            }),
        ),
        ("rev", Arc::new(Rev { axes: vec![0, 2] })),
        (
            "broadcast_in_dim",
            Arc::new(BroadcastInDim {
                shape: vec![3, 5, 4, 2],
                dims: vec![0, 2, 3],
            }),
        ),
        (
            "broadcast_in_dim front",
            Arc::new(BroadcastInDim {
                shape: vec![2, 3, 4, 2],
                dims: vec![1, 2, 3],
            }),
        ),
    ];
    for (what, p) in &prims {
        for d in unary_dims(3) {
            check_batch(what, p.clone(), &x, &d, 5);
        }
    }
    // Broadcasting size-1 axes, with the batch axis landing between target axes.
    let y = |i: usize, _: usize| arr(&[3, 1], 20 + i as u64);
    let b = Arc::new(BroadcastInDim {
        shape: vec![2, 3, 6, 4],
        dims: vec![1, 3],
    });
    for d in unary_dims(2) {
        check_batch("broadcast_in_dim stretch", b.clone(), &y, &d, 3);
    }
}

#[test]
fn batch_pad() {
    let make = |i: usize, j: usize| {
        if j == 0 {
            arr(&[3, 2], 30 + i as u64)
        } else {
            Array::from_vec(vec![], vec![0.5 + i as f64]).unwrap()
        }
    };
    for cfg in [vec![(1, 2, 0), (0, 1, 1)], vec![(-1, 2, 1), (2, -1, 0)]] {
        let p: Arc<dyn Primitive> = Arc::new(Pad {
            config: cfg.clone(),
        });
        for d in all_dims(&[2, 0]) {
            check_batch(&format!("pad {cfg:?}"), p.clone(), &make, &d, 4);
        }
    }
}

#[test]
fn batch_concatenate() {
    for axis in 0..2 {
        let make = move |i: usize, j: usize| {
            let mut s = vec![2, 3];
            s[axis] = j + 1;
            arr(&s, 40 + (i * 3 + j) as u64)
        };
        let p: Arc<dyn Primitive> = Arc::new(Concatenate { axis });
        for d in all_dims(&[2, 2, 2]) {
            check_batch(&format!("concatenate axis {axis}"), p.clone(), &make, &d, 3);
        }
    }
}

#[test]
fn batch_dynamic_slice() {
    // Starts differ per example (in range, clamped high, negative) when batched.
    let starts = [[1i32, 0], [7, 2], [-2, 5], [2, -1]];
    let make = |i: usize, j: usize| {
        if j == 0 {
            arr(&[5, 4], 50 + i as u64)
        } else {
            Array::scalar(starts[i][j - 1])
        }
    };
    // Including full-size and empty windows.
    for sizes in [vec![2, 3], vec![5, 1], vec![0, 4]] {
        let p: Arc<dyn Primitive> = Arc::new(DynamicSlice {
            sizes: sizes.clone(),
        });
        for d in all_dims(&[2, 0, 0]) {
            check_batch(&format!("dynamic_slice {sizes:?}"), p.clone(), &make, &d, 4);
        }
    }
}

#[test]
fn batch_dynamic_update_slice() {
    let starts = [[1i32, 0], [7, 2], [-2, 5], [2, -1]];
    // Including a full-size and an empty update.
    for ushape in [[2, 3], [5, 1], [0, 4]] {
        let make = |i: usize, j: usize| match j {
            0 => arr(&[5, 4], 60 + i as u64),
            1 => arr(&ushape, 70 + i as u64),
            _ => Array::scalar(starts[i][j - 2]),
        };
        let p: Arc<dyn Primitive> = Arc::new(DynamicUpdateSlice);
        for d in all_dims(&[2, 2, 0, 0]) {
            check_batch(
                &format!("dynamic_update_slice {ushape:?}"),
                p.clone(),
                &make,
                &d,
                4,
            );
        }
    }
}

#[test]
fn batch_gather() {
    let take_idx = [
        [0i32, 2, 2, -1, 9, 1],
        [1, 1, 0, 0, 2, -2],
        [2, 0, 1, 7, -1, 0],
    ];
    for axis in 0..3 {
        let make = |i: usize, j: usize| {
            if j == 0 {
                arr(&[3, 4, 3], 80 + i as u64)
            } else {
                i32s(&[2, 3], &take_idx[i])
            }
        };
        let p: Arc<dyn Primitive> = Arc::new(Gather {
            axis,
            mode: GatherMode::Take,
        });
        for d in all_dims(&[3, 2]) {
            check_batch(&format!("take axis {axis}"), p.clone(), &make, &d, 3);
        }
    }
    for axis in 0..2 {
        let make = move |i: usize, j: usize| {
            if j == 0 {
                arr(&[3, 4], 90 + i as u64)
            } else {
                let mut s = vec![3, 4];
                s[axis] = 2;
                let v: Vec<i32> = (0..8).map(|k| ((k * 5 + i * 3) % 7) as i32 - 2).collect();
                i32s(&s, &v[..s.iter().product()])
            }
        };
        let p: Arc<dyn Primitive> = Arc::new(Gather {
            axis,
            mode: GatherMode::AlongAxis,
        });
        for d in all_dims(&[2, 2]) {
            check_batch(
                &format!("take_along_axis axis {axis}"),
                p.clone(),
                &make,
                &d,
                3,
            );
        }
    }
}

#[test]
fn batch_scatter_add() {
    let take_idx = [[0i32, 2, 2, -1], [1, 1, 5, 0], [2, -3, 1, 1]];
    for mode in [IndexMode::Drop, IndexMode::Clip] {
        for axis in 0..2 {
            let make = move |i: usize, j: usize| match j {
                0 => arr(&[3, 3], 100 + i as u64),
                1 => i32s(&[4], &take_idx[i]),
                _ => {
                    let mut s = vec![3, 3];
                    s[axis] = 4;
                    arr(&s, 110 + i as u64)
                }
            };
            let p: Arc<dyn Primitive> = Arc::new(ScatterAdd {
                axis,
                mode: GatherMode::Take,
                indices: mode,
            });
            for d in all_dims(&[2, 1, 2]) {
                check_batch(
                    &format!("scatter_add take axis {axis} {mode:?}"),
                    p.clone(),
                    &make,
                    &d,
                    3,
                );
            }
            let make = move |i: usize, j: usize| match j {
                0 => arr(&[3, 3], 120 + i as u64),
                1 => {
                    let v: Vec<i32> = (0..9).map(|k| ((k * 4 + i * 5) % 8) as i32 - 3).collect();
                    i32s(&[3, 3], &v)
                }
                _ => arr(&[3, 3], 130 + i as u64),
            };
            let p: Arc<dyn Primitive> = Arc::new(ScatterAdd {
                axis,
                mode: GatherMode::AlongAxis,
                indices: mode,
            });
            for d in all_dims(&[2, 2, 2]) {
                check_batch(
                    &format!("scatter_add along axis {axis} {mode:?}"),
                    p.clone(),
                    &make,
                    &d,
                    3,
                );
            }
        }
    }
}

#[test]
fn batch_iota_is_unbatched() {
    let p = Iota {
        shape: vec![2, 3],
        dtype: DType::I32,
        dimension: 1,
    };
    let (outs, dims) = p.batch(&[], &[]).unwrap();
    assert_eq!(dims, vec![None]);
    assert_eq!(outs[0].to_vec::<i32>().unwrap(), vec![0, 1, 2, 0, 1, 2]);
}

#[test]
fn vmap_of_structural_program_matches_loop() {
    // A program chaining several structural ops, mapped with the batch axis at 0, 1 and
    // shared; the engine uses the rules above (the per-example fallback would also pass, so
    // the direct rule tests above are what pin the rules down).
    let f = |xs: &[Array]| -> Result<Vec<Array>> {
        let (x, w) = (&xs[0], &xs[1]);
        let t = transpose(x, &[1, 0])?;
        let s = slice(&t, &[0, 1], &[4, 3], Some(&[2, 1]))?;
        let r = rev(&reshape(&s, &[4])?, &[0])?;
        let p = pad(&r, &Array::scalar(0.25f64), &[(1, 1, 1)])?;
        let c = concatenate(&[&p, w, &r], 0)?;
        let g = take(&c, &i32s(&[5], &[0, 3, 3, -1, 20]), 0)?;
        Ok(vec![add(&g, &g)?])
    };
    let n = 3;
    let cases: &[(Option<usize>, Option<usize>)] = &[
        (Some(0), Some(0)),
        (Some(1), None),
        (Some(2), Some(1)),
        (None, Some(0)),
    ];
    for &(xd, wd) in cases {
        let ex_x: Vec<Array> = (0..n).map(|i| arr(&[3, 4], 140 + i as u64)).collect();
        let ex_w: Vec<Array> = (0..n).map(|i| arr(&[2], 150 + i as u64)).collect();
        let bx = match xd {
            Some(d) => stack(&ex_x.iter().collect::<Vec<_>>(), d).unwrap(),
            None => ex_x[0].clone(),
        };
        let bw = match wd {
            Some(d) => stack(&ex_w.iter().collect::<Vec<_>>(), d).unwrap(),
            None => ex_w[0].clone(),
        };
        let got = vmap(|a| f(a), &[bx, bw], &[xd, wd], &[Some(0)]).unwrap();
        for i in 0..n {
            let x = if xd.is_some() { &ex_x[i] } else { &ex_x[0] };
            let w = if wd.is_some() { &ex_w[i] } else { &ex_w[0] };
            let want = &f(&[x.clone(), w.clone()]).unwrap()[0];
            let gi = index_axis(&got[0], 0, i).unwrap();
            assert!(
                gi.bit_eq(want),
                "dims ({xd:?}, {wd:?}) example {i}: {gi:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn batch_rules_reject_bad_arguments_without_panicking() {
    let t = Transpose { perm: vec![1, 0] };
    assert!(t.batch(&[arr(&[2, 3], 0)], &[Some(2)]).is_err());
    assert!(t.batch(&[arr(&[2, 3], 0)], &[Some(0), None]).is_err());
    let c = Concatenate { axis: 0 };
    let e = c.batch(&[arr(&[2, 3], 0), arr(&[3, 3], 0)], &[Some(0), Some(0)]);
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
    let g = Gather {
        axis: 0,
        mode: GatherMode::Take,
    };
    assert!(g.batch(&[arr(&[2, 3], 0)], &[Some(0)]).is_err());
}

// ---------------------------------------------------------------------------------------
// Simplification.

fn compiled_steps(f: impl FnOnce(&[Array]) -> Result<Vec<Array>>, shape: &[usize]) -> Vec<String> {
    let (prog, captured) = trace_fn(&[AVal::new(shape.to_vec(), DType::F64)], f).unwrap();
    assert!(captured.is_empty());
    Executable::compile(&prog).unwrap().describe()
}

#[test]
fn transpose_of_inverse_transpose_compiles_away() {
    for perm in [vec![1, 0, 2], vec![2, 0, 1], vec![1, 2, 0]] {
        let inv = inverse_perm(&perm);
        let steps = compiled_steps(
            |xs| {
                let t = transpose(&transpose(&xs[0], &perm)?, &inv)?;
                Ok(vec![sum_all(&add(&t, &xs[0])?)?])
            },
            &[2, 3, 4],
        );
        assert!(
            steps.iter().all(|s| !s.contains("transpose")),
            "perm {perm:?}: {steps:?}"
        );
    }
    // Two transposes that do not cancel stay (one of them, at least).
    let steps = compiled_steps(
        |xs| {
            let t = transpose(&transpose(&xs[0], &[1, 0, 2])?, &[0, 2, 1])?;
            Ok(vec![t])
        },
        &[2, 3, 4],
    );
    assert!(steps.iter().any(|s| s.contains("transpose")), "{steps:?}");
}

#[test]
fn reshape_back_to_original_shape_compiles_away() {
    let steps = compiled_steps(
        |xs| {
            let r = reshape(&reshape(&xs[0], &[6, 4])?, &[2, 3, 4])?;
            Ok(vec![sum_all(&add(&r, &xs[0])?)?])
        },
        &[2, 3, 4],
    );
    assert!(steps.iter().all(|s| !s.contains("reshape")), "{steps:?}");
    // A reshape to a third shape is kept.
    let steps = compiled_steps(
        |xs| Ok(vec![reshape(&reshape(&xs[0], &[6, 4])?, &[4, 6])?]),
        &[2, 3, 4],
    );
    assert!(steps.iter().any(|s| s.contains("reshape")), "{steps:?}");
}

#[test]
fn simplified_program_still_computes_the_same() {
    let (prog, _) = trace_fn(&[AVal::new(vec![2, 3], DType::F64)], |xs| {
        let t = transpose(&transpose(&xs[0], &[1, 0])?, &[1, 0])?;
        Ok(vec![add(&t, &reshape(&reshape(&xs[0], &[6])?, &[2, 3])?)?])
    })
    .unwrap();
    let x = arr(&[2, 3], 3);
    let got = Executable::compile(&prog)
        .unwrap()
        .run(std::slice::from_ref(&x))
        .unwrap();
    assert!(got[0].bit_eq(&add(&x, &x).unwrap()));
}
