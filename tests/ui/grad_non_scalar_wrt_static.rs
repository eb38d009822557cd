use ferrax::prelude::*;

#[grad(wrt = scale)]
fn loss(x: &Tensor<(C<3>,)>, scale: f32) -> Tensor<()> {
    (x * scale).sum()
}

#[grad]
fn no_output(x: &Tensor<(C<3>,)>) {
    let _ = x;
}

fn main() {}
