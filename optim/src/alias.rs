//! The named optimizers, each a [`chain`] of elementary transformations exactly as in
//! Optax's `alias.py` (e.g. `adam = chain(scale_by_adam, scale_by_learning_rate)`). The
//! short form takes the learning rate and uses Optax's defaults; the `_with` form takes a
//! config struct.

use crate::base::{identity, Mask, Transform};
use crate::clipping::clip_by_block_rms;
use crate::combine::{chain, masked};
use crate::transform::*;

/// Stochastic gradient descent: `-lr * g`.
pub fn sgd(lr: impl Into<LearningRate>) -> Transform {
    sgd_with(lr, None, false)
}

/// SGD with optional (Nesterov) momentum.
pub fn sgd_with(lr: impl Into<LearningRate>, momentum: Option<f64>, nesterov: bool) -> Transform {
    let m = match momentum {
        Some(d) => trace(d, nesterov),
        None => identity(),
    };
    chain([m, scale_by_learning_rate(lr)])
}

/// Noisy SGD: SGD with annealed Gaussian gradient noise (`eta = 0.01`, `gamma = 0.55`).
pub fn noisy_sgd(lr: impl Into<LearningRate>, eta: f64, gamma: f64, seed: u64) -> Transform {
    chain([add_noise(eta, gamma, seed), scale_by_learning_rate(lr)])
}

/// Adam with Optax's defaults (`b1 = 0.9, b2 = 0.999, eps = 1e-8`).
///
/// ```
/// use ferrax_optim::{adam, apply_updates};
/// use ferrax_core::{Tensor, C};
/// let w = Tensor::<(C<2>,)>::from_vec(vec![1.0, -1.0]).unwrap();
/// let tx = adam(0.1);
/// let mut state = tx.init(&w).unwrap();
/// let g = &w * 2.0; // gradient of |w|^2
/// let u = tx.update(&g, &mut state, Some(&w)).unwrap();
/// let w = apply_updates(&w, &u).unwrap();
/// // Adam's first step has size lr in every coordinate (m_hat / sqrt(v_hat) = sign(g)).
/// let v = w.to_vec().unwrap();
/// assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] + 0.9).abs() < 1e-6);
/// ```
pub fn adam(lr: impl Into<LearningRate>) -> Transform {
    adam_with(lr, AdamConfig::default())
}

/// Adam with explicit hyperparameters.
pub fn adam_with(lr: impl Into<LearningRate>, cfg: AdamConfig) -> Transform {
    chain([scale_by_adam(cfg), scale_by_learning_rate(lr)])
}

/// NAdam: Adam with Nesterov momentum.
pub fn nadam(lr: impl Into<LearningRate>) -> Transform {
    adam_with(
        lr,
        AdamConfig {
            nesterov: true,
            ..AdamConfig::default()
        },
    )
}

/// AdamW with Optax's defaults and the given decoupled `weight_decay` (applied to the leaves
/// `mask` selects, all when `None`).
pub fn adamw(lr: impl Into<LearningRate>, weight_decay: f64, mask: Option<Mask>) -> Transform {
    adamw_with(lr, AdamConfig::default(), weight_decay, mask)
}

/// AdamW with explicit hyperparameters.
pub fn adamw_with(
    lr: impl Into<LearningRate>,
    cfg: AdamConfig,
    weight_decay: f64,
    mask: Option<Mask>,
) -> Transform {
    chain([
        scale_by_adam(cfg),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(lr),
    ])
}

/// AdaMax (`b1 = 0.9, b2 = 0.999, eps = 1e-8`).
pub fn adamax(lr: impl Into<LearningRate>, b1: f64, b2: f64, eps: f64) -> Transform {
    chain([scale_by_adamax(b1, b2, eps), scale_by_learning_rate(lr)])
}

/// AMSGrad (`b1 = 0.9, b2 = 0.999, eps = 1e-8, eps_root = 0`).
pub fn amsgrad(
    lr: impl Into<LearningRate>,
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
) -> Transform {
    chain([
        scale_by_amsgrad(b1, b2, eps, eps_root),
        scale_by_learning_rate(lr),
    ])
}

