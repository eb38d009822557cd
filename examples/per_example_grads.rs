//! Per-example gradients with `vmap` of `grad`, and DP-SGD on the digits data.
//!
//! 1. The gradient of the loss of *each* example in a batch, computed in one batched
//!    program by mapping `ferrax::ad::grad` over the batch axis with `ferrax::vmap::vmap`,
//!    is checked against a plain loop that differentiates one example at a time.
//! 2. Those per-example gradients drive DP-SGD (Abadi et al., 2016): each example's
//!    gradient is clipped to L2 norm at most `CLIP`, the clipped gradients are summed,
//!    Gaussian noise of scale `NOISE * CLIP` is added, and the average is applied. The
//!    whole step is `#[jit]`-staged; the noise key is a traced argument.
//! 3. For comparison, the same model trained by plain SGD with the same steps: the gap is
//!    the accuracy privacy costs.
//!
//! The data is the quickstart's split and scaling (`examples/common/digits.rs`).
//!
//! Run: `cargo run --release --example per_example_grads`

use ferrax::nn::metrics::{Accuracy, Metric};
use ferrax::nn::{losses, Linear, Rngs};
use ferrax::optim::{sgd, Optimizer};
use ferrax::prelude::*;
use ferrax::prim::binary::{binary_bcast, BinaryOp};
use ferrax::prim::random::{random_sample, Dist};
use ferrax::prim::reshape::reshape;
use ferrax::random::Key;

#[path = "common/digits.rs"]
mod digits;

const BATCH: usize = 50;
const CLIP: f64 = 1.0;
const NOISE: f64 = 0.5;
const LR: f64 = 0.5;

type Xb = Tensor<(C<BATCH>, C<64>)>;
type Yb = Tensor<(C<BATCH>,), i32>;

#[derive(ferrax::nn::Module, Clone)]
struct Mlp {
    l1: Linear<64, 64>,
    l2: Linear<64, 10>,
}

impl Mlp {
    fn forward<B: Dim>(&self, x: &Tensor<(B, C<64>)>) -> Tensor<(B, C<10>)> {
        self.l2.forward(&self.l1.forward(x).relu())
    }
}

/// Mean cross-entropy over any batch (B = 1 for one example).
fn loss<B: Dim>(m: &Mlp, x: &Tensor<(B, C<64>)>, y: &Tensor<(B,), i32>) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

/// The gradient of one example's loss (x: (64,), y: ()), as the model's leaves.
fn example_grad(m: &Mlp, x: &Array, y: &Array) -> ferrax::Result<Vec<Array>> {
    let xi = Tensor::<(C<1>, C<64>)>::from_array(reshape(x, &[1, 64])?)?;
    let yi = Tensor::<(C<1>,), i32>::from_array(reshape(y, &[1])?)?;
    let g = ferrax::ad::grad(m, |mm: &Mlp| loss(mm, &xi, &yi))?;
    Ok(ferrax::tree::leaves(&g))
}

/// Per-example gradients: for each parameter leaf (in `tree::leaves` order) an array with
/// a leading batch axis. The model is shared by all examples (in_axis `None`); `x` and `y`
/// are mapped over axis 0. Inside the mapped function the model's leaves are tracers, so
/// the model is rebuilt from them before differentiating.
fn per_example_grads(m: &Mlp, x: &Array, y: &Array) -> ferrax::Result<Vec<Array>> {
    let params = ferrax::tree::leaves(m);
    let n = params.len();
    let mut args = params;
    args.extend([x.clone(), y.clone()]);
    let mut in_axes = vec![None; n];
    in_axes.extend([Some(0), Some(0)]);
    ferrax::vmap::vmap(
        |a| {
            let model = ferrax::tree::unflatten(m, a[..n].to_vec())?;
            example_grad(&model, &a[n], &a[n + 1])
        },
        &args,
        &in_axes,
        &[Some(0)],
    )
}

/// Sums `x` over every axis but the first: (B, ...) -> (B,).
fn sum_per_example(x: &Array) -> ferrax::Result<Array> {
    let axes: Vec<usize> = (1..x.rank()).collect();
    ferrax::prim::reduce::reduce_sum(x, &axes)
}

