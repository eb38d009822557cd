//! Control-flow rewriting in `#[jit]` bodies: `if` / `while` / `for i in lo..hi` on tensors
//! become `cond` / `while_loop` / `fori_loop` (checked in the staged program) and give the
//! values of plain Rust loops over `f64` (the oracle) and of the eager run; on `bool`s and
//! integers they stay Rust (no control-flow primitive, one program per static value); plain
//! Rust forms the macro must not touch still compile and run; the RNN of the JAX reference
//! through a rewritten `for` loop, value and gradient against `grads_shared.json`.

mod common;

use ferrax::jit::disable_jit;
use ferrax::prelude::*;

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{a:?} vs {b:?} (tol {tol})"
        );
    }
}

fn s64(x: f64) -> Tensor<(), f64> {
    Tensor::scalar(x)
}

// ---- if ---------------------------------------------------------------------------------

/// Branch-assigned variables (`y`) and an `if` value (`z`), plus an `else if` chain.
#[jit]
fn piecewise(x: &Tensor<(C<3>,), f64>) -> Tensor<(C<3>,), f64> {
    let s = x.sum();
    let mut y = x * 2.0;
    if s.gt(&s64(0.0)) {
        y = &y + x;
    } else {
        y = y.square();
    }
    let z = if s.lt(&s64(-5.0)) {
        y.sin()
    } else if s.lt(&s64(1.0)) {
        &y * 3.0
    } else {
        y.clone()
    };
    z
}

fn piecewise_oracle(x: &[f64]) -> Vec<f64> {
    let s: f64 = x.iter().sum();
    x.iter()
        .map(|&v| {
            let y = if s > 0.0 {
                3.0 * v
            } else {
                (2.0 * v) * (2.0 * v)
            };
            if s < -5.0 {
                y.sin()
            } else if s < 1.0 {
                y * 3.0
            } else {
                y
            }
        })
        .collect()
}

#[test]
fn tensor_if_matches_rust_and_eager() {
    let cases = [
        vec![1.0, 2.0, -0.5],  // s = 2.5: first branch, last else
        vec![0.2, 0.3, 0.1],   // s = 0.6: first branch, middle
        vec![-1.0, -2.0, 0.5], // s = -2.5: square, middle
        vec![-4.0, -2.0, 0.5], // s = -5.5: square, sin
    ];
    for xs in cases {
        let x = Tensor::<(C<3>,), f64>::from_vec(xs.clone()).unwrap();
        let staged = piecewise(&x).to_vec().unwrap();
        let eager = disable_jit(|| piecewise(&x)).to_vec().unwrap();
        close(&staged, &piecewise_oracle(&xs), 1e-12);
        assert_eq!(staged, eager, "{xs:?}");
    }
    // One program serves every branch choice: the condition is a traced value.
    assert_eq!(piecewise::stats().compiles, 1);
    let x = Tensor::<(C<3>,), f64>::from_vec(vec![1.0, 2.0, 3.0]).unwrap();
    let prog = piecewise::trace(&x).unwrap().to_string();
    assert_eq!(prog.matches("cond[").count(), 3, "{prog}");
}

/// The `if` on a tensor inside a differentiated function: `x * w` or `w - x^2` per element
/// sum sign, then summed.
#[jit]
fn branchy_loss(w: &Tensor<(C<2>,), f64>, x: &Tensor<(C<2>,), f64>) -> Tensor<(), f64> {
    let y = if x.sum().gt(&s64(0.0)) {
        x * w
    } else {
        w - &(x * x)
    };
    (&y * &y).sum()
}

/// The same loss under `#[grad]`, whose body is rewritten too.
#[grad]
fn branchy_grad(w: &Tensor<(C<2>,), f64>, x: &Tensor<(C<2>,), f64>) -> Tensor<(), f64> {
    let y = if x.sum().gt(&s64(0.0)) {
        x * w
    } else {
        w - &(x * x)
    };
    (&y * &y).sum()
}

