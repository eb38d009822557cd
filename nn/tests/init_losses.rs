//! Initializer statistics (mean/variance/bounds over large draws) and losses/metrics
//! against closed forms.

use ferrax_core::random::Key;
use ferrax_core::{Tensor, C};
use ferrax_nn::init::{self, FanMode, Initializer};
use ferrax_nn::losses;
use ferrax_nn::metrics::{Accuracy, Average, Metric, MultiMetric};

fn stats(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|x| *x as f64).sum::<f64>() / n;
    let var = v.iter().map(|x| (*x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var)
}

/// 256 x 512 = 131072 draws: the sample variance's relative sd is about sqrt(2 / n) ≈ 0.4%
/// for a normal; tolerances are about 5 sd.
fn draw(i: &Initializer) -> Vec<f32> {
    let t: Tensor<(C<256>, C<512>)> = i.init(&Key::new(42)).unwrap();
    t.to_vec().unwrap()
}

#[test]
fn variance_scaling_family_has_the_right_variance() {
    let (fan_in, fan_out) = (256.0, 512.0);
    let cases = [
        ("lecun_normal", init::lecun_normal(), 1.0 / fan_in),
        ("lecun_uniform", init::lecun_uniform(), 1.0 / fan_in),
        (
            "glorot_normal",
            init::glorot_normal(),
            2.0 / (fan_in + fan_out),
        ),
        (
            "glorot_uniform",
            init::glorot_uniform(),
            2.0 / (fan_in + fan_out),
        ),
        ("he_normal", init::he_normal(), 2.0 / fan_in),
        ("he_uniform", init::he_uniform(), 2.0 / fan_in),
        (
            "fan_out normal",
            init::variance_scaling(3.0, FanMode::FanOut, init::Distribution::Normal),
            3.0 / fan_out,
        ),
    ];
    for (name, i, var) in cases {
        let v = draw(&i);
        let (m, s2) = stats(&v);
        assert!(
            m.abs() < 5.0 * (var / v.len() as f64).sqrt(),
            "{name}: mean {m}"
        );
        assert!(
            (s2 / var - 1.0).abs() < 0.03,
            "{name}: variance {s2} vs {var}"
        );
        if name.ends_with("uniform") {
            let lim = (3.0 * var).sqrt() as f32;
            assert!(v.iter().all(|x| x.abs() <= lim), "{name}: outside ±{lim}");
        }
        if name.ends_with("_normal") && name != "fan_out normal" {
            // Truncated at 2 sd of the underlying normal.
            let lim = (2.0 * var.sqrt() / 0.879_625_661_034_239_8) as f32 * 1.0001;
            assert!(v.iter().all(|x| x.abs() <= lim), "{name}: outside ±{lim}");
        }
    }
}

#[test]
fn simple_initializers() {
    let (m, s2) = stats(&draw(&init::normal(0.05)));
    assert!(m.abs() < 1e-3 && (s2 / 0.0025 - 1.0).abs() < 0.03);
    let u = draw(&init::uniform(0.5));
    let (m, s2) = stats(&u);
    assert!(u.iter().all(|x| (0.0..0.5).contains(x)));
    assert!((m - 0.25).abs() < 2e-3 && (s2 / (0.25 / 12.0) - 1.0).abs() < 0.03);
    let t = draw(&init::truncated_normal(0.1));
    assert!(t.iter().all(|x| x.abs() <= 0.2));
    // A standard normal truncated to [-2, 2] has variance 1 - 4 φ(2) / (2 Φ(2) - 1)
    // = 0.773741; jax scales it by stddev.
    let (m, s2) = stats(&t);
    assert!(m.abs() < 1e-3, "truncated_normal mean {m}");
    assert!(
        (s2 / (0.01 * 0.773_741) - 1.0).abs() < 0.03,
        "truncated_normal variance {s2}"
    );
    assert!(draw(&init::ones()).iter().all(|x| *x == 1.0));
    assert!(draw(&init::zeros()).iter().all(|x| *x == 0.0));
    assert!(draw(&init::constant(0.5)).iter().all(|x| *x == 0.5));
    // Same key, same numbers; a 1-D shape has no fans.
    assert_eq!(draw(&init::he_normal()), draw(&init::he_normal()));
    assert!(init::lecun_normal()
        .init::<(C<4>,), f32>(&Key::new(0))
        .is_err());
}

