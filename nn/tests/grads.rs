//! Gradients through the layers by finite differences (`check_grads`, in f64), and a whole
//! model's gradient from `ad::grad` against central differences.

use ferrax_core::ops::linalg::Conv2dOpts;
use ferrax_core::testing::{check_grads, GradCheck};
use ferrax_core::{ad, tree, Array, Tensor, C};
use ferrax_nn::{
    losses, BatchNorm, Conv1d, Conv1dOpts, Conv2d, ConvTranspose2d, Dropout, Embed, GRUCell,
    GroupNorm, LSTMCell, LayerNorm, Linear, Module, MultiHeadAttention, RMSNorm, Rngs,
    TransformerBlock,
};

fn opts() -> GradCheck {
    GradCheck {
        eps: 1e-6,
        rtol: 1e-5,
        atol: 1e-8,
        ..GradCheck::default()
    }
}

fn ramp(shape: &[usize], s: f64) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec(
        shape.to_vec(),
        (0..n)
            .map(|i| (i as f64 * 0.37 + 0.1).sin() * s)
            .collect::<Vec<f64>>(),
    )
    .unwrap()
}

/// Checks the gradient of `loss(module, x)` with respect to the module's leaves and `x`.
fn check_module<M: Module, X: ferrax_core::Tree>(
    m: &M,
    x: &X,
    loss: impl Fn(&M, &X) -> Tensor<(), f64>,
) {
    let nm = tree::leaf_count(m);
    let mut args = tree::leaves(m);
    args.extend(tree::leaves(x));
    let f = |a: &[Array]| -> ferrax_core::Result<Array> {
        let mm: M = tree::unflatten(m, a[..nm].to_vec())?;
        let xx: X = tree::unflatten(x, a[nm..].to_vec())?;
        Ok(loss(&mm, &xx).into_array())
    };
    if let Err(e) = check_grads(&f, &args, opts()) {
        panic!("{e}");
    }
}

fn weights(t: &Tensor<(C<2>, C<4>, C<8>), f64>) -> Tensor<(), f64> {
    // A fixed non-uniform weighting so the loss is not invariant to the layer's output.
    let w = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    (t * &w).sum()
}

#[test]
fn linear_gradients() {
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    let l = Linear::<8, 8, f64>::new(&mut Rngs::new(0)).unwrap();
    check_module(&l, &x, |l, x| weights(&l.forward(x)));
}

#[test]
fn norm_gradients() {
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    let mut ln = LayerNorm::<8, f64>::new();
    ln.scale = Tensor::from_array(ramp(&[8], 1.0)).unwrap();
    check_module(&ln, &x, |m, x| weights(&m.forward(x)));
    check_module(&RMSNorm::<8, f64>::new(), &x, |m, x| weights(&m.forward(x)));
    // BatchNorm in training mode (batch statistics) and eval mode (running statistics).
    let bn = BatchNorm::<8, f64>::new();
    check_module(&bn, &x, |m, x| weights(&ad::tree_clone(m).forward(x)));
    let mut bn_eval = BatchNorm::<8, f64>::new();
    bn_eval.eval();
    check_module(&bn_eval, &x, |m, x| {
        let mut m = ad::tree_clone(m);
        m.training = false;
        weights(&m.forward(x))
    });
}

#[test]
fn attention_gradients() {
    let mha = MultiHeadAttention::<8, 2, f64>::new(&mut Rngs::new(1)).unwrap();
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    check_module(&mha, &x, |m, x| weights(&m.forward(x, true)));
}

#[test]
fn conv_and_pool_gradients() {
    let conv = Conv2d::<2, 3, 3, 3, f64>::new(&mut Rngs::new(2), Conv2dOpts::same()).unwrap();
    let x = Tensor::<(C<1>, C<4>, C<4>, C<2>), f64>::from_array(ramp(&[1, 4, 4, 2], 1.0)).unwrap();
    check_module(&conv, &x, |m, x| {
        let y: Tensor<(C<1>, C<4>, C<4>, C<3>), f64> = m.forward(x).unwrap();
        let p: Tensor<(C<1>, C<2>, C<2>, C<3>), f64> =
            ferrax_nn::max_pool2d(&y, (2, 2), (2, 2), &ferrax_core::prim::conv::Padding::Valid)
                .unwrap();
        p.square().sum()
    });
}