/// RAdam (`b1 = 0.9, b2 = 0.999, eps = 1e-8, eps_root = 0, threshold = 5`).
pub fn radam(
    lr: impl Into<LearningRate>,
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
    threshold: f64,
) -> Transform {
    chain([
        scale_by_radam(b1, b2, eps, eps_root, threshold),
        scale_by_learning_rate(lr),
    ])
}

/// AdaBelief (`b1 = 0.9, b2 = 0.999, eps = 1e-16, eps_root = 1e-16`).
pub fn adabelief(
    lr: impl Into<LearningRate>,
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
) -> Transform {
    chain([
        scale_by_belief(b1, b2, eps, eps_root),
        scale_by_learning_rate(lr),
    ])
}

/// Yogi (`b1 = 0.9, b2 = 0.999, eps = 1e-3`, accumulators start at 1e-6).
pub fn yogi(lr: impl Into<LearningRate>, b1: f64, b2: f64, eps: f64) -> Transform {
    chain([
        scale_by_yogi(b1, b2, eps, 0.0, 1e-6),
        scale_by_learning_rate(lr),
    ])
}

/// AdaGrad (`initial_accumulator_value = 0.1, eps = 1e-7`).
pub fn adagrad(lr: impl Into<LearningRate>, initial_accumulator_value: f64, eps: f64) -> Transform {
    chain([
        scale_by_rss(initial_accumulator_value, eps),
        scale_by_learning_rate(lr),
    ])
}

/// AdaDelta (`rho = 0.9, eps = 1e-6`), with optional weight decay on the leaves
/// `weight_decay_mask` selects (all when `None`).
pub fn adadelta(
    lr: impl Into<LearningRate>,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    weight_decay_mask: Option<Mask>,
) -> Transform {
    chain([
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(lr),
    ])
}

/// RMSProp (`decay = 0.9, eps = 1e-8`); `centered` uses the running variance;
/// `momentum` adds (Nesterov) momentum after the learning rate, as Optax.
pub fn rmsprop(
    lr: impl Into<LearningRate>,
    cfg: RmsConfig,
    centered: bool,
    momentum: Option<f64>,
    nesterov: bool,
) -> Transform {
    let scaler = if centered {
        scale_by_stddev(cfg)
    } else {
        scale_by_rms(cfg)
    };
    let m = match momentum {
        Some(d) => trace(d, nesterov),
        None => identity(),
    };
    chain([scaler, scale_by_learning_rate(lr), m])
}

/// LAMB (`b1 = 0.9, b2 = 0.999, eps = 1e-6, eps_root = 0, weight_decay = 0`).
pub fn lamb(
    lr: impl Into<LearningRate>,
    cfg: AdamConfig,
    weight_decay: f64,
    mask: Option<Mask>,
) -> Transform {
    chain([
        scale_by_adam(cfg),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(0.0, 1.0, 0.0),
        scale_by_learning_rate(lr),
    ])
}

/// The LAMB defaults of Optax (`eps = 1e-6`).
pub fn lamb_config() -> AdamConfig {
    AdamConfig {
        eps: 1e-6,
        ..AdamConfig::default()
    }
}

/// LARS (`trust_coefficient = 0.001, eps = 0, momentum = 0.9`); weight decay and the trust
/// ratio apply to the leaves their masks select.
pub fn lars(
    lr: impl Into<LearningRate>,
    weight_decay: f64,
    weight_decay_mask: Option<Mask>,
    trust_coefficient: f64,
    eps: f64,
    trust_ratio_mask: Option<Mask>,
    momentum: f64,
    nesterov: bool,
) -> Transform {
    chain([
        add_decayed_weights(weight_decay, weight_decay_mask),
        masked(
            scale_by_trust_ratio(0.0, trust_coefficient, eps),
            trust_ratio_mask.unwrap_or_else(Mask::all),
        ),
        scale_by_learning_rate(lr),
        trace(momentum, nesterov),
    ])
}