#[test]
fn tensor_if_gradient_matches_closed_form() {
    let w = Tensor::<(C<2>,), f64>::from_vec(vec![0.7, -1.1]).unwrap();
    for xs in [[1.5, -0.5], [-1.5, 0.25]] {
        let x = Tensor::<(C<2>,), f64>::from_vec(xs.to_vec()).unwrap();
        let (v, g) = ferrax::ad::value_and_grad(&w, |w| branchy_loss(w, &x)).unwrap();
        let wv = [0.7, -1.1];
        let pos = xs[0] + xs[1] > 0.0;
        let (mut want_v, mut want_g) = (0.0, vec![]);
        for i in 0..2 {
            let y = if pos {
                xs[i] * wv[i]
            } else {
                wv[i] - xs[i] * xs[i]
            };
            let dy = if pos { xs[i] } else { 1.0 };
            want_v += y * y;
            want_g.push(2.0 * y * dy);
        }
        close(&[v.item().unwrap()], &[want_v], 1e-12);
        close(&g.to_vec().unwrap(), &want_g, 1e-12);
        let (v2, g2) = branchy_grad::value_and_grad(&w, &x);
        close(&[v2.item().unwrap()], &[want_v], 1e-12);
        close(&g2.to_vec().unwrap(), &want_g, 1e-12);
        close(
            &branchy_grad::grad(&w, &x).to_vec().unwrap(),
            &want_g,
            1e-12,
        );
    }
}

// ---- while ------------------------------------------------------------------------------

/// Doubles `x` until its sum exceeds `limit`, counting the steps.
#[jit]
fn double_until(
    x: &Tensor<(C<2>,), f64>,
    limit: &Tensor<(), f64>,
) -> (Tensor<(C<2>,), f64>, Tensor<(), i32>) {
    let mut v = x.clone();
    let mut n = Tensor::<(), i32>::scalar(0);
    while v.sum().le(limit) {
        v = &v * 2.0;
        n = &n + 1;
    }
    (v, n)
}

#[test]
fn tensor_while_matches_rust_and_eager() {
    for (xs, limit) in [([1.0, 0.5], 10.0), ([3.0, 0.0], 2.0), ([0.25, 0.5], 1000.0)] {
        let x = Tensor::<(C<2>,), f64>::from_vec(xs.to_vec()).unwrap();
        let l = s64(limit);
        let (v, n) = double_until(&x, &l);
        let (ev, en) = disable_jit(|| double_until(&x, &l));
        let (mut want_n, mut want_v) = (0, xs.to_vec());
        while want_v.iter().sum::<f64>() <= limit {
            want_n += 1;
            want_v.iter_mut().for_each(|e| *e *= 2.0);
        }
        assert_eq!(v.to_vec().unwrap(), want_v);
        assert_eq!(n.item().unwrap(), want_n);
        assert_eq!(ev.to_vec().unwrap(), want_v);
        assert_eq!(en.item().unwrap(), want_n);
    }
    assert_eq!(double_until::stats().compiles, 1);
    let x = Tensor::<(C<2>,), f64>::ones();
    let prog = double_until::trace(&x, &s64(4.0)).unwrap().to_string();
    assert!(prog.contains("while["), "{prog}");
}

/// A condition on known values with a traced carry: staged (not unrolled ten times).
#[jit]
fn times_1024(x: &Tensor<(), f64>) -> Tensor<(), f64> {
    let mut i = Tensor::<(), i32>::scalar(0);
    let mut acc = x.clone();
    while i.lt(&Tensor::scalar(10)) {
        acc = &acc * 2.0;
        i = &i + 1;
    }
    acc
}

#[test]
fn tensor_while_with_a_known_count_stays_a_loop() {
    assert_eq!(times_1024(&s64(0.75)).item().unwrap(), 768.0);
    assert_eq!(
        disable_jit(|| times_1024(&s64(0.75))).item().unwrap(),
        768.0
    );
    let prog = times_1024::trace(&s64(1.0)).unwrap().to_string();
    assert!(
        prog.contains("while[") && prog.matches("mul").count() < 3,
        "{prog}"
    );
}

/// The rewrite the `break` error suggests: a carried flag tested in the condition. The
/// condition variable `hit` is used twice (conditions are borrowed, not moved).
#[jit]
fn first_above(
    xs: &Tensor<(C<6>,), f64>,
    t: &Tensor<(), f64>,
) -> (Tensor<(), i32>, Tensor<(), f64>) {
    let n = Tensor::<(), i32>::scalar(6);
    let mut i = Tensor::<(), i32>::scalar(0);
    let mut go = Tensor::<(), bool>::scalar(true);
    let mut found = s64(-1.0);
    while &go & &i.lt(&n) {
        let x: Tensor<(C<1>,), f64> = xs.dynamic_slice([&i]);
        let x = x.sum();
        let hit = x.gt(t);
        if hit {
            go = Tensor::scalar(false);
        } else {
            i = &i + 1;
        }
        found = if hit { x } else { found };
    }
    (i, found)
}

