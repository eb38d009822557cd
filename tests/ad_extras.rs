//! Autodiff beyond grad/jvp/vjp: `linearize` (primal once, linear program reused),
//! `custom_jvp` (user forward rules used by forward and reverse mode), remat policies
//! (same gradients, fewer saved residuals) and the `#[grad]` `hessian` companion. Oracles:
//! closed forms, plain `jvp`/`grad`, and central finite differences.

use ferrax::ad;
use ferrax::prelude::*;
use ferrax::prim::binary::{self, binary_scalar, BinaryOp};
use ferrax::prim::dot_general::matmul;
use ferrax::prim::{reduce, unary};
use ferrax::testing::{allclose, check_grads, GradCheck};
use ferrax::{custom_jvp, remat_with_policy, RematPolicy};

fn sum(a: &Array) -> ferrax::Result<Array> {
    reduce::reduce_sum(a, &(0..a.rank()).collect::<Vec<_>>())
}

fn arr(shape: &[usize], v: Vec<f64>) -> Array {
    Array::from_vec(shape.to_vec(), v).unwrap()
}

// ---------------------------------------------------------------- linearize

fn two_outputs(x: &Array) -> (Array, Array) {
    let a = binary::mul(&unary::sin(x).unwrap(), &unary::exp(x).unwrap()).unwrap();
    let b = unary::log1p(&binary::mul(x, x).unwrap()).unwrap();
    (a, b)
}

#[test]
fn linearize_equals_jvp_for_several_tangents_and_the_closed_form() {
    let xv = vec![0.3, -1.2, 2.0, 0.7];
    let x = arr(&[4], xv.clone());
    let ((a, b), lin) = ferrax::linearize(&x, two_outputs).unwrap();
    let (a0, b0) = two_outputs(&x);
    assert!(a.bit_eq(&a0) && b.bit_eq(&b0));
    let tangents = [
        vec![1.0, 0.0, 0.0, 0.0],
        vec![0.5, -2.0, 1.5, 3.0],
        vec![-1.0, 0.25, 0.0, -0.75],
    ];
    for tv in tangents {
        let t = arr(&[4], tv.clone());
        let (ta, tb) = lin.call(&t).unwrap();
        let (_, (ja, jb)) = ad::jvp(&x, &t, two_outputs).unwrap();
        allclose(&ta, &ja, 1e-12, 1e-14).unwrap();
        allclose(&tb, &jb, 1e-12, 1e-14).unwrap();
        // d(sin x e^x) = (cos x + sin x) e^x t; d log1p(x^2) = 2x/(1+x^2) t.
        let wa: Vec<f64> = xv
            .iter()
            .zip(&tv)
            .map(|(x, t)| (x.cos() + x.sin()) * x.exp() * t)
            .collect();
        let wb: Vec<f64> = xv
            .iter()
            .zip(&tv)
            .map(|(x, t)| 2.0 * x / (1.0 + x * x) * t)
            .collect();
        allclose(&ta, &arr(&[4], wa), 1e-12, 1e-14).unwrap();
        allclose(&tb, &arr(&[4], wb), 1e-12, 1e-14).unwrap();
    }
}

#[test]
fn the_linear_program_holds_no_nonlinear_primal_ops() {
    let x = arr(&[4], vec![0.3, -1.2, 2.0, 0.7]);
    let (_, lin) = ferrax::linearize(&x, two_outputs).unwrap();
    let p = lin.program();
    let text = p.to_string();
    // Every equation scales, adds or divides tangents by saved coefficients; the primal's
    // sin/exp/log1p (and their derivatives' cos) ran once, at linearize time.
    for op in ["sin", "cos", "exp", "log1p", "tanh", "log"] {
        assert!(
            !p.contains_prim(op),
            "the linear program applies `{op}`:\n{text}"
        );
    }
    for e in &p.eqns {
        assert!(
            ["mul", "add", "sub", "neg", "div"].contains(&e.prim.name()),
            "unexpected `{}` in the linear program:\n{text}",
            e.prim.name()
        );
    }
    // The forward-mode program it came from recomputes the primal (sin, exp, log1p).
    let (jp, _) = ferrax::trace::trace_fn(&[x.aval().clone(), x.aval().clone()], |a| {
        let (y, t) = ad::jvp(&a[0], &a[1], two_outputs)?;
        Ok(vec![y.0, y.1, t.0, t.1])
    })
    .unwrap();
    assert!(jp.contains_prim("sin") && jp.contains_prim("log1p"));
    assert!(p.eqn_count() < jp.eqn_count(), "{text}\nvs\n{jp}");
    // Only residuals the linear map reads are kept.
    assert_eq!(lin.num_residuals(), p.inputs.len() - 1, "{text}");
    // A tangent of the wrong shape is an error naming both.
    let e = lin.call(&arr(&[3], vec![1.0; 3])).unwrap_err().to_string();
    assert!(e.contains("[3]") && e.contains("[4]"), "{e}");
}

