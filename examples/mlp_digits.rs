//! An MLP on the handwritten-digits data (embedded): `#[derive(Module)]` layers from
//! `ferrax::nn`, a loss differentiated by `#[grad]`, a `#[jit]`-staged SGD step, and an
//! accuracy metric. The first 1500 rows train, the remaining 297 test.
//!
//! Run: `cargo run --release --example mlp_digits`

use ferrax::nn::metrics::{Accuracy, Metric};
use ferrax::nn::{losses, Linear, Module, Rngs};
use ferrax::prelude::*;
use std::io::Read;

type X = Tensor<(Dyn, C<64>)>;
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

/// One SGD step, staged: traced once per batch size, then a cached executable.
#[jit]
fn train_step(m: &mut Mlp, x: &X, y: &Y, lr: f32) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    m.l1.kernel = &m.l1.kernel - &(g.l1.kernel * lr);
    m.l2.kernel = &m.l2.kernel - &(g.l2.kernel * lr);
    if let (Some(b), Some(gb)) = (&m.l1.bias, &g.l1.bias) {
        m.l1.bias = Some(b - &(gb * lr));
    }
    if let (Some(b), Some(gb)) = (&m.l2.bias, &g.l2.bias) {
        m.l2.bias = Some(b - &(gb * lr));
    }
    l
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
    let x_train = X::from_vec_shape((Dyn(n_train), C), xs[..n_train * 64].to_vec())?;
    let y_train = Y::from_vec_shape((Dyn(n_train),), ys[..n_train].to_vec())?;
    let x_test = X::from_vec_shape((Dyn(n - n_train), C), xs[n_train * 64..].to_vec())?;
    let y_test = Y::from_vec_shape((Dyn(n - n_train),), ys[n_train..].to_vec())?;

    let mut model = Mlp::new(&mut Rngs::new(0))?;
    println!("{}", model.summary());
    let start = std::time::Instant::now();
    let (batch, epochs) = (100, 60);
    for epoch in 0..epochs {
        let mut last = 0.0;
        for b in 0..n_train / batch {
            let xb = X::from_vec_shape(
                (Dyn(batch), C),
                xs[b * batch * 64..(b + 1) * batch * 64].to_vec(),
            )?;
            let yb = Y::from_vec_shape((Dyn(batch),), ys[b * batch..(b + 1) * batch].to_vec())?;
            last = train_step(&mut model, &xb, &yb, 0.2).item()?;
        }
        if epoch % 10 == 0 || epoch == epochs - 1 {
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
        "{} staged steps in {:.2} s",
        epochs * (n_train / batch),
        elapsed.as_secs_f64()
    );
    Ok(())
}
