use ferrax::prelude::*;

struct Model {
    w: Tensor<(C<3>,)>,
}

impl Model {
    #[jit]
    fn forward(&self, x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
        &self.w * x
    }
}

fn main() {}