#[test]
fn embedding_and_recurrent_gradients() {
    let e = Embed::<5, 8, f64>::new(&mut Rngs::new(3)).unwrap();
    let ids = Tensor::<(C<2>, C<4>), i32>::from_vec(vec![0, 1, 4, 1, 2, 3, 3, 0]).unwrap();
    check_module(&e, &(), |m, _| {
        weights(&m.forward(&ids)) + m.attend(&m.forward(&ids)).square().sum()
    });
    let cell = LSTMCell::<8, 4, f64>::new(&mut Rngs::new(4)).unwrap();
    let xs = Tensor::<(C<2>, C<3>, C<8>), f64>::from_array(ramp(&[2, 3, 8], 1.0)).unwrap();
    check_module(&cell, &xs, |m, xs| {
        let (_, ys) = m.unroll(&m.initialize_carry(C::<2>), xs).unwrap();
        ys.square().sum()
    });
    let gru = GRUCell::<8, 4, f64>::new(&mut Rngs::new(5)).unwrap();
    check_module(&gru, &xs, |m, xs| {
        let (_, ys) = m.unroll(&m.initialize_carry(C::<2>), xs).unwrap();
        ys.square().sum()
    });
}

#[derive(ferrax_nn::Module, Clone)]
#[module(crate = ferrax_nn)]
struct Mlp {
    l1: Linear<4, 8, f64>,
    l2: Linear<8, 3, f64>,
}

extern crate ferrax_core as ferrax;

fn mlp_loss(m: &Mlp, x: &Tensor<(C<5>, C<4>), f64>, y: &Tensor<(C<5>,), i32>) -> Tensor<(), f64> {
    let h = m.l1.forward(x).tanh();
    losses::softmax_cross_entropy_with_integer_labels(&m.l2.forward(&h), y).mean()
}

#[test]
fn model_grad_matches_central_differences() {
    let mut rngs = Rngs::new(7);
    let m = Mlp {
        l1: Linear::new(&mut rngs).unwrap(),
        l2: Linear::new(&mut rngs).unwrap(),
    };
    let x = Tensor::<(C<5>, C<4>), f64>::from_array(ramp(&[5, 4], 1.0)).unwrap();
    let y = Tensor::<(C<5>,), i32>::from_vec(vec![0, 2, 1, 1, 0]).unwrap();
    let g = ad::grad(&m, |m| mlp_loss(m, &x, &y)).unwrap();
    // The gradient has the model's type; compare every element with a central difference.
    let leaves = tree::leaves(&m);
    let gl = tree::leaves(&g);
    let h = 1e-6;
    for (li, leaf) in leaves.iter().enumerate() {
        let base: Vec<f64> = leaf.to_vec().unwrap();
        let gv: Vec<f64> = gl[li].to_vec().unwrap();
        for k in 0..base.len() {
            let at = |d: f64| {
                let mut v = base.clone();
                v[k] += d;
                let mut ls = leaves.clone();
                ls[li] = Array::from_vec(leaf.shape().to_vec(), v).unwrap();
                let mm: Mlp = tree::unflatten(&m, ls).unwrap();
                mlp_loss(&mm, &x, &y).item().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (fd - gv[k]).abs() < 1e-7 + 1e-5 * fd.abs(),
                "leaf {li} element {k}: grad {} vs fd {fd}",
                gv[k]
            );
        }
    }
}

