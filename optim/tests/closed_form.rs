//! Transformations and optimizers not covered by `tests/reference/optax.json`, each checked
//! step by step (f64) against a naive scalar loop transcribing Optax's update rule: the
//! Adam family (adamax, amsgrad, adabelief, yogi, radam, nadam), centered RMSProp, SM3,
//! NovoGrad, AdaDelta, `ema`, clipping, constraints, `centralize`, LARS, Fromage,
//! `lookahead`, `reduce_on_plateau`, `add_noise`, the `mu_dtype` option of Adam, and the
//! schedule-free optimizers (Optax's `contrib.schedule_free`).

use ferrax_core::tree::{self, Path, PathElem};
use ferrax_core::{bf16, Array, DType};
use ferrax_optim::*;

/// Relative tolerance against the f64 oracles: both sides compute in f64, in slightly
/// different orders.
const TOL: f64 = 1e-12;

/// A deterministic gradient that depends on the step and on the parameters.
fn grad_at(t: usize, p: &[f64]) -> Vec<f64> {
    p.iter()
        .enumerate()
        .map(|(i, &x)| (1.3 * i as f64 + 0.7 * t as f64).sin() * (1.0 + 0.5 * i as f64) + 0.3 * x)
        .collect()
}

fn p0(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.37 * i as f64).collect()
}

/// Runs `tx` for `steps` steps on one f64 leaf of `shape` and compares each update with
/// `oracle(t, g, p)`.
fn check(
    name: &str,
    tx: &Transform,
    shape: &[usize],
    steps: usize,
    oracle: impl FnMut(usize, &[f64], &[f64]) -> Vec<f64>,
) {
    check_tol(name, tx, shape, steps, TOL, oracle);
}

fn check_tol(
    name: &str,
    tx: &Transform,
    shape: &[usize],
    steps: usize,
    tol: f64,
    mut oracle: impl FnMut(usize, &[f64], &[f64]) -> Vec<f64>,
) -> OptState {
    let n: usize = shape.iter().product();
    let mut p = p0(n);
    let mut pa = Array::from_vec(shape.to_vec(), p.clone()).unwrap();
    let mut state = tx.init(&pa).unwrap();
    for t in 0..steps {
        let g = grad_at(t, &p);
        let ga = Array::from_vec(shape.to_vec(), g.clone()).unwrap();
        let u = tx.update(&ga, &mut state, Some(&pa)).unwrap();
        let got = u.to_vec::<f64>().unwrap();
        let want = oracle(t, &g, &p);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= tol * b.abs().max(1.0),
                "{name} step {t} [{i}]: {a} vs oracle {b}"
            );
        }
        for (x, d) in p.iter_mut().zip(&got) {
            *x += d;
        }
        pa = apply_updates(&pa, &u).unwrap();
    }
    state
}

fn bc(m: f64, decay: f64, t: usize) -> f64 {
    m / (1.0 - decay.powi(t as i32))
}

