// A rank-2 tensor has axes 0 and 1; axis 2 does not exist.
use ferrax::{Tensor, C};

fn main() {
    let x = Tensor::<(C<2>, C<3>)>::zeros();
    let _y = x.flip::<2>();
}