#[test]
fn while_with_a_carried_flag_replaces_break() {
    let data = [0.5, -1.0, 2.5, 4.0, 0.0, 9.0];
    let xs = Tensor::<(C<6>,), f64>::from_vec(data.to_vec()).unwrap();
    for t in [-2.0, 1.0, 3.0, 8.0, 10.0] {
        let (i, found) = first_above(&xs, &s64(t));
        let want = data.iter().position(|&v| v > t);
        assert_eq!(i.item().unwrap(), want.map_or(6, |p| p as i32), "t = {t}");
        assert_eq!(
            found.item().unwrap(),
            want.map_or(-1.0, |p| data[p]),
            "t = {t}"
        );
        let (ei, ef) = disable_jit(|| first_above(&xs, &s64(t)));
        assert_eq!(
            (ei.item().unwrap(), ef.item().unwrap()),
            (i.item().unwrap(), found.item().unwrap())
        );
    }
    assert_eq!(first_above::stats().compiles, 1);
}

/// Batching the staged `if` and `while`: a per-example predicate (the `cond` becomes a
/// `select`, the `while` runs until every example is done) gives each example's own result.
#[test]
fn vmap_of_rewritten_control_flow_matches_per_example() {
    let rows = [
        [1.0, 2.0, -0.5],
        [-1.0, -2.0, 0.5],
        [0.2, 0.3, 0.1],
        [-4.0, -2.0, 0.5],
    ];
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let batch = Array::from_vec(vec![4, 3], flat).unwrap();
    let out = ferrax::vmap::vmap(
        |a| {
            let x = Tensor::<(C<3>,), f64>::from_array(a[0].clone())?;
            Ok(vec![piecewise(&x).into_array()])
        },
        &[batch],
        &[Some(0)],
        &[Some(0)],
    )
    .unwrap();
    let got = out[0].to_vec::<f64>().unwrap();
    let want: Vec<f64> = rows.iter().flat_map(|r| piecewise_oracle(r)).collect();
    close(&got, &want, 1e-12);

    let starts = Array::from_vec(vec![3, 2], vec![1.0, 0.5, 3.0, 0.0, 0.25, 0.5]).unwrap();
    let limit = s64(10.0);
    let out = ferrax::vmap::vmap(
        |a| {
            let x = Tensor::<(C<2>,), f64>::from_array(a[0].clone())?;
            let (v, n) = double_until(&x, &limit);
            Ok(vec![v.into_array(), n.into_array()])
        },
        &[starts],
        &[Some(0)],
        &[Some(0), Some(0)],
    )
    .unwrap();
    let (mut want_v, mut want_n) = (Vec::new(), Vec::new());
    for r in [[1.0, 0.5], [3.0, 0.0], [0.25, 0.5]] {
        let (mut n, mut v) = (0, r.to_vec());
        while v.iter().sum::<f64>() <= 10.0 {
            n += 1;
            v.iter_mut().for_each(|e| *e *= 2.0);
        }
        want_v.extend(v);
        want_n.push(n);
    }
    assert_eq!(out[0].to_vec::<f64>().unwrap(), want_v);
    assert_eq!(out[1].to_vec::<i32>().unwrap(), want_n);
}

// ---- for --------------------------------------------------------------------------------

/// `acc = acc / 2 + i` for i in lo..n, both bounds tensors (a traced trip count).
#[jit]
fn halving_sum(n: &Tensor<(), i32>, lo: &Tensor<(), i32>) -> Tensor<(), f64> {
    let mut acc = s64(1.0);
    for i in lo..n {
        acc = &acc * 0.5 + i.cast::<f64>();
    }
    acc
}

/// Literal lower bound, and an `if` on a tensor nested in the loop body.
#[jit]
fn bounce(x: &Tensor<(), f64>, n: &Tensor<(), i32>) -> Tensor<(), f64> {
    let mut acc = x.clone();
    for i in 0..n {
        if acc.gt(&s64(3.0)) {
            acc = &acc - 2.5;
        } else {
            acc = &acc * 2.0 + i.cast::<f64>();
        }
    }
    acc
}

