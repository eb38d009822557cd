use ferrax::prelude::*;

// A static (non-tree) argument cannot carry a batch axis; `&mut` arguments cannot be batched.
#[vmap(in_axes = (0, 0))]
fn scale(x: &Tensor<(C<3>,)>, s: f32) -> Tensor<(C<3>,)> {
    x * s
}

#[vmap]
fn update(x: &mut Tensor<(C<3>,)>) -> Tensor<()> {
    x.sum()
}

fn main() {}
