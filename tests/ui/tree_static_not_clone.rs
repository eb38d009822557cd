use ferrax::{Tensor, Tree, C};

struct Config {
    fan_in: usize,
}

#[derive(Tree)]
struct Linear {
    w: Tensor<(C<2>, C<3>)>,
    #[tree(static)]
    config: Config,
}

fn main() {
    let _ = Config { fan_in: 2 }.fan_in;
}
