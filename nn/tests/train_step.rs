//! A whole jitted train step of a model with BatchNorm (forward in training mode, gradient
//! with the new batch statistics as aux, Adam on the parameters only, state written back)
//! equals the same step run eagerly, step after step; the running statistics equal the
//! momentum average computed by hand, and evaluation mode uses them.

extern crate ferrax_core as ferrax;

use ferrax_core::jit::disable_jit;
use ferrax_core::random::Key;
use ferrax_core::tree::{self, Tree};
use ferrax_core::{DType, Tensor, C};
use ferrax_macros::{grad, jit};
use ferrax_nn::{losses, BatchNorm, Filter, Linear, Module, Rngs};
use ferrax_optim::{adam, masked, Mask, Optimizer};
use std::collections::HashSet;

type X = Tensor<(C<16>, C<6>)>;
type Y = Tensor<(C<16>,), i32>;

#[derive(Module, Clone)]
#[module(crate = ferrax_nn)]
struct Net {
    l1: Linear<6, 12>,
    bn: BatchNorm<12>,
    l2: Linear<12, 4>,
}

impl Net {
    fn forward(&mut self, x: &X) -> Tensor<(C<16>, C<4>)> {
        let h = self.l1.forward(x);
        let h = self.bn.forward(&h).relu();
        self.l2.forward(&h)
    }
}

/// The loss, and the model after the forward pass (its new batch statistics) as aux.
#[grad(wrt = m, has_aux)]
fn loss(m: &Net, x: &X, y: &Y) -> (Tensor<()>, Net) {
    let mut m = m.clone();
    let logits = m.forward(x);
    (
        losses::softmax_cross_entropy_with_integer_labels(&logits, y).mean(),
        m,
    )
}

#[jit]
fn train_step(m: &mut Net, opt: &mut Optimizer<Net>, x: &X, y: &Y) -> Tensor<()> {
    let ((l, after), g) = loss::value_and_grad(m, x, y);
    opt.update(m, &g).expect("Adam update");
    m.update_from(&after, &Filter::State)
        .expect("batch statistics");
    l
}

/// Adam on the leaves `Filter::Param` selects; state leaves get no optimizer state.
fn optimizer(m: &Net) -> Optimizer<Net> {
    let params: HashSet<String> = m
        .select(&Filter::Param)
        .iter()
        .map(|v| v.path.to_string())
        .collect();
    let mask = Mask::new(move |p| params.contains(&p.to_string()));
    Optimizer::new(m, masked(adam(0.05), mask)).unwrap()
}