#[test]
fn conv1d_grouped_and_transposed_gradients() {
    let x = Tensor::<(C<2>, C<7>, C<4>), f64>::from_array(ramp(&[2, 7, 4], 1.0)).unwrap();
    let c =
        Conv1d::<4, 6, 3, f64, 2>::new(&mut Rngs::new(10), Conv1dOpts::same().stride(2)).unwrap();
    check_module(&c, &x, |m, x| {
        let y: Tensor<(C<2>, C<4>, C<6>), f64> = m.forward(x).unwrap();
        y.square().sum()
    });
    let x = Tensor::<(C<1>, C<3>, C<3>, C<4>), f64>::from_array(ramp(&[1, 3, 3, 4], 1.0)).unwrap();
    let dw = Conv2d::<4, 4, 2, 2, f64, 1>::new(&mut Rngs::new(11), Conv2dOpts::same()).unwrap();
    check_module(&dw, &x, |m, x| {
        let y: Tensor<(C<1>, C<3>, C<3>, C<4>), f64> = m.forward(x).unwrap();
        y.square().sum()
    });
    let t = ConvTranspose2d::<4, 2, 3, 3, f64>::new(
        &mut Rngs::new(12),
        Conv2dOpts::same().stride(2, 2),
    )
    .unwrap();
    check_module(&t, &x, |m, x| {
        let y: Tensor<(C<1>, C<6>, C<6>, C<2>), f64> = m.forward(x).unwrap();
        y.square().sum()
    });
    let x = Tensor::<(C<1>, C<4>, C<4>, C<2>), f64>::from_array(ramp(&[1, 4, 4, 2], 1.0)).unwrap();
    check_module(&(), &x, |_, x| {
        let p: Tensor<(C<1>, C<2>, C<2>, C<2>), f64> =
            ferrax_nn::avg_pool2d(x, (3, 3), (2, 2), &ferrax_core::prim::conv::Padding::Same)
                .unwrap();
        p.square().sum()
    });
}

#[test]
fn group_norm_dropout_and_block_gradients() {
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    let mut gn = GroupNorm::<8, 4, f64>::new();
    gn.scale = Tensor::from_array(ramp(&[8], 1.0)).unwrap();
    gn.bias = Tensor::from_array(ramp(&[8], 0.5)).unwrap();
    check_module(&gn, &x, |m, x| weights(&m.forward(x)));
    // Dropout with a fixed key is a fixed mask times a scale: differentiable in x.
    let key = ferrax_core::random::Key::new(3);
    let d = Dropout::new(0.3).unwrap();
    check_module(&(), &x, |_, x| {
        weights(&d.forward_with_key(x, &key).unwrap().square())
    });
    let mut block = TransformerBlock::<8, 2, 16, f64>::new(&mut Rngs::new(13)).unwrap();
    block.ln1.scale = Tensor::from_array(ramp(&[8], 1.0)).unwrap();
    check_module(&block, &x, |m, x| weights(&m.forward(x, true)));
}

#[test]
fn grouped_attention_and_decode_gradients() {
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 1.0)).unwrap();
    let gqa = MultiHeadAttention::<8, 4, f64, 4>::new(&mut Rngs::new(14)).unwrap();
    check_module(&gqa, &x, |m, x| weights(&m.forward(x, true)));
    // Through the cache: a prompt of 3, then one token.
    check_module(&gqa, &x, |m, x| {
        let mut cache: ferrax_nn::KvCache<C<2>, 4, 4, f64> = m.init_cache(C);
        let p: Tensor<(C<2>, C<3>, C<8>), f64> = Tensor::from_array(
            ferrax_core::prim::slice::slice_in_dim(x.array(), 1, 0, 3, 1).unwrap(),
        )
        .unwrap();
        let l: Tensor<(C<2>, C<1>, C<8>), f64> = Tensor::from_array(
            ferrax_core::prim::slice::slice_in_dim(x.array(), 1, 3, 4, 1).unwrap(),
        )
        .unwrap();
        let a = m.decode(&p, &mut cache).unwrap();
        let b = m.decode(&l, &mut cache).unwrap();
        a.square().sum() + (b * 3.0).sum()
    });
}

#[test]
fn activation_gradients() {
    use ferrax_nn::activation as act;
    // Points away from the kinks of relu / leaky_relu / elu, where one-sided slopes differ.
    let x = Tensor::<(C<2>, C<4>, C<8>), f64>::from_array(ramp(&[2, 4, 8], 2.0)).unwrap();
    check_module(&(), &x, |_, x| {
        weights(&act::relu(x))
            + weights(&act::gelu(x))
            + weights(&act::gelu_exact(x))
            + weights(&act::silu(x))
            + weights(&act::sigmoid(x))
            + weights(&act::tanh(x))
            + weights(&act::softplus(x))
            + weights(&act::leaky_relu(x, 0.1))
            + weights(&act::elu(x, 1.0))
            + weights(&act::selu(x))
            + weights(&act::log_sigmoid(x))
            + weights(&act::softmax(x))
            + weights(&act::log_softmax(x))
    });
    check_module(&(), &x, |_, x| {
        let g: Tensor<(C<2>, C<4>, C<4>), f64> = act::glu(x).unwrap();
        g.square().sum()
    });
}
