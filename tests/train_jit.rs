//! A whole jitted train step (forward, gradient, Adam update through `Optimizer`) equals
//! the same step run eagerly (`disable_jit`), step after step, and traces only once.

use ferrax::jit::disable_jit;
use ferrax::nn::{losses, Linear, Module, Rngs};
use ferrax::optim::{adam, Optimizer};
use ferrax::prelude::*;
use ferrax::random::Key;

type X = Tensor<(C<16>, C<6>)>;
type Y = Tensor<(C<16>,), i32>;

#[derive(Module, Clone)]
struct Mlp {
    l1: Linear<6, 12>,
    l2: Linear<12, 4>,
}

#[grad(wrt = m)]
fn loss(m: &Mlp, x: &X, y: &Y) -> Tensor<()> {
    let logits = m.l2.forward(&m.l1.forward(x).tanh());
    losses::softmax_cross_entropy_with_integer_labels(&logits, y).mean()
}

#[jit]
fn train_step(m: &mut Mlp, opt: &mut Optimizer<Mlp>, x: &X, y: &Y) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    opt.update(m, &g).expect("Adam update");
    l
}

fn assert_close(what: &str, jit: &[f32], eager: &[f32]) {
    assert_eq!(jit.len(), eager.len(), "{what}: lengths differ");
    for (i, (a, b)) in jit.iter().zip(eager).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{what}[{i}]: jit {a} vs eager {b}"
        );
    }
}

/// Every leaf of two trees of the same type agrees within 1e-6 (f32 leaves) or exactly
/// (the optimizer's i32 step counters).
fn assert_trees_close<T: Tree>(what: &str, jit: &T, eager: &T) {
    let (a, b) = (
        ferrax::tree::leaves_with_paths(jit),
        ferrax::tree::leaves(eager),
    );
    assert_eq!(a.len(), b.len(), "{what}: leaf counts differ");
    for ((path, x), y) in a.iter().zip(&b) {
        assert_eq!(x.aval(), y.aval(), "{what}.{path}: shapes or dtypes differ");
        if x.dtype() == DType::F32 {
            assert_close(
                &format!("{what}.{path}"),
                &x.to_vec::<f32>().unwrap(),
                &y.to_vec::<f32>().unwrap(),
            );
        } else {
            assert_eq!(
                x.to_vec::<i32>().unwrap(),
                y.to_vec::<i32>().unwrap(),
                "{what}.{path}"
            );
        }
    }
}

#[test]
fn jitted_mlp_adam_step_equals_eager_step() {
    let mut rngs = Rngs::new(7);
    let model = Mlp {
        l1: Linear::new(&mut rngs).unwrap(),
        l2: Linear::new(&mut rngs).unwrap(),
    };
    let x: X = Key::new(1).normal().unwrap();
    let y: Y = ferrax::random::randint(&Key::new(2), (C,), 0, 4).unwrap();

    let (mut mj, mut me) = (model.clone(), model.clone());
    // A large learning rate so that each step moves the parameters visibly: equality after
    // three steps then says the staged update really matches, not that nothing changed.
    let mut oj = Optimizer::new(&mj, adam(0.05)).unwrap();
    let mut oe = Optimizer::new(&me, adam(0.05)).unwrap();
    let before = train_step::stats();
    let mut losses_seen = Vec::new();
    for step in 0..3 {
        let lj = train_step(&mut mj, &mut oj, &x, &y).item().unwrap();
        let le = disable_jit(|| train_step(&mut me, &mut oe, &x, &y))
            .item()
            .unwrap();
        assert_close(&format!("loss at step {step}"), &[lj], &[le]);
        assert_trees_close(&format!("model after step {step}"), &mj, &me);
        assert_trees_close(&format!("optimizer after step {step}"), &oj, &oe);
        losses_seen.push(lj);
    }
    let after = train_step::stats();
    assert_eq!(
        after.compiles - before.compiles,
        1,
        "the train step must compile once for one set of shapes"
    );
    assert!(
        losses_seen[2] < losses_seen[0],
        "Adam should lower the loss: {losses_seen:?}"
    );
    assert_ne!(
        ferrax::tree::leaves(&mj)[0].to_vec::<f32>().unwrap(),
        ferrax::tree::leaves(&model)[0].to_vec::<f32>().unwrap(),
        "the parameters must have moved"
    );
}
