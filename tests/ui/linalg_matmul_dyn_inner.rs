// `matmul` over a `Dyn` inner dim could fail at run time, so it does not compile: the
// const assertion points to `try_matmul`.
use ferrax::{Dyn, Tensor, C};

fn main() {
    let a = Tensor::<(C<3>, Dyn)>::zeros_shape((C, Dyn(4)));
    let b = Tensor::<(Dyn, C<2>)>::zeros_shape((Dyn(4), C));
    let _c = a.matmul(&b);
}
