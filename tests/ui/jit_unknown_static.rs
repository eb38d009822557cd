use ferrax::prelude::*;

#[jit(static_args(n))]
fn double(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    x * 2.0
}

fn main() {}
