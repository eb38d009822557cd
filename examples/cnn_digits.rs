//! A small convolutional network on the handwritten-digits data (embedded), NHWC: two 3x3
//! `SAME` convolutions (`ferrax::nn::Conv2d`) with ReLU, 2x2 max pooling, a dense head;
//! trained by a `#[jit]`-staged Adam step on the same split, augmentation and scaling as
//! the `quickstart` MLP (a fixed random 360 of the 1797 images test).
//!
//! Run: `cargo run --release --example cnn_digits`

#[path = "common/digits.rs"]
pub mod digits;

use ferrax::nn::metrics::{Accuracy, Metric};
use ferrax::nn::{losses, max_pool2d, Conv2d, Linear, Module, Rngs};
use ferrax::ops::linalg::Conv2dOpts;
use ferrax::optim::schedule::cosine_decay_schedule;
use ferrax::optim::{adam, Optimizer};
use ferrax::prelude::*;
use ferrax::prim::conv::Padding;
use ferrax::random::Key;

pub const BATCH: usize = 64;
const EPOCHS: usize = 4;
const C1: usize = 16;
const C2: usize = 32;
const FLAT: usize = 4 * 4 * C2;

/// A batch of 8x8 single-channel images.
pub type Img<B> = Tensor<(B, C<8>, C<8>, C<1>)>;

#[derive(Module, Clone, Debug)]
pub struct Cnn {
    c1: Conv2d<1, C1, 3, 3>,
    c2: Conv2d<C1, C2, 3, 3>,
    head: Linear<FLAT, 10>,
}

impl Cnn {
    pub fn new(rngs: &mut Rngs) -> ferrax::Result<Self> {
        Ok(Cnn {
            c1: Conv2d::new(rngs, Conv2dOpts::same())?,
            c2: Conv2d::new(rngs, Conv2dOpts::same())?,
            head: Linear::new(rngs)?,
        })
    }
    pub fn forward<B: Dim>(&self, x: &Img<B>) -> ferrax::Result<Tensor<(B, C<10>)>> {
        let h: Tensor<(B, C<8>, C<8>, C<C1>)> = self.c1.forward(x)?.relu();
        let h: Tensor<(B, C<8>, C<8>, C<C2>)> = self.c2.forward(&h)?.relu();
        let p: Tensor<(B, C<4>, C<4>, C<C2>)> = max_pool2d(&h, (2, 2), (2, 2), &Padding::Valid)?;
        let b = p.dims()[0];
        let bd = B::from_size(b)
            .ok_or_else(|| ferrax::Error::shape("Cnn::forward", format!("batch size {b}")))?;
        let flat: Tensor<(B, C<FLAT>)> = p.try_reshape((bd, C))?;
        Ok(self.head.forward(&flat))
    }
}

#[grad(wrt = m)]
pub fn loss(m: &Cnn, x: &Img<C<BATCH>>, y: &Tensor<(C<BATCH>,), i32>) -> Tensor<()> {
    // Shapes are fixed by the types; an error here is a bug in the model.
    let logits = m.forward(x).expect("conv net forward");
    losses::softmax_cross_entropy_with_integer_labels(&logits, y).mean()
}

#[jit]
pub fn train_step(
    m: &mut Cnn,
    opt: &mut Optimizer<Cnn>,
    x: &Img<C<BATCH>>,
    y: &Tensor<(C<BATCH>,), i32>,
) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    opt.update(m, &g)
        .expect("Adam update of the model by its own gradient");
    l
}

/// Fraction of images whose arg-max logit is the label.
pub fn accuracy(m: &Cnn, x: &digits::X, y: &digits::Y) -> Result<f32, Box<dyn std::error::Error>> {
    let img: Img<Dyn> = x.try_reshape((Dyn(y.dims()[0]), C, C, C))?;
    let mut acc = Accuracy::default();
    acc.update(&m.forward(&img)?, y)?;
    Ok(acc.compute() as f32)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = digits::load()?;
    let mut model = Cnn::new(&mut Rngs::new(0))?;
    println!("{}", model.summary());
    let n_aug = data.aug_y.len();
    let per_epoch = n_aug / BATCH;
    let schedule = cosine_decay_schedule(3e-3, (EPOCHS * per_epoch) as i64, 0.01, 1.0)?;
    let mut opt = Optimizer::new(&model, adam(schedule))?;
    let data_key = Key::new(1);
    let start = std::time::Instant::now();
    for epoch in 0..EPOCHS {
        let order =
            ferrax::random::permutation(&data_key.fold_in(epoch as u32)?, Dyn(n_aug))?.to_vec()?;
        let mut sum = 0.0;
        for rows in order.chunks_exact(BATCH) {
            let mut xv = Vec::with_capacity(BATCH * 64);
            let mut yv = Vec::with_capacity(BATCH);
            for &r in rows {
                let r = r as usize;
                xv.extend_from_slice(&data.aug_x[r * 64..(r + 1) * 64]);
                yv.push(data.aug_y[r]);
            }
            let xb = Img::<C<BATCH>>::from_vec(xv)?;
            let yb = Tensor::<(C<BATCH>,), i32>::from_vec(yv)?;
            sum += train_step(&mut model, &mut opt, &xb, &yb).item()?;
        }
        println!(
            "epoch {epoch}  mean loss {:.4}  test accuracy {:.1}%  ({:.1} s)",
            sum / per_epoch as f32,
            100.0 * accuracy(&model, &data.x_test, &data.y_test)?,
            start.elapsed().as_secs_f64()
        );
    }
    let elapsed = start.elapsed();
    println!(
        "train accuracy {:.1}%",
        100.0 * accuracy(&model, &data.x_train, &data.y_train)?
    );
    println!(
        "test accuracy  {:.1}%  ({} held-out images)",
        100.0 * accuracy(&model, &data.x_test, &data.y_test)?,
        digits::N_TEST
    );
    println!(
        "{} staged Adam steps in {:.1} s ({} compile)",
        EPOCHS * per_epoch,
        elapsed.as_secs_f64(),
        train_step::stats().compiles
    );
    Ok(())
}
