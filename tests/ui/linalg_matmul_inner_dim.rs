// A matmul whose inner dims differ, (3x4)·(5x2), must not compile; the message shows the dims.
use ferrax::{Tensor, C};

fn main() {
    let a = Tensor::<(C<3>, C<4>)>::zeros();
    let b = Tensor::<(C<5>, C<2>)>::zeros();
    let _c = a.matmul(&b);
}
