use ferrax::prelude::*;

#[derive(Tree, Clone)]
struct State {
    v: Tensor<(C<3>,)>,
}

// Assigning a field in a `while` on a tensor: the loop state must be local variables.
#[jit]
fn grow(s: &mut State) {
    while s.v.sum().lt(&Tensor::scalar(100.0)) {
        s.v = &s.v * 2.0;
    }
}

fn main() {}