#[ferrax::jit]
fn linearized_in_jit(x: &Tensor<(C<4>,), f64>, t: &Tensor<(C<4>,), f64>) -> Tensor<(C<4>,), f64> {
    let (_, lin) = ferrax::linearize(x.array(), two_outputs).unwrap();
    Tensor::from_array(lin.call(t.array()).unwrap().0).unwrap()
}

#[test]
fn linearize_inside_jit_matches_the_closed_form() {
    let xv = vec![0.3, -1.2, 2.0, 0.7];
    let tv = vec![0.5, -2.0, 1.5, 3.0];
    let x = Tensor::<(C<4>,), f64>::from_vec(xv.clone()).unwrap();
    let t = Tensor::<(C<4>,), f64>::from_vec(tv.clone()).unwrap();
    let want: Vec<f64> = xv
        .iter()
        .zip(&tv)
        .map(|(x, t)| (x.cos() + x.sin()) * x.exp() * t)
        .collect();
    for _ in 0..2 {
        let got = linearized_in_jit(&x, &t);
        allclose(got.array(), &arr(&[4], want.clone()), 1e-12, 1e-14).unwrap();
    }
}

// ---------------------------------------------------------------- custom_jvp

/// `x^2` whose rule deliberately says `d = 3 x t` (the true derivative is `2 x t`), so every
/// check below proves the rule, not the primal, is differentiated.
fn square_with_wrong_rule(x: &Array) -> ferrax::Result<Array> {
    Ok(custom_jvp(
        |a| Ok(vec![binary::mul(&a[0], &a[0])?]),
        |p, t| {
            let y = binary::mul(&p[0], &p[0])?;
            let dy = binary::mul(&binary_scalar(BinaryOp::Mul, &p[0], 3.0)?, &t[0])?;
            Ok((vec![y], vec![dy]))
        },
        std::slice::from_ref(x),
    )?
    .remove(0))
}

