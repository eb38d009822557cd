use ferrax::{Tensor, Tree, C};

#[derive(Tree)]
enum Layer {
    Dense(Tensor<(C<2>, C<2>)>),
    Identity,
}

#[derive(Tree)]
union Bits {
    f: f32,
    u: u32,
}

fn main() {
    // The derive's one error is all the user sees: the stub impl keeps uses quiet.
    let l = Layer::Identity;
    let _ = ferrax::tree::leaf_count(&l);
    let _ = Layer::Dense(Tensor::zeros());
    let b = Bits { u: 1 };
    let _ = ferrax::tree::leaf_count(&b);
    let _ = unsafe { b.f };
}