fn assert_trees_close<T: Tree>(what: &str, jit: &T, eager: &T) {
    let (a, b) = (tree::leaves_with_paths(jit), tree::leaves(eager));
    assert_eq!(a.len(), b.len(), "{what}: leaf counts differ");
    for ((path, x), y) in a.iter().zip(&b) {
        assert_eq!(x.aval(), y.aval(), "{what}.{path}");
        if x.dtype() == DType::F32 {
            let (xv, yv) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
            for (i, (p, q)) in xv.iter().zip(&yv).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-5 * q.abs().max(1.0),
                    "{what}.{path}[{i}]: jit {p} vs eager {q}"
                );
            }
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
fn jitted_batchnorm_train_step_equals_eager_step() {
    let mut rngs = Rngs::new(3);
    let model = Net {
        l1: Linear::new(&mut rngs).unwrap(),
        bn: BatchNorm::new().with_momentum(0.9),
        l2: Linear::new(&mut rngs).unwrap(),
    };
    let x: X = Key::new(1).normal().unwrap();
    let y: Y = ferrax_core::random::randint(&Key::new(2), (C,), 0, 4).unwrap();
    let (mut mj, mut me) = (model.clone(), model.clone());
    let (mut oj, mut oe) = (optimizer(&mj), optimizer(&me));
    let before = train_step::stats();
    let mut seen = vec![];
    for step in 0..3 {
        // The running statistics this step must produce, from the parameters before it.
        let h = mj.l1.forward(&x).to_vec().unwrap();
        let (old_m, old_v) = (mj.bn.mean.to_vec().unwrap(), mj.bn.var.to_vec().unwrap());
        let lj = train_step(&mut mj, &mut oj, &x, &y).item().unwrap();
        let le = disable_jit(|| train_step(&mut me, &mut oe, &x, &y))
            .item()
            .unwrap();
        assert!(
            (lj - le).abs() <= 1e-5 * le.abs().max(1.0),
            "step {step}: {lj} vs {le}"
        );
        assert_trees_close(&format!("model after step {step}"), &mj, &me);
        assert_trees_close(&format!("optimizer after step {step}"), &oj, &oe);
        let (nm, nv) = (mj.bn.mean.to_vec().unwrap(), mj.bn.var.to_vec().unwrap());
        for f in 0..12 {
            let col: Vec<f64> = (0..16).map(|r| h[r * 12 + f] as f64).collect();
            let bm = col.iter().sum::<f64>() / 16.0;
            let bv = col.iter().map(|v| (v - bm).powi(2)).sum::<f64>() / 16.0;
            let em = 0.9 * old_m[f] as f64 + 0.1 * bm;
            let ev = 0.9 * old_v[f] as f64 + 0.1 * bv;
            assert!((nm[f] as f64 - em).abs() < 1e-5, "step {step} mean[{f}]");
            assert!(
                (nv[f] as f64 - ev).abs() < 1e-5 * ev.max(1.0),
                "step {step} var[{f}]"
            );
        }
        seen.push(lj);
    }
    assert_eq!(train_step::stats().compiles - before.compiles, 1);
    assert!(seen[2] < seen[0], "Adam should lower the loss: {seen:?}");
    // The parameters moved; the state moved only by the momentum average checked above.
    assert_ne!(
        mj.l1.kernel.to_vec().unwrap(),
        model.l1.kernel.to_vec().unwrap()
    );

    // Evaluation mode: the running statistics, and no state change.
    mj.eval();
    let mut ev = mj.clone();
    let logits = ev.forward(&x).to_vec().unwrap();
    assert_eq!(ev.bn.mean.to_vec().unwrap(), mj.bn.mean.to_vec().unwrap());
    let h = mj.l1.forward(&x).to_vec().unwrap();
    let (rm, rv) = (mj.bn.mean.to_vec().unwrap(), mj.bn.var.to_vec().unwrap());
    let (sc, bi) = (mj.bn.scale.to_vec().unwrap(), mj.bn.bias.to_vec().unwrap());
    let hn: Vec<f32> = h
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = i % 12;
            ((v - rm[f]) / (rv[f] + 1e-5).sqrt() * sc[f] + bi[f]).max(0.0)
        })
        .collect();
    let expect = mj
        .l2
        .forward(&Tensor::<(C<16>, C<12>)>::from_vec(hn).unwrap())
        .to_vec()
        .unwrap();
    for (i, (a, b)) in logits.iter().zip(&expect).enumerate() {
        assert!(
            (a - b).abs() < 1e-4 * b.abs().max(1.0),
            "eval logit {i}: {a} vs {b}"
        );
    }
}

#[jit]
fn dropped(d: &ferrax_nn::Dropout, x: &Tensor<(C<64>,)>, rngs: &mut Rngs) -> Tensor<(C<64>,)> {
    d.forward(x, rngs).expect("dropout")
}

#[test]
fn jitted_dropout_draws_a_fresh_key_per_call_like_eager() {
    let d = ferrax_nn::Dropout::new(0.5).unwrap();
    let x = Tensor::<(C<64>,)>::ones();
    let mut rj = Rngs::new(0).with_stream("dropout", 9);
    let mut re = rj.clone();
    let before = dropped::stats();
    let (a, b) = (
        dropped(&d, &x, &mut rj).to_vec().unwrap(),
        dropped(&d, &x, &mut rj).to_vec().unwrap(),
    );
    assert_eq!(dropped::stats().compiles - before.compiles, 1);
    // The stream's counter is a traced leaf: the second call folds in 1, not 0 again.
    assert_ne!(a, b);
    let ea = disable_jit(|| dropped(&d, &x, &mut re)).to_vec().unwrap();
    let eb = disable_jit(|| dropped(&d, &x, &mut re)).to_vec().unwrap();
    assert_eq!((&a, &b), (&ea, &eb));
    // Both equal the mask of fold_in(key 9, count), as Flax draws it.
    let k1 = Key::new(9).fold_in(1).unwrap();
    assert_eq!(eb, d.forward_with_key(&x, &k1).unwrap().to_vec().unwrap());
}