#[test]
fn tensor_for_matches_rust_and_eager() {
    for (lo, n) in [(0, 0), (0, 5), (2, 7), (4, 1)] {
        let (tn, tlo) = (Tensor::<(), i32>::scalar(n), Tensor::<(), i32>::scalar(lo));
        let mut want = 1.0f64;
        for i in lo..n {
            want = want * 0.5 + f64::from(i);
        }
        assert_eq!(halving_sum(&tn, &tlo).item().unwrap(), want, "{lo}..{n}");
        let eager = disable_jit(|| halving_sum(&tn, &tlo)).item().unwrap();
        assert_eq!(eager, want, "eager {lo}..{n}");
    }
    // The trip count is traced: one program for every bound.
    assert_eq!(halving_sum::stats().compiles, 1);
    for (x0, n) in [(0.3, 6), (5.0, 3), (-1.0, 0)] {
        let tn = Tensor::<(), i32>::scalar(n);
        let mut want = x0;
        for i in 0..n {
            want = if want > 3.0 {
                want - 2.5
            } else {
                want * 2.0 + f64::from(i)
            };
        }
        let got = bounce(&s64(x0), &tn).item().unwrap();
        close(&[got], &[want], 1e-12);
        let eager = disable_jit(|| bounce(&s64(x0), &tn)).item().unwrap();
        assert_eq!(eager, got);
    }
    let prog = bounce::trace(&s64(1.0), &Tensor::scalar(3))
        .unwrap()
        .to_string();
    assert!(prog.contains("while[") && prog.contains("cond["), "{prog}");
}

// ---- plain Rust stays Rust --------------------------------------------------------------

/// A static `bool` and static counts: the `if` and the loops run in Rust while tracing
/// (unrolled), so the program has no control-flow primitive and each static value gets its
/// own program.
#[jit]
fn act(x: &Tensor<(C<3>,), f64>, relu: bool, reps: usize) -> Tensor<(C<3>,), f64> {
    let mut y = x.clone();
    if relu {
        y = y.relu();
    } else {
        y = y.tanh();
    }
    for _ in 0..reps {
        y = &y + x;
    }
    let mut k = 0;
    while k < reps {
        y = &y * 0.5;
        k += 1;
    }
    y
}

#[test]
fn bool_and_integer_conditions_stay_rust() {
    let xs = [0.5, -1.0, 2.0];
    let x = Tensor::<(C<3>,), f64>::from_vec(xs.to_vec()).unwrap();
    for relu in [true, false] {
        for reps in [0usize, 2] {
            let got = act(&x, relu, reps).to_vec().unwrap();
            let want: Vec<f64> = xs
                .iter()
                .map(|&v| {
                    let mut y = if relu { v.max(0.0) } else { v.tanh() };
                    for _ in 0..reps {
                        y += v;
                    }
                    for _ in 0..reps {
                        y *= 0.5;
                    }
                    y
                })
                .collect();
            close(&got, &want, 1e-12);
            let prog = act::trace(&x, relu, reps).unwrap().to_string();
            assert!(
                !prog.contains("cond[") && !prog.contains("while[") && !prog.contains("scan["),
                "{prog}"
            );
        }
    }
    assert_eq!(act::stats().compiles, 4);
    act(&x, true, 2);
    assert_eq!(act::stats().compiles, 4);
}

/// Ordinary Rust forms the rewriting must keep compiling: early `return`, `break`,
/// `continue`, `?` in a closure, `if let`, values moved in both branches, `&mut` method calls
/// in both branches, deferred initialization, labels, a `for` over a non-range.
#[jit]
fn plain_forms(x: &Tensor<(C<3>,), f64>, n: usize, flag: bool) -> Tensor<(C<3>,), f64> {
    let mut log: Vec<usize> = Vec::new();
    if flag {
        log.push(1)
    } else {
        log.push(2)
    }
    let y = x.clone();
    let y = if flag { y } else { y.square() };
    #[allow(clippy::needless_late_init)]
    let first;
    if n > 1 {
        first = 10.0;
    } else {
        first = 20.0;
    }
    let mut total = 0usize;
    'outer: for i in 0..n {
        for j in 0..n {
            if j > i {
                continue 'outer;
            }
            if i * j > 6 {
                break 'outer;
            }
            total += 1;
        }
    }
    let mut m = 0;
    while m < n {
        m += 1;
        if m == 2 {
            break;
        }
    }
    let parse = || -> Result<usize, std::num::ParseIntError> {
        let v: usize = "7".parse()?;
        Ok(v)
    };
    if let Ok(v) = parse() {
        total += v;
    }
    for v in [1usize, 2, 3] {
        total += v;
    }
    if total > 1000 {
        return y;
    }
    // A char range, a reference-valued `if`, an index loop with a carried sum.
    let (lo_c, hi_c) = ('a', 'e');
    let mut letters = 0usize;
    for _c in lo_c..hi_c {
        letters += 1;
    }
    let words = [3usize, 4];
    let pick: &usize = if flag { &words[0] } else { &words[1] };
    let mut acc = 0;
    for i in 0..words.len() {
        acc += words[i];
    }
    total += letters + *pick + acc;
    // Const contexts keep their `if`s (a staged call is not const).
    const SEVEN: usize = if 3 > 2 { 7 } else { 0 };
    let arr = [0u8; if SEVEN > 1 { 2 } else { 1 }];
    let _: [u8; {
        if SEVEN > 1 {
            2
        } else {
            1
        }
    }] = arr;
    let bump = (first + (total + m + log[0]) as f64) / 1000.0;
    &y + bump
}

