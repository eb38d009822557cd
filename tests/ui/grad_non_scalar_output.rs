use ferrax::prelude::*;

#[grad]
fn not_scalar(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    x * 2.0
}

#[grad(wrt = w)]
fn missing(x: &Tensor<(C<3>,)>) -> Tensor<()> {
    x.sum()
}

fn main() {}
