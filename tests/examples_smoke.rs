//! Smoke tests of the `cnn_digits` and `char_transformer` examples: their models, loss and
//! staged train steps (the example files themselves, included as modules) learn a fixed
//! batch in a few steps, and their forward passes keep the invariants the examples rely on
//! (the conv net's run-time and compile-time batch paths agree; the GPT is causal).

use ferrax::optim::{adam, Optimizer};
use ferrax::prelude::*;

#[allow(dead_code)]
#[path = "../examples/cnn_digits.rs"]
mod cnn;

#[allow(dead_code)]
#[path = "../examples/char_transformer.rs"]
mod gpt;

#[test]
fn cnn_digits_learns_a_batch_and_its_dyn_batch_path_agrees() {
    let data = cnn::digits::load().expect("embedded digits data");
    let n = cnn::BATCH;
    let xb = cnn::Img::<C<{ cnn::BATCH }>>::from_vec(data.aug_x[..n * 64].to_vec()).expect("x");
    let yb = Tensor::<(C<{ cnn::BATCH }>,), i32>::from_vec(data.aug_y[..n].to_vec()).expect("y");
    let mut model = cnn::Cnn::new(&mut ferrax::nn::Rngs::new(0)).expect("model");

    // The accuracy path reshapes to a `Dyn` batch; it must give the training path's logits.
    let fixed = model
        .forward(&xb)
        .expect("forward")
        .to_vec()
        .expect("logits");
    let dyn_x: cnn::Img<Dyn> = xb.try_reshape((Dyn(n), C, C, C)).expect("reshape");
    let dynamic = model
        .forward(&dyn_x)
        .expect("forward")
        .to_vec()
        .expect("logits");
    assert_eq!(fixed.len(), n * 10);
    for (a, b) in fixed.iter().zip(&dynamic) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }

    let mut opt = Optimizer::new(&model, adam(3e-3)).expect("optimizer");
    let first = cnn::train_step(&mut model, &mut opt, &xb, &yb)
        .item()
        .expect("loss");
    let mut last = first;
    for _ in 0..14 {
        last = cnn::train_step(&mut model, &mut opt, &xb, &yb)
            .item()
            .expect("loss");
    }
    // Ten classes: an untrained net's loss is near ln 10; fitting one batch drives it down.
    assert!((first - 10f32.ln()).abs() < 1.0, "initial loss {first}");
    assert!(last < 0.5 * first, "loss {first} -> {last} after 15 steps");
    assert_eq!(cnn::train_step::stats().compiles, 1);
}

#[test]
fn char_transformer_is_causal_and_learns_a_batch() {
    let text = include_str!("../examples/data/sonnets.txt").as_bytes();
    assert!(text.is_ascii());
    let model = gpt::Gpt::new(&mut ferrax::nn::Rngs::new(0)).expect("model");

    // Causality: changing the character at position `p` leaves the logits of every earlier
    // position unchanged and changes the logits at `p`.
    let (t, v, p) = (gpt::T, gpt::V, 40);
    let ids: Vec<i32> = text[..t].iter().map(|&b| b as i32).collect();
    let mut changed = ids.clone();
    changed[p] = if ids[p] == b'x' as i32 { b'y' } else { b'x' } as i32;
    let run = |ids: Vec<i32>| {
        gpt::logits_one(&model, &gpt::Ids::<C<1>>::from_vec(ids).expect("ids"))
            .to_vec()
            .expect("logits")
    };
    let (a, b) = (run(ids), run(changed));
    assert_eq!(a.len(), t * v);
    let max_diff = |lo: usize, hi: usize| {
        a[lo * v..hi * v]
            .iter()
            .zip(&b[lo * v..hi * v])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        max_diff(0, p) <= 1e-5,
        "a future character changed past logits"
    );
    assert!(
        max_diff(p, p + 1) > 1e-3,
        "the changed character did not matter"
    );

    // One fixed batch, fitted by the example's staged step with a constant learning rate.
    let starts: Vec<usize> = (0..gpt::BATCH).map(|i| i * 300).collect();
    let (x, y) = gpt::windows(text, &starts).expect("windows");
    let mut model = model;
    let mut opt = Optimizer::new(&model, adam(3e-3)).expect("optimizer");
    let first = gpt::eval_loss(&model, &x, &y).item().expect("loss");
    for _ in 0..12 {
        gpt::train_step(&mut model, &mut opt, &x, &y);
    }
    let last = gpt::eval_loss(&model, &x, &y).item().expect("loss");
    assert!(last < 0.75 * first, "loss {first} -> {last} after 12 steps");

    let out = gpt::sample(&model, "Shall", 8, 0.8, &ferrax::random::Key::new(0)).expect("sample");
    assert!(out.starts_with("Shall") && out.len() == 13, "{out:?}");
}