#[test]
fn plain_rust_forms_still_compile_and_run() {
    let xs = [0.5, -1.0, 2.0];
    let x = Tensor::<(C<3>,), f64>::from_vec(xs.to_vec()).unwrap();
    // n = 4, flag = true: log[0] = 1; first = 10; pairs (i, j) with j <= i until i*j > 6:
    // i=0: 1, i=1: 2, i=2: 3, i=3: (0..2 -> 3, then 3*3 = 9 > 6 breaks) = 9; m = 2; total
    // = 9 + 7 + 6 = 22, plus 4 letters + words[0] + 7 = 36; bump = (10 + 36 + 2 + 1) / 1000.
    let got = plain_forms(&x, 4, true).to_vec().unwrap();
    let want: Vec<f64> = xs.iter().map(|v| v + 49.0 / 1000.0).collect();
    close(&got, &want, 1e-12);
    let got = plain_forms(&x, 1, false).to_vec().unwrap();
    // n = 1: total = 1 + 7 + 6 + 4 + words[1] + 7 = 29, m = 1, log[0] = 2, first = 20:
    // bump = 52 / 1000.
    let want: Vec<f64> = xs.iter().map(|v| v * v + 52.0 / 1000.0).collect();
    close(&got, &want, 1e-12);
}

// ---- the RNN of the JAX reference through a rewritten `for` -------------------------------

type Rnn = (
    Tensor<(C<3>,), f64>,
    Tensor<(C<5>, C<2>), f64>,
    Tensor<(C<3>, C<3>), f64>,
    Tensor<(C<2>, C<3>), f64>,
    Tensor<(C<3>,), f64>,
);

/// `h_t = tanh(h_{t-1} @ Wh + xs[t] @ Wx + b)`, loss = sum over t of sum(h_t^2), as a `for`
/// loop over a tensor bound (5 steps): a `fori_loop` (a `scan`, since the bound is known).
#[jit]
fn rnn_for(p: &Rnn) -> Tensor<(), f64> {
    let (h0, xs, wh, wx, b) = p;
    let steps = Tensor::<(), i32>::scalar(5);
    let zero = Tensor::<(), i32>::scalar(0);
    let mut h = h0.clone();
    let mut loss = s64(0.0);
    for t in 0..steps {
        let x: Tensor<(C<1>, C<2>), f64> = xs.dynamic_slice([&t, &zero]);
        let x = x.reshape::<(C<2>,)>();
        h = (h.matmul(wh) + x.matmul(wx) + b).tanh();
        loss = loss + (&h * &h).sum();
    }
    loss
}

#[test]
fn rnn_through_a_rewritten_for_matches_jax_reference() {
    let doc = common::load("grads_shared.json");
    let f = common::function(&doc, "rnn_scan_5_steps");
    let t = |n: &str| common::f64_data(&f["inputs"][n]);
    let p: Rnn = (
        Tensor::from_vec(t("h0")).unwrap(),
        Tensor::from_vec(t("xs")).unwrap(),
        Tensor::from_vec(t("Wh")).unwrap(),
        Tensor::from_vec(t("Wx")).unwrap(),
        Tensor::from_vec(t("b")).unwrap(),
    );
    let want = &f["float64"];
    let value = common::f64_data(&want["value"]);
    close(&[rnn_for(&p).item().unwrap()], &value, 1e-10);
    let prog = rnn_for::trace(&p).unwrap().to_string();
    assert!(prog.contains("scan[") && !prog.contains("while["), "{prog}");
    // Reverse mode through the staged loop (the jit body is inlined into the gradient's
    // trace and its `for` becomes a differentiable scan).
    let (v, g) = ferrax::ad::value_and_grad(&p, rnn_for).unwrap();
    close(&[v.item().unwrap()], &value, 1e-10);
    let g_want = |n: &str| common::f64_data(&want["grad"][n]);
    close(&g.0.to_vec().unwrap(), &g_want("h0"), 1e-10);
    close(&g.1.to_vec().unwrap(), &g_want("xs"), 1e-10);
    close(&g.2.to_vec().unwrap(), &g_want("Wh"), 1e-10);
    close(&g.3.to_vec().unwrap(), &g_want("Wx"), 1e-10);
    close(&g.4.to_vec().unwrap(), &g_want("b"), 1e-10);
}
