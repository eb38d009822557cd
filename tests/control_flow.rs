//! Structured control flow (`cond`/`switch`, `while_loop`, `fori_loop`, `scan`): values
//! against plain Rust loops, staged (`#[jit]`) equals eager, gradients against finite
//! differences (first and second order) and against JAX reference values, the while-loop
//! vjp error, and batching against per-example loops.

mod common;

use ferrax::jit::disable_jit;
use ferrax::prelude::*;
use ferrax::prim::binary::{add, binary_scalar, mul, sub, BinaryOp};
use ferrax::prim::compare::{compare, CompareOp};
use ferrax::prim::cond::{cond, switch, Branch};
use ferrax::prim::dot_general::matmul;
use ferrax::prim::reduce::reduce_sum;
use ferrax::prim::scan::scan;
use ferrax::prim::unary::{unary, UnaryOp};
use ferrax::prim::while_loop::{fori_loop, fori_loop_traced, while_loop};
use ferrax::testing::{check_grads, GradCheck};
use ferrax::AVal;
use ferrax::Result;

fn arr(shape: &[usize], v: Vec<f64>) -> Array {
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn vals(a: &Array) -> Vec<f64> {
    a.to_vec::<f64>().unwrap()
}

fn sum_all(x: &Array) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(x, &axes)
}

fn close(a: &[f64], b: &[f64], rtol: f64) {
    assert_eq!(a.len(), b.len(), "lengths {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= rtol * y.abs().max(1e-300) + 1e-300,
            "{a:?} vs {b:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// cond / switch

/// true: x * 2 + 1; false: x * x.
fn cond_f(p: &Array, x: &Array) -> Result<Array> {
    let t = |a: &[Array]| -> Result<Vec<Array>> {
        Ok(vec![binary_scalar(
            BinaryOp::Add,
            &binary_scalar(BinaryOp::Mul, &a[0], 2.0)?,
            1.0,
        )?])
    };
    let f = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![mul(&a[0], &a[0])?]) };
    Ok(cond(p, &t, &f, std::slice::from_ref(x))?.remove(0))
}

#[test]
fn cond_values_match_rust() {
    for (p, xs) in [
        (true, vec![1.5, -2.0, 0.25]),
        (false, vec![1.5, -2.0, 0.25]),
        (false, vec![3.0]),
    ] {
        let x = arr(&[xs.len()], xs.clone());
        let y = cond_f(&Array::scalar(p), &x).unwrap();
        let want: Vec<f64> = xs
            .iter()
            .map(|v| if p { v * 2.0 + 1.0 } else { v * v })
            .collect();
        assert_eq!(vals(&y), want, "pred {p}");
    }
}

#[test]
fn switch_clamps_the_index_and_passes_captures() {
    let shift = arr(&[2], vec![10.0, 20.0]);
    let b0 = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![a[0].clone()]) };
    let b1 = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![add(&a[0], &shift)?]) };
    let b2 = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![mul(&a[0], &a[0])?]) };
    let branches: [Branch<'_>; 3] = [&b0, &b1, &b2];
    let x = arr(&[2], vec![3.0, -1.0]);
    for (i, want) in [
        (-5, vec![3.0, -1.0]),
        (0, vec![3.0, -1.0]),
        (1, vec![13.0, 19.0]),
        (2, vec![9.0, 1.0]),
        (7, vec![9.0, 1.0]),
    ] {
        let y = switch(&Array::scalar(i), &branches, std::slice::from_ref(&x)).unwrap();
        assert_eq!(vals(&y[0]), want, "index {i}");
    }
}

#[test]
fn cond_branch_mismatch_names_both_avals() {
    let t = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![a[0].clone()]) };
    let f = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![sum_all(&a[0])?]) };
    let err = cond(
        &Array::scalar(true),
        &t,
        &f,
        &[arr(&[3], vec![1.0, 2.0, 3.0])],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("f64[3]") && err.contains("f64[]"), "{err}");
}

