//! The schedules not in `tests/reference/optax.json` (constant, polynomial, piecewise
//! interpolation, the one-cycle policies, join, warmup + exponential decay, SGDR), every
//! loss (untyped and typed) and the tree helpers, each against closed forms in f64.

use ferrax_core::{Array, DType, Dyn, Tensor, C};
use ferrax_optim::loss;
use ferrax_optim::schedule::*;
use ferrax_optim::tree_utils::*;
use std::f64::consts::PI;

/// Schedules divide the integer count in f32 where JAX does, even in f64 mode.
const STOL: f64 = 1e-6;

fn check_schedule(name: &str, s: &Schedule, steps: std::ops::Range<i32>, f: impl Fn(f64) -> f64) {
    for t in steps {
        let want = f(t as f64);
        let got = s.value(t).unwrap();
        assert!(
            (got - want).abs() <= STOL * want.abs().max(1e-3),
            "{name} at step {t}: {got} vs {want}"
        );
        let got32 = s.value_f32(t).unwrap() as f64;
        assert!(
            (got32 - want).abs() <= 1e-5 * want.abs().max(1e-3),
            "{name} (f32) at step {t}: {got32} vs {want}"
        );
    }
}

#[test]
fn schedules_match_closed_forms() {
    check_schedule("constant", &constant_schedule(0.3), 0..5, |_| 0.3);
    // (init - end) (1 - (t - begin)/T)^2 + end, flat before `begin` and after `begin + T`.
    let poly = polynomial_schedule(1.0, 0.1, 2.0, 10, 3);
    check_schedule("polynomial", &poly, 0..16, |t| {
        let c = (t - 3.0).clamp(0.0, 10.0);
        0.9 * (1.0 - c / 10.0).powi(2) + 0.1
    });
    // Piecewise interpolation between the cumulative products 1, 0.5, 0.05 at 0, 4, 10.
    let bs = [(4, 0.5), (10, 0.1)];
    let knots = [(0.0, 1.0), (4.0, 0.5), (10.0, 0.05)];
    let interp = |t: f64, cosine: bool| {
        if t >= 10.0 {
            return 0.05;
        }
        let k = if t < 4.0 { 0 } else { 1 };
        let ((a, va), (b, vb)) = (knots[k], knots[k + 1]);
        let pct = (t - a) / (b - a);
        if cosine {
            vb + (va - vb) / 2.0 * (1.0 + (PI * pct).cos())
        } else {
            va + pct * (vb - va)
        }
    };
    let lin = piecewise_interpolate_schedule(Interpolation::Linear, 1.0, &bs).unwrap();
    check_schedule("piecewise linear", &lin, 0..13, |t| interp(t, false));
    let cos = piecewise_interpolate_schedule(Interpolation::Cosine, 1.0, &bs).unwrap();
    check_schedule("piecewise cosine", &cos, 0..13, |t| interp(t, true));
    // Cosine one-cycle over 20 steps: peak/25 -> peak at step 6 -> peak/(25 * 1e4) at 20.
    let oc = cosine_onecycle_schedule(20, 2.0, 0.3, 25.0, 1e4).unwrap();
    let (lo, hi, end) = (2.0 / 25.0, 2.0, 2.0 / 25.0 / 1e4);
    let half_cos = |a: f64, b: f64, pct: f64| b + (a - b) / 2.0 * (1.0 + (PI * pct).cos());
    check_schedule("cosine_onecycle", &oc, 0..24, |t| {
        if t < 6.0 {
            half_cos(lo, hi, t / 6.0)
        } else if t < 20.0 {
            half_cos(hi, end, (t - 6.0) / 14.0)
        } else {
            end
        }
    });
    // Linear one-cycle: up until 30%, back down until 85%, then annealed until the end.
    let loc = linear_onecycle_schedule(20, 2.0, 0.3, 0.85, 25.0, 1e4).unwrap();
    let fin = lo / 1e4;
    check_schedule("linear_onecycle", &loc, 0..24, |t| {
        if t < 6.0 {
            lo + (hi - lo) * t / 6.0
        } else if t < 17.0 {
            hi + (lo - hi) * (t - 6.0) / 11.0
        } else if t < 20.0 {
            lo + (fin - lo) * (t - 17.0) / 3.0
        } else {
            fin
        }
    });
    // Join: each piece counts from its own boundary.
    let j = join_schedules(
        vec![constant_schedule(1.0), linear_schedule(1.0, 0.0, 5, 0)],
        &[3],
    )
    .unwrap();
    check_schedule("join", &j, 0..10, |t| {
        if t < 3.0 {
            1.0
        } else {
            1.0 - ((t - 3.0) / 5.0).min(1.0)
        }
    });
    // Linear warmup to the peak, then exponential decay from the peak.
    let we = warmup_exponential_decay_schedule(0.0, 1.0, 5, 10, 0.5, 0, false, Some(0.2)).unwrap();
    check_schedule("warmup_exponential_decay", &we, 0..40, |t| {
        if t < 5.0 {
            t / 5.0
        } else {
            0.5f64.powf((t - 5.0) / 10.0).max(0.2)
        }
    });
    // SGDR: two warmup-cosine cycles of 10 and 6 steps, back to back.
    let cycles = [
        CosineCycle {
            init_value: 0.0,
            peak_value: 1.0,
            warmup_steps: 2,
            decay_steps: 10,
            end_value: 0.1,
        },
        CosineCycle {
            init_value: 0.05,
            peak_value: 0.5,
            warmup_steps: 1,
            decay_steps: 6,
            end_value: 0.0,
        },
    ];
    let sgdr = sgdr_schedule(&cycles).unwrap();
    let wc = |c: &CosineCycle, t: f64| {
        let w = c.warmup_steps as f64;
        if t < w {
            c.init_value + (c.peak_value - c.init_value) * t / w
        } else {
            let d = c.decay_steps as f64 - w;
            let alpha = c.end_value / c.peak_value;
            let x = (t - w).min(d);
            c.peak_value * ((1.0 - alpha) * 0.5 * (1.0 + (PI * x / d).cos()) + alpha)
        }
    };
    check_schedule("sgdr", &sgdr, 0..20, |t| {
        if t < 10.0 {
            wc(&cycles[0], t)
        } else {
            wc(&cycles[1], t - 10.0)
        }
    });
}

