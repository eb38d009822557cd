use ferrax::prelude::*;

#[derive(Tree, Clone)]
struct State {
    v: Tensor<(C<3>,)>,
}

// Assigning a field in a `for` over a tensor bound: the loop state must be local variables.
#[jit]
fn grow(s: &mut State, n: &Tensor<(), i32>) {
    for _ in 0..n {
        s.v = &s.v * 2.0;
    }
}

fn main() {}
