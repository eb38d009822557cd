use ferrax::prelude::*;

#[derive(Tree, Clone)]
struct Params {
    w: Tensor<(C<3>,)>,
}

// Assigning a field inside an `if` on a tensor: the staged `cond` threads local variables.
#[jit]
fn step(p: &mut Params, x: &Tensor<(C<3>,)>) {
    if x.sum().gt(&Tensor::scalar(0.0)) {
        p.w = &p.w + x;
    }
}

fn main() {}
