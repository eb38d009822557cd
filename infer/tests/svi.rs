//! SVI against closed forms: AutoNormal on a conjugate normal-mean model (posterior mean,
//! sd and the log evidence the ELBO converges to), AutoDelta on a model with a known MAP
//! (one real and one positive site), determinism, hand-written guides, and errors.

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Gamma, Normal};
use ferrax_infer::guides::{AutoDelta, AutoNormal};
use ferrax_infer::handlers::{param, plate, sample};
use ferrax_infer::math::ArrayMath;
use ferrax_infer::svi::{Svi, TraceElbo};

const M0: f64 = 1.0; // prior mean
const S0: f64 = 2.0; // prior sd
const SIGMA: f64 = 1.5; // known observation sd

fn data() -> Vec<f64> {
    // Fixed, irregular data (no RNG) so the closed forms below are exact.
    (0..20)
        .map(|i| 0.7 + 1.3 * ((i as f64) * 1.7).sin() + 0.05 * i as f64)
        .collect()
}

fn conjugate_model(y: Vec<f64>) -> impl Fn() -> ferrax_infer::Result<()> {
    let n = y.len();
    let ya = Array::from_vec(vec![n], y).unwrap();
    move || {
        let mu = sample("mu", Normal::new(M0, S0)?, None)?;
        plate("data", n, None, |_| {
            sample("y", Normal::new(&mu, SIGMA)?, Some(ya.clone()))?;
            Ok(())
        })
    }
}

/// Posterior of the mean: Normal(mean, sd), and log p(y).
fn conjugate_posterior(y: &[f64]) -> (f64, f64, f64) {
    let n = y.len() as f64;
    let sum: f64 = y.iter().sum();
    let prec = 1.0 / (S0 * S0) + n / (SIGMA * SIGMA);
    let mean = (M0 / (S0 * S0) + sum / (SIGMA * SIGMA)) / prec;
    let sd = 1.0 / prec.sqrt();
    // log p(y) = log p(y | m) + log p(m) - log p(m | y), at any m (here the posterior mean).
    let ln = |x: f64, m: f64, s: f64| {
        -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
    };
    let log_lik: f64 = y.iter().map(|&yi| ln(yi, mean, SIGMA)).sum();
    let log_ev = log_lik + ln(mean, M0, S0) - ln(mean, mean, sd);
    (mean, sd, log_ev)
}

/// Adam whose step size decays (cosine, 0.05 -> 0.001 over 1500 steps), so the final
/// iterate is not dominated by Monte-Carlo gradient noise.
fn decaying_adam() -> ferrax_optim::Transform {
    ferrax_optim::adam(
        ferrax_optim::schedule::cosine_decay_schedule(0.05, 1500, 0.02, 1.0).unwrap(),
    )
}

