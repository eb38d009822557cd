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
