use ferrax::prelude::*;

// An early `return` inside an `if` on a tensor: both branches are traced into a `cond`.
#[jit]
fn clipped(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    if x.sum().gt(&Tensor::scalar(10.0)) {
        return x * 0.5;
    }
    x.clone()
}

fn main() {}
