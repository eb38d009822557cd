//! An MLP on the handwritten-digits data (embedded): `#[derive(Module)]` layers from
//! `ferrax::nn`, a loss differentiated by `#[grad]`, a `#[jit]`-staged train step that
//! applies Optax-style Adam through `ferrax::optim::Optimizer`, and an accuracy metric.
//! The first 1500 rows train, the remaining 297 test.
//!
//! Run: `cargo run --release --example mlp_digits`

use ferrax::nn::metrics::{Accuracy, Metric};
use ferrax::nn::{losses, Linear, Module, Rngs};
use ferrax::optim::{adam, Optimizer};
use ferrax::prelude::*;
use std::io::Read;

type X = Tensor<(Dyn, C<64>)>;
const LEARNING_RATE: f64 = 3e-3;
const EPOCHS: usize = 20;
type Y = Tensor<(Dyn,), i32>;

#[derive(Module)]
struct Mlp {
    l1: Linear<64, 128>,
    l2: Linear<128, 10>,
}

impl Mlp {
    fn new(rngs: &mut Rngs) -> ferrax::Result<Self> {
        Ok(Mlp {
            l1: Linear::new(rngs)?,
            l2: Linear::new(rngs)?,
        })
    }
    fn forward(&self, x: &X) -> Tensor<(Dyn, C<10>)> {
        self.l2.forward(&self.l1.forward(x).relu())
    }
}

#[grad(wrt = m)]
fn loss(m: &Mlp, x: &X, y: &Y) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

/// One Adam step, staged: traced once per batch size, then a cached executable. The
/// optimizer is a tree, so its moments and step counter are `&mut` state of the staged
/// function and are written back after each call.
#[jit]
fn train_step(m: &mut Mlp, opt: &mut Optimizer<Mlp>, x: &X, y: &Y) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    // Inside a trace the update only records ops; an error here is a shape mismatch
    // between the model and its own gradient, i.e. a bug, so stop loudly.
    opt.update(m, &g)
        .expect("Adam update of the model by its own gradient");
    l
}

/// The training images plus copies shifted one pixel up, down, left and right (zeros
/// shifted in), as scikit-learn's `nudge_dataset` does: 1500 rows are few for 64 inputs,
/// and writers place digits a pixel or so apart, so the shifted copies teach the model
/// that small translations do not change the class.
fn nudge(xs: &[f32], ys: &[i32]) -> (Vec<f32>, Vec<i32>) {
    let shifts: [(isize, isize); 9] = [
        (0, 0),
        (-1, 0),
        (1, 0),
        (0, -1),
        (0, 1),
        (-1, -1),
        (-1, 1),
        (1, -1),
        (1, 1),
    ];
    let mut out_x = Vec::with_capacity(xs.len() * shifts.len());
    let mut out_y = Vec::with_capacity(ys.len() * shifts.len());
    for &(dr, dc) in &shifts {
        for (img, &y) in xs.chunks_exact(64).zip(ys) {
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
    (out_x, out_y)
}

/// Scales each pixel to zero mean and unit variance over the (augmented) training rows
/// and applies the same affine map to `others`: inputs on a common scale keep the first
/// layer's pre-activations well-conditioned. Border pixels that are always zero keep
/// their value (their spread is floored).
fn standardize(train: &mut [f32], others: &mut [&mut Vec<f32>]) {
    let rows = (train.len() / 64) as f32;
    for j in 0..64 {
        let mean = train.iter().skip(j).step_by(64).sum::<f32>() / rows;
        let var = train
            .iter()
            .skip(j)
            .step_by(64)
            .map(|v| (v - mean).powi(2))
            .sum::<f32>()
            / rows;
        let sd = var.sqrt().max(1e-3);
        let f = |v: &mut f32| *v = (*v - mean) / sd;
        train.iter_mut().skip(j).step_by(64).for_each(f);
        for o in others.iter_mut() {
            o.iter_mut().skip(j).step_by(64).for_each(f);
        }
    }
}

/// Rows of 64 pixels (0..16) and a label, from the gzipped CSV.
fn load() -> Result<(Vec<f32>, Vec<i32>), Box<dyn std::error::Error>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&include_bytes!("data/digits.csv.gz")[..])
        .read_to_string(&mut text)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse::<f32>())
            .collect::<Result<_, _>>()?;
        if v.len() != 65 {
            return Err(format!("line {}: expected 65 values, found {}", i + 1, v.len()).into());
        }
        xs.extend(v[..64].iter().map(|p| p / 16.0));
        ys.push(v[64] as i32);
    }
    Ok((xs, ys))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (xs, ys) = load()?;
    let n_train = 1500;
    let n = ys.len();
    let mut x_train_v = xs[..n_train * 64].to_vec();
    let mut x_test_v = xs[n_train * 64..].to_vec();
    let y_train = Y::from_vec_shape((Dyn(n_train),), ys[..n_train].to_vec())?;
    let y_test = Y::from_vec_shape((Dyn(n - n_train),), ys[n_train..].to_vec())?;

    let (mut aug_x, aug_y) = nudge(&xs[..n_train * 64], &ys[..n_train]);
    let n_aug = aug_y.len();
    standardize(&mut aug_x, &mut [&mut x_train_v, &mut x_test_v]);
    let x_train = X::from_vec_shape((Dyn(n_train), C), x_train_v)?;
    let x_test = X::from_vec_shape((Dyn(n - n_train), C), x_test_v)?;
    let mut model = Mlp::new(&mut Rngs::new(0))?;
    println!("{}", model.summary());
    let mut opt = Optimizer::new(&model, adam(LEARNING_RATE))?;
    let start = std::time::Instant::now();
    let (batch, epochs) = (100, EPOCHS);
    let data_key = ferrax::random::Key::new(1);
    for epoch in 0..epochs {
        // A fresh order of the training rows every epoch (a fixed key per epoch, so runs
        // are reproducible): mini-batches that repeat in the same order overfit sooner.
        let order =
            ferrax::random::permutation(&data_key.fold_in(epoch as u32)?, Dyn(n_aug))?.to_vec()?;
        let mut last = 0.0;
        for rows in order.chunks_exact(batch) {
            let mut xv = Vec::with_capacity(batch * 64);
            let mut yv = Vec::with_capacity(batch);
            for &r in rows {
                let r = r as usize;
                xv.extend_from_slice(&aug_x[r * 64..(r + 1) * 64]);
                yv.push(aug_y[r]);
            }
            let xb = X::from_vec_shape((Dyn(batch), C), xv)?;
            let yb = Y::from_vec_shape((Dyn(batch),), yv)?;
            last = train_step(&mut model, &mut opt, &xb, &yb).item()?;
        }
        if epoch % 5 == 0 || epoch == epochs - 1 {
            println!("epoch {epoch:>2}  batch loss {last:.4}");
        }
    }
    let elapsed = start.elapsed();
    let mut acc = Accuracy::default();
    acc.update(&model.forward(&x_train), &y_train)?;
    println!("train accuracy {:.1}%", 100.0 * acc.compute());
    acc.reset();
    acc.update(&model.forward(&x_test), &y_test)?;
    println!(
        "test accuracy  {:.1}%  ({} held-out rows)",
        100.0 * acc.compute(),
        n - n_train
    );
    println!(
        "{} staged Adam steps in {:.2} s ({} compile)",
        epochs * (n_aug / batch),
        elapsed.as_secs_f64(),
        train_step::stats().compiles
    );
    Ok(())
}
