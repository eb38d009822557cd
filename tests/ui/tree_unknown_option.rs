use ferrax::{Tensor, Tree, C};

#[derive(Tree)]
struct Linear {
    w: Tensor<(C<2>, C<3>)>,
    #[tree(skip)]
    b: Tensor<(C<3>,)>,
    #[tree(static = true)]
    size: usize,
    #[tree = "static"]
    flag: bool,
}

fn main() {}