fn arr(shape: &[usize], v: &[f64]) -> Array {
    Array::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}
fn vals(a: &Array) -> Vec<f64> {
    a.to_vec::<f64>().unwrap()
}
fn close(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{name}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn losses_match_closed_forms() {
    let p = [0.5, -3.0, 2.0, 0.0, 40.0, -1.5];
    let t = [0.0, 1.0, 2.5, -0.25, 0.0, -1.0];
    let (pa, ta) = (arr(&[2, 3], &p), arr(&[2, 3], &t));
    let e: Vec<f64> = p.iter().zip(&t).map(|(a, b)| a - b).collect();
    close(
        "l2_loss",
        &vals(&loss::l2_loss(&pa, Some(&ta)).unwrap()),
        &e.iter().map(|x| 0.5 * x * x).collect::<Vec<_>>(),
    );
    close(
        "l2_loss without target",
        &vals(&loss::l2_loss(&pa, None).unwrap()),
        &p.iter().map(|x| 0.5 * x * x).collect::<Vec<_>>(),
    );
    close(
        "squared_error",
        &vals(&loss::squared_error(&pa, Some(&ta)).unwrap()),
        &e.iter().map(|x| x * x).collect::<Vec<_>>(),
    );
    let huber = |x: f64, d: f64| {
        if x.abs() <= d {
            0.5 * x * x
        } else {
            d * (x.abs() - 0.5 * d)
        }
    };
    close(
        "huber_loss",
        &vals(&loss::huber_loss(&pa, Some(&ta), 1.5).unwrap()),
        &e.iter().map(|&x| huber(x, 1.5)).collect::<Vec<_>>(),
    );
    // log cosh of 40 overflows neither side of the stable form: |x| - ln 2 + log1p(e^-2|x|).
    close(
        "log_cosh",
        &vals(&loss::log_cosh(&pa, Some(&ta)).unwrap()),
        &e.iter()
            .map(|&x| {
                if x.abs() > 20.0 {
                    x.abs() - 2f64.ln()
                } else {
                    x.cosh().ln()
                }
            })
            .collect::<Vec<_>>(),
    );
    // Cross entropy with soft labels and with integer labels (one out of range).
    let lse = |r: &[f64]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
    let soft = [0.2, 0.3, 0.5, 1.0, 0.0, 0.0];
    let want: Vec<f64> = (0..2)
        .map(|b| {
            let r = &p[3 * b..3 * b + 3];
            -(0..3)
                .map(|k| soft[3 * b + k] * (r[k] - lse(r)))
                .sum::<f64>()
        })
        .collect();
    close(
        "softmax_cross_entropy",
        &vals(&loss::softmax_cross_entropy(&pa, &arr(&[2, 3], &soft)).unwrap()),
        &want,
    );
    let labels = Array::from_vec(vec![2], vec![1i32, 7]).unwrap();
    close(
        "softmax_cross_entropy_with_integer_labels",
        &vals(&loss::softmax_cross_entropy_with_integer_labels(&pa, &labels).unwrap()),
        &[lse(&p[..3]) - p[1], lse(&p[3..])],
    );
    let y = [1.0, 0.0, 0.5, 1.0, 0.0, 1.0];
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    close(
        "sigmoid_binary_cross_entropy",
        &vals(&loss::sigmoid_binary_cross_entropy(&pa, &arr(&[2, 3], &y)).unwrap()),
        &p.iter()
            .zip(&y)
            .map(|(&x, &l)| {
                // -log(1 - sigmoid(40)) = 40 + log1p(e^-40), not representable via sig().
                if x > 30.0 {
                    -l * sig(x).ln() + (1.0 - l) * (x + (-x).exp().ln_1p())
                } else {
                    -l * sig(x).ln() - (1.0 - l) * (1.0 - sig(x)).ln()
                }
            })
            .collect::<Vec<_>>(),
    );
    let signs = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0];
    close(
        "hinge_loss",
        &vals(&loss::hinge_loss(&pa, &arr(&[2, 3], &signs)).unwrap()),
        &p.iter()
            .zip(&signs)
            .map(|(x, s)| f64::max(0.0, 1.0 - x * s))
            .collect::<Vec<_>>(),
    );
    // KL(targets || predictions) with a zero target.
    let q: [f64; 6] = [0.1, 0.2, 0.7, 0.5, 0.5, 0.0];
    let logp = [0.3f64, 0.3, 0.4, 0.2, 0.2, 0.6].map(f64::ln);
    let kl: Vec<f64> = (0..2)
        .map(|b| {
            (0..3)
                .map(|k| {
                    let (qi, lp) = (q[3 * b + k], logp[3 * b + k]);
                    if qi == 0.0 {
                        0.0
                    } else {
                        qi * (qi.ln() - lp)
                    }
                })
                .sum()
        })
        .collect();
    close(
        "kl_divergence",
        &vals(&loss::kl_divergence(&arr(&[2, 3], &logp), &arr(&[2, 3], &q)).unwrap()),
        &kl,
    );
    let cosv: Vec<f64> = (0..2)
        .map(|b| {
            let (x, z) = (&p[3 * b..3 * b + 3], &t[3 * b..3 * b + 3]);
            let dot: f64 = x.iter().zip(z).map(|(a, c)| a * c).sum();
            let n = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            dot / (n(x) * n(z))
        })
        .collect();
    close(
        "cosine_similarity",
        &vals(&loss::cosine_similarity(&pa, &ta, 0.0).unwrap()),
        &cosv,
    );
    close(
        "cosine_distance",
        &vals(&loss::cosine_distance(&pa, &ta, 0.0).unwrap()),
        &cosv.iter().map(|c| 1.0 - c).collect::<Vec<_>>(),
    );
    // The epsilon floor: a zero vector has similarity 0, not NaN.
    let z = arr(&[1, 3], &[0.0, 0.0, 0.0]);
    close(
        "cosine_similarity of zero",
        &vals(&loss::cosine_similarity(&z, &arr(&[1, 3], &[1.0, 2.0, 3.0]), 1e-8).unwrap()),
        &[0.0],
    );
}

