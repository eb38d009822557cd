//! Every optimizer reaches the minimizer of a quadratic and of the Rosenbrock function
//! within 3e-2 in a bounded number of deterministic steps.

use ferrax_core::{Array, DType};
use ferrax_optim::schedule::exponential_decay;
use ferrax_optim::*;

fn optimizers(rosen: bool) -> Vec<(&'static str, Transform, usize)> {
    // Step budgets and learning rates are per problem; sign-based and trust-ratio methods
    // take steps of a fixed relative size, so they get a decaying learning rate.
    let decay =
        |lr: f64, every: i64| LearningRate::from(exponential_decay(lr, every, 0.5, 0, false, None));
    let c = LearningRate::from;
    let q = !rosen;
    vec![
        (
            "sgd",
            sgd(if q { 0.3 } else { 1e-3 }),
            if q { 100 } else { 20000 },
        ),
        (
            "sgd_momentum",
            sgd_with(if q { 0.1 } else { 1e-3 }, Some(0.9), false),
            if q { 200 } else { 5000 },
        ),
        (
            "sgd_nesterov",
            sgd_with(if q { 0.1 } else { 1e-3 }, Some(0.9), true),
            if q { 200 } else { 5000 },
        ),
        (
            "adam",
            adam(if q { c(0.1) } else { decay(0.05, 1500) }),
            if q { 300 } else { 6000 },
        ),
        (
            "adamw",
            adamw(if q { c(0.1) } else { decay(0.05, 1500) }, 1e-4, None),
            if q { 300 } else { 6000 },
        ),
        (
            "nadam",
            nadam(if q { c(0.1) } else { decay(0.05, 1500) }),
            if q { 300 } else { 6000 },
        ),
        (
            "adamax",
            adamax(if q { c(0.1) } else { decay(0.05, 1500) }, 0.9, 0.999, 1e-8),
            if q { 300 } else { 6000 },
        ),
        (
            "amsgrad",
            amsgrad(
                if q { c(0.1) } else { decay(0.1, 2000) },
                0.9,
                0.999,
                1e-8,
                0.0,
            ),
            if q { 300 } else { 8000 },
        ),
        (
            "radam",
            radam(if q { c(0.1) } else { c(2e-3) }, 0.9, 0.999, 1e-8, 0.0, 5.0),
            if q { 300 } else { 8000 },
        ),
        (
            "adabelief",
            adabelief(
                if q { c(0.1) } else { decay(0.05, 1500) },
                0.9,
                0.999,
                1e-16,
                1e-16,
            ),
            if q { 300 } else { 6000 },
        ),
        (
            "yogi",
            yogi(if q { c(0.1) } else { decay(0.05, 1500) }, 0.9, 0.999, 1e-3),
            if q { 300 } else { 6000 },
        ),
        (
            "adagrad",
            adagrad(if q { 0.5 } else { 0.1 }, 0.1, 1e-7),
            if q { 300 } else { 6000 },
        ),
        (
            "rmsprop",
            rmsprop(
                if q {
                    decay(0.05, 50)
                } else {
                    decay(0.01, 1000)
                },
                RmsConfig::default(),
                false,
                None,
                false,
            ),
            if q { 400 } else { 6000 },
        ),
        (
            "rmsprop_centered",
            rmsprop(
                if q {
                    decay(0.05, 50)
                } else {
                    decay(0.01, 1000)
                },
                RmsConfig::default(),
                true,
                None,
                false,
            ),
            if q { 400 } else { 6000 },
        ),
        (
            "lamb",
            lamb(
                if q {
                    decay(0.05, 100)
                } else {
                    decay(0.02, 1500)
                },
                lamb_config(),
                0.0,
                None,
            ),
            if q { 600 } else { 6000 },
        ),
        (
            "lars",
            lars(
                if q { c(1.0) } else { decay(10.0, 1500) },
                0.0,
                None,
                0.001,
                0.0,
                None,
                0.9,
                false,
            ),
            if q { 600 } else { 6000 },
        ),
        (
            "lion",
            lion(
                if q {
                    decay(0.05, 150)
                } else {
                    decay(0.01, 1000)
                },
                0.9,
                0.99,
                0.0,
                None,
            ),
            if q { 600 } else { 6000 },
        ),
        (
            "adafactor",
            adafactor(
                Some(if q {
                    decay(0.1, 100)
                } else {
                    decay(0.05, 1000)
                }),
                AdafactorConfig::default(),
            ),
            if q { 600 } else { 6000 },
        ),
        (
            "novograd",
            novograd(
                if q {
                    decay(0.1, 100)
                } else {
                    decay(0.02, 1500)
                },
                0.9,
                0.25,
                1e-6,
                0.0,
                0.0,
            ),
            if q { 600 } else { 6000 },
        ),
        (
            "noisy_sgd",
            noisy_sgd(if q { 0.3 } else { 1e-3 }, 1e-4, 0.55, 0),
            if q { 100 } else { 20000 },
        ),
        (
            "sm3",
            sm3(if q { 0.5 } else { 0.05 }, 0.9),
            if q { 300 } else { 6000 },
        ),
        ("fromage", fromage(0.01, 1e-6), if q { 8000 } else { 6000 }),
        // Schedule-free SGD is plain SGD on z: its rate must stay under 2 / 1000 (the
        // curvature at Rosenbrock's minimum), and a smaller b1 follows z more closely.
        (
            "schedule_free_sgd",
            if q {
                schedule_free_sgd(0.5, None, 0.9, None)
            } else {
                schedule_free_sgd(1.8e-3, None, 0.7, None)
            }
            .unwrap(),
            if q { 300 } else { 20000 },
        ),
        (
            "schedule_free_adamw",
            schedule_free_adamw(if q { 0.3 } else { 0.02 }, None, 0.9, 0.999, 1e-8, 0.0).unwrap(),
            if q { 300 } else { 6000 },
        ),
    ]
}