#[test]
fn adam_family_matches_naive_loops() {
    let (b1, b2, eps, lr) = (0.9, 0.999, 1e-8, 0.1);
    let n = 5;
    // AdaMax: nu = max(b2 nu, |g| + eps); u = -lr * mu_hat / nu.
    let (mut mu, mut nu) = (vec![0.0; n], vec![0.0; n]);
    check("adamax", &adamax(lr, b1, b2, eps), &[n], 6, |t, g, _| {
        (0..n)
            .map(|i| {
                mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                nu[i] = f64::max(b2 * nu[i], g[i].abs() + eps);
                -lr * bc(mu[i], b1, t + 1) / nu[i]
            })
            .collect()
    });
    // AMSGrad: the running max of the bias-corrected second moment.
    let (mut mu, mut nu, mut nmax) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    check(
        "amsgrad",
        &amsgrad(lr, b1, b2, eps, 0.0),
        &[n],
        6,
        |t, g, _| {
            (0..n)
                .map(|i| {
                    mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                    nu[i] = (1.0 - b2) * g[i] * g[i] + b2 * nu[i];
                    nmax[i] = f64::max(nmax[i], bc(nu[i], b2, t + 1));
                    -lr * bc(mu[i], b1, t + 1) / (nmax[i].sqrt() + eps)
                })
                .collect()
        },
    );
    // AdaBelief: second moment of (g - previous mu), plus eps_root.
    let (e, er) = (1e-16, 1e-16);
    let (mut mu, mut nu) = (vec![0.0; n], vec![0.0; n]);
    check(
        "adabelief",
        &adabelief(lr, b1, b2, e, er),
        &[n],
        6,
        |t, g, _| {
            (0..n)
                .map(|i| {
                    let err = g[i] - mu[i];
                    mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                    nu[i] = (1.0 - b2) * err * err + b2 * nu[i] + er;
                    -lr * bc(mu[i], b1, t + 1) / (bc(nu[i], b2, t + 1).sqrt() + e)
                })
                .collect()
        },
    );
    // Yogi: nu -= (1 - b2) sign(nu - g^2) g^2, accumulators start at 1e-6.
    let (mut mu, mut nu) = (vec![1e-6; n], vec![1e-6; n]);
    check("yogi", &yogi(lr, b1, b2, 1e-3), &[n], 6, |t, g, _| {
        (0..n)
            .map(|i| {
                let g2 = g[i] * g[i];
                mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                nu[i] -= (1.0 - b2) * (nu[i] - g2).signum() * g2;
                -lr * bc(mu[i], b1, t + 1) / (bc(nu[i], b2, t + 1).sqrt() + 1e-3)
            })
            .collect()
    });
    // RAdam: momentum only while rho_t < 5 (the first 5 steps here), rectified after.
    let ro_inf = 2.0 / (1.0 - b2) - 1.0;
    let (mut mu, mut nu) = (vec![0.0; n], vec![0.0; n]);
    let mut rectified = 0;
    check(
        "radam",
        &radam(lr, b1, b2, eps, 0.0, 5.0),
        &[n],
        9,
        |t, g, _| {
            let c = (t + 1) as f64;
            let b2t = b2.powf(c);
            let ro = ro_inf - 2.0 * c * b2t / (1.0 - b2t);
            if ro >= 5.0 {
                rectified += 1;
            }
            (0..n)
                .map(|i| {
                    mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                    nu[i] = (1.0 - b2) * g[i] * g[i] + b2 * nu[i];
                    let m_hat = bc(mu[i], b1, t + 1);
                    if ro >= 5.0 {
                        let r = ((ro - 4.0) * (ro - 2.0) * ro_inf
                            / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro))
                            .sqrt();
                        -lr * r * m_hat / (bc(nu[i], b2, t + 1).sqrt() + eps)
                    } else {
                        -lr * m_hat
                    }
                })
                .collect()
        },
    );
    assert!(rectified > 0 && rectified < 9, "both RAdam branches ran");
    // NAdam: b1 * mu / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t).
    let (mut mu, mut nu) = (vec![0.0; n], vec![0.0; n]);
    check("nadam", &nadam(lr), &[n], 6, |t, g, _| {
        (0..n)
            .map(|i| {
                mu[i] = (1.0 - b1) * g[i] + b1 * mu[i];
                nu[i] = (1.0 - b2) * g[i] * g[i] + b2 * nu[i];
                let m_hat = b1 * bc(mu[i], b1, t + 2) + (1.0 - b1) * bc(g[i], b1, t + 1);
                -lr * m_hat / (bc(nu[i], b2, t + 1).sqrt() + eps)
            })
            .collect()
    });
}

