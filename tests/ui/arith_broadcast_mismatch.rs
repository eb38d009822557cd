// Adding a (3, 4) tensor to a (5,) tensor: the trailing dims 4 and 5 do not broadcast.
use ferrax::{Tensor, C};

fn main() {
    let a = Tensor::<(C<3>, C<4>)>::zeros();
    let b = Tensor::<(C<5>,)>::zeros();
    let _c = &a + &b;
}
