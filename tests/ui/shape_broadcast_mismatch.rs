// Broadcasting needs each source dim to equal the target's or be 1: 3 cannot become 4.
use ferrax::{Tensor, C};

fn main() {
    let x = Tensor::<(C<3>, C<1>)>::zeros();
    let _y = x.broadcast_to::<(C<4>, C<5>)>();
}