#[test]
fn rms_family_adadelta_and_ema_match_naive_loops() {
    let n = 5;
    // Centered RMSProp with Nesterov momentum after the learning rate (Optax's order).
    let (d, eps, lr, m) = (0.9, 1e-8, 0.01, 0.5);
    let (mut mu, mut nu, mut tr) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let tx = rmsprop(lr, RmsConfig::default(), true, Some(m), true);
    check("rmsprop centered", &tx, &[n], 6, |_, g, _| {
        (0..n)
            .map(|i| {
                mu[i] = (1.0 - d) * g[i] + d * mu[i];
                nu[i] = (1.0 - d) * g[i] * g[i] + d * nu[i];
                let s = -lr * g[i] / (nu[i] - mu[i] * mu[i] + eps).sqrt();
                tr[i] = s + m * tr[i];
                s + m * tr[i]
            })
            .collect()
    });
    // Bias-corrected, eps outside the root.
    // initial_scale 1 keeps the variance away from 0 (at step 1 without it, nu_hat - mu_hat^2
    // is a cancellation to 0 whose sign is rounding noise).
    let cfg = RmsConfig {
        decay: 0.8,
        eps: 1e-3,
        initial_scale: 1.0,
        eps_in_sqrt: false,
        bias_correction: true,
    };
    let (mut mu, mut nu) = (vec![0.0; n], vec![1.0; n]);
    check(
        "scale_by_stddev",
        &scale_by_stddev(cfg),
        &[n],
        6,
        |t, g, _| {
            (0..n)
                .map(|i| {
                    mu[i] = 0.2 * g[i] + 0.8 * mu[i];
                    nu[i] = 0.2 * g[i] * g[i] + 0.8 * nu[i];
                    let (mh, nh) = (bc(mu[i], 0.8, t + 1), bc(nu[i], 0.8, t + 1));
                    g[i] / ((nh - mh * mh).sqrt() + 1e-3)
                })
                .collect()
        },
    );
    // AdaDelta with weight decay: u = -lr sqrt(e_x + eps) / sqrt(e_g + eps) * (g + wd p).
    let (rho, eps, wd) = (0.9, 1e-6, 0.1);
    let (mut eg, mut ex) = (vec![0.0; n], vec![0.0; n]);
    check(
        "adadelta",
        &adadelta(1.0, rho, eps, wd, None),
        &[n],
        6,
        |_, g, p| {
            (0..n)
                .map(|i| {
                    let gi = g[i] + wd * p[i];
                    eg[i] = (1.0 - rho) * gi * gi + rho * eg[i];
                    let dx = (ex[i] + eps).sqrt() / (eg[i] + eps).sqrt() * gi;
                    ex[i] = (1.0 - rho) * dx * dx + rho * ex[i];
                    -dx
                })
                .collect()
        },
    );
    // Debiased EMA.
    let mut e = vec![0.0; n];
    check("ema", &ema(0.7, true), &[n], 5, |t, g, _| {
        (0..n)
            .map(|i| {
                e[i] = 0.3 * g[i] + 0.7 * e[i];
                bc(e[i], 0.7, t + 1)
            })
            .collect()
    });
}

