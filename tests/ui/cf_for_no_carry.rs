use ferrax::prelude::*;

// A `for` over a tensor bound that assigns no variable: a `fori_loop` with no state.
#[jit]
fn noop(x: &Tensor<(C<3>,)>, n: &Tensor<(), i32>) -> Tensor<(C<3>,)> {
    let mut seen = Vec::new();
    for i in 0..n {
        seen.push(i);
    }
    x.clone()
}

fn main() {}
