use ferrax::prelude::*;

// The condition is a float tensor, not a bool tensor.
#[jit]
fn pick(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    let y = if x.sum() { x * 2.0 } else { x.clone() };
    y
}

fn main() {}
