use ferrax::prelude::*;

#[grad(wrt = (x, scale))]
fn loss(x: &Tensor<(C<3>,)>) -> Tensor<()> {
    x.sum()
}

fn main() {}
