//! Behaviour beyond the reference trajectories: masks, dtypes, stable state shapes,
//! equivalences between transformations, wrappers, and errors on bad input.

extern crate ferrax_core as ferrax;
use ferrax_core::tree::{self, Path};
use ferrax_core::{bf16, Array, DType, Tensor, Tree, C};
use ferrax_optim::schedule::linear_schedule;
use ferrax_optim::*;

#[derive(Tree, Clone, Debug)]
struct Model {
    w: Tensor<(C<2>, C<3>)>,
    b: Tensor<(C<3>,)>,
}

fn model() -> Model {
    Model {
        w: Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7]).unwrap(),
        b: Tensor::from_vec(vec![1.0, -2.0, 0.5]).unwrap(),
    }
}
fn grads() -> Model {
    Model {
        w: Tensor::from_vec(vec![0.1, 0.2, -0.3, 0.4, -0.5, 0.6]).unwrap(),
        b: Tensor::from_vec(vec![-1.0, 0.5, 0.25]).unwrap(),
    }
}
fn is_bias(p: &Path) -> bool {
    p.to_string() == "b"
}

#[test]
fn masked_leaves_are_untouched() {
    let m = model();
    let g = grads();
    // Frozen biases: multi_transform with set_to_zero leaves them exactly as they were.
    let tx = multi_transform(
        vec![("train", adam(0.1)), ("frozen", set_to_zero())],
        |p: &Path| {
            if is_bias(p) {
                "frozen"
            } else {
                "train"
            }
        },
    );
    let mut opt = Optimizer::new(&m, tx).unwrap();
    let mut m2 = m.clone();
    for _ in 0..3 {
        opt.update(&mut m2, &g).unwrap();
    }
    assert!(m2.b.array().bit_eq(m.b.array()));
    assert!(!m2.w.array().bit_eq(m.w.array()));
    // masked(): the unselected leaves' updates pass through unchanged.
    let tx = masked(scale(10.0), |p: &Path| !is_bias(p));
    let mut s = tx.init(&m).unwrap();
    let u = tx.update(&g, &mut s, Some(&m)).unwrap();
    assert!(u.b.array().bit_eq(g.b.array()));
    assert_eq!(u.w.to_vec().unwrap()[0], 1.0);
    // AdamW with a mask: no decay on the bias, so its update equals plain Adam's.
    let aw = adamw(0.1, 0.5, Some(Mask::new(|p: &Path| !is_bias(p))));
    let a = adam(0.1);
    let (mut sa, mut sw) = (a.init(&m).unwrap(), aw.init(&m).unwrap());
    let ua = a.update(&g, &mut sa, Some(&m)).unwrap();
    let uw = aw.update(&g, &mut sw, Some(&m)).unwrap();
    assert!(ua.b.array().bit_eq(uw.b.array()));
    assert!(!ua.w.array().bit_eq(uw.w.array()));
}

#[test]
fn dtype_and_state_shapes_are_preserved() {
    let p: Tensor<(C<4>,), bf16> =
        Tensor::from_vec([1.0f32, -2.0, 0.5, 3.0].map(bf16::from_f32).to_vec()).unwrap();
    let g: Tensor<(C<4>,), bf16> =
        Tensor::from_vec([0.5f32, 0.5, -1.0, 2.0].map(bf16::from_f32).to_vec()).unwrap();
    for tx in [
        adam(0.01),
        sgd_with(0.1, Some(0.9), true),
        lion(0.01, 0.9, 0.99, 0.0, None),
        adafactor(Some(0.01.into()), AdafactorConfig::default()),
        rmsprop(0.01, RmsConfig::default(), true, Some(0.9), false),
    ] {
        let mut opt = Optimizer::new(&p, tx).unwrap();
        let before = tree::avals_with_paths(opt.state());
        let mut q = p.clone();
        for _ in 0..3 {
            opt.update(&mut q, &g).unwrap();
            assert_eq!(
                tree::avals_with_paths(opt.state()),
                before,
                "state shapes stable"
            );
        }
        assert_eq!(q.array().dtype(), DType::BF16);
        assert!(!q.array().bit_eq(p.array()));
    }
}