/// One DP-SGD step, staged. `key` draws the noise; it is a traced argument, so every call
/// with a new key reuses the compiled program.
#[jit]
fn dp_sgd_step(m: &mut Mlp, x: &Xb, y: &Yb, key: &Key) -> Tensor<()> {
    dp_sgd_update(m, x, y, key).expect("DP-SGD step on shapes fixed by the types")
}

fn dp_sgd_update(m: &mut Mlp, x: &Xb, y: &Yb, key: &Key) -> ferrax::Result<Tensor<()>> {
    let grads = per_example_grads(m, x.array(), y.array())?;
    // Per-example global L2 norm over all parameters: sqrt(sum over leaves of |g_i|^2).
    let mut sq = sum_per_example(&binary_bcast(BinaryOp::Mul, &grads[0], &grads[0])?)?;
    for g in &grads[1..] {
        let s = sum_per_example(&binary_bcast(BinaryOp::Mul, g, g)?)?;
        sq = binary_bcast(BinaryOp::Add, &sq, &s)?;
    }
    let norm = Tensor::<(C<BATCH>,)>::from_array(sq)?.sqrt();
    // Scale factor min(1, CLIP / norm) per example (tiny floor: a zero gradient stays 0).
    let floor = Tensor::<(C<BATCH>,)>::full(1e-12);
    let one = Tensor::<(C<BATCH>,)>::ones();
    let factor = (norm.maximum(&floor).reciprocal() * CLIP as f32).minimum(&one);
    let keys = key.split(grads.len())?;
    let mut new_leaves = Vec::with_capacity(grads.len());
    for ((g, p), k) in grads.iter().zip(ferrax::tree::leaves(m)).zip(&keys) {
        // Broadcast the (B,) factor over the leaf's parameter axes, then sum over B.
        let f = ferrax::prim::broadcast_in_dim::broadcast_in_dim(factor.array(), g.shape(), &[0])?;
        let clipped_sum =
            ferrax::prim::reduce::reduce_sum(&binary_bcast(BinaryOp::Mul, g, &f)?, &[0])?;
        let noise = random_sample(k.array(), Dist::Normal, p.shape(), DType::F32, &[])?;
        let noisy = binary_bcast(
            BinaryOp::Add,
            &clipped_sum,
            &binary_bcast(
                BinaryOp::Mul,
                &noise,
                &Array::full(&[], DType::F32, NOISE * CLIP),
            )?,
        )?;
        let step = binary_bcast(
            BinaryOp::Mul,
            &noisy,
            &Array::full(&[], DType::F32, LR / BATCH as f64),
        )?;
        new_leaves.push(binary_bcast(BinaryOp::Sub, &p, &step)?);
    }
    let l = loss(m, x, y);
    *m = ferrax::tree::unflatten(m, new_leaves)?;
    Ok(l)
}

/// One plain (non-private) SGD step on the batch's mean gradient, for comparison.
#[jit]
fn sgd_step(m: &mut Mlp, opt: &mut Optimizer<Mlp>, x: &Xb, y: &Yb) -> Tensor<()> {
    let (l, g) = ferrax::ad::value_and_grad(m, |mm: &Mlp| loss(mm, x, y))
        .expect("gradient of the batch loss");
    opt.update(m, &g)
        .expect("SGD update of the model by its own gradient");
    l
}

/// Per-example global gradient norms of a batch, from the stacked per-example gradients.
fn norms(grads: &[Array]) -> ferrax::Result<Vec<f32>> {
    let mut sq = vec![0.0f32; BATCH];
    for g in grads {
        for (i, s) in sum_per_example(&binary_bcast(BinaryOp::Mul, g, g)?)?
            .to_vec::<f32>()?
            .into_iter()
            .enumerate()
        {
            sq[i] += s;
        }
    }
    Ok(sq.into_iter().map(f32::sqrt).collect())
}

fn new_model() -> ferrax::Result<Mlp> {
    Ok(Mlp {
        l1: Linear::new(&mut Rngs::new(0))?,
        l2: Linear::new(&mut Rngs::new(1))?,
    })
}

/// The `b`-th batch of `BATCH` rows of `xs` (64 pixels per row) and `ys`.
fn batch(xs: &[f32], ys: &[i32], b: usize) -> ferrax::Result<(Xb, Yb)> {
    Ok((
        Xb::from_vec(xs[b * BATCH * 64..(b + 1) * BATCH * 64].to_vec())?,
        Yb::from_vec(ys[b * BATCH..(b + 1) * BATCH].to_vec())?,
    ))
}

