//! A user's program: `#[derive(Tree)]`, `#[jit]` and `#[grad]` from outside the workspace.

use ferrax::prelude::*;

#[derive(Tree)]
struct Params {
    w: Tensor<(C<3>,)>,
    b: Tensor<()>,
    #[tree(static)]
    name: String,
}

#[grad(wrt = p)]
fn loss(p: &Params, x: &Tensor<(C<3>,)>) -> Tensor<()> {
    ((&p.w * x).sum() + &p.b).square()
}

#[jit]
fn step(p: &mut Params, x: &Tensor<(C<3>,)>, lr: f32) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(p, x);
    p.w = &p.w - &(g.w * lr);
    p.b = &p.b - &(g.b * lr);
    l
}

fn main() {
    let mut p = Params { w: Tensor::ones(), b: Tensor::scalar(0.5), name: "demo".into() };
    let x = Tensor::<(C<3>,)>::from_vec(vec![0.5, -1.0, 2.0]).expect("3 values");
    let first = step(&mut p, &x, 0.05).item().expect("concrete");
    let mut last = first;
    for _ in 0..20 {
        last = step(&mut p, &x, 0.05).item().expect("concrete");
    }
    assert!(last < first * 1e-3, "loss should shrink: {first} -> {last}");
    assert_eq!(step::stats().compiles, 1);
    println!("user crate ok: {} loss {first:.4} -> {last:.2e}", p.name);
}