fn scalar(a: &Array) -> f64 {
    a.to_vec::<f64>().unwrap()[0]
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

#[test]
fn auto_normal_recovers_conjugate_posterior() {
    let y = data();
    let (pm, psd, log_ev) = conjugate_posterior(&y);
    let mut svi = Svi::new(
        conjugate_model(y),
        AutoNormal::new(),
        decaying_adam(),
        TraceElbo::new(8),
    );
    let res = svi.run(&Key::new(7), 1500).unwrap();
    let loc = scalar(&res.params["auto_mu_loc"]);
    let scale = scalar(&res.params["auto_mu_scale"]);
    eprintln!(
        "AutoNormal: loc {loc:.4} (exact {pm:.4}), scale {scale:.4} (exact {psd:.4}); \
         last-200 mean loss {:.4} (exact -log p(y) {:.4})",
        mean(&res.losses[1300..]),
        -log_ev
    );
    // Stated tolerances: mean within 0.1 posterior sd, sd within 15%.
    assert!((loc - pm).abs() < 0.1 * psd, "loc {loc} vs {pm}");
    assert!((scale - psd).abs() < 0.15 * psd, "scale {scale} vs {psd}");
    // The guide family contains the posterior, so the optimal ELBO is log p(y).
    let tail = mean(&res.losses[1300..]);
    assert!((tail + log_ev).abs() < 0.05, "loss {tail} vs {}", -log_ev);
}

#[test]
fn elbo_decreases_and_is_deterministic() {
    let y = data();
    let run = || {
        let mut svi = Svi::new(
            conjugate_model(y.clone()),
            AutoNormal::new(),
            ferrax_optim::adam(0.05),
            TraceElbo::new(1),
        );
        svi.run(&Key::new(3), 300).unwrap()
    };
    let a = run();
    let b = run();
    assert_eq!(a.losses, b.losses, "same key, same losses");
    let first = mean(&a.losses[..20]);
    let last = mean(&a.losses[280..]);
    eprintln!("loss: first-20 mean {first:.3}, last-20 mean {last:.3}");
    assert!(
        last < first - 1.0,
        "loss did not decrease: {first} -> {last}"
    );
    assert!(a.losses.iter().all(|l| l.is_finite()));
    // A different key gives a different Monte-Carlo path.
    let mut svi = Svi::new(
        conjugate_model(y.clone()),
        AutoNormal::new(),
        ferrax_optim::adam(0.05),
        TraceElbo::new(1),
    );
    let c = svi.run(&Key::new(4), 300).unwrap();
    assert_ne!(a.losses, c.losses);
}

#[test]
fn auto_delta_finds_map() {
    // mu ~ N(0, 1), y_i ~ N(mu, 1): MAP mu = sum(y) / (n + 1).
    // s ~ Gamma(3, 2) alone: the mode (a - 1) / b = 1 (in constrained space: AutoDelta
    // maximizes the density of s, not of log s).
    let y = data();
    let n = y.len();
    let map_mu = y.iter().sum::<f64>() / (n as f64 + 1.0);
    let ya = Array::from_vec(vec![n], y).unwrap();
    let model = move || -> ferrax_infer::Result<()> {
        let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
        sample("s", Gamma::new(3.0, 2.0)?, None)?;
        plate("data", n, None, |_| {
            sample("y", Normal::new(&mu, 1.0)?, Some(ya.clone()))?;
            Ok(())
        })
    };
    let mut svi = Svi::new(
        model,
        AutoDelta::new(),
        ferrax_optim::adam(0.02),
        TraceElbo::new(1),
    );
    let res = svi.run(&Key::new(11), 1500).unwrap();
    let est = svi.guide().median(&res.params).unwrap();
    let mu = scalar(&est["mu"]);
    let s = scalar(&est["s"]);
    eprintln!("AutoDelta: mu {mu:.5} (exact {map_mu:.5}), s {s:.5} (exact 1)");
    assert!((mu - map_mu).abs() < 2e-3, "mu {mu} vs {map_mu}");
    assert!((s - 1.0).abs() < 2e-3, "s {s} vs 1");
    // A point-mass guide's loss is deterministic: it is the negative log joint, so it
    // never increases by much once converged and ends at -log p(y, MAP).
    let last = *res.losses.last().unwrap();
    assert!(last <= res.losses[0]);
}

#[test]
fn hand_written_guide_and_model_params() {
    // A closure guide with its own params; the scale is parameterized by its log.
    let y = data();
    let (pm, psd, _) = conjugate_posterior(&y);
    let guide = || -> ferrax_infer::Result<()> {
        let loc = param("q_loc", Array::scalar(0.0f64))?;
        let log_scale = param("q_log_scale", Array::scalar(-1.0f64))?;
        sample("mu", Normal::new(&loc, &log_scale.exp()?)?, None)?;
        Ok(())
    };
    let mut svi = Svi::new(
        conjugate_model(y),
        guide,
        decaying_adam(),
        TraceElbo::new(8),
    );
    let res = svi.run(&Key::new(5), 1500).unwrap();
    let loc = scalar(&res.params["q_loc"]);
    let scale = scalar(&res.params["q_log_scale"]).exp();
    eprintln!("closure guide: loc {loc:.4} (exact {pm:.4}), scale {scale:.4} (exact {psd:.4})");
    assert!((loc - pm).abs() < 0.1 * psd);
    assert!((scale - psd).abs() < 0.15 * psd);
}

#[test]
fn errors_are_reported_not_panics() {
    let model = conjugate_model(data());
    // A guide that misses the model's latent site.
    let guide = || -> ferrax_infer::Result<()> {
        param("unused", Array::scalar(0.0f64))?;
        Ok(())
    };
    let mut svi = Svi::new(model, guide, ferrax_optim::adam(0.1), TraceElbo::new(1));
    let mut state = svi.init(&Key::new(0)).unwrap();
    let e = svi.update(&mut state).unwrap_err();
    assert!(e.to_string().contains("mu"), "{e}");
    // A non-finite gradient (a huge learning rate sends the loss to inf) is an error.
    let mut svi = Svi::new(
        conjugate_model(data()),
        AutoNormal::new(),
        ferrax_optim::sgd(1e12),
        TraceElbo::new(1),
    );
    let mut state = svi.init(&Key::new(0)).unwrap();
    let mut failed = false;
    for _ in 0..20 {
        if svi.update(&mut state).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "expected a non-finite loss error");
}