#[test]
fn orthogonal_is_orthonormal() {
    // Tall: columns orthonormal; wide: rows orthonormal.
    let q: Tensor<(C<6>, C<4>)> = init::orthogonal(2.0).init(&Key::new(1)).unwrap();
    let g = q.t().matmul(&q).to_vec().unwrap();
    for i in 0..4 {
        for j in 0..4 {
            assert!((g[i * 4 + j] - if i == j { 4.0 } else { 0.0 }).abs() < 1e-5);
        }
    }
    let w: Tensor<(C<3>, C<5>)> = init::orthogonal(1.0).init(&Key::new(2)).unwrap();
    let g = w.matmul(&w.t()).to_vec().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert!((g[i * 3 + j] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-5);
        }
    }
    // A conv-shaped kernel: the flattened (KH KW CI, CO) matrix has orthonormal columns.
    let k: Tensor<(C<2>, C<2>, C<3>, C<4>)> = init::orthogonal(1.0).init(&Key::new(3)).unwrap();
    let m: Tensor<(C<12>, C<4>)> = k.reshape();
    let g = m.t().matmul(&m).to_vec().unwrap();
    for i in 0..4 {
        assert!((g[i * 5] - 1.0).abs() < 1e-5);
    }
}

#[test]
fn losses_match_closed_forms() {
    let logits = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., -1., 0., 4.]).unwrap();
    let lse = |r: &[f32]| r.iter().map(|v| v.exp()).sum::<f32>().ln();
    let lv = logits.to_vec().unwrap();
    let labels = Tensor::<(C<2>,), i32>::from_vec(vec![0, 2]).unwrap();
    let ce = losses::softmax_cross_entropy_with_integer_labels(&logits, &labels)
        .to_vec()
        .unwrap();
    let expect = [lse(&lv[..3]) - 1.0, lse(&lv[3..]) - 4.0];
    assert!((ce[0] - expect[0]).abs() < 1e-6 && (ce[1] - expect[1]).abs() < 1e-6);
    let oh: Tensor<(C<2>, C<3>)> = labels.one_hot::<3, f32>();
    let ce2 = losses::softmax_cross_entropy(&logits, &oh)
        .to_vec()
        .unwrap();
    assert_eq!(ce, ce2);
    // Label smoothing 0.3 over 3 classes: targets 0.8 / 0.1 / 0.1.
    let sm = losses::softmax_cross_entropy_smoothed(&logits, &labels, 0.3)
        .to_vec()
        .unwrap();
    let r0: f32 = [0.8f32, 0.1, 0.1]
        .iter()
        .zip(&lv[..3])
        .map(|(t, l)| -t * (l - lse(&lv[..3])))
        .sum();
    assert!((sm[0] - r0).abs() < 1e-5);
    let st = losses::smooth_labels(&oh, 0.3).to_vec().unwrap();
    assert!((st[0] - 0.8).abs() < 1e-6 && (st[1] - 0.1).abs() < 1e-6);

    let z = Tensor::<(C<3>,)>::from_vec(vec![-2., 0., 30.]).unwrap();
    let y = Tensor::<(C<3>,)>::from_vec(vec![1., 0.5, 0.]).unwrap();
    let b = losses::sigmoid_binary_cross_entropy(&z, &y)
        .to_vec()
        .unwrap();
    let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
    assert!((b[0] + sig(-2.0).ln()).abs() < 1e-6);
    assert!((b[1] - 2f32.ln()).abs() < 1e-6);
    assert!(
        (b[2] - 30.0).abs() < 1e-4,
        "stable for large logits: {}",
        b[2]
    );

    let p = Tensor::<(C<3>,)>::from_vec(vec![0., 1., 5.]).unwrap();
    let t = Tensor::<(C<3>,)>::from_vec(vec![0.5, 1., 1.]).unwrap();
    assert_eq!(
        losses::squared_error(&p, &t).to_vec().unwrap(),
        vec![0.25, 0., 16.]
    );
    assert!((losses::mse(&p, &t).item().unwrap() - 16.25 / 3.0).abs() < 1e-6);
    assert_eq!(
        losses::huber_loss(&p, &t, 1.0).to_vec().unwrap(),
        vec![0.125, 0., 3.5]
    );
}

#[test]
fn metrics_accumulate_and_reset() {
    let mut acc = Accuracy::default();
    assert!(acc.compute().is_nan());
    let logits = Tensor::<(C<3>, C<2>)>::from_vec(vec![1., 0., 0., 1., 2., 2.]).unwrap();
    acc.update(
        &logits,
        &Tensor::<(C<3>,), i32>::from_vec(vec![0, 0, 0]).unwrap(),
    )
    .unwrap();
    assert!(
        (acc.compute() - 2.0 / 3.0).abs() < 1e-12,
        "ties pick the first index"
    );
    let mut avg = Average::default();
    avg.update(&Tensor::<()>::scalar(3.0)).unwrap();
    avg.update_value(5.0);
    assert_eq!(avg.compute(), 4.0);
    let mut mm = MultiMetric::new()
        .with("acc", acc.clone())
        .with("loss", avg.clone());
    assert_eq!(mm.compute()[1], ("loss".to_string(), 4.0));
    mm.reset();
    assert!(mm.compute().iter().all(|(_, v)| v.is_nan()));
    acc.reset();
    assert!(acc.compute().is_nan());
}
