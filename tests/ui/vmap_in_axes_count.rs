use ferrax::prelude::*;

// in_axes must give one entry per argument.
#[vmap(in_axes = (None, 0))]
fn f(w: &Tensor<(C<3>,)>, x: &Tensor<(C<3>,)>, y: &Tensor<()>) -> Tensor<()> {
    (w * x).sum() + y
}

fn main() {}
