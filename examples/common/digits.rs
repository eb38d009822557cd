//! The handwritten-digits MLP shared by the `quickstart` example and `tests/quickstart.rs`:
//! the embedded data, its augmentation and scaling, the model, the `#[jit]`-staged Adam step
//! and the training loop, so the test checks exactly what the example runs.
//!
//! Included with `#[path = ...] mod digits;`; each includer uses a different part of it.
#![allow(dead_code)]

use ferrax::nn::metrics::{Accuracy, Metric};
use ferrax::nn::{losses, Linear, Module, Rngs};
use ferrax::optim::schedule::cosine_decay_schedule;
use ferrax::optim::{adam, Optimizer};
use ferrax::prelude::*;
use ferrax::random::Key;
use std::io::Read;

/// Pixels per 8x8 image.
pub const PIXELS: usize = 64;
/// Images held out for testing: 20 % of the 1797, chosen by a fixed random permutation.
/// (Holding out the *last* 297 rows instead, writers the training rows do not share, this
/// MLP scores 92-96 % depending on the seed.)
pub const N_TEST: usize = 360;

/// Hidden units per layer of the quickstart's model.
pub const HIDDEN: usize = 128;

/// A batch of images, one row of 64 standardized pixels each.
pub type X = Tensor<(Dyn, C<PIXELS>)>;
/// Integer class labels 0..10.
pub type Y = Tensor<(Dyn,), i32>;

/// Two hidden ReLU layers of `H` units.
#[derive(Module, Clone, Debug)]
pub struct Mlp<const H: usize> {
    pub l1: Linear<PIXELS, H>,
    pub l2: Linear<H, H>,
    pub l3: Linear<H, 10>,
}

impl<const H: usize> Mlp<H> {
    pub fn new(rngs: &mut Rngs) -> ferrax::Result<Self> {
        Ok(Mlp {
            l1: Linear::new(rngs)?,
            l2: Linear::new(rngs)?,
            l3: Linear::new(rngs)?,
        })
    }
    pub fn forward(&self, x: &X) -> Tensor<(Dyn, C<10>)> {
        let h = self.l1.forward(x).relu();
        let h = self.l2.forward(&h).relu();
        self.l3.forward(&h)
    }
}

/// Mean softmax cross-entropy of a batch.
pub fn loss<const H: usize>(m: &Mlp<H>, x: &X, y: &Y) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

/// One Adam step, staged: traced once per batch size, then a cached executable. The
/// optimizer is a tree, so its moments and step counter (which drives the learning-rate
/// schedule) are `&mut` state written back after each call.
#[jit]
pub fn train_step<const H: usize>(
    m: &mut Mlp<H>,
    opt: &mut Optimizer<Mlp<H>>,
    x: &X,
    y: &Y,
) -> Tensor<()> {
    // Inside a trace these only record ops; an error is a shape mismatch between the model
    // and its own gradient, i.e. a bug, so stop loudly.
    let (l, g) = ferrax::ad::value_and_grad(m, |mm: &Mlp<H>| loss(mm, x, y))
        .expect("gradient of the digits loss");
    opt.update(m, &g)
        .expect("Adam update of the model by its own gradient");
    l
}

/// The data, ready to train on.
#[derive(Debug)]
pub struct Data {
    /// Augmented, standardized training images (row-major, 64 per row) and labels.
    pub aug_x: Vec<f32>,
    pub aug_y: Vec<i32>,
    /// The original training rows and the held-out rows, with the same scaling.
    pub x_train: X,
    pub y_train: Y,
    pub x_test: X,
    pub y_test: Y,
}

/// Rows of 64 pixels scaled to 0..1 and a label, from the gzipped CSV.
pub fn load_raw() -> Result<(Vec<f32>, Vec<i32>), Box<dyn std::error::Error>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&include_bytes!("../data/digits.csv.gz")[..])
        .read_to_string(&mut text)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("digits.csv line {}: {e}", i + 1))?;
        if v.len() != PIXELS + 1 {
            return Err(format!(
                "digits.csv line {}: expected {} values, found {}",
                i + 1,
                PIXELS + 1,
                v.len()
            )
            .into());
        }
        xs.extend(v[..PIXELS].iter().map(|p| p / 16.0));
        ys.push(v[PIXELS] as i32);
    }
    Ok((xs, ys))
}

/// The training images plus copies shifted one pixel in each of the 8 directions (zeros
/// shifted in), as scikit-learn's `nudge_dataset` does: 1437 rows are few for 64 inputs,
/// and writers place digits a pixel or so apart, so the shifted copies teach the model
/// that small translations do not change the class.
pub fn nudge(xs: &[f32], ys: &[i32]) -> (Vec<f32>, Vec<i32>) {
    let mut out_x = Vec::with_capacity(xs.len() * 9);
    let mut out_y = Vec::with_capacity(ys.len() * 9);
    for dr in -1isize..=1 {
        for dc in -1isize..=1 {
            for (img, &y) in xs.chunks_exact(PIXELS).zip(ys) {
                for r in 0..8isize {
                    for c in 0..8isize {
                        let (sr, sc) = (r - dr, c - dc);
                        let inside = (0..8).contains(&sr) && (0..8).contains(&sc);
                        out_x.push(if inside {
                            img[(sr * 8 + sc) as usize]
                        } else {
                            0.0
                        });
                    }
                }
                out_y.push(y);
            }
        }
    }
    (out_x, out_y)
}