fn test_accuracy(m: &Mlp, data: &digits::Data) -> ferrax::Result<f64> {
    let mut acc = Accuracy::default();
    acc.update(&m.forward(&data.x_test), &data.y_test)?;
    Ok(acc.compute())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The quickstart's split and scaling, without the shifted copies: DP-SGD's guarantee is
    // per training row, and copies of a row would each count as a different person.
    let data = digits::load()?;
    let (xs, ys) = (data.x_train.to_vec()?, data.y_train.to_vec()?);
    let n_batches = ys.len() / BATCH;
    let mut model = new_model()?;

    // 1. vmap of grad against a loop of grads, on the first batch.
    let (xb, yb) = batch(&xs, &ys, 0)?;
    let t = std::time::Instant::now();
    let batched = per_example_grads(&model, xb.array(), yb.array())?;
    let t_vmap = t.elapsed();
    let t = std::time::Instant::now();
    let mut max_err = 0.0f32;
    for i in 0..BATCH {
        let xi = ferrax::vmap::index_axis(xb.array(), 0, i)?;
        let yi = ferrax::vmap::index_axis(yb.array(), 0, i)?;
        let looped = example_grad(&model, &xi, &yi)?;
        for (b, l) in batched.iter().zip(&looped) {
            let bi = ferrax::vmap::index_axis(b, 0, i)?.to_vec::<f32>()?;
            for (u, v) in bi.iter().zip(l.to_vec::<f32>()?) {
                max_err = max_err.max((u - v).abs() / v.abs().max(1.0));
            }
        }
    }
    let t_loop = t.elapsed();
    println!(
        "per-example gradients of {BATCH} examples: vmap(grad) {:.1} ms, loop of grad {:.1} ms, max relative difference {max_err:.2e}",
        t_vmap.as_secs_f64() * 1e3,
        t_loop.as_secs_f64() * 1e3,
    );
    if max_err > 1e-5 {
        return Err(format!("vmap(grad) disagrees with the loop: {max_err:e}").into());
    }
    let mut nrm = norms(&batched)?;
    nrm.sort_by(f32::total_cmp);
    println!(
        "their L2 norms at initialization: min {:.2}, median {:.2}, max {:.2}; {} of {BATCH} exceed the clip norm {CLIP} and are scaled down to it",
        nrm[0],
        nrm[BATCH / 2],
        nrm[BATCH - 1],
        nrm.iter().filter(|&&v| v as f64 > CLIP).count()
    );

    // 2. DP-SGD with clipped per-example gradients and Gaussian noise.
    let epochs = 20;
    let start = std::time::Instant::now();
    let base = Key::new(42);
    for epoch in 0..epochs {
        let mut sum = 0.0;
        for b in 0..n_batches {
            let (xb, yb) = batch(&xs, &ys, b)?;
            let key = base.fold_in((epoch * 1000 + b) as u32)?;
            sum += dp_sgd_step(&mut model, &xb, &yb, &key).item()?;
        }
        if epoch % 5 == 0 || epoch == epochs - 1 {
            println!(
                "DP-SGD epoch {epoch:>2}  mean batch loss {:.4}",
                sum / n_batches as f32
            );
        }
    }
    let elapsed = start.elapsed();
    let dp_acc = test_accuracy(&model, &data)?;

    // 3. The same model, data order and step size without clipping or noise.
    let mut plain = new_model()?;
    let mut opt = Optimizer::new(&plain, sgd(LR))?;
    for _ in 0..epochs {
        for b in 0..n_batches {
            let (xb, yb) = batch(&xs, &ys, b)?;
            sgd_step(&mut plain, &mut opt, &xb, &yb);
        }
    }
    let plain_acc = test_accuracy(&plain, &data)?;
    println!(
        "DP-SGD (clip {CLIP}, noise multiplier {NOISE}): test accuracy {:.1}% after {} staged steps in {:.2} s ({} compile)",
        100.0 * dp_acc,
        epochs * n_batches,
        elapsed.as_secs_f64(),
        dp_sgd_step::stats().compiles
    );
    println!(
        "non-private SGD, same steps: test accuracy {:.1}%  ({} held-out images)",
        100.0 * plain_acc,
        digits::N_TEST
    );
    Ok(())
}
