//! An optimizer update inside a `#[jit]` train step equals the eager update:
//! `chain(clip_by_global_norm, adamw)` with the optimizer threaded as `&mut` state.

use ferrax::jit::disable_jit;
use ferrax::optim::schedule::warmup_cosine_decay_schedule;
use ferrax::optim::{adamw, chain, clip_by_global_norm, inject_hyperparams, Optimizer};
use ferrax::prelude::*;

#[derive(Tree, Clone, Debug)]
struct Params {
    w: Tensor<(C<4>, C<3>)>,
    b: Tensor<(C<3>,)>,
}

fn ramp<S: StaticShape>(scale: f32, shift: f32) -> Tensor<S> {
    let n = S::STATIC_NUMEL.unwrap();
    Tensor::from_vec(
        (0..n)
            .map(|i| (i as f32 * 0.37).sin() * scale + shift)
            .collect(),
    )
    .unwrap()
}

#[jit]
fn train_step(p: &mut Params, opt: &mut Optimizer<Params>, g: &Params) -> Tensor<(C<3>,)> {
    opt.update(p, g).expect("optimizer update");
    p.b.clone()
}

fn close(a: &[f32], b: &[f32]) {
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-6 * y.abs().max(1.0),
            "jit {x} vs eager {y}"
        );
    }
}

#[test]
fn jitted_clip_adamw_step_equals_eager() {
    let p0 = Params {
        w: ramp(1.0, 0.2),
        b: ramp(0.5, -0.1),
    };
    let grads: Vec<Params> = (0..4)
        .map(|k| Params {
            w: ramp(3.0 + k as f32, 0.5),
            b: ramp(2.0, k as f32),
        })
        .collect();
    let tx = || {
        inject_hyperparams(
            vec![(
                "learning_rate",
                warmup_cosine_decay_schedule(0.0, 0.1, 2, 10, 0.01, 1.0)
                    .unwrap()
                    .into(),
            )],
            |h| {
                Ok(chain([
                    clip_by_global_norm(1.0),
                    adamw(h.get("learning_rate")?, 1e-2, None),
                ]))
            },
        )
    };
    let (mut pj, mut pe) = (p0.clone(), p0.clone());
    let mut oj = Optimizer::new(&pj, tx()).unwrap();
    let mut oe = Optimizer::new(&pe, tx()).unwrap();
    let before = train_step::stats();
    for g in &grads {
        let bj = train_step(&mut pj, &mut oj, g);
        let be = disable_jit(|| train_step(&mut pe, &mut oe, g));
        close(&bj.to_vec().unwrap(), &be.to_vec().unwrap());
        close(&pj.w.to_vec().unwrap(), &pe.w.to_vec().unwrap());
        let (sj, se) = (ferrax::tree::leaves(&oj), ferrax::tree::leaves(&oe));
        assert_eq!(sj.len(), se.len());
        for (a, b) in sj.iter().zip(&se) {
            assert_eq!(a.aval(), b.aval());
            if a.dtype() == DType::F32 {
                close(&a.to_vec::<f32>().unwrap(), &b.to_vec::<f32>().unwrap());
            } else {
                assert!(a.bit_eq(b), "{a:?} vs {b:?}");
            }
        }
        close(
            &oj.learning_rate().unwrap().to_vec::<f32>().unwrap(),
            &oe.learning_rate().unwrap().to_vec::<f32>().unwrap(),
        );
    }
    let after = train_step::stats();
    assert_eq!(
        after.compiles - before.compiles,
        1,
        "one compile, then cache hits"
    );
    assert_eq!(oj.step().to_vec::<i32>().unwrap(), vec![4]);
    assert!(!pj.w.array().bit_eq(p0.w.array()));
}

#[test]
fn optimizers_with_equal_state_shapes_do_not_share_a_program() {
    use ferrax::optim::{sgd, Optimizer};
    use ferrax::prelude::*;
    #[jit]
    fn step(
        p: &mut Tensor<(C<2>,)>,
        opt: &mut Optimizer<Tensor<(C<2>,)>>,
        g: &Tensor<(C<2>,)>,
    ) -> Tensor<()> {
        opt.update(p, g).expect("update");
        p.sum()
    }
    let g = Tensor::<(C<2>,)>::ones();
    let mut p1 = Tensor::<(C<2>,)>::zeros();
    let mut p2 = Tensor::<(C<2>,)>::zeros();
    let mut o1 = Optimizer::new(&p1, sgd(0.1)).unwrap();
    let mut o2 = Optimizer::new(&p2, sgd(0.5)).unwrap();
    step(&mut p1, &mut o1, &g);
    step(&mut p2, &mut o2, &g);
    assert_eq!(p1.to_vec().unwrap(), vec![-0.1, -0.1]);
    assert_eq!(
        p2.to_vec().unwrap(),
        vec![-0.5, -0.5],
        "the second optimizer's learning rate is used"
    );
    assert_eq!(step::stats().compiles, 2);
}