#[test]
fn adam_with_b1_zero_is_rms_scaling() {
    let m = model();
    let g = grads();
    let a = scale_by_adam(AdamConfig {
        b1: 0.0,
        ..AdamConfig::default()
    });
    let r = scale_by_rms(RmsConfig {
        decay: 0.999,
        eps: 1e-8,
        initial_scale: 0.0,
        eps_in_sqrt: false,
        bias_correction: true,
    });
    let (mut sa, mut sr) = (a.init(&m).unwrap(), r.init(&m).unwrap());
    for k in 0..4 {
        let gk = tree_utils::tree_scale(1.0 + k as f64, &g).unwrap();
        let ua = tree::leaves(&a.update(&gk, &mut sa, None).unwrap());
        let ur = tree::leaves(&r.update(&gk, &mut sr, None).unwrap());
        for (x, y) in ua.iter().zip(&ur) {
            for (p, q) in x
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .zip(y.to_vec::<f32>().unwrap())
            {
                assert!((p - q).abs() <= 1e-6 * q.abs().max(1.0), "{p} vs {q}");
            }
        }
    }
}

#[test]
fn injected_learning_rate_is_readable_and_settable() {
    let p = Tensor::<(C<2>,)>::from_vec(vec![1.0, 1.0]).unwrap();
    let tx = inject_hyperparams(
        vec![("learning_rate", linear_schedule(1.0, 0.0, 4, 0).into())],
        |h| Ok(sgd(h.get("learning_rate")?)),
    );
    let mut opt = Optimizer::new(&p, tx).unwrap();
    let mut q = p.clone();
    let mut seen = Vec::new();
    for _ in 0..3 {
        opt.update(&mut q, &p).unwrap();
        seen.push(opt.learning_rate().unwrap().to_vec::<f32>().unwrap()[0]);
    }
    assert_eq!(seen, vec![1.0, 0.75, 0.5]);
    // A constant hyperparameter changes without rebuilding the transformation.
    let tx = inject_hyperparams(vec![("learning_rate", 0.1.into())], |h| {
        Ok(adam(h.get("learning_rate")?))
    });
    let mut opt = Optimizer::new(&p, tx).unwrap();
    opt.state_mut()
        .set_hyperparam("learning_rate", 0.0)
        .unwrap();
    let mut q = p.clone();
    opt.update(&mut q, &p).unwrap();
    assert!(q.array().bit_eq(p.array()));
    assert!(opt.state_mut().set_hyperparam("momentum", 0.1).is_err());
}

#[test]
fn multi_steps_equals_one_step_on_the_mean_gradient() {
    let m = model();
    let g1 = grads();
    let g2 = tree_utils::tree_scale(3.0, &g1).unwrap();
    let ms = multi_steps(adam(0.1), 2);
    let mut s = ms.init(&m).unwrap();
    let u1 = ms.update(&g1, &mut s, Some(&m)).unwrap();
    assert!(tree::leaves(&u1)
        .iter()
        .all(|a| a.to_vec::<f32>().unwrap().iter().all(|&x| x == 0.0)));
    let u2 = ms.update(&g2, &mut s, Some(&m)).unwrap();
    let mean = tree_utils::tree_scale(2.0, &g1).unwrap();
    let a = adam(0.1);
    let mut sa = a.init(&m).unwrap();
    let ua = a.update(&mean, &mut sa, Some(&m)).unwrap();
    for (x, y) in tree::leaves(&u2).iter().zip(tree::leaves(&ua)) {
        for (p, q) in x
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .zip(y.to_vec::<f32>().unwrap())
        {
            assert!((p - q).abs() <= 1e-6, "{p} vs {q}");
        }
    }
}

