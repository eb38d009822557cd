// A permutation names every axis once; (1, 1) repeats axis 1.
use ferrax::{shape_axes::Ax, Tensor, C};

fn main() {
    let x = Tensor::<(C<2>, C<3>)>::zeros();
    let _y = x.permute::<(Ax<1>, Ax<1>)>();
}