/// Every named optimizer (and the stateful wrappers) traces into the jitted step and gives
/// the eager result: their run-time decisions are `select`s, their counters and random
/// keys are state arrays.
#[test]
fn every_optimizer_jits_like_eager() {
    use ferrax::optim::*;
    let all: Vec<(&str, Transform)> = vec![
        ("sgd_nesterov", sgd_with(0.1, Some(0.9), true)),
        ("noisy_sgd", noisy_sgd(0.1, 0.01, 0.55, 3)),
        ("nadam", nadam(0.01)),
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
        ("adamax", adamax(0.01, 0.9, 0.999, 1e-8)),
        ("amsgrad", amsgrad(0.01, 0.9, 0.999, 1e-8, 0.0)),
        ("radam", radam(0.01, 0.9, 0.999, 1e-8, 0.0, 5.0)),
        ("adabelief", adabelief(0.01, 0.9, 0.999, 1e-16, 1e-16)),
        ("yogi", yogi(0.01, 0.9, 0.999, 1e-3)),
        ("adagrad", adagrad(0.1, 0.1, 1e-7)),
        ("adadelta", adadelta(1.0, 0.9, 1e-6, 1e-3, None)),
        (
            "rmsprop_centered",
            rmsprop(0.01, RmsConfig::default(), true, Some(0.9), true),
        ),
        ("lamb", lamb(0.01, lamb_config(), 1e-2, None)),
        ("lars", lars(0.1, 1e-4, None, 1e-3, 0.0, None, 0.9, false)),
        ("lion", lion(0.01, 0.9, 0.99, 1e-3, None)),
        (
            "adafactor",
            adafactor(
                Some(0.01.into()),
                AdafactorConfig {
                    min_dim_size_to_factor: 2,
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
        ("multi_steps", multi_steps(adam(0.01), 2)),
        ("apply_if_finite", apply_if_finite(adam(0.01), 2)),
        ("lookahead", lookahead(sgd(0.1), 2, 0.5)),
        (
            "clip_centralize_agc_nonneg",
            chain([
                centralize(),
                adaptive_grad_clip(0.1, 1e-3),
                clip(0.05),
                sgd(1.0),
                keep_params_nonnegative(),
            ]),
        ),
    ];
    // Its own staged function: `train_step`'s compile counter is asserted on by the test
    // above, which runs concurrently.
    #[jit]
    fn step_any(p: &mut Params, opt: &mut Optimizer<Params>, g: &Params) -> Tensor<(C<3>,)> {
        opt.update(p, g).expect("optimizer update");
        p.b.clone()
    }
    let p0 = Params {
        w: ramp(1.0, 0.2),
        b: ramp(0.5, -0.1),
    };
    let n_opt = all.len();
    for (name, tx) in all {
        let (mut pj, mut pe) = (p0.clone(), p0.clone());
        let mut oj = Optimizer::new(&pj, tx.clone()).unwrap();
        let mut oe = Optimizer::new(&pe, tx).unwrap();
        for k in 0..4 {
            let g = Params {
                w: ramp(1.0 + k as f32, 0.3),
                b: ramp(0.7, 0.2 * k as f32),
            };
            step_any(&mut pj, &mut oj, &g);
            disable_jit(|| step_any(&mut pe, &mut oe, &g));
            let lj = [ferrax::tree::leaves(&pj), ferrax::tree::leaves(&oj)].concat();
            let le = [ferrax::tree::leaves(&pe), ferrax::tree::leaves(&oe)].concat();
            assert_eq!(lj.len(), le.len(), "{name}");
            for (a, b) in lj.iter().zip(&le) {
                assert_eq!(a.aval(), b.aval(), "{name}");
                // bf16 state (Adam's mu_dtype) may round a last-bit f32 difference either way.
                let rtol = match a.dtype() {
                    DType::F32 => 1e-6,
                    DType::BF16 => 8e-3,
                    _ => {
                        assert!(a.bit_eq(b), "{name} step {k}: {a:?} vs {b:?}");
                        continue;
                    }
                };
                let f64s = |x: &Array| {
                    ferrax::prim::convert::convert(x, DType::F64)
                        .unwrap()
                        .to_vec::<f64>()
                        .unwrap()
                };
                for (x, y) in f64s(a).iter().zip(f64s(b)) {
                    assert!(
                        (x - y).abs() <= rtol * y.abs().max(1.0),
                        "{name} step {k}: jit {x} vs eager {y}"
                    );
                }
            }
        }
        assert!(
            !pj.w.array().bit_eq(p0.w.array()),
            "{name}: parameters moved"
        );
    }
    // One compiled program per optimizer, reused for its later steps.
    let stats = step_any::stats();
    assert_eq!(stats.compiles, n_opt as u64, "{stats:?}");
    assert_eq!(stats.hits, 3 * n_opt as u64, "{stats:?}");
}

/// An injected learning rate changed between jitted steps takes effect without a
/// recompilation (it is a state array, not a constant of the program).
#[test]
fn injected_learning_rate_changes_without_recompiling() {
    use ferrax::optim::{inject_hyperparams, sgd, Optimizer};
    #[jit]
    fn step_lr(
        p: &mut Tensor<(C<2>,)>,
        opt: &mut Optimizer<Tensor<(C<2>,)>>,
        g: &Tensor<(C<2>,)>,
    ) -> Tensor<()> {
        opt.update(p, g).expect("update");
        p.sum()
    }
    let tx = inject_hyperparams(vec![("learning_rate", 0.1.into())], |h| {
        Ok(sgd(h.get("learning_rate")?))
    });
    let g = Tensor::<(C<2>,)>::from_vec(vec![1.0, -2.0]).unwrap();
    let mut p = Tensor::<(C<2>,)>::zeros();
    let mut opt = Optimizer::new(&p, tx).unwrap();
    step_lr(&mut p, &mut opt, &g);
    assert_eq!(p.to_vec().unwrap(), vec![-0.1, 0.2]);
    opt.state_mut()
        .set_hyperparam("learning_rate", 0.5)
        .unwrap();
    step_lr(&mut p, &mut opt, &g);
    let v = p.to_vec().unwrap();
    assert!(
        (v[0] + 0.6).abs() < 1e-6 && (v[1] - 1.2).abs() < 1e-6,
        "{v:?}"
    );
    assert_eq!(
        opt.learning_rate().unwrap().to_vec::<f32>().unwrap(),
        vec![0.5]
    );
    let s = step_lr::stats();
    assert_eq!((s.compiles, s.hits), (1, 1), "{s:?}");
}