#[test]
fn apply_if_finite_skips_bad_steps_and_zero_nans_cleans() {
    let p = Tensor::<(C<2>,)>::from_vec(vec![1.0, 1.0]).unwrap();
    let bad = Tensor::<(C<2>,)>::from_vec(vec![f32::NAN, 1.0]).unwrap();
    let tx = apply_if_finite(adam(0.1), 3);
    let mut s = tx.init(&p).unwrap();
    let s0 = s.clone();
    let u = tx.update(&bad, &mut s, Some(&p)).unwrap();
    assert_eq!(u.to_vec().unwrap(), vec![0.0, 0.0]);
    let inner_before = tree::leaves(s0.get("inner").unwrap());
    let inner_after = tree::leaves(s.get("inner").unwrap());
    assert!(inner_before
        .iter()
        .zip(&inner_after)
        .all(|(a, b)| a.bit_eq(b)));
    assert_eq!(
        s.get("total_notfinite")
            .unwrap()
            .as_array()
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![1]
    );
    let z = zero_nans();
    let mut zs = z.init(&p).unwrap();
    assert_eq!(
        z.update(&bad, &mut zs, None).unwrap().to_vec().unwrap(),
        vec![0.0, 1.0]
    );
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let m = model();
    let g = grads();
    let tx = adam(0.1);
    // A state made for another tree.
    let mut s = tx.init(&Tensor::<(C<3>,)>::ones()).unwrap();
    let e = tx.update(&g, &mut s, Some(&m)).unwrap_err().to_string();
    assert!(e.contains("scale_by_adam"), "{e}");
    // A transformation that needs the parameters, called without them.
    let mut s = adamw(0.1, 0.1, None).init(&m).unwrap();
    let e = adamw(0.1, 0.1, None)
        .update(&g, &mut s, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("add_decayed_weights") && e.contains("parameters"),
        "{e}"
    );
    // Integer leaves cannot be optimized by Adam.
    let ip = Array::from_vec(vec![2], vec![1i32, 2]).unwrap();
    let mut s = tx.init(&ip).unwrap();
    assert!(tx.update(&ip, &mut s, None).is_err());
    // Invalid schedule arguments.
    assert!(schedule::cosine_decay_schedule(1.0, 0, 0.0, 1.0).is_err());
    assert!(schedule::join_schedules(vec![], &[1]).is_err());
    assert!(schedule::piecewise_constant_schedule(1.0, &[(3, -1.0)]).is_err());
}

#[test]
fn tree_helpers_and_losses() {
    let g = grads();
    let n = tree_utils::global_norm(&g)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0];
    let want = (0.01f32 + 0.04 + 0.09 + 0.16 + 0.25 + 0.36 + 1.0 + 0.25 + 0.0625).sqrt();
    assert!((n - want).abs() < 1e-6);
    let v = tree_utils::tree_vdot(&g, &g)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0];
    assert!((v - want * want).abs() < 1e-5);
    let d = tree_utils::tree_sub(&g, &g).unwrap();
    assert_eq!(
        tree_utils::tree_l2_norm(&d, false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0]
    );
    use ferrax_optim::loss::*;
    let x = Array::from_vec(vec![2, 2], vec![0.0f32, 2.0, -1.0, 1.0]).unwrap();
    let y = Array::from_vec(vec![2, 2], vec![0.0f32, 1.0, 1.0, 0.0]).unwrap();
    let bce = sigmoid_binary_cross_entropy(&x, &y)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let sp = |z: f32| (1.0 + z.exp()).ln();
    let want = [sp(0.0), sp(-2.0), sp(1.0), sp(1.0)];
    for (a, b) in bce.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let h = hinge_loss(
        &x,
        &Array::from_vec(vec![2, 2], vec![1.0f32, 1.0, -1.0, 1.0]).unwrap(),
    )
    .unwrap();
    assert_eq!(h.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
    let cs = cosine_similarity(&x, &x, 0.0)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(cs.iter().all(|c| (c - 1.0).abs() < 1e-6) || cs[0].is_nan());
    let lc = log_cosh(&Array::from_vec(vec![1], vec![0.5f32]).unwrap(), None)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0];
    assert!((lc - 0.5f32.cosh().ln()).abs() < 1e-6);
    let p = Array::from_vec(vec![1, 2], vec![0.25f32, 0.75]).unwrap();
    let kl = kl_divergence(&ferrax_core::prim::unary::log(&p).unwrap(), &p)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()[0];
    assert!(kl.abs() < 1e-7);
    let onehot = softmax_cross_entropy(&y, &y)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let lse = |a: f32, b: f32| (a.exp() + b.exp()).ln();
    assert!((onehot[0] - (lse(0.0, 1.0) - 1.0)).abs() < 1e-6);
}

