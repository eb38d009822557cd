//! User-defined differentiation rules: `custom_vjp` (here: gradient clipping and a stable
//! softplus) and `remat` (recompute in the backward pass; same gradients).

use ferrax::ad;
use ferrax::prim::binary::{binary_scalar, BinaryOp};
use ferrax::prim::custom_vjp::custom_vjp;
use ferrax::prim::remat::remat;
use ferrax::prim::{reduce, unary};
use ferrax::testing::{check_grads, GradCheck};
use ferrax::{Array, Result};

fn sum(a: &Array) -> Result<Array> {
    reduce::reduce_sum(a, &(0..a.rank()).collect::<Vec<_>>())
}

/// Identity forward; the backward clips the cotangent to [-1, 1].
fn clip_gradient(x: &Array) -> Result<Array> {
    Ok(custom_vjp(
        |a| Ok(vec![a[0].clone()]),
        |a| Ok((vec![a[0].clone()], vec![])),
        |_res, ct| {
            Ok(vec![binary_scalar(
                BinaryOp::Min,
                &binary_scalar(BinaryOp::Max, &ct[0], -1.0)?,
                1.0,
            )?])
        },
        std::slice::from_ref(x),
    )?
    .remove(0))
}

#[test]
fn custom_vjp_replaces_the_derivative() {
    let x = Array::from_vec(vec![3], vec![0.5f64, -2.0, 3.0]).unwrap();
    // d/dx sum(5 * clip_gradient(x)) = clip(5) = 1 everywhere; the value is unchanged.
    let (v, g) = ad::value_and_grad(&x, |x: &Array| {
        sum(&binary_scalar(BinaryOp::Mul, &clip_gradient(x).unwrap(), 5.0).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![7.5]);
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![1.0, 1.0, 1.0]);
}

#[test]
fn custom_vjp_stable_softplus_matches_finite_differences() {
    // softplus(x) = log1p(exp(x)) with the rule d/dx = sigmoid(x), residual = sigmoid(x).
    let softplus = |x: &Array| -> Result<Array> {
        Ok(custom_vjp(
            |a| Ok(vec![unary::log1p(&unary::exp(&a[0])?)?]),
            |a| {
                Ok((
                    vec![unary::log1p(&unary::exp(&a[0])?)?],
                    vec![unary::logistic(&a[0])?],
                ))
            },
            |res, ct| Ok(vec![ferrax::prim::binary::mul(&res[0], &ct[0])?]),
            std::slice::from_ref(x),
        )?
        .remove(0))
    };
    let x = Array::from_vec(vec![4], vec![-3.0f64, -0.5, 0.25, 2.0]).unwrap();
    check_grads(
        &|a| sum(&softplus(&a[0])?),
        &[x],
        GradCheck {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn remat_gives_the_same_gradients_and_is_staged() {
    let x = Array::from_vec(vec![5], vec![0.1f64, -0.7, 1.3, 2.0, -1.5]).unwrap();
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let t = unary::tanh(&binary_scalar(BinaryOp::Mul, &a[0], 1.7)?)?;
        Ok(vec![unary::sin(&ferrax::prim::binary::mul(&t, &a[0])?)?])
    };
    let plain = ad::grad(&x, |x: &Array| {
        sum(&f(std::slice::from_ref(x)).unwrap()[0]).unwrap()
    })
    .unwrap();
    let rem = ad::grad(&x, |x: &Array| {
        sum(&remat(f, std::slice::from_ref(x)).unwrap()[0]).unwrap()
    })
    .unwrap();
    assert!(plain.bit_eq(&rem), "{plain:?} vs {rem:?}");
    check_grads(
        &|a| sum(&remat(f, a)?[0]),
        std::slice::from_ref(&x),
        GradCheck {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (prog, _) = ferrax::trace::trace_fn(&[x.aval().clone()], |a| remat(f, a)).unwrap();
    assert!(prog.to_string().contains("remat"));
}
