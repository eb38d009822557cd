//! A user's program: `#[derive(Tree)]`, `#[jit]`, `#[grad]`, `#[vmap]` and the `fx`
//! composition macros from outside the workspace.

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

/// Per-example losses of a batch: `x` is mapped, `p` is shared by every example.
#[vmap(in_axes = (None, 0))]
fn example_loss(p: &Params, x: &Tensor<(C<3>,)>) -> Tensor<()> {
    ((&p.w * x).sum() + &p.b).square()
}

fn main() {
    let mut p = Params {
        w: Tensor::ones(),
        b: Tensor::scalar(0.5),
        name: "demo".into(),
    };
    let x = Tensor::<(C<3>,)>::from_vec(vec![0.5, -1.0, 2.0]).expect("3 values");
    let first = step(&mut p, &x, 0.05).item().expect("concrete");
    let mut last = first;
    for _ in 0..20 {
        last = step(&mut p, &x, 0.05).item().expect("concrete");
    }
    assert!(last < first * 1e-3, "loss should shrink: {first} -> {last}");
    assert_eq!(step::stats().compiles, 1);
    let xs =
        Tensor::<(C<2>, C<3>)>::from_vec(vec![0.5, -1.0, 2.0, 1.0, 1.0, 1.0]).expect("6 values");
    let per: Tensor<(C<2>,)> = example_loss::vmap(&p, &xs);
    let one = example_loss(&p, &x).item().expect("concrete");
    assert_eq!(per.to_vec().expect("concrete")[0], one);
    // Per-example gradients through the composition macros: one gradient tree per example.
    let pe = fx::vmap!(fx::grad!(loss(p, x), wrt = p), in_axes = (None, 0));
    let grads: Stacked<Params, C<2>> = pe(&p, &xs);
    let g0 = grads.get(0).expect("example 0");
    assert_eq!(
        g0.w.to_vec().expect("concrete"),
        loss::grad(&p, &x).w.to_vec().expect("concrete")
    );
    println!("user crate ok: {} loss {first:.4} -> {last:.2e}", p.name);
}