#[test]
fn custom_jvp_rule_drives_value_grad_jvp_and_second_order() {
    let xv = vec![0.5, -2.0, 3.0];
    let x = arr(&[3], xv.clone());
    let (v, g) = ad::value_and_grad(&x, |x: &Array| {
        sum(&square_with_wrong_rule(x).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![0.25 + 4.0 + 9.0]);
    let want: Vec<f64> = xv.iter().map(|x| 3.0 * x).collect();
    assert_eq!(g.to_vec::<f64>().unwrap(), want);
    let t = arr(&[3], vec![1.0, 0.5, -2.0]);
    let (y, dy) = ad::jvp(&x, &t, |x: &Array| square_with_wrong_rule(x).unwrap()).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.25, 4.0, 9.0]);
    assert_eq!(dy.to_vec::<f64>().unwrap(), vec![1.5, -3.0, -18.0]);
    // Second order differentiates the rule: d/dx sum(3 x) = 3 everywhere.
    let h = ad::hvp(&x, &t, |x: &Array| {
        sum(&square_with_wrong_rule(x).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(h.to_vec::<f64>().unwrap(), vec![3.0, 1.5, -6.0]);
    let pb = ad::vjp(&x, |x: &Array| square_with_wrong_rule(x).unwrap())
        .unwrap()
        .1;
    let ct = pb.call(&arr(&[3], vec![1.0, 1.0, 2.0])).unwrap();
    assert_eq!(ct.to_vec::<f64>().unwrap(), vec![1.5, -6.0, 18.0]);
}

/// Clip to [-1, 1] with a straight-through rule (tangent passes unchanged): the true
/// derivative is 0 outside the interval, the rule says 1.
fn clip_straight_through(x: &Array) -> ferrax::Result<Array> {
    let clip = |a: &Array| -> ferrax::Result<Array> {
        binary_scalar(BinaryOp::Min, &binary_scalar(BinaryOp::Max, a, -1.0)?, 1.0)
    };
    Ok(custom_jvp(
        |a| Ok(vec![clip(&a[0])?]),
        |p, t| Ok((vec![clip(&p[0])?], vec![t[0].clone()])),
        std::slice::from_ref(x),
    )?
    .remove(0))
}

#[ferrax::jit]
fn clip_grad_jit(x: &Tensor<(C<4>,), f64>) -> Tensor<(C<4>,), f64> {
    let g = ad::grad(x.array(), |a: &Array| {
        sum(&binary::mul(&clip_straight_through(a).unwrap(), a).unwrap()).unwrap()
    })
    .unwrap();
    Tensor::from_array(g).unwrap()
}

#[test]
fn grad_of_custom_jvp_inside_jit_uses_the_rule() {
    // d/dx [clip(x) * x] with the rule d clip = t: x + clip(x).
    let xv = vec![-3.0, -0.5, 0.25, 2.0];
    let x = Tensor::<(C<4>,), f64>::from_vec(xv.clone()).unwrap();
    let want: Vec<f64> = xv.iter().map(|x| x + x.clamp(-1.0, 1.0)).collect();
    for _ in 0..2 {
        assert_eq!(clip_grad_jit(&x).to_vec().unwrap(), want);
    }
    // Staged: the traced program carries the custom_jvp primitive's rule, not a clip
    // derivative (which would be zero outside [-1, 1]).
    let eager = ad::grad(x.array(), |a: &Array| {
        sum(&binary::mul(&clip_straight_through(a).unwrap(), a).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(eager.to_vec::<f64>().unwrap(), want);
}

#[test]
fn custom_jvp_stable_logsumexp_matches_finite_differences() {
    // logsumexp with the rule d = <softmax(x), t>; the primal is the stable max-shifted one.
    let lse = |x: &Array| -> ferrax::Result<Array> {
        let f = |a: &Array| -> ferrax::Result<Array> {
            let m = reduce::reduce_max(a, &[0])?;
            let mb = ferrax::prim::broadcast_in_dim::broadcast_in_dim(&m, a.shape(), &[])?;
            let s = sum(&unary::exp(&binary::sub(a, &mb)?)?)?;
            binary::add(&unary::log(&s)?, &m)
        };
        Ok(custom_jvp(
            |a| Ok(vec![f(&a[0])?]),
            |p, t| {
                let y = f(&p[0])?;
                let yb = ferrax::prim::broadcast_in_dim::broadcast_in_dim(&y, p[0].shape(), &[])?;
                let sm = unary::exp(&binary::sub(&p[0], &yb)?)?;
                Ok((vec![y], vec![sum(&binary::mul(&sm, &t[0])?)?]))
            },
            std::slice::from_ref(x),
        )?
        .remove(0))
    };
    let x = arr(&[5], vec![1.0, -0.5, 3.0, 0.2, 2.5]);
    check_grads(
        &|a| lse(&a[0]),
        std::slice::from_ref(&x),
        GradCheck {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
    // Stable where the naive form overflows: x = 1000 + small.
    let big = arr(&[3], vec![1000.0, 1001.0, 999.0]);
    let (v, g) = ad::value_and_grad(&big, |a: &Array| lse(a).unwrap()).unwrap();
    let e: Vec<f64> = [0.0f64, 1.0, -1.0].iter().map(|d| d.exp()).collect();
    let z: f64 = e.iter().sum();
    assert!((v.to_vec::<f64>().unwrap()[0] - (1000.0 + z.ln())).abs() < 1e-9);
    let want: Vec<f64> = e.iter().map(|v| v / z).collect();
    allclose(&g, &arr(&[3], want), 1e-12, 1e-15).unwrap();
}

// ---------------------------------------------------------------- remat policies

fn mlp(p: &[Array]) -> ferrax::Result<Vec<Array>> {
    let h = unary::tanh(&matmul(&p[0], &p[1])?)?;
    let o = unary::tanh(&matmul(&h, &p[2])?)?;
    Ok(vec![sum(&unary::sin(&o)?)?])
}

fn mlp_params() -> (Array, Array, Array) {
    let x = arr(&[2, 3], (0..6).map(|i| (i as f64) * 0.3 - 0.8).collect());
    let w1 = arr(
        &[3, 4],
        (0..12).map(|i| ((i * 7 % 5) as f64) * 0.2 - 0.4).collect(),
    );
    let w2 = arr(
        &[4, 2],
        (0..8).map(|i| ((i * 3 % 7) as f64) * 0.15 - 0.5).collect(),
    );
    (x, w1, w2)
}

#[test]
fn remat_gives_the_same_gradient_and_stores_fewer_residuals() {
    let (x, w1, w2) = mlp_params();
    let w = (x.clone(), w1.clone(), w2.clone());
    let loss = |policy: Option<RematPolicy>| {
        move |w: &(Array, Array, Array)| -> Array {
            let args = [w.0.clone(), w.1.clone(), w.2.clone()];
            match policy {
                None => mlp(&args).unwrap().remove(0),
                Some(p) => remat_with_policy(mlp, &args, p).unwrap().remove(0),
            }
        }
    };
    let plain = ad::grad(&w, loss(None)).unwrap();
    for p in [RematPolicy::SaveNothing, RematPolicy::SaveDots] {
        let g = ad::grad(&w, loss(Some(p))).unwrap();
        ferrax::testing::assert_allclose(&g, &plain, 1e-13, 1e-15);
        // And the pullback path (forward once, backward on residuals) agrees too.
        let (_, pb) = ad::vjp(&w, loss(Some(p))).unwrap();
        let g2 = pb.call(&Array::full(&[], DType::F64, 1.0)).unwrap();
        ferrax::testing::assert_allclose(&g2, &plain, 1e-13, 1e-15);
    }
    // Residuals the backward pass reads beyond the arguments.
    let count = |p: Option<RematPolicy>| {
        let r = ad::saved_residuals(&w, loss(p)).unwrap();
        println!("{p:?}: {} residuals {r:?}", r.len());
        (r.len(), r)
    };
    let (n_plain, r_plain) = count(None);
    let (n_dots, r_dots) = count(Some(RematPolicy::SaveDots));
    let (n_none, r_none) = count(Some(RematPolicy::SaveNothing));
    assert!(
        n_none < n_dots && n_dots < n_plain,
        "residuals: nothing {r_none:?}, dots {r_dots:?}, plain {r_plain:?}"
    );
    // Save-dots keeps exactly the two matmul outputs.
    let shapes: Vec<Vec<usize>> = r_dots.iter().map(|a| a.shape.to_vec()).collect();
    assert_eq!(shapes, vec![vec![2, 4], vec![2, 2]], "{r_dots:?}");
    assert_eq!(n_none, 0, "{r_none:?}");
}

#[test]
fn remat_policies_pass_gradient_checks_to_second_order() {
    let (x, w1, w2) = mlp_params();
    for p in [RematPolicy::SaveNothing, RematPolicy::SaveDots] {
        check_grads(
            &|a| Ok(remat_with_policy(mlp, a, p)?.remove(0)),
            &[x.clone(), w1.clone(), w2.clone()],
            GradCheck {
                second_order: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{p:?}: {e}"));
    }
}

// ---------------------------------------------------------------- #[grad] hessian

#[grad]
fn cubic(x: &Tensor<(C<3>,), f64>) -> Tensor<(), f64> {
    // sum(x^3) + (sum x)^2: H = diag(6 x) + 2.
    (x * x * x).sum() + x.sum().square()
}

#[grad(wrt = (a, b))]
fn coupled(
    a: &Tensor<(C<2>,), f64>,
    b: &Tensor<(), f64>,
    k: &Tensor<(C<2>,), f64>,
) -> Tensor<(), f64> {
    // sum(k * a^2 * b) + b^3
    (k * a.square() * b).sum() + b * b * b
}

#[test]
fn hessian_companion_matches_the_closed_form() {
    let xv = [0.5, -1.0, 2.0];
    let x = Tensor::<(C<3>,), f64>::from_vec(xv.to_vec()).unwrap();
    let h = cubic::hessian(&x);
    assert_eq!(h.shape(), &[3, 3]);
    let mut want = vec![2.0; 9];
    for i in 0..3 {
        want[i * 3 + i] += 6.0 * xv[i];
    }
    allclose(&h, &arr(&[3, 3], want), 1e-12, 1e-12).unwrap();
}

#[test]
fn hessian_companion_over_several_arguments_matches_finite_differences() {
    let a = Tensor::<(C<2>,), f64>::from_vec(vec![0.7, -1.3]).unwrap();
    let b = Tensor::<(), f64>::scalar(0.4);
    let k = Tensor::<(C<2>,), f64>::from_vec(vec![2.0, 0.5]).unwrap();
    let h = coupled::hessian(&a, &b, &k);
    assert_eq!(h.shape(), &[3, 3]);
    // Central differences of the gradient, flattened as (a0, a1, b).
    let flat = |v: &[f64]| -> Vec<f64> {
        let a = Tensor::<(C<2>,), f64>::from_vec(v[..2].to_vec()).unwrap();
        let b = Tensor::<(), f64>::scalar(v[2]);
        let (ga, gb) = coupled::grad(&a, &b, &k);
        let mut g = ga.to_vec().unwrap();
        g.push(gb.item().unwrap());
        g
    };
    let p = [0.7, -1.3, 0.4];
    let eps = 1e-4;
    let mut fd = vec![0.0; 9];
    for j in 0..3 {
        let mut hi = p;
        let mut lo = p;
        hi[j] += eps;
        lo[j] -= eps;
        let (gh, gl) = (flat(&hi), flat(&lo));
        for i in 0..3 {
            fd[i * 3 + j] = (gh[i] - gl[i]) / (2.0 * eps);
        }
    }
    allclose(&h, &arr(&[3, 3], fd), 1e-6, 1e-8).unwrap();
}

#[ferrax::jit]
fn remat_dots_grad_jit(
    x: &Tensor<(C<2>, C<3>), f64>,
    w1: &Tensor<(C<3>, C<4>), f64>,
    w2: &Tensor<(C<4>, C<2>), f64>,
) -> Tensor<(C<3>, C<4>), f64> {
    let w = (x.array().clone(), w1.array().clone(), w2.array().clone());
    let g = ad::grad(&w, |w: &(Array, Array, Array)| {
        let args = [w.0.clone(), w.1.clone(), w.2.clone()];
        remat_with_policy(mlp, &args, RematPolicy::SaveDots)
            .unwrap()
            .remove(0)
    })
    .unwrap();
    Tensor::from_array(g.1).unwrap()
}

#[test]
fn remat_with_policy_inside_jit_gives_the_plain_gradient() {
    let (x, w1, w2) = mlp_params();
    let plain = ad::grad(
        &(x.clone(), w1.clone(), w2.clone()),
        |w: &(Array, Array, Array)| {
            mlp(&[w.0.clone(), w.1.clone(), w.2.clone()])
                .unwrap()
                .remove(0)
        },
    )
    .unwrap();
    let xt = Tensor::<(C<2>, C<3>), f64>::from_array(x.clone()).unwrap();
    let w1t = Tensor::<(C<3>, C<4>), f64>::from_array(w1.clone()).unwrap();
    let w2t = Tensor::<(C<4>, C<2>), f64>::from_array(w2.clone()).unwrap();
    for _ in 0..2 {
        let g = remat_dots_grad_jit(&xt, &w1t, &w2t);
        allclose(g.array(), &plain.1, 1e-12, 1e-14).unwrap();
    }
}
