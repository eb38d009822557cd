// Reducing an axis a shape does not have is a compile error naming the axis and the shape.
use ferrax::{Tensor, C};

fn main() {
    let x = Tensor::<(C<2>, C<3>)>::zeros();
    let _ = x.sum_axis::<2>();
}