#[test]
fn cond_grads_both_branches() {
    for p in [true, false] {
        let f = move |a: &[Array]| -> Result<Array> {
            let y = cond_f(&Array::scalar(p), &unary(UnaryOp::Sin, &a[0])?)?;
            sum_all(&mul(&y, &a[0])?)
        };
        let x = arr(&[3], vec![0.3, -1.2, 0.7]);
        check_grads(
            &f,
            &[x],
            GradCheck {
                second_order: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

#[test]
fn cond_grads_with_captured_tracer_operand() {
    // The branches close over `w`, an outer traced value: it becomes an extra operand of
    // the cond and gets a cotangent.
    let f = |a: &[Array]| -> Result<Array> {
        let w = &a[1];
        let t = |o: &[Array]| -> Result<Vec<Array>> { Ok(vec![mul(&o[0], w)?]) };
        let e = |o: &[Array]| -> Result<Vec<Array>> { Ok(vec![sub(&o[0], &mul(w, w)?)?]) };
        let pred = compare(CompareOp::Gt, &sum_all(&a[0])?, &Array::scalar(0.0f64))?;
        sum_all(&cond(&pred, &t, &e, std::slice::from_ref(&a[0]))?[0])
    };
    for x0 in [1.0, -3.0] {
        let x = arr(&[2], vec![x0, 0.5]);
        let w = arr(&[2], vec![0.7, -1.1]);
        check_grads(
            &f,
            &[x, w],
            GradCheck {
                second_order: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

#[test]
fn cond_value_grad_and_jvp_match_closed_form() {
    // f(x, w) = sum(cond(sum(x) > 0, x * w, x - w * w)) with `w` captured by the branches:
    // true: df/dx = w, df/dw = x; false: df/dx = 1, df/dw = -2w.
    let f = |a: &[Array]| -> Result<Array> {
        let w = &a[1];
        let t = |o: &[Array]| -> Result<Vec<Array>> { Ok(vec![mul(&o[0], w)?]) };
        let e = |o: &[Array]| -> Result<Vec<Array>> { Ok(vec![sub(&o[0], &mul(w, w)?)?]) };
        let pred = compare(CompareOp::Gt, &sum_all(&a[0])?, &Array::scalar(0.0f64))?;
        sum_all(&cond(&pred, &t, &e, std::slice::from_ref(&a[0]))?[0])
    };
    let (wv, tx, tw) = ([0.7, -1.1], [0.5, -2.0], [1.5, 0.25]);
    for xv in [[1.0, 0.5], [-3.0, 0.5]] {
        let pos = xv[0] + xv[1] > 0.0;
        let args = vec![arr(&[2], xv.to_vec()), arr(&[2], wv.to_vec())];
        let (v, g) = ferrax::ad::value_and_grad(&args, |a| f(a).unwrap()).unwrap();
        let (mut want_v, mut gx, mut gw, mut want_t) = (0.0, vec![], vec![], 0.0);
        for i in 0..2 {
            if pos {
                want_v += xv[i] * wv[i];
                gx.push(wv[i]);
                gw.push(xv[i]);
                want_t += tx[i] * wv[i] + xv[i] * tw[i];
            } else {
                want_v += xv[i] - wv[i] * wv[i];
                gx.push(1.0);
                gw.push(-2.0 * wv[i]);
                want_t += tx[i] - 2.0 * wv[i] * tw[i];
            }
        }
        close(&vals(&v), &[want_v], 1e-12);
        close(&vals(&g[0]), &gx, 1e-12);
        close(&vals(&g[1]), &gw, 1e-12);
        let t = vec![arr(&[2], tx.to_vec()), arr(&[2], tw.to_vec())];
        let (_, tout) = ferrax::ad::jvp(&args, &t, |a| f(a).unwrap()).unwrap();
        close(&vals(&tout), &[want_t], 1e-12);
    }
}

// ---------------------------------------------------------------------------------------
// while_loop / fori_loop

/// Doubles x until its sum exceeds `limit`, counting steps.
fn double_until(x: &Array, limit: f64) -> Result<Vec<Array>> {
    while_loop(
        |c| compare(CompareOp::Le, &sum_all(&c[1])?, &Array::scalar(limit)),
        |c| {
            Ok(vec![
                binary_scalar(BinaryOp::Add, &c[0], 1.0)?,
                binary_scalar(BinaryOp::Mul, &c[1], 2.0)?,
            ])
        },
        &[Array::scalar(0i32), x.clone()],
    )
}

#[test]
fn while_loop_values_match_rust() {
    for (xs, limit) in [
        (vec![1.0, 0.5], 10.0),
        (vec![3.0], 2.0),
        (vec![0.25, 0.25, 0.5], 1000.0),
    ] {
        let out = double_until(&arr(&[xs.len()], xs.clone()), limit).unwrap();
        let (mut n, mut v) = (0i32, xs.clone());
        while v.iter().sum::<f64>() <= limit {
            n += 1;
            v.iter_mut().for_each(|e| *e *= 2.0);
        }
        assert_eq!(out[0].to_vec::<i32>().unwrap(), vec![n]);
        assert_eq!(vals(&out[1]), v);
    }
}

#[test]
fn fori_loop_static_and_traced_match_rust() {
    // carry = carry * 0.5 + i
    let body = |i: &Array, c: &[Array]| -> Result<Vec<Array>> {
        let fi = ferrax::prim::convert::convert(i, DType::F64)?;
        Ok(vec![add(&binary_scalar(BinaryOp::Mul, &c[0], 0.5)?, &fi)?])
    };
    for (lo, hi) in [(0usize, 5usize), (2, 7), (3, 3), (4, 1)] {
        let mut want = 1.0f64;
        for i in lo..hi {
            want = want * 0.5 + i as f64;
        }
        let init = [Array::scalar(1.0f64)];
        let s = fori_loop(lo, hi, body, &init).unwrap();
        assert_eq!(vals(&s[0]), vec![want], "static {lo}..{hi}");
        let t = fori_loop_traced(
            &Array::scalar(lo as i32),
            &Array::scalar(hi as i32),
            body,
            &init,
        )
        .unwrap();
        assert_eq!(vals(&t[0]), vec![want], "traced {lo}..{hi}");
    }
}

#[test]
fn fori_loop_static_grads() {
    let f = |a: &[Array]| -> Result<Array> {
        let w = &a[1];
        let out = fori_loop(
            0,
            4,
            |_, c| Ok(vec![unary(UnaryOp::Tanh, &add(&mul(&c[0], w)?, &c[0])?)?]),
            std::slice::from_ref(&a[0]),
        )?;
        sum_all(&out[0])
    };
    let x = arr(&[3], vec![0.3, -0.8, 0.5]);
    let w = arr(&[3], vec![0.9, 0.2, -0.4]);
    check_grads(
        &f,
        &[x, w],
        GradCheck {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn while_loop_vjp_is_a_clear_error() {
    let x = arr(&[2], vec![1.0, 2.0]);
    let err = ferrax::ad::grad(&x, |x| sum_all(&double_until(x, 10.0).unwrap()[1]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "reverse-mode differentiation of while_loop with a traced trip count is not supported"
        ) && err.contains("fori_loop with a static trip count or scan"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// scan

/// Cumulative sum with a decay (`c = c * decay + x; y = c * c`), decay captured.
fn decay_scan(
    init: &Array,
    xs: &Array,
    decay: &Array,
    reverse: bool,
) -> Result<(Vec<Array>, Vec<Array>)> {
    scan(
        |c, x| {
            let c2 = add(&mul(&c[0], decay)?, &x[0])?;
            let y = mul(&c2, &c2)?;
            Ok((vec![c2], vec![y]))
        },
        std::slice::from_ref(init),
        std::slice::from_ref(xs),
        None,
        reverse,
    )
}

fn decay_rust(
    init: &[f64],
    xs: &[Vec<f64>],
    decay: &[f64],
    reverse: bool,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut c = init.to_vec();
    let mut ys = vec![vec![]; xs.len()];
    let order: Vec<usize> = if reverse {
        (0..xs.len()).rev().collect()
    } else {
        (0..xs.len()).collect()
    };
    for i in order {
        for k in 0..c.len() {
            c[k] = c[k] * decay[k] + xs[i][k];
        }
        ys[i] = c.iter().map(|v| v * v).collect();
    }
    (c, ys)
}

#[test]
fn scan_values_match_rust() {
    let decay = vec![0.5, -1.25];
    for (len, reverse) in [
        (4usize, false),
        (4, true),
        (1, false),
        (0, false),
        (0, true),
    ] {
        let xs: Vec<Vec<f64>> = (0..len)
            .map(|i| vec![i as f64 * 0.75 - 1.0, 2.0 - i as f64])
            .collect();
        let init = vec![0.5, 1.5];
        let (c, ys) = decay_scan(
            &arr(&[2], init.clone()),
            &arr(&[len, 2], xs.concat()),
            &arr(&[2], decay.clone()),
            reverse,
        )
        .unwrap();
        let (wc, wys) = decay_rust(&init, &xs, &decay, reverse);
        assert_eq!(vals(&c[0]), wc, "len {len} reverse {reverse}");
        assert_eq!(ys[0].shape(), &[len, 2]);
        assert_eq!(vals(&ys[0]), wys.concat(), "len {len} reverse {reverse}");
    }
}

#[test]
fn scan_rejects_mismatched_carry() {
    let err = scan(
        |c, _| {
            Ok((
                vec![ferrax::prim::convert::convert(&c[0], DType::F32)?],
                vec![],
            ))
        },
        &[Array::scalar(1.0f64)],
        &[],
        Some(3),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("f32[]") && err.contains("f64[]"), "{err}");
}

#[test]
fn scan_grads_with_consts_and_reverse() {
    for reverse in [false, true] {
        let f = move |a: &[Array]| -> Result<Array> {
            let (c, ys) = decay_scan(&a[0], &a[1], &a[2], reverse)?;
            add(&sum_all(&unary(UnaryOp::Sin, &c[0])?)?, &sum_all(&ys[0])?)
        };
        let init = arr(&[2], vec![0.5, -0.3]);
        let xs = arr(&[3, 2], vec![0.1, 0.4, -0.2, 0.3, 0.6, -0.5]);
        let decay = arr(&[2], vec![0.8, -0.6]);
        check_grads(
            &f,
            &[init, xs, decay],
            GradCheck {
                second_order: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

// The RNN of the JAX reference: h_t = tanh(h_{t-1} @ Wh + xs[t] @ Wx + b), loss = sum(hs**2).
fn rnn_loss(a: &[Array]) -> Result<Array> {
    let (h0, xs, wh, wx, b) = (&a[0], &a[1], &a[2], &a[3], &a[4]);
    let (_, hs) = scan(
        |c, x| {
            let h = unary(
                UnaryOp::Tanh,
                &add(&add(&matmul(&c[0], wh)?, &matmul(&x[0], wx)?)?, b)?,
            )?;
            Ok((vec![h.clone()], vec![h]))
        },
        std::slice::from_ref(h0),
        std::slice::from_ref(xs),
        None,
        false,
    )?;
    sum_all(&mul(&hs[0], &hs[0])?)
}

#[test]
fn rnn_scan_matches_jax_reference() {
    let r = common::load("grads_shared.json");
    let f = common::function(&r, "rnn_scan_5_steps");
    let names = ["h0", "xs", "Wh", "Wx", "b"];
    let args: Vec<Array> = names
        .iter()
        .map(|n| common::tensor_f64(&f["inputs"][n]))
        .collect();
    let want = &f["float64"];
    let loss = rnn_loss(&args).unwrap();
    close(
        &vals(&loss),
        &vals(&common::tensor_f64(&want["value"])),
        1e-10,
    );
    let (v, g) = ferrax::ad::value_and_grad(&args, |a| rnn_loss(a).unwrap()).unwrap();
    close(&vals(&v), &vals(&common::tensor_f64(&want["value"])), 1e-10);
    for (n, g) in names.iter().zip(&g) {
        close(
            &vals(g),
            &vals(&common::tensor_f64(&want["grad"][n])),
            1e-10,
        );
    }
    // Forward mode (derived from the scan's vjp by transposition) against JAX's jvp.
    let t: Vec<Array> = names
        .iter()
        .map(|n| common::tensor_f64(&f["tangent"][n]))
        .collect();
    let (_, tout) = ferrax::ad::jvp(&args, &t, |a| rnn_loss(a).unwrap()).unwrap();
    close(
        &vals(&tout),
        &vals(&common::tensor_f64(&want["jvp"]["tangent_out"])),
        1e-10,
    );
}

#[test]
fn rnn_scan_grads_second_order() {
    let r = common::load("grads_shared.json");
    let f = common::function(&r, "rnn_scan_5_steps");
    let args: Vec<Array> = ["h0", "xs", "Wh", "Wx", "b"]
        .iter()
        .map(|n| common::tensor_f64(&f["inputs"][n]))
        .collect();
    check_grads(
        &rnn_loss,
        &args,
        GradCheck {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// staged: #[jit] equals eager

#[jit]
fn staged_scan(
    x: &Tensor<(C<4>, C<2>), f64>,
    d: &Tensor<(C<2>,), f64>,
) -> Tensor<(C<4>, C<2>), f64> {
    let init = Array::from_vec(vec![2], vec![0.5f64, 1.5]).unwrap();
    let (_, ys) = decay_scan(&init, x.array(), d.array(), false).unwrap();
    Tensor::from_array(ys[0].clone()).unwrap()
}

#[jit]
fn staged_control(x: &Tensor<(C<3>,), f64>) -> Tensor<(C<3>,), f64> {
    let p = compare(
        CompareOp::Gt,
        &sum_all(x.array()).unwrap(),
        &Array::scalar(0.0f64),
    )
    .unwrap();
    let y = cond_f(&p, x.array()).unwrap();
    let z = double_until(&y, 50.0).unwrap().remove(1);
    let w = fori_loop(
        0,
        3,
        |_, c| Ok(vec![binary_scalar(BinaryOp::Add, &c[0], 1.0)?]),
        &[z],
    )
    .unwrap();
    Tensor::from_array(w[0].clone()).unwrap()
}

#[test]
fn jit_equals_eager() {
    let x = Tensor::<(C<4>, C<2>), f64>::from_vec(vec![0.1, 0.4, -0.2, 0.3, 0.6, -0.5, 1.0, 2.0])
        .unwrap();
    let d = Tensor::<(C<2>,), f64>::from_vec(vec![0.8, -0.6]).unwrap();
    let eager = disable_jit(|| staged_scan(&x, &d));
    let staged = staged_scan(&x, &d);
    assert_eq!(staged.to_vec().unwrap(), eager.to_vec().unwrap());
    for xs in [vec![1.0, 2.0, -0.5], vec![-1.0, -2.0, 0.5]] {
        let x = Tensor::<(C<3>,), f64>::from_vec(xs).unwrap();
        let eager = disable_jit(|| staged_control(&x));
        let staged = staged_control(&x);
        assert_eq!(staged.to_vec().unwrap(), eager.to_vec().unwrap());
    }
}

// ---------------------------------------------------------------------------------------
// vmap

fn rows(a: &Array) -> Vec<Array> {
    (0..a.shape()[0])
        .map(|i| ferrax::vmap::index_axis(a, 0, i).unwrap())
        .collect()
}

#[test]
fn vmap_cond_with_batched_predicate() {
    let ps = Array::from_vec(vec![4], vec![true, false, false, true]).unwrap();
    let xs = arr(&[4, 2], vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 2.5, -3.0]);
    let f = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![cond_f(&a[0], &a[1])?]) };
    let out = ferrax::vmap::vmap(
        f,
        &[ps.clone(), xs.clone()],
        &[Some(0), Some(0)],
        &[Some(0)],
    )
    .unwrap();
    let mut want = Vec::new();
    for (p, x) in rows(&ps).iter().zip(rows(&xs)) {
        want.extend(vals(&cond_f(p, &x).unwrap()));
    }
    assert_eq!(vals(&out[0]), want);
    // A shared predicate with batched operands (the batched-branches path).
    let out = ferrax::vmap::vmap(
        f,
        &[Array::scalar(false), xs.clone()],
        &[None, Some(0)],
        &[Some(0)],
    )
    .unwrap();
    let want: Vec<f64> = vals(&xs).iter().map(|v| v * v).collect();
    assert_eq!(vals(&out[0]), want);
}

#[test]
fn vmap_scan_matches_per_example() {
    // Batched xs along axis 1 and a batched decay; the init is shared.
    let xs = arr(&[3, 2, 2], (0..12).map(|i| i as f64 * 0.25 - 1.0).collect());
    let decays = arr(&[2, 2], vec![0.5, -0.25, 1.5, 0.75]);
    let init = arr(&[2], vec![0.5, 1.5]);
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let (c, ys) = decay_scan(&a[0], &a[1], &a[2], false)?;
        Ok(vec![c[0].clone(), ys[0].clone()])
    };
    let out = ferrax::vmap::vmap(
        f,
        &[init.clone(), xs.clone(), decays.clone()],
        &[None, Some(1), Some(0)],
        &[Some(0)],
    )
    .unwrap();
    let mut wc = Vec::new();
    let mut wy = Vec::new();
    for b in 0..2 {
        let x_b = ferrax::vmap::index_axis(&xs, 1, b).unwrap();
        let d_b = ferrax::vmap::index_axis(&decays, 0, b).unwrap();
        let (c, ys) = decay_scan(&init, &x_b, &d_b, false).unwrap();
        wc.extend(vals(&c[0]));
        wy.extend(vals(&ys[0]));
    }
    assert_eq!(vals(&out[0]), wc);
    assert_eq!(vals(&out[1]), wy);
}

#[test]
fn vmap_while_loop_runs_each_example_to_its_own_end() {
    let xs = arr(&[3, 2], vec![1.0, 0.5, 3.0, 4.0, 0.125, 0.0]);
    let f = |a: &[Array]| double_until(&a[0], 10.0);
    let out = ferrax::vmap::vmap(f, std::slice::from_ref(&xs), &[Some(0)], &[Some(0)]).unwrap();
    let mut wn = Vec::new();
    let mut wx = Vec::new();
    for x in rows(&xs) {
        let o = double_until(&x, 10.0).unwrap();
        wn.extend(o[0].to_vec::<i32>().unwrap());
        wx.extend(vals(&o[1]));
    }
    assert_eq!(out[0].to_vec::<i32>().unwrap(), wn);
    assert_eq!(vals(&out[1]), wx);
}

// ---------------------------------------------------------------------------------------
// structure: the loops stay loops (nested programs), also after differentiation

#[test]
fn programs_keep_nested_control_flow() {
    let r = common::load("grads_shared.json");
    let f = common::function(&r, "rnn_scan_5_steps");
    let args: Vec<Array> = ["h0", "xs", "Wh", "Wx", "b"]
        .iter()
        .map(|n| common::tensor_f64(&f["inputs"][n]))
        .collect();
    let avals: Vec<_> = args.iter().map(|a| a.aval().clone()).collect();
    let (p, _) = ferrax::trace::trace_fn(&avals, |a| Ok(vec![rnn_loss(a)?])).unwrap();
    assert!(p.contains_prim("scan") && !p.contains_prim("while"));
    // One scan equation whose body holds the step (not 5 unrolled steps).
    assert_eq!(p.eqns.iter().filter(|e| e.prim.name() == "scan").count(), 1);
    let text = format!("{p}");
    assert!(text.contains("scan") && text.contains("tanh"), "{text}");
    ferrax::ir::verify(&p).unwrap();
    // The gradient program: a forward scan and a backward scan, no unrolling.
    let (g, _) = ferrax::trace::trace_fn(&avals, |a| {
        let (_, g) = ferrax::ad::value_and_grad(&a.to_vec(), |w| rnn_loss(w).unwrap())?;
        Ok(g)
    })
    .unwrap();
    ferrax::ir::verify(&g).unwrap();
    assert_eq!(
        g.eqns.iter().filter(|e| e.prim.name() == "scan").count(),
        3,
        "{g}"
    );
    let (c, _) = ferrax::trace::trace_fn(&[AVal::new(vec![3], DType::F64)], |a| {
        Ok(vec![
            cond_f(&Array::scalar(true), &a[0])?,
            double_until(&a[0], 4.0)?.remove(1),
        ])
    })
    .unwrap();
    assert!(c.contains_prim("cond") && c.contains_prim("while"));
    ferrax::ir::verify(&c).unwrap();
}

#[test]
fn vmap_of_grad_through_scan_matches_per_example() {
    let r = common::load("grads_shared.json");
    let f = common::function(&r, "rnn_scan_5_steps");
    let args: Vec<Array> = ["h0", "xs", "Wh", "Wx", "b"]
        .iter()
        .map(|n| common::tensor_f64(&f["inputs"][n]))
        .collect();
    let h0s = arr(
        &[3, 3],
        vec![-0.5, 0.25, 0.75, 0.125, -1.0, 0.5, 0.0, 0.375, -0.25],
    );
    let rest = args[1..].to_vec();
    let grad_h0 = |h0: &Array| -> Result<Array> {
        let mut a = vec![h0.clone()];
        a.extend(rest.iter().cloned());
        let g = ferrax::ad::grad(&a, |w| rnn_loss(w).unwrap())?;
        Ok(g[0].clone())
    };
    let out = ferrax::vmap::vmap(
        |a| Ok(vec![grad_h0(&a[0])?]),
        std::slice::from_ref(&h0s),
        &[Some(0)],
        &[Some(0)],
    )
    .unwrap();
    let mut want = Vec::new();
    for h in rows(&h0s) {
        want.extend(vals(&grad_h0(&h).unwrap()));
    }
    close(&vals(&out[0]), &want, 1e-12);
}

#[test]
fn vmap_while_loop_with_batched_predicate_const() {
    // The limit is an outer value captured by the predicate; batching it makes the
    // predicate's const batched while the carry starts shared.
    let limits = arr(&[3], vec![1.0, 10.0, 100.0]);
    let x = arr(&[2], vec![0.5, 0.25]);
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let lim = &a[0];
        while_loop(
            |c| compare(CompareOp::Le, &sum_all(&c[0])?, lim),
            |c| Ok(vec![binary_scalar(BinaryOp::Mul, &c[0], 3.0)?]),
            std::slice::from_ref(&x),
        )
    };
    let out = ferrax::vmap::vmap(f, std::slice::from_ref(&limits), &[Some(0)], &[Some(0)]).unwrap();
    let mut want = Vec::new();
    for l in [1.0, 10.0, 100.0] {
        let mut v = vec![0.5, 0.25];
        while v.iter().sum::<f64>() <= l {
            v.iter_mut().for_each(|e| *e *= 3.0);
        }
        want.extend(v);
    }
    assert_eq!(vals(&out[0]), want);
}

#[test]
fn vmap_scan_with_only_the_init_batched() {
    let inits = arr(&[3, 2], vec![0.5, 1.5, -1.0, 0.25, 2.0, 0.0]);
    let xs = arr(&[4, 2], (0..8).map(|i| i as f64 * 0.5 - 1.0).collect());
    let decay = arr(&[2], vec![0.5, -1.25]);
    for reverse in [false, true] {
        let f = |a: &[Array]| -> Result<Vec<Array>> {
            let (c, ys) = decay_scan(&a[0], &xs, &decay, reverse)?;
            Ok(vec![c[0].clone(), ys[0].clone()])
        };
        // ys stacked with the batch axis last, to exercise out_axes.
        let out = ferrax::vmap::vmap(
            f,
            std::slice::from_ref(&inits),
            &[Some(0)],
            &[Some(0), Some(2)],
        )
        .unwrap();
        assert_eq!(out[1].shape(), &[4, 2, 3]);
        for (b, init) in rows(&inits).iter().enumerate() {
            let (c, ys) = decay_scan(init, &xs, &decay, reverse).unwrap();
            assert_eq!(
                vals(&ferrax::vmap::index_axis(&out[0], 0, b).unwrap()),
                vals(&c[0])
            );
            assert_eq!(
                vals(&ferrax::vmap::index_axis(&out[1], 2, b).unwrap()),
                vals(&ys[0])
            );
        }
    }
}

#[test]
fn scan_tree_with_typed_carry() {
    // carry: (a typed tensor, a step counter); xs: a Vec of arrays; y: a tuple.
    let init = (
        Tensor::<(C<2>,), f64>::from_vec(vec![0.5, 1.5]).unwrap(),
        Array::scalar(0i32),
    );
    let xs_v: Vec<f64> = (0..6).map(|i| i as f64 * 0.5 - 1.0).collect();
    let xs = vec![arr(&[3, 2], xs_v.clone())];
    let decay = arr(&[2], vec![0.5, -1.25]);
    let ((c, n), (ys,)) = ferrax::prim::scan::scan_tree(
        |(c, n): (Tensor<(C<2>,), f64>, Array), x: Vec<Array>| {
            let c2 = add(&mul(c.array(), &decay)?, &x[0])?;
            let y = mul(&c2, &c2)?;
            Ok((
                (
                    Tensor::from_array(c2)?,
                    binary_scalar(BinaryOp::Add, &n, 1.0)?,
                ),
                (y,),
            ))
        },
        &init,
        &xs,
        None,
        false,
    )
    .unwrap();
    let rows_v: Vec<Vec<f64>> = xs_v.chunks(2).map(|r| r.to_vec()).collect();
    let (wc, wys) = decay_rust(&[0.5, 1.5], &rows_v, &[0.5, -1.25], false);
    assert_eq!(c.to_vec().unwrap(), wc);
    assert_eq!(n.to_vec::<i32>().unwrap(), vec![3]);
    assert_eq!(ys.shape(), &[3, 2]);
    assert_eq!(vals(&ys), wys.concat());
}