#[test]
fn typed_losses_carry_shapes_and_equal_the_untyped_ones() {
    use loss::typed;
    type B = (C<2>, C<3>);
    let v = [0.5f32, -3.0, 2.0, 0.0, 4.0, -1.5];
    let w = [0.0f32, 1.0, 2.5, -0.25, 0.0, -1.0];
    let (x, y) = (
        Tensor::<B>::from_vec(v.to_vec()).unwrap(),
        Tensor::<B>::from_vec(w.to_vec()).unwrap(),
    );
    let probs = Tensor::<B>::from_vec(vec![0.2, 0.3, 0.5, 1.0, 0.0, 0.0]).unwrap();
    let labels = Tensor::<(C<2>,), i32>::from_vec(vec![2, 0]).unwrap();
    let same = |name: &str, a: &Array, b: &Array| {
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert!(a.bit_eq(b), "{name}: typed and untyped differ");
    };
    // Elementwise losses keep the shape; class losses drop the last axis (checked by the
    // annotated types, which is the point of the typed API).
    let l2: Tensor<B> = typed::l2_loss(&x, Some(&y)).unwrap();
    same(
        "l2",
        l2.array(),
        &loss::l2_loss(x.array(), Some(y.array())).unwrap(),
    );
    let se: Tensor<B> = typed::squared_error(&x, None).unwrap();
    same(
        "se",
        se.array(),
        &loss::squared_error(x.array(), None).unwrap(),
    );
    let hu: Tensor<B> = typed::huber_loss(&x, Some(&y), 1.0).unwrap();
    same(
        "huber",
        hu.array(),
        &loss::huber_loss(x.array(), Some(y.array()), 1.0).unwrap(),
    );
    let lc: Tensor<B> = typed::log_cosh(&x, Some(&y)).unwrap();
    same(
        "log_cosh",
        lc.array(),
        &loss::log_cosh(x.array(), Some(y.array())).unwrap(),
    );
    let ce: Tensor<(C<2>,)> = typed::softmax_cross_entropy(&x, &probs).unwrap();
    same(
        "ce",
        ce.array(),
        &loss::softmax_cross_entropy(x.array(), probs.array()).unwrap(),
    );
    let cei: Tensor<(C<2>,)> =
        typed::softmax_cross_entropy_with_integer_labels(&x, &labels).unwrap();
    let lse = |r: &[f32]| r.iter().map(|a| (*a as f64).exp()).sum::<f64>().ln();
    let got = cei.to_vec().unwrap();
    assert!((got[0] as f64 - (lse(&v[..3]) - 2.0)).abs() < 1e-6);
    assert!((got[1] as f64 - (lse(&v[3..]) - 0.0)).abs() < 1e-6);
    let bce: Tensor<B> = typed::sigmoid_binary_cross_entropy(&x, &probs).unwrap();
    same(
        "bce",
        bce.array(),
        &loss::sigmoid_binary_cross_entropy(x.array(), probs.array()).unwrap(),
    );
    let hi: Tensor<B> = typed::hinge_loss(&x, &y).unwrap();
    same(
        "hinge",
        hi.array(),
        &loss::hinge_loss(x.array(), y.array()).unwrap(),
    );
    let kl: Tensor<(C<2>,)> = typed::kl_divergence(&x, &probs).unwrap();
    same(
        "kl",
        kl.array(),
        &loss::kl_divergence(x.array(), probs.array()).unwrap(),
    );
    let cs: Tensor<(C<2>,)> = typed::cosine_similarity(&x, &y, 1e-8).unwrap();
    let cd: Tensor<(C<2>,)> = typed::cosine_distance(&x, &y, 1e-8).unwrap();
    for (s, d) in cs.to_vec().unwrap().iter().zip(cd.to_vec().unwrap()) {
        assert!((s + d - 1.0).abs() < 1e-6);
    }
    // A rank-1 input reduces to a scalar.
    let r0: Tensor<()> =
        typed::softmax_cross_entropy(&Tensor::<(C<3>,)>::ones(), &Tensor::<(C<3>,)>::ones())
            .unwrap();
    assert!((r0.to_vec().unwrap()[0] as f64 - 3.0 * 3f64.ln()).abs() < 1e-5);
    // Dyn sizes that disagree at run time are an error naming the loss.
    let a = Tensor::<(Dyn,)>::from_array(Array::zeros(&[3], DType::F32)).unwrap();
    let b = Tensor::<(Dyn,)>::from_array(Array::zeros(&[4], DType::F32)).unwrap();
    let e = typed::l2_loss(&a, Some(&b)).unwrap_err().to_string();
    assert!(e.contains("l2_loss"), "{e}");
    let e = typed::hinge_loss(&a, &b).unwrap_err().to_string();
    assert!(e.contains("hinge_loss"), "{e}");
}

