use ferrax::{Tensor, Tree, C};

#[derive(Tree)]
#[tree(static)]
struct Linear {
    w: Tensor<(C<2>, C<3>)>,
    #[tree(skip)]
    b: Tensor<(C<3>,)>,
    #[tree(static = true)]
    size: usize,
    #[tree = "static"]
    flag: bool,
    #[tree()]
    bias: bool,
}

fn main() {}
