//! Per-example gradients of the 2-layer MLP of `tests/reference/vmap.json` (made by JAX:
//! `jax.vmap(jax.grad(l), in_axes=(None, 0, 0))`), reproduced three ways: `fx::vmap!` of
//! `fx::grad!`, `#[vmap]` on a gradient function, and the same staged with `fx::jit!`;
//! plus per-example input gradients and mean-of-per-example = gradient of the mean. f64
//! with the file's tolerance (rtol 1e-10, atol 1e-12), f32 with rtol 1e-4, atol 1e-5.

use ferrax::prelude::*;
use ferrax::Elem;

mod common;

use common::Json;

#[derive(Tree)]
struct Mlp<E: Elem> {
    w1: Tensor<(C<3>, C<5>), E>,
    b1: Tensor<(C<5>,), E>,
    w2: Tensor<(C<5>, C<3>), E>,
    b2: Tensor<(C<3>,), E>,
}

/// l(params, x_i, y_i) = -log_softmax(tanh(x_i W1 + b1) W2 + b2)[y_i], for one example.
fn loss<E: ferrax::Float + ferrax::ops::arith::Num>(
    m: &Mlp<E>,
    x: &Tensor<(C<3>,), E>,
    y: &Tensor<(), i32>,
) -> Tensor<(), E> {
    let x: Tensor<(C<1>, C<3>), E> = x.reshape();
    let h = (x.matmul(&m.w1) + &m.b1).tanh();
    let logits = h.matmul(&m.w2) + &m.b2;
    let picked = logits.log_softmax() * y.one_hot::<3, E>();
    -picked.sum()
}

/// The per-example gradient function, batched by `#[vmap]`.
#[vmap(in_axes = (None, 0, 0))]
fn grad_one(m: &Mlp<f64>, x: &Tensor<(C<3>,), f64>, y: &Tensor<(), i32>) -> Mlp<f64> {
    ferrax::ad::grad(m, |m| loss(m, x, y)).expect("grad of the MLP loss")
}

fn tensor<S: Shape, E: Elem>(t: &Json) -> Tensor<S, E> {
    Tensor::from_array(common::tensor_as(t, E::DTYPE)).unwrap()
}

fn close(what: &str, got: &Array, want: &Json, rtol: f64, atol: f64) {
    assert_eq!(got.shape(), &common::shape(want)[..], "{what}: shape");
    let got = ferrax::prim::convert::convert(got, ferrax::DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for (i, (g, w)) in got.iter().zip(common::widened_data(want)).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g}, JAX {w} (rtol {rtol}, atol {atol})"
        );
    }
}

struct Case<E: Elem> {
    m: Mlp<E>,
    x: Tensor<(C<4>, C<3>), E>,
    y: Tensor<(C<4>,), i32>,
}

fn case<E: Elem>(j: &Json) -> Case<E> {
    let i = &j["per_example_mlp"]["inputs"];
    Case {
        m: Mlp {
            w1: tensor(&i["W1"]),
            b1: tensor(&i["b1"]),
            w2: tensor(&i["W2"]),
            b2: tensor(&i["b2"]),
        },
        x: tensor(&i["x"]),
        y: tensor(&i["y"]),
    }
}

fn check_grads<E: Elem>(what: &str, g: &Stacked<Mlp<E>, C<4>>, want: &Json, rtol: f64, atol: f64) {
    for ((path, leaf), key) in ferrax::tree::leaves_with_paths(g)
        .iter()
        .zip(["W1", "b1", "W2", "b2"])
    {
        close(&format!("{what} {path}"), leaf, &want[key], rtol, atol);
    }
}

