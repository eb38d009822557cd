// conv2d_same with stride 2 on 28x28 gives 14x14; naming 28x28 must not compile.
use ferrax::ops::linalg::Stride;
use ferrax::{Tensor, C};

fn main() {
    let x = Tensor::<(C<1>, C<28>, C<28>, C<1>)>::zeros();
    let w = Tensor::<(C<3>, C<3>, C<1>, C<8>)>::zeros();
    let _y: Tensor<(C<1>, C<28>, C<28>, C<8>)> = x.conv2d_same(&w, Stride::<2>);
}
