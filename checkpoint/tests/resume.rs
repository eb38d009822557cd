//! Resume: train with adam for a few steps, checkpoint the model, the optimizer state (adam's
//! moments and step counters) and the data RNG key together as one tree, restore, and train
//! on. The resumed trajectory must be bit-identical to an uninterrupted run, step by step,
//! in a new process (the real use: a job is preempted and restarted) and in the same one.
//!
//! The child process is this test binary re-invoked with `FERRAX_CKPT_RESUME_CHILD` set to
//! the checkpoint directory (as `crash.rs` does), so no extra binary is needed.

extern crate ferrax_core as ferrax;

mod common;

use common::TestDir;
use ferrax::random::Key;
use ferrax::{ad, tree, Tensor, Tree, C};
use ferrax_checkpoint::{json, CheckpointManager, Options, Value};
use ferrax_optim::{adam, Optimizer};
use std::process::Command;

const CHILD_ENV: &str = "FERRAX_CKPT_RESUME_CHILD";
/// Steps trained before the checkpoint the child resumes from, and in all.
const STEPS_BEFORE: u64 = 8;
const TOTAL_STEPS: u64 = 16;
const BATCH: usize = 8;
const LR: f32 = 0.05;

#[derive(Tree, Clone, Debug)]
struct Model {
    w: Tensor<(C<4>, C<3>)>,
    b: Tensor<(C<3>,)>,
}

/// Everything a training run carries from step to step. The key drives the minibatches,
/// so a resume that lost it (or the optimizer's moments) would continue on a different
/// trajectory; the negative controls below check that this is so.
#[derive(Tree, Clone, Debug)]
struct TrainState {
    model: Model,
    opt: Optimizer<Model>,
    key: Key,
}

/// The starting point of every run: a model drawn from a fixed key.
fn initial() -> TrainState {
    let (kw, rest) = Key::new(17).split2().unwrap();
    let model = Model {
        w: kw.normal().unwrap(),
        b: Tensor::from_vec(vec![0.5, -0.25, 1.0]).unwrap(),
    };
    let opt = Optimizer::new(&model, adam(LR)).unwrap();
    TrainState {
        model,
        opt,
        key: rest,
    }
}

/// A restore target as a restarted program builds it: the same structure and optimizer
/// configuration, but none of the trained values (zeros, a fresh optimizer, another key),
/// so whatever matches after restore came from the checkpoint.
fn blank() -> TrainState {
    let model = Model {
        w: Tensor::zeros(),
        b: Tensor::zeros(),
    };
    let opt = Optimizer::new(&model, adam(LR)).unwrap();
    TrainState {
        model,
        opt,
        key: Key::new(0),
    }
}

/// The linear map the model learns.
fn true_w() -> Tensor<(C<4>, C<3>)> {
    Tensor::from_vec((0..12).map(|i| (i as f32 - 5.5) / 4.0).collect()).unwrap()
}

/// One adam step on a fresh noisy least-squares minibatch drawn from the state's key, with
/// the gradient from `ad::value_and_grad`. Returns the loss's bits (a trajectory check).
fn train_step(s: &mut TrainState) -> u32 {
    let (next, batch) = s.key.split2().unwrap();
    let (kx, kn) = batch.split2().unwrap();
    let x: Tensor<(C<BATCH>, C<4>)> = kx.normal().unwrap();
    let noise: Tensor<(C<BATCH>, C<3>)> = kn.normal().unwrap();
    let y = x.matmul(&true_w()) + noise * 0.1;
    let (loss, g) =
        ad::value_and_grad(&s.model, |m| (x.matmul(&m.w) + &m.b - &y).square().mean()).unwrap();
    s.opt.update(&mut s.model, &g).unwrap();
    s.key = next;
    loss.to_vec().unwrap()[0].to_bits()
}

/// The uninterrupted run: `states[k]` is the state after `k` steps, `losses[k]` the loss of
/// step `k` (index 0 unused).
fn reference() -> (Vec<TrainState>, Vec<u32>) {
    let mut s = initial();
    let mut states = vec![s.clone()];
    let mut losses = vec![0];
    for _ in 0..TOTAL_STEPS {
        losses.push(train_step(&mut s));
        states.push(s.clone());
    }
    (states, losses)
}

/// Panics naming the first leaf (`model.w`, `opt.opt_state...`, `key`) whose bits differ.
fn assert_bit_identical(got: &TrainState, want: &TrainState, what: &str) {
    let g = tree::leaves_with_paths(got);
    let w = tree::leaves_with_paths(want);
    assert_eq!(g.len(), w.len(), "{what}: leaf counts differ");
    for ((pg, a), (pw, b)) in g.iter().zip(&w) {
        assert_eq!(pg, pw, "{what}: tree paths differ");
        assert!(
            a.bit_eq(b),
            "{what}: leaf `{pg}` differs from the uninterrupted run:\n got  {a:?}\n want {b:?}"
        );
    }
}

fn models_bit_identical(a: &Model, b: &Model) -> bool {
    let (la, lb) = (tree::leaves(a), tree::leaves(b));
    la.len() == lb.len() && la.iter().zip(&lb).all(|(x, y)| x.bit_eq(y))
}

