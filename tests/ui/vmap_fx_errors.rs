use ferrax::prelude::*;

fn loss(w: &Tensor<(C<3>,)>, x: &Tensor<(C<3>,)>) -> Tensor<()> {
    (w * x).sum()
}

fn main() {
    // in_axes length must match the function's parameters.
    let _ = fx::vmap!(loss(w, x), in_axes = (None, 0, 0));
    // wrt must name a parameter.
    let _ = fx::grad!(loss(w, x), wrt = v);
    // A bare name does not say the parameters.
    let _ = fx::grad!(loss);
}

fn call_after_error(w: &Tensor<(C<3>,)>, x: &Tensor<(C<3>,)>) {
    // Only the macro's own error is reported: the stub accepts the call.
    let g = fx::grad!(loss(w, x), wrt = (w, q));
    let _ = g(w, x);
}