#[test]
fn tree_helpers_match_closed_forms() {
    let a = (arr(&[2], &[1.0, -2.0]), arr(&[3], &[0.5, 3.0, -1.0]));
    let b = (arr(&[2], &[4.0, 0.25]), arr(&[3], &[-2.0, 1.0, 2.0]));
    let flat = |t: &(Array, Array)| [vals(&t.0), vals(&t.1)].concat();
    let (fa, fb) = (flat(&a), flat(&b));
    let zipw = |f: &dyn Fn(f64, f64) -> f64| {
        fa.iter()
            .zip(&fb)
            .map(|(x, y)| f(*x, *y))
            .collect::<Vec<_>>()
    };
    close(
        "tree_add",
        &flat(&tree_add(&a, &b).unwrap()),
        &zipw(&|x, y| x + y),
    );
    close(
        "tree_sub",
        &flat(&tree_sub(&a, &b).unwrap()),
        &zipw(&|x, y| x - y),
    );
    close(
        "tree_scale",
        &flat(&tree_scale(-1.5, &a).unwrap()),
        &fa.iter().map(|x| -1.5 * x).collect::<Vec<_>>(),
    );
    close(
        "tree_add_scalar_mul",
        &flat(&tree_add_scalar_mul(&a, 0.5, &b).unwrap()),
        &zipw(&|x, y| x + 0.5 * y),
    );
    let dot: f64 = fa.iter().zip(&fb).map(|(x, y)| x * y).sum();
    close("tree_vdot", &vals(&tree_vdot(&a, &b).unwrap()), &[dot]);
    let ss: f64 = fa.iter().map(|x| x * x).sum();
    close(
        "tree_l2_norm squared",
        &vals(&tree_l2_norm(&a, true).unwrap()),
        &[ss],
    );
    close(
        "tree_l2_norm",
        &vals(&tree_l2_norm(&a, false).unwrap()),
        &[ss.sqrt()],
    );
    close(
        "global_norm",
        &vals(&global_norm(&a).unwrap()),
        &[ss.sqrt()],
    );
}