#[test]
fn sm3_and_novograd_match_naive_loops() {
    // SM3 on a 2x3 leaf: one accumulator per row and per column.
    let (rows, cols, b1, lr) = (2, 3, 0.9, 0.1);
    let (mut r_acc, mut c_acc, mut nu) = (vec![0.0; rows], vec![0.0; cols], vec![0.0; 6]);
    check("sm3", &sm3(lr, b1), &[rows, cols], 5, |_, g, _| {
        let mut acc = [0.0; 6];
        for i in 0..rows {
            for j in 0..cols {
                acc[i * cols + j] = g[i * cols + j].powi(2) + f64::min(r_acc[i], c_acc[j]);
            }
        }
        let out = (0..6)
            .map(|k| {
                let inv = if acc[k] > 0.0 {
                    1.0 / (acc[k] + 1e-8).sqrt()
                } else {
                    0.0
                };
                nu[k] = (1.0 - b1) * g[k] * inv + b1 * nu[k];
                -lr * nu[k]
            })
            .collect();
        for i in 0..rows {
            r_acc[i] = (0..cols)
                .map(|j| acc[i * cols + j])
                .fold(f64::MIN, f64::max);
        }
        for j in 0..cols {
            c_acc[j] = (0..rows)
                .map(|i| acc[i * cols + j])
                .fold(f64::MIN, f64::max);
        }
        out
    });
    // NovoGrad: one second moment per leaf (its squared norm), decoupled weight decay.
    let (b1, b2, eps, wd, lr) = (0.9, 0.25, 1e-6, 0.01, 0.05);
    let n = 5;
    let (mut mu, mut nu) = (vec![0.0; n], 0.0);
    check(
        "novograd",
        &novograd(lr, b1, b2, eps, 0.0, wd),
        &[n],
        5,
        |t, g, p| {
            let sq: f64 = g.iter().map(|x| x * x).sum();
            nu = if t == 0 {
                sq
            } else {
                (1.0 - b2) * sq + b2 * nu
            };
            (0..n)
                .map(|i| {
                    let add = g[i] / (nu.sqrt() + eps) + wd * p[i];
                    mu[i] = if t == 0 { add } else { b1 * mu[i] + add };
                    -lr * mu[i]
                })
                .collect()
        },
    );
}