fn quad_grad(p: &[f64]) -> Vec<f64> {
    // f = 0.5 * sum(c_i (p_i - t_i)^2), minimum at t.
    p.iter()
        .enumerate()
        .map(|(i, &x)| (0.5 + 0.25 * i as f64) * (x - target(i)))
        .collect()
}
fn target(i: usize) -> f64 {
    [1.0, -2.0, 0.5, 3.0][i]
}
fn rosen_grad(p: &[f64]) -> Vec<f64> {
    let (x, y) = (p[0], p[1]);
    vec![
        -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
        200.0 * (y - x * x),
    ]
}

fn run(tx: &Transform, start: Vec<f64>, steps: usize, grad: fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let n = start.len();
    let mut p = Array::from_vec(vec![n], start).unwrap();
    let mut state = tx.init(&p).unwrap();
    for _ in 0..steps {
        let g = Array::from_vec(vec![n], grad(&p.to_vec::<f64>().unwrap())).unwrap();
        let u = tx.update(&g, &mut state, Some(&p)).unwrap();
        p = apply_updates(&p, &u).unwrap();
    }
    assert_eq!(p.dtype(), DType::F64);
    p.to_vec::<f64>().unwrap()
}

#[test]
fn every_optimizer_converges_on_a_quadratic() {
    let mut bad = Vec::new();
    let mut all = optimizers(false);
    all.push(("adadelta", adadelta(1.0, 0.9, 1e-4, 0.0, None), 1000));
    for (name, tx, steps) in all {
        let p = run(&tx, vec![0.0; 4], steps, quad_grad);
        let err = p
            .iter()
            .enumerate()
            .map(|(i, x)| (x - target(i)).abs())
            .fold(0.0, f64::max);
        if err.is_nan() || err >= 3e-2 {
            bad.push(format!(
                "{name}: max error {err} after {steps} steps ({p:?})"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_optimizer_converges_on_rosenbrock() {
    let mut bad = Vec::new();
    let mut all = optimizers(true);
    // AdaDelta with a constant learning rate does not settle on Rosenbrock: as the
    // accumulators shrink its step tends to `lr * g` (plain gradient descent), which is
    // unstable in the valley's stiff direction (curvature ~1000 at the minimum) for any lr
    // above ~2e-3, so it ends up hovering at a fixed distance from (1, 1). Halving the
    // learning rate every 1000 steps (Optax's defaults otherwise: rho 0.9, eps 1e-6)
    // damps that oscillation; a float64 replay of Optax's update is within 1.1e-2 after 4000 steps.
    all.push((
        "adadelta",
        adadelta(
            exponential_decay(1.0, 1000, 0.5, 0, false, None),
            0.9,
            1e-6,
            0.0,
            None,
        ),
        4000,
    ));
    for (name, tx, steps) in all {
        let p = run(&tx, vec![-1.0, 1.0], steps, rosen_grad);
        let err = (p[0] - 1.0).abs().max((p[1] - 1.0).abs());
        if err.is_nan() || err >= 3e-2 {
            bad.push(format!(
                "{name}: max error {err} after {steps} steps ({p:?})"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