/// Every named optimizer, with small hyperparameters.
fn all_optimizers() -> Vec<(&'static str, Transform)> {
    vec![
        ("sgd", sgd(0.1)),
        ("sgd_momentum", sgd_with(0.1, Some(0.9), false)),
        ("sgd_nesterov", sgd_with(0.1, Some(0.9), true)),
        ("noisy_sgd", noisy_sgd(0.1, 0.01, 0.55, 3)),
        ("adam", adam(0.01)),
        (
            "adam_mu_bf16",
            adam_with(
                0.01,
                AdamConfig {
                    mu_dtype: Some(DType::BF16),
                    ..AdamConfig::default()
                },
            ),
        ),
        ("adamw", adamw(0.01, 1e-2, None)),
        ("nadam", nadam(0.01)),
        ("adamax", adamax(0.01, 0.9, 0.999, 1e-8)),
        ("amsgrad", amsgrad(0.01, 0.9, 0.999, 1e-8, 0.0)),
        ("radam", radam(0.01, 0.9, 0.999, 1e-8, 0.0, 5.0)),
        ("adabelief", adabelief(0.01, 0.9, 0.999, 1e-16, 1e-16)),
        ("yogi", yogi(0.01, 0.9, 0.999, 1e-3)),
        ("adagrad", adagrad(0.1, 0.1, 1e-7)),
        ("adadelta", adadelta(1.0, 0.9, 1e-6, 1e-3, None)),
        (
            "rmsprop",
            rmsprop(0.01, RmsConfig::default(), false, None, false),
        ),
        (
            "rmsprop_centered",
            rmsprop(0.01, RmsConfig::default(), true, Some(0.9), true),
        ),
        ("lamb", lamb(0.01, lamb_config(), 1e-2, None)),
        ("lars", lars(1.0, 1e-4, None, 1e-3, 0.0, None, 0.9, false)),
        ("lion", lion(0.01, 0.9, 0.99, 1e-3, None)),
        (
            "adafactor",
            adafactor(
                Some(0.01.into()),
                AdafactorConfig {
                    min_dim_size_to_factor: 2,
                    momentum: Some(0.9),
                    weight_decay_rate: Some(1e-3),
                    ..AdafactorConfig::default()
                },
            ),
        ),
        ("novograd", novograd(0.01, 0.9, 0.25, 1e-6, 0.0, 1e-3)),
        ("sm3", sm3(0.1, 0.9)),
        ("fromage", fromage(0.01, 1e-6)),
        (
            "schedule_free_sgd",
            schedule_free_sgd(0.1, Some(2), 0.9, Some(1e-3)).unwrap(),
        ),
        (
            "schedule_free_adamw",
            schedule_free_adamw(0.01, None, 0.9, 0.999, 1e-8, 1e-3).unwrap(),
        ),
    ]
}

#[test]
fn every_optimizer_preserves_dtype_and_state_shapes() {
    for dt in [DType::F32, DType::F64, DType::BF16] {
        let mk = |shape: &[usize], f: fn(usize) -> f64| {
            let n: usize = shape.iter().product();
            let v: Vec<f64> = (0..n).map(f).collect();
            ferrax_core::prim::convert::convert(&Array::from_vec(shape.to_vec(), v).unwrap(), dt)
                .unwrap()
        };
        let p0 = (
            mk(&[4, 3], |i| (i as f64 * 0.7).sin()),
            mk(&[3], |i| 0.5 - i as f64),
        );
        let g = (
            mk(&[4, 3], |i| (i as f64 * 1.3).cos()),
            mk(&[3], |i| 0.25 * i as f64 - 0.3),
        );
        for (name, tx) in all_optimizers() {
            let mut opt = Optimizer::new(&p0, tx).unwrap();
            let before = tree::avals_with_paths(opt.state());
            let mut p = p0.clone();
            for k in 0..3 {
                opt.update(&mut p, &g).unwrap();
                assert_eq!(
                    tree::avals_with_paths(opt.state()),
                    before,
                    "{name} {dt}: state avals changed at step {k}"
                );
            }
            for (a, b) in tree::leaves(&p).iter().zip(tree::leaves(&p0)) {
                assert_eq!(a.dtype(), dt, "{name}: parameter dtype");
                assert_eq!(a.shape(), b.shape());
                assert!(!a.bit_eq(&b), "{name} {dt}: parameters did not move");
            }
        }
    }
}