/// Lion (`b1 = 0.9, b2 = 0.99, weight_decay = 1e-3`).
pub fn lion(
    lr: impl Into<LearningRate>,
    b1: f64,
    b2: f64,
    weight_decay: f64,
    mask: Option<Mask>,
) -> Transform {
    chain([
        scale_by_lion(b1, b2),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(lr),
    ])
}

/// Hyperparameters of [`adafactor`] (Optax's defaults).
#[derive(Clone, Debug)]
pub struct AdafactorConfig {
    /// Leaves whose second-largest dim is below this keep a full second moment.
    pub min_dim_size_to_factor: usize,
    /// Exponent of the decay schedule `1 - t^-decay_rate`.
    pub decay_rate: f64,
    /// Step offset of that schedule.
    pub decay_offset: i64,
    /// Scale updates by the parameters' RMS.
    pub multiply_by_parameter_scale: bool,
    /// Per-leaf update RMS clipping threshold.
    pub clipping_threshold: Option<f64>,
    /// Momentum (an EMA of the updates), off by default.
    pub momentum: Option<f64>,
    /// Decoupled weight decay rate.
    pub weight_decay_rate: Option<f64>,
    /// Added to squared gradients.
    pub eps: f64,
    /// Factor the second moments of large matrices.
    pub factored: bool,
    /// Which leaves the weight decay applies to.
    pub weight_decay_mask: Option<Mask>,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        AdafactorConfig {
            min_dim_size_to_factor: 128,
            decay_rate: 0.8,
            decay_offset: 0,
            multiply_by_parameter_scale: true,
            clipping_threshold: Some(1.0),
            momentum: None,
            weight_decay_rate: None,
            eps: 1e-30,
            factored: true,
            weight_decay_mask: None,
        }
    }
}

/// Adafactor: factored second moments, update clipping, relative step sizes.
pub fn adafactor(lr: Option<LearningRate>, cfg: AdafactorConfig) -> Transform {
    let mut tx = vec![scale_by_factored_rms(
        cfg.factored,
        cfg.decay_rate,
        cfg.decay_offset,
        cfg.min_dim_size_to_factor,
        cfg.eps,
    )];
    if let Some(t) = cfg.clipping_threshold {
        tx.push(clip_by_block_rms(t));
    }
    if let Some(lr) = lr {
        tx.push(scale_by_learning_rate_signed(lr, false));
    }
    if cfg.multiply_by_parameter_scale {
        tx.push(scale_by_param_block_rms(1e-3));
    }
    if let Some(m) = cfg.momentum {
        tx.push(ema(m, false));
    }
    if let Some(w) = cfg.weight_decay_rate {
        tx.push(add_decayed_weights(w, cfg.weight_decay_mask.clone()));
    }
    tx.push(scale(-1.0));
    chain(tx)
}

/// NovoGrad (`b1 = 0.9, b2 = 0.25, eps = 1e-6, eps_root = 0, weight_decay = 0`).
pub fn novograd(
    lr: impl Into<LearningRate>,
    b1: f64,
    b2: f64,
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
) -> Transform {
    chain([
        scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
        scale_by_learning_rate(lr),
    ])
}

/// SM3 (`momentum = 0.9`).
pub fn sm3(lr: f64, momentum: f64) -> Transform {
    chain([scale_by_sm3(momentum, 1.0, 1e-8), scale(-lr)])
}

/// Fromage (`min_norm = 1e-6`): trust-ratio steps with a norm-preserving shrink.
pub fn fromage(lr: f64, min_norm: f64) -> Transform {
    let mult = 1.0 / (1.0 + lr * lr).sqrt();
    chain([
        scale_by_trust_ratio(min_norm, 1.0, 0.0),
        scale_by_learning_rate(lr * mult),
        add_decayed_weights(mult - 1.0, None),
    ])
}