/// Scales each pixel to zero mean and unit variance over the (augmented) training rows and
/// applies the same affine map to `others`: inputs on a common scale keep the first layer's
/// pre-activations well-conditioned. Border pixels that are always zero keep their value
/// (their spread is floored).
pub fn standardize(train: &mut [f32], others: &mut [&mut Vec<f32>]) {
    let rows = (train.len() / PIXELS) as f32;
    for j in 0..PIXELS {
        let mean = train.iter().skip(j).step_by(PIXELS).sum::<f32>() / rows;
        let var = train
            .iter()
            .skip(j)
            .step_by(PIXELS)
            .map(|v| (v - mean).powi(2))
            .sum::<f32>()
            / rows;
        let sd = var.sqrt().max(1e-3);
        let f = |v: &mut f32| *v = (*v - mean) / sd;
        train.iter_mut().skip(j).step_by(PIXELS).for_each(f);
        for o in others.iter_mut() {
            o.iter_mut().skip(j).step_by(PIXELS).for_each(f);
        }
    }
}

/// Loads, splits (a fixed random 20 % of the images test, the rest train), augments the
/// training images and scales everything.
pub fn load() -> Result<Data, Box<dyn std::error::Error>> {
    let (xs, ys) = load_raw()?;
    // The key fixes the split, so every run (and the test) holds out the same images.
    let perm = ferrax::random::permutation(&Key::new(0), Dyn(ys.len()))?.to_vec()?;
    let (test_idx, train_idx) = perm.split_at(N_TEST);
    let pick = |idx: &[i32]| -> (Vec<f32>, Vec<i32>) {
        let mut x = Vec::with_capacity(idx.len() * PIXELS);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            let i = i as usize;
            x.extend_from_slice(&xs[i * PIXELS..(i + 1) * PIXELS]);
            y.push(ys[i]);
        }
        (x, y)
    };
    let (mut x_train_v, y_train_v) = pick(train_idx);
    let (mut x_test_v, y_test_v) = pick(test_idx);
    let n_train = y_train_v.len();
    let (mut aug_x, aug_y) = nudge(&x_train_v, &y_train_v);
    standardize(&mut aug_x, &mut [&mut x_train_v, &mut x_test_v]);
    Ok(Data {
        aug_x,
        aug_y,
        x_train: X::from_vec_shape((Dyn(n_train), C), x_train_v)?,
        y_train: Y::from_vec_shape((Dyn(n_train),), y_train_v)?,
        x_test: X::from_vec_shape((Dyn(N_TEST), C), x_test_v)?,
        y_test: Y::from_vec_shape((Dyn(N_TEST),), y_test_v)?,
    })
}

/// Training hyperparameters.
#[derive(Clone, Debug)]
pub struct Config {
    pub epochs: usize,
    pub batch: usize,
    /// Peak Adam learning rate, decayed by a cosine schedule to `lr * final_frac`.
    pub lr: f64,
    pub final_frac: f64,
    /// Seeds the initial parameters; the data order uses `seed + 1`.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            epochs: 12,
            batch: 128,
            lr: 3e-3,
            final_frac: 0.01,
            seed: 0,
        }
    }
}

impl Config {
    /// Optimizer steps per epoch (the last partial batch of each epoch is dropped).
    pub fn steps_per_epoch(&self, data: &Data) -> usize {
        data.aug_y.len() / self.batch
    }
}

/// Fraction of `x`'s rows whose arg-max logit is the label.
pub fn accuracy<const H: usize>(m: &Mlp<H>, x: &X, y: &Y) -> ferrax::Result<f32> {
    let mut acc = Accuracy::default();
    acc.update(&m.forward(x), y)?;
    Ok(acc.compute() as f32)
}

/// Trains a fresh model; `on_step(epoch, step_in_epoch, loss)` is called after every step
/// (the loss is read back only when `want_loss(step)` says so, since reading it waits for
/// the step to finish).
pub fn train<const H: usize>(
    data: &Data,
    cfg: &Config,
    mut on_step: impl FnMut(usize, usize, Option<f32>),
    want_loss: impl Fn(usize) -> bool,
) -> Result<Mlp<H>, Box<dyn std::error::Error>> {
    let mut model = Mlp::<H>::new(&mut Rngs::new(cfg.seed))?;
    let per_epoch = cfg.steps_per_epoch(data);
    let total = (cfg.epochs * per_epoch) as i64;
    let schedule = cosine_decay_schedule(cfg.lr, total, cfg.final_frac, 1.0)?;
    let mut opt = Optimizer::new(&model, adam(schedule))?;
    let data_key = Key::new(cfg.seed + 1);
    let n_aug = data.aug_y.len();
    let mut global = 0usize;
    for epoch in 0..cfg.epochs {
        // A fresh order of the training rows every epoch (a fixed key per epoch, so runs
        // are reproducible): mini-batches that repeat in the same order overfit sooner.
        let order =
            ferrax::random::permutation(&data_key.fold_in(epoch as u32)?, Dyn(n_aug))?.to_vec()?;
        for (i, rows) in order.chunks_exact(cfg.batch).enumerate() {
            let mut xv = Vec::with_capacity(cfg.batch * PIXELS);
            let mut yv = Vec::with_capacity(cfg.batch);
            for &r in rows {
                let r = r as usize;
                xv.extend_from_slice(&data.aug_x[r * PIXELS..(r + 1) * PIXELS]);
                yv.push(data.aug_y[r]);
            }
            let xb = X::from_vec_shape((Dyn(cfg.batch), C), xv)?;
            let yb = Y::from_vec_shape((Dyn(cfg.batch),), yv)?;
            let l = train_step(&mut model, &mut opt, &xb, &yb);
            let l = if want_loss(global) {
                Some(l.item()?)
            } else {
                None
            };
            on_step(epoch, i, l);
            global += 1;
        }
    }
    Ok(model)
}