#[test]
fn per_example_grads_f64_via_fx_macros() {
    let j = common::load("vmap.json");
    let want = &j["per_example_mlp"]["float64"];
    let c = case::<f64>(&j);
    let (rtol, atol) = (1e-10, 1e-12);

    let per_example = fx::vmap!(fx::grad!(loss(m, x, y), wrt = m), in_axes = (None, 0, 0));
    let g: Stacked<Mlp<f64>, C<4>> = per_example(&c.m, &c.x, &c.y);
    check_grads("vmap!(grad!)", &g, &want["per_example_grads"], rtol, atol);

    let staged = fx::jit!(fx::vmap!(
        fx::grad!(loss(m, x, y), wrt = m),
        in_axes = (None, 0, 0)
    ));
    for _ in 0..2 {
        let g = staged(&c.m, &c.x, &c.y);
        check_grads(
            "jit!(vmap!(grad!))",
            &g,
            &want["per_example_grads"],
            rtol,
            atol,
        );
    }

    // Per-example losses: vmap of the loss itself.
    let losses = fx::vmap!(loss(m, x, y), in_axes = (None, 0, 0));
    let l: Tensor<(C<4>,), f64> = losses(&c.m, &c.x, &c.y);
    close(
        "per_example_loss",
        l.array(),
        &want["per_example_loss"],
        rtol,
        atol,
    );

    // Per-example gradients with respect to the input.
    let gx = fx::vmap!(fx::grad!(loss(m, x, y), wrt = x), in_axes = (None, 0, 0));
    let gx: Tensor<(C<4>, C<3>), f64> = gx(&c.m, &c.x, &c.y);
    close(
        "per_example_grad_wrt_x",
        gx.array(),
        &want["per_example_grad_wrt_x"],
        rtol,
        atol,
    );

    // The mean of the per-example gradients is the gradient of the mean loss (grad of
    // vmap-then-mean).
    let mean = g.mean().unwrap();
    let gm = fx::grad!(
        |m: &Mlp<f64>,
         xs: &Tensor<(C<4>, C<3>), f64>,
         ys: &Tensor<(C<4>,), i32>|
         -> Tensor<(), f64> {
            fx::vmap!(loss(m, x, y), in_axes = (None, 0, 0))(m, xs, ys).mean()
        },
        wrt = m
    );
    let gm = gm(&c.m, &c.x, &c.y);
    let gm_want = &want["grad_of_mean_loss"];
    for (((path, a), b), key) in ferrax::tree::leaves_with_paths(&mean)
        .iter()
        .zip(ferrax::tree::leaves(&gm))
        .zip(["W1", "b1", "W2", "b2"])
    {
        close(
            &format!("mean of per-example {path}"),
            a,
            &gm_want[key],
            rtol,
            atol,
        );
        close(
            &format!("grad of vmap-then-mean {path}"),
            &b,
            &gm_want[key],
            rtol,
            atol,
        );
    }
}

#[test]
fn per_example_grads_f64_via_vmap_attribute() {
    let j = common::load("vmap.json");
    let c = case::<f64>(&j);
    let g: Stacked<Mlp<f64>, C<4>> = grad_one::vmap(&c.m, &c.x, &c.y);
    let want = &j["per_example_mlp"]["float64"]["per_example_grads"];
    check_grads("#[vmap]", &g, want, 1e-10, 1e-12);
    // Example 2 of the stack is the gradient at example 2 alone.
    let one = g.get(2).unwrap();
    let direct = grad_one(
        &c.m,
        &Tensor::from_array(ferrax::vmap::index_axis(c.x.array(), 0, 2).unwrap()).unwrap(),
        &Tensor::from_array(ferrax::vmap::index_axis(c.y.array(), 0, 2).unwrap()).unwrap(),
    );
    assert!(one.w1.array().bit_eq(direct.w1.array()));
}

#[test]
fn per_example_grads_f32() {
    let j = common::load("vmap.json");
    let want = &j["per_example_mlp"]["float32"];
    let c = case::<f32>(&j);
    let per_example = fx::vmap!(fx::grad!(loss(m, x, y), wrt = m), in_axes = (None, 0, 0));
    let g = per_example(&c.m, &c.x, &c.y);
    check_grads(
        "f32 vmap!(grad!)",
        &g,
        &want["per_example_grads"],
        1e-4,
        1e-5,
    );
}
