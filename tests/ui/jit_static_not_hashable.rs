use ferrax::prelude::*;

struct Config {
    scale: f32,
}

#[jit(static_args(cfg))]
fn scaled(x: &Tensor<(C<3>,)>, cfg: Config) -> Tensor<(C<3>,)> {
    x * cfg.scale
}

fn main() {
    let x = Tensor::<(C<3>,)>::ones();
    let _ = scaled(&x, Config { scale: 2.0 });
}
