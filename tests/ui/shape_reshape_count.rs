// A reshape must keep the element count: 2 * 3 = 6 elements cannot become 7.
use ferrax::{Tensor, C};

fn main() {
    let x = Tensor::<(C<2>, C<3>)>::zeros();
    let _y = x.reshape::<(C<7>,)>();
}
