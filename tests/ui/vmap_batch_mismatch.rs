use ferrax::prelude::*;

#[vmap(in_axes = (0, 0))]
fn add(x: &Tensor<(C<3>,)>, y: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
    x + y
}

fn main() {
    // Batch sizes 4 and 5 of static dims: a type error at the call.
    let x = Tensor::<(C<4>, C<3>)>::zeros();
    let y = Tensor::<(C<5>, C<3>)>::zeros();
    let _ = add::vmap(&x, &y);
    // The example shape of a mapped argument is checked too: (4, 2) is not a batch of (3,).
    let z = Tensor::<(C<4>, C<2>)>::zeros();
    let _ = add::vmap(&x, &z);
}
