// Concatenating 2 and 3 columns gives 5, not the 6 the caller named.
use ferrax::{shape_axes::Ax, Tensor, C};

fn main() {
    let a = Tensor::<(C<4>, C<2>)>::zeros();
    let b = Tensor::<(C<4>, C<3>)>::zeros();
    let _c: Tensor<(C<4>, C<6>)> = a.concat(Ax::<1>, &b);
}
