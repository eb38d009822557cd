use ferrax::{Tensor, Tree, C};

#[derive(Tree)]
struct Linear {
    w: Tensor<(C<2>, C<3>)>,
    b: Tensor<(C<3>,)>,
    fan_in: usize,
}

fn main() {}