fn step_count(s: &TrainState) -> i32 {
    s.opt.step().to_vec::<i32>().unwrap()[0]
}

fn metadata(loss_bits: u32) -> Value {
    json!({ "loss_bits": loss_bits, "pid": std::process::id() })
}

/// The child: restore the latest step into a blank target, train to `TOTAL_STEPS`, and
/// checkpoint every step so the parent can compare the whole continued trajectory.
fn child(dir: &std::path::Path) {
    let mgr = CheckpointManager::new(dir, Options::default()).expect("child: open");
    let (start, mut s) = mgr.restore_latest(&blank()).expect("child: restore");
    assert_eq!(start, STEPS_BEFORE, "child: resumed from the wrong step");
    assert_eq!(
        step_count(&s),
        start as i32,
        "child: optimizer step counter"
    );
    for step in start + 1..=TOTAL_STEPS {
        let loss = train_step(&mut s);
        mgr.save(step, &s, metadata(loss)).expect("child: save");
    }
    mgr.close().expect("child: close");
}

#[test]
fn resume_in_a_new_process_is_bit_identical() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(std::path::Path::new(&dir));
        return;
    }
    let (want, losses) = reference();

    // First run: train, checkpoint, exit (the manager's close is the end of the process as
    // far as the checkpoint is concerned: everything is committed and durable).
    let dir = TestDir::new("resume-proc");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    let mut s = initial();
    let mut loss = 0;
    for _ in 0..STEPS_BEFORE {
        loss = train_step(&mut s);
    }
    assert_bit_identical(&s, &want[STEPS_BEFORE as usize], "first run");
    mgr.save(STEPS_BEFORE, &s, metadata(loss)).unwrap();
    mgr.close().unwrap();
    drop(s);

    // Second run, in a new process, resumes from the directory alone.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "resume_in_a_new_process_is_bit_identical",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the resumed child failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every step the child trained must equal the uninterrupted run, bit for bit.
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    assert_eq!(
        mgr.all_steps(),
        (STEPS_BEFORE..=TOTAL_STEPS).collect::<Vec<_>>(),
        "the child did not save the continued steps"
    );
    for step in STEPS_BEFORE + 1..=TOTAL_STEPS {
        let meta = mgr.metadata(step).unwrap();
        assert_ne!(
            meta["pid"],
            std::process::id(),
            "step {step} was not trained in another process"
        );
        assert_eq!(
            meta["loss_bits"], losses[step as usize],
            "step {step}: loss differs from the uninterrupted run"
        );
        let got = mgr.restore(step, &blank()).unwrap();
        assert_bit_identical(&got, &want[step as usize], &format!("step {step}"));
        assert_eq!(step_count(&got), step as i32);
    }
}

#[test]
fn resume_in_the_same_process_is_bit_identical() {
    let (want, losses) = reference();

    // Save every 4 steps while training goes on: saves are asynchronous, so later steps
    // run while earlier ones are written, and each must hold the state of its own step.
    let dir = TestDir::new("resume-same");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    let mut s = initial();
    for step in 1..=TOTAL_STEPS {
        let loss = train_step(&mut s);
        if step % 4 == 0 {
            mgr.save(step, &s, metadata(loss)).unwrap();
        }
    }
    assert_bit_identical(&s, &want[TOTAL_STEPS as usize], "uninterrupted rerun");
    mgr.close().unwrap();

    // A new manager (as after a restart) resumes from every saved step in turn.
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    assert_eq!(mgr.all_steps(), vec![4, 8, 12, 16]);
    for saved in mgr.all_steps() {
        let mut s = mgr.restore(saved, &blank()).unwrap();
        assert_bit_identical(&s, &want[saved as usize], &format!("restored step {saved}"));
        assert_eq!(
            mgr.metadata(saved).unwrap()["loss_bits"],
            losses[saved as usize]
        );
        for step in saved + 1..=TOTAL_STEPS {
            assert_eq!(
                train_step(&mut s),
                losses[step as usize],
                "loss of step {step}"
            );
            assert_bit_identical(
                &s,
                &want[step as usize],
                &format!("step {step} resumed from {saved}"),
            );
        }
    }

    // Negative controls: the comparison above is only meaningful if each part of the saved
    // state changes the trajectory. Resuming with a fresh optimizer (adam's moments and
    // step lost) or a fresh data key must end somewhere else.
    let restored = mgr.restore(STEPS_BEFORE, &blank()).unwrap();
    let mut fresh_opt = restored.clone();
    fresh_opt.opt = Optimizer::new(&fresh_opt.model, adam(LR)).unwrap();
    let mut fresh_key = restored;
    fresh_key.key = Key::new(0);
    for _ in STEPS_BEFORE..TOTAL_STEPS {
        train_step(&mut fresh_opt);
        train_step(&mut fresh_key);
    }
    let end = &want[TOTAL_STEPS as usize].model;
    assert!(
        !models_bit_identical(&fresh_opt.model, end),
        "resuming without the optimizer state reached the same model: the test cannot see it"
    );
    assert!(
        !models_bit_identical(&fresh_key.model, end),
        "resuming without the RNG key reached the same model: the test cannot see it"
    );
}
