use ferrax::prelude::*;

#[grad(wrt = n)]
fn scaled(x: &Tensor<(C<3>,)>, n: i64) -> Tensor<()> {
    x.sum() * (n as f32)
}

#[grad(wrt = (x, labels))]
fn picked(x: &Tensor<(C<3>,)>, labels: &Tensor<(C<3>,), i32>) -> Tensor<()> {
    let _ = labels;
    x.sum()
}

fn main() {}
