use ferrax::prelude::*;

// `break` inside a `while` on a tensor condition: a `while_loop` body cannot exit early.
#[jit]
fn grow(x: &Tensor<(C<3>,)>, once: bool) -> Tensor<(C<3>,)> {
    let mut y = x.clone();
    while y.sum().lt(&Tensor::scalar(100.0)) {
        y = &y * 2.0;
        if once {
            break;
        }
    }
    y
}

fn main() {}