#[test]
fn clipping_constraints_and_trust_ratios_match_naive_loops() {
    let n = 5;
    check("clip", &clip(0.4), &[n], 3, |_, g, _| {
        g.iter().map(|x| x.clamp(-0.4, 0.4)).collect()
    });
    check(
        "clip_by_block_rms",
        &clip_by_block_rms(0.3),
        &[n],
        3,
        |_, g, _| {
            let rms = (g.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
            g.iter().map(|x| x / f64::max(1.0, rms / 0.3)).collect()
        },
    );
    // Adaptive clipping on a 2x3 matrix: unit-wise (per column, axis 0) norms.
    let agc = adaptive_grad_clip(0.5, 1e-3);
    check("adaptive_grad_clip", &agc, &[2, 3], 4, |_, g, p| {
        let col = |x: &[f64], j: usize| (x[j] * x[j] + x[3 + j] * x[3 + j]).sqrt();
        (0..6)
            .map(|k| {
                let j = k % 3;
                let max_norm = 0.5 * f64::max(col(p, j), 1e-3);
                let gn = col(g, j);
                if gn < max_norm {
                    g[k]
                } else {
                    g[k] * max_norm / f64::max(gn, 1e-6)
                }
            })
            .collect()
    });
    // Gradient centralization: minus the mean over every axis but the first.
    check("centralize", &centralize(), &[2, 3], 2, |_, g, _| {
        (0..6)
            .map(|k| {
                let r = k / 3;
                g[k] - (g[3 * r] + g[3 * r + 1] + g[3 * r + 2]) / 3.0
            })
            .collect()
    });
    // Non-negativity: an update that would cross 0 becomes -p.
    let tx = chain([scale(-3.0), keep_params_nonnegative()]);
    let mut crossed = 0;
    check("keep_params_nonnegative", &tx, &[n], 3, |_, g, p| {
        (0..n)
            .map(|i| {
                let u = -3.0 * g[i];
                if p[i] + u < 0.0 {
                    crossed += 1;
                    -p[i]
                } else {
                    u
                }
            })
            .collect()
    });
    assert!(crossed > 0);
    // LARS: weight decay, trust ratio ||p|| / ||u|| * coefficient, lr, then momentum.
    let (wd, tc, lr, m) = (1e-2, 1e-3, 0.5, 0.9);
    let mut tr = vec![0.0; n];
    let tx = lars(lr, wd, None, tc, 0.0, None, m, false);
    check("lars", &tx, &[n], 5, |_, g, p| {
        let d: Vec<f64> = (0..n).map(|i| g[i] + wd * p[i]).collect();
        let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        let dn = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        let ratio = tc * pn / dn;
        (0..n)
            .map(|i| {
                tr[i] = -lr * ratio * d[i] + m * tr[i];
                tr[i]
            })
            .collect()
    });
    // Fromage: u = -lr/sqrt(1+lr^2) * ||p||/||g|| * g + (1/sqrt(1+lr^2) - 1) p.
    let lr = 0.1;
    let mult = 1.0 / (1.0f64 + lr * lr).sqrt();
    check("fromage", &fromage(lr, 1e-6), &[n], 4, |_, g, p| {
        let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        let gn = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        (0..n)
            .map(|i| -lr * mult * g[i] * pn / gn + (mult - 1.0) * p[i])
            .collect()
    });
}

#[test]
fn trust_ratio_is_one_for_zero_parameters() {
    let tx = scale_by_trust_ratio(0.0, 1.0, 0.0);
    let p = Array::zeros(&[3], DType::F64);
    let g = Array::from_vec(vec![3], vec![1.0, -2.0, 0.5]).unwrap();
    let mut s = tx.init(&p).unwrap();
    let u = tx.update(&g, &mut s, Some(&p)).unwrap();
    assert!(u.bit_eq(&g));
}

#[test]
fn lookahead_matches_a_naive_loop() {
    // Fast SGD steps; every 3 steps the parameters move to slow + 0.5 (fast - slow).
    let (n, lr, k, alpha) = (4, 0.1, 3, 0.5);
    let mut slow = p0(n);
    let tx = lookahead(sgd(lr), k, alpha);
    check("lookahead", &tx, &[n], 8, |t, g, p| {
        let fast: Vec<f64> = (0..n).map(|i| p[i] - lr * g[i]).collect();
        if (t + 1) % k as usize == 0 {
            for i in 0..n {
                slow[i] += alpha * (fast[i] - slow[i]);
            }
            (0..n).map(|i| slow[i] - p[i]).collect()
        } else {
            (0..n).map(|i| fast[i] - p[i]).collect()
        }
    });
}

#[test]
fn reduce_on_plateau_matches_optax_logic() {
    let cfg = PlateauConfig {
        factor: 0.5,
        patience: 2,
        rtol: 0.0,
        atol: 0.0,
        cooldown: 1,
        accumulation_size: 2,
        min_scale: 0.1,
    };
    let tx = reduce_on_plateau(cfg);
    let g = Array::from_vec(vec![2], vec![1.0f32, -2.0]).unwrap();
    let mut s = tx.init(&g).unwrap();
    let losses = [
        1.0, 1.0, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.7, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
        0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
    ];
    // Optax's `reduce_on_plateau` as a scalar loop.
    let (mut best, mut plateau, mut scale, mut cool, mut count, mut avg) =
        (f64::INFINITY, 0, 1.0f64, 0, 0, 0.0f64);
    let mut scales = Vec::new();
    for &v in &losses {
        let value = Array::scalar(v as f32);
        let u = tx
            .update_with_value(&g, &mut s, None, Some(&value))
            .unwrap();
        let nc = count + 1;
        avg = (count as f64 * avg + v) / nc as f64;
        count = nc;
        if count == cfg.accumulation_size {
            let improved = avg < (1.0 - cfg.rtol) * best - cfg.atol;
            if improved {
                best = avg;
            }
            let curr = if improved { 0 } else { plateau + 1 };
            if cool > 0 {
                plateau = 0;
                cool -= 1;
            } else {
                let hit = curr == cfg.patience;
                plateau = if hit { 0 } else { curr };
                if hit {
                    scale = f64::max(scale * cfg.factor, cfg.min_scale);
                    cool = cfg.cooldown;
                }
            }
            count = 0;
            avg = 0.0;
        }
        scales.push(scale);
        let got = u.to_vec::<f32>().unwrap();
        assert!(
            (got[0] as f64 - scale).abs() < 1e-6,
            "{got:?} vs scale {scale}"
        );
        assert!((got[1] as f64 + 2.0 * scale).abs() < 1e-6);
    }
    assert_eq!(
        *scales.last().unwrap(),
        0.125,
        "reduced twice then clamped: {scales:?}"
    );
    assert!(scales.contains(&0.5) && scales.contains(&0.25));
    // Without the loss value it is an error, not a panic.
    assert!(tx.update(&g, &mut s, None).is_err());
}

#[test]
fn add_noise_has_the_annealed_variance_and_is_reproducible() {
    // Zero gradients: the update is pure noise with variance eta / t^gamma at step t.
    let (eta, gamma, n) = (0.5, 0.55, 40_000);
    let g = Array::zeros(&[n], DType::F32);
    let tx = add_noise(eta, gamma, 7);
    let mut s = tx.init(&g).unwrap();
    let mut first = None;
    for t in 1..=4 {
        let u = tx
            .update(&g, &mut s, None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mean = u.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = u.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let want = eta / (t as f64).powf(gamma);
        // 40k samples: the sample variance is within ~1.5% (2 sigma) of the true one.
        assert!(
            (var / want - 1.0).abs() < 0.03,
            "step {t}: var {var} vs {want}"
        );
        assert!(
            mean.abs() < 4.0 * (want / n as f64).sqrt(),
            "step {t}: mean {mean}"
        );
        if t == 1 {
            first = Some(u);
        }
    }
    let mut s2 = tx.init(&g).unwrap();
    let again = tx
        .update(&g, &mut s2, None)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(Some(again), first, "same seed, same noise");
}

#[test]
fn adam_mu_dtype_stores_the_first_moment_in_bf16() {
    let (b1, b2, eps, lr) = (0.9, 0.999, 1e-8, 0.1);
    let cfg = AdamConfig {
        mu_dtype: Some(DType::BF16),
        ..AdamConfig::default()
    };
    let tx = adam_with(lr, cfg);
    let n = 6;
    let mut p: Vec<f32> = p0(n).iter().map(|&x| x as f32).collect();
    let mut pa = Array::from_vec(vec![n], p.clone()).unwrap();
    let mut s = tx.init(&pa).unwrap();
    let avals0 = tree::avals_with_paths(&s);
    let mu_of = |s: &OptState| s.find("mu").unwrap().as_leaves().unwrap()[0].clone();
    assert_eq!(mu_of(&s).dtype(), DType::BF16);
    // Oracle: Optax computes `b1 * mu` in bf16 (b1 rounded to bf16), the rest in f32,
    // uses the unrounded moment for this step's update and stores it rounded to bf16.
    let b1_bf = bf16::from_f64(b1).to_f64();
    let (mut mu, mut nu) = (vec![0.0f64; n], vec![0.0f64; n]);
    let plain = adam(lr);
    let mut sp = plain.init(&pa).unwrap();
    let mut max_diff_plain = 0.0f64;
    for t in 0..6 {
        let g: Vec<f32> = grad_at(t, &p.iter().map(|&x| x as f64).collect::<Vec<_>>())
            .iter()
            .map(|&x| x as f32)
            .collect();
        let ga = Array::from_vec(vec![n], g.clone()).unwrap();
        let u = tx.update(&ga, &mut s, Some(&pa)).unwrap();
        assert_eq!(u.dtype(), DType::F32);
        assert_eq!(tree::avals_with_paths(&s), avals0, "state avals stable");
        let got = u.to_vec::<f32>().unwrap();
        let up = plain
            .update(&ga, &mut sp, Some(&pa))
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let stored = mu_of(&s).to_vec::<bf16>().unwrap();
        for i in 0..n {
            let gi = g[i] as f64;
            let scaled = bf16::from_f64(b1_bf * mu[i]).to_f64();
            let m = (1.0 - b1) * gi + scaled;
            nu[i] = (1.0 - b2) * gi * gi + b2 * nu[i];
            let want = -lr * bc(m, b1, t + 1) / (bc(nu[i], b2, t + 1).sqrt() + eps);
            // f32 Adam is ~3e-5 off exact arithmetic in the first steps (1 - b2^t cancels
            // in f32, as in Optax); the bf16 rounding of `b1 * mu` is ~2e-3 of that term.
            assert!(
                (got[i] as f64 - want).abs() <= 1e-4 * want.abs().max(1e-3),
                "step {t} [{i}]: {} vs {want}",
                got[i]
            );
            mu[i] = bf16::from_f64(m).to_f64();
            assert_eq!(stored[i].to_f64(), mu[i], "step {t} [{i}]: stored mu");
            max_diff_plain = max_diff_plain.max((got[i] - up[i]).abs() as f64);
        }
        pa = apply_updates(&pa, &u).unwrap();
        p = pa.to_vec::<f32>().unwrap();
    }
    // bf16 storage changes the result, but only slightly.
    assert!(
        max_diff_plain > 0.0 && max_diff_plain < 5e-3,
        "{max_diff_plain}"
    );
    // A mu_dtype wider than the gradients (f32 moment for bf16 leaves, with Nesterov): the
    // updates keep the gradients' dtype and follow f32 NAdam on the same bf16 inputs.
    let nest = AdamConfig {
        nesterov: true,
        mu_dtype: Some(DType::F32),
        ..AdamConfig::default()
    };
    let (wide, f32_nadam) = (
        scale_by_adam(nest),
        scale_by_adam(AdamConfig {
            mu_dtype: None,
            ..nest
        }),
    );
    let to = |a: &Array, dt| ferrax_core::prim::convert::convert(a, dt).unwrap();
    let pb = to(&pa, DType::BF16);
    let (mut sw, mut sf) = (
        wide.init(&pb).unwrap(),
        f32_nadam.init(&to(&pb, DType::F32)).unwrap(),
    );
    let avals_w = tree::avals_with_paths(&sw);
    assert_eq!(mu_of(&sw).dtype(), DType::F32);
    for t in 0..3 {
        let g = Array::from_vec(vec![n], grad_at(t, &p0(n))).unwrap();
        let gb = to(&g, DType::BF16);
        let uw = wide.update(&gb, &mut sw, None).unwrap();
        let uf = f32_nadam
            .update(&to(&gb, DType::F32), &mut sf, None)
            .unwrap();
        assert_eq!(uw.dtype(), DType::BF16);
        assert_eq!(tree::avals_with_paths(&sw), avals_w);
        // The only differences: nu is kept in bf16, and the update is rounded to bf16.
        let (a, b) = (
            to(&uw, DType::F32).to_vec::<f32>().unwrap(),
            uf.to_vec::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 2e-2 * y.abs().max(1e-2),
                "step {t}: {x} vs {y}"
            );
        }
    }
    // A non-float mu_dtype is an error naming the transformation.
    let bad = scale_by_adam(AdamConfig {
        mu_dtype: Some(DType::I32),
        ..AdamConfig::default()
    });
    let e = bad.init(&pa).unwrap_err().to_string();
    assert!(e.contains("scale_by_adam") && e.contains("mu_dtype"), "{e}");
}

#[test]
fn multi_steps_state_does_not_grow_with_k() {
    // One running mean per leaf whatever the number of micro-steps.
    let p = (
        Array::zeros(&[3, 2], DType::F32),
        Array::zeros(&[4], DType::F32),
    );
    let inner = tree::leaf_count(&adam(0.1).init(&p).unwrap());
    for k in [2, 8, 64] {
        let s = multi_steps(adam(0.1), k).init(&p).unwrap();
        assert_eq!(tree::leaf_count(&s), inner + 2 + 2, "k = {k}");
    }
    let _ = Path(vec![PathElem::Index(0)]);
}

/// Schedule-free state of the oracle: the average weights, `z` and the evaluation point.
struct SfOracle {
    b1: f64,
    weight_sum: f32,
    max_lr: f32,
    step: i32,
    z: Vec<f64>,
    x: Vec<f64>,
}

impl SfOracle {
    fn new(b1: f64, n: usize) -> Self {
        SfOracle {
            b1,
            weight_sum: 0.0,
            max_lr: 0.0,
            step: 1,
            z: p0(n),
            x: Vec::new(),
        }
    }
    /// One step given the base optimizer's update `bu` of `z` and the schedule `lr`
    /// (evaluated in f32 on the wrapper's count, which starts at 1, as Optax).
    fn step(&mut self, y: &[f64], bu: &[f64], lr: impl Fn(i32) -> f64) -> Vec<f64> {
        let b1 = self.b1;
        self.max_lr = self.max_lr.max(lr(self.step) as f32);
        let w = self.max_lr * self.max_lr;
        let total = self.weight_sum + w;
        let ck = if total == 0.0 {
            0.0
        } else {
            (w / total) as f64
        };
        let mut out = Vec::new();
        self.x.clear();
        for i in 0..y.len() {
            let zn = self.z[i] + bu[i];
            let prev_x = (y[i] - (1.0 - b1) * self.z[i]) / b1;
            let x = (1.0 - ck) * prev_x + ck * zn;
            out.push(b1 * x + (1.0 - b1) * zn - y[i]);
            self.z[i] = zn;
            self.x.push(x);
        }
        self.weight_sum = total;
        self.step += 1;
        out
    }
}

#[test]
fn schedule_free_optimizers_match_naive_loops() {
    let n = 5;
    // SGD with a 3-step warmup and weight decay (applied at y, inside the base optimizer).
    let (lr, b1, wd) = (0.5, 0.9, 0.01);
    let sched = move |c: i32| lr * (c.min(3) as f64 / 3.0);
    let tx = schedule_free_sgd(lr, Some(3), b1, Some(wd)).unwrap();
    let mut o = SfOracle::new(b1, n);
    let mut base_count = 0;
    // The weights are f32 in Optax (the learning rate is evaluated in f32), hence 1e-6.
    let state = check_tol("schedule_free_sgd", &tx, &[n], 8, 1e-6, |_, g, y| {
        let blr = sched(base_count);
        base_count += 1;
        let bu: Vec<f64> = (0..n).map(|i| -blr * (g[i] + wd * y[i])).collect();
        o.step(y, &bu, sched)
    });
    // The evaluation point is the running average x.
    let y_last: Vec<f64> = (0..n)
        .map(|i| o.b1 * o.x[i] + (1.0 - o.b1) * o.z[i])
        .collect();
    let ya = Array::from_vec(vec![n], y_last).unwrap();
    let x = schedule_free_eval_params(&state, &ya)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for (a, b) in x.iter().zip(&o.x) {
        // b1 is held in the state as f32, as Optax does.
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "eval params {a} vs {b}"
        );
    }
    // AdamW without momentum: bias-corrected RMS scaling, decoupled decay, constant lr.
    let (lr, b2, eps, wd) = (0.05, 0.999, 1e-8, 1e-3);
    let tx = schedule_free_adamw(lr, None, b1, b2, eps, wd).unwrap();
    let mut o = SfOracle::new(b1, n);
    let mut nu = vec![0.0; n];
    check_tol("schedule_free_adamw", &tx, &[n], 8, 1e-6, |t, g, y| {
        let bu: Vec<f64> = (0..n)
            .map(|i| {
                nu[i] = (1.0 - b2) * g[i] * g[i] + b2 * nu[i];
                let s = g[i] / (bc(nu[i], b2, t + 1).sqrt() + eps) + wd * y[i];
                -lr * s
            })
            .collect();
        o.step(y, &bu, |_| lr)
    });
    // b1 = 0 is rejected at init, and the eval point needs a schedule-free state.
    let p = Array::zeros(&[2], DType::F64);
    assert!(schedule_free_sgd(0.1, None, 0.0, None)
        .unwrap()
        .init(&p)
        .is_err());
    let e = schedule_free_eval_params(&adam(0.1).init(&p).unwrap(), &p).unwrap_err();
    assert!(e.to_string().contains("schedule_free"), "{e}");
}
