// Well-typed shape ops compile (and run): the counterpart of the shape_* compile-fail cases.
use ferrax::{shape_axes::Ax, Tensor, C};

fn main() {
    let x = Tensor::<(C<2>, C<3>)>::zeros();
    let _r = x.reshape::<(C<6>,)>();
    let b = Tensor::<(C<2>, C<4>)>::zeros();
    let _c: Tensor<(C<2>, C<7>)> = x.concat(Ax::<1>, &b);
    let _p = x.permute::<(Ax<1>, Ax<0>)>();
    let _f = x.flip::<1>();
    let _y = x.unsqueeze::<1>().broadcast_to::<(C<2>, C<5>, C<3>)>();
}
