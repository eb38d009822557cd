use ferrax::prelude::*;

// Initializing a `let y;` in the branches of an `if` on a tensor.
#[jit]
fn pick(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    let y;
    if x.sum().gt(&Tensor::scalar(0.0)) {
        y = x * 2.0;
    } else {
        y = x.clone();
    }
    y
}

fn main() {}
