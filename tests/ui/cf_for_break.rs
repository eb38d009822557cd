use ferrax::prelude::*;

// `break` inside a `for` loop over a tensor bound: a `fori_loop` runs all its steps.
#[jit]
fn partial(x: &Tensor<()>, n: &Tensor<(), i32>, early: bool) -> Tensor<()> {
    let mut acc = x.clone();
    for _ in 0..n {
        acc = &acc * 2.0;
        if early {
            break;
        }
    }
    acc
}

fn main() {}
