//! `#[grad]` surface: several `wrt` arguments (a tuple of gradients), `has_aux`, `vjp` and
//! `jvp` companions, grad of grad through a companion, against closed forms.

use ferrax::prelude::*;

#[grad(wrt = (a, b))]
fn two(a: &Tensor<(C<3>,), f64>, b: &Tensor<(), f64>, x: &Tensor<(C<3>,), f64>) -> Tensor<(), f64> {
    // sum((a * x + b)^2)
    ((a * x) + b).square().sum()
}

#[grad(wrt = w, has_aux)]
fn with_aux(w: &Tensor<(C<2>,), f64>) -> (Tensor<(), f64>, Tensor<(C<2>,), f64>) {
    let y = w.exp();
    (y.sum(), y)
}

#[test]
fn multiple_wrt_give_a_tuple_of_gradients() {
    let a = Tensor::<(C<3>,), f64>::from_vec(vec![1.0, -2.0, 0.5]).unwrap();
    let b = Tensor::<(), f64>::scalar(0.25);
    let x = Tensor::<(C<3>,), f64>::from_vec(vec![2.0, 1.0, -4.0]).unwrap();
    let (ga, gb) = two::grad(&a, &b, &x);
    let av = a.to_vec().unwrap();
    let xv = x.to_vec().unwrap();
    let r: Vec<f64> = av.iter().zip(&xv).map(|(a, x)| a * x + 0.25).collect();
    let want_a: Vec<f64> = r.iter().zip(&xv).map(|(r, x)| 2.0 * r * x).collect();
    assert_eq!(ga.to_vec().unwrap(), want_a);
    assert_eq!(gb.item().unwrap(), r.iter().map(|r| 2.0 * r).sum::<f64>());
    let (v, _) = two::value_and_grad(&a, &b, &x);
    assert_eq!(v.item().unwrap(), r.iter().map(|r| r * r).sum::<f64>());
}

#[test]
fn has_aux_returns_aux_alongside_the_gradient() {
    let w = Tensor::<(C<2>,), f64>::from_vec(vec![0.0, 1.0]).unwrap();
    let (g, aux) = with_aux::grad(&w);
    let e: Vec<f64> = vec![1.0, 1f64.exp()];
    assert_eq!(g.to_vec().unwrap(), e);
    assert_eq!(aux.to_vec().unwrap(), e);
    let ((loss, aux2), g2) = with_aux::value_and_grad(&w);
    assert_eq!(loss.item().unwrap(), 1.0 + 1f64.exp());
    assert_eq!(aux2.to_vec().unwrap(), e);
    assert_eq!(g2.to_vec().unwrap(), e);
}

#[grad]
fn cube_sum(x: &Tensor<(C<2>,), f64>) -> Tensor<(), f64> {
    (x * x * x).sum()
}

#[grad]
fn grad_norm(x: &Tensor<(C<2>,), f64>) -> Tensor<(), f64> {
    // A gradient inside a differentiated function: d/dx sum(3 x^2) = 6 x.
    cube_sum::grad(x).sum()
}

#[test]
fn companions_compose_and_forward_mode_agrees() {
    let x = Tensor::<(C<2>,), f64>::from_vec(vec![1.5, -2.0]).unwrap();
    assert_eq!(grad_norm::grad(&x).to_vec().unwrap(), vec![9.0, -12.0]);
    let t = Tensor::<(C<2>,), f64>::from_vec(vec![1.0, 0.5]).unwrap();
    let (v, dv) = cube_sum::jvp(&x, &t);
    assert_eq!(v.item().unwrap(), 1.5f64.powi(3) - 8.0);
    assert_eq!(dv.item().unwrap(), 3.0 * 2.25 * 1.0 + 3.0 * 4.0 * 0.5);
    let (v2, pullback) = cube_sum::vjp(&x);
    assert_eq!(v2.item().unwrap(), v.item().unwrap());
    let g = pullback.call(&Tensor::<(), f64>::scalar(2.0)).unwrap();
    assert_eq!(g.to_vec().unwrap(), vec![2.0 * 3.0 * 2.25, 2.0 * 3.0 * 4.0]);
}
