use ferrax::prelude::*;

// A `while` on a tensor condition that assigns no variable: its state never changes.
#[jit]
fn spin(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    let mut log = Vec::new();
    while x.sum().gt(&Tensor::scalar(0.0)) {
        log.push(x.clone());
    }
    x.clone()
}

fn main() {}
