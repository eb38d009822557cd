//! Training workloads B3, B4, B5, B6 and B10 of BENCHMARKS.md: whole `#[jit]`-staged train
//! steps (forward, gradient, Optax-style optimizer update) on random data drawn from fixed
//! `ferrax::random` keys, so every run measures the same computation.
//!
//! Run: `cargo bench --bench train -- --warm-up-time 1 --measurement-time 5`
//!
//! Each workload is traced and compiled once before criterion starts timing (the first
//! call), so the numbers are steady-state step times, as JAX's are measured after
//! `jit` warm-up. Sample counts are small because one B6 or B10 step takes tens of
//! milliseconds on the 2-core reference machine.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrax::nn::{avg_pool2d, losses, Conv2d, LayerNorm, Linear, Module, Rngs};
use ferrax::ops::linalg::Conv2dOpts;
use ferrax::optim::{adam, sgd, Optimizer};
use ferrax::prelude::*;
use ferrax::prim::conv::Padding;
use ferrax::random::Key;
use std::hint::black_box;

// ---------------------------------------------------------------------------------------
// B3: MLP 784-512-512-10, ReLU, softmax cross-entropy with integer labels, batch 128, Adam.

const B3_BATCH: usize = 128;
type X3 = Tensor<(C<B3_BATCH>, C<784>)>;
type Y3 = Tensor<(C<B3_BATCH>,), i32>;

#[derive(Module, Clone)]
struct Mlp3 {
    l1: Linear<784, 512>,
    l2: Linear<512, 512>,
    l3: Linear<512, 10>,
}

impl Mlp3 {
    fn new(rngs: &mut Rngs) -> ferrax::Result<Self> {
        Ok(Mlp3 {
            l1: Linear::new(rngs)?,
            l2: Linear::new(rngs)?,
            l3: Linear::new(rngs)?,
        })
    }
    /// Generic over the batch dim so B5 can run it on one example (batch 1) under vmap.
    fn forward<B: Dim>(&self, x: &Tensor<(B, C<784>)>) -> Tensor<(B, C<10>)> {
        let h = self.l1.forward(x).relu();
        let h = self.l2.forward(&h).relu();
        self.l3.forward(&h)
    }
}

/// Mean softmax cross-entropy of the MLP over a batch (any batch size).
fn mlp3_loss<B: Dim>(m: &Mlp3, x: &Tensor<(B, C<784>)>, y: &Tensor<(B,), i32>) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

#[grad(wrt = m)]
fn b3_loss(m: &Mlp3, x: &X3, y: &Y3) -> Tensor<()> {
    mlp3_loss(m, x, y)
}

#[jit]
fn b3_step(m: &mut Mlp3, opt: &mut Optimizer<Mlp3>, x: &X3, y: &Y3) -> Tensor<()> {
    let (l, g) = b3_loss::value_and_grad(m, x, y);
    opt.update(m, &g).expect("B3: Adam update");
    l
}

/// Random inputs and integer labels in 0..10 from fixed keys.
fn b3_data() -> ferrax::Result<(X3, Y3)> {
    let x = Key::new(30).normal::<(C<B3_BATCH>, C<784>), f32>()?;
    let y = ferrax::random::randint(&Key::new(31), (C,), 0, 10)?;
    Ok((x, y))
}

fn bench_b3(c: &mut Criterion) {
    let (x, y) = b3_data().expect("B3 data");
    let mut m = Mlp3::new(&mut Rngs::new(3)).expect("B3 model");
    let mut opt = Optimizer::new(&m, adam(1e-3)).expect("B3 optimizer");
    // First call traces and compiles; criterion then times cached executions.
    b3_step(&mut m, &mut opt, &x, &y).item().expect("B3 loss");
    let mut g = c.benchmark_group("B3_mlp_train_step");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1)); // elements/s = steps/s
    g.bench_function("784-512-512-10_b128_adam", |b| {
        b.iter(|| black_box(b3_step(&mut m, &mut opt, &x, &y).item().expect("B3 loss")))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// B4: tiny MLP 2-32-32-1, batch 16, MSE, SGD 0.01 — per-call overhead of a staged step.

type X4 = Tensor<(C<16>, C<2>)>;
type Y4 = Tensor<(C<16>, C<1>)>;

#[derive(Module, Clone)]
struct Mlp4 {
    l1: Linear<2, 32>,
    l2: Linear<32, 32>,
    l3: Linear<32, 1>,
}

#[grad(wrt = m)]
fn b4_loss(m: &Mlp4, x: &X4, y: &Y4) -> Tensor<()> {
    let h = m.l1.forward(x).relu();
    let h = m.l2.forward(&h).relu();
    losses::mse(&m.l3.forward(&h), y)
}

#[jit]
fn b4_step(m: &mut Mlp4, opt: &mut Optimizer<Mlp4>, x: &X4, y: &Y4) -> Tensor<()> {
    let (l, g) = b4_loss::value_and_grad(m, x, y);
    opt.update(m, &g).expect("B4: SGD update");
    l
}

fn bench_b4(c: &mut Criterion) {
    let mut rngs = Rngs::new(4);
    let mut m = Mlp4 {
        l1: Linear::new(&mut rngs).expect("B4 l1"),
        l2: Linear::new(&mut rngs).expect("B4 l2"),
        l3: Linear::new(&mut rngs).expect("B4 l3"),
    };
    let x: X4 = Key::new(40).normal().expect("B4 x");
    let y: Y4 = Key::new(41).normal().expect("B4 y");
    let mut opt = Optimizer::new(&m, sgd(0.01)).expect("B4 optimizer");
    b4_step(&mut m, &mut opt, &x, &y).item().expect("B4 loss");
    let mut g = c.benchmark_group("B4_tiny_mlp_step");
    g.sample_size(50);
    g.bench_function("2-32-32-1_b16_sgd", |b| {
        b.iter(|| black_box(b4_step(&mut m, &mut opt, &x, &y).item().expect("B4 loss")))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// B5: per-example gradients of the B3 loss, `vmap` of `grad`, batch 128.

/// Per-example gradients, one stacked array per parameter leaf (leading axis = example),
/// in `tree::leaves(m)` order. Staged, so the vmapped gradient program compiles once.
#[jit]
fn b5_per_example_grads(m: &Mlp3, x: &X3, y: &Y3) -> Vec<Array> {
    per_example_grads(m, x, y).expect("B5: vmap of grad")
}

fn per_example_grads(m: &Mlp3, x: &X3, y: &Y3) -> ferrax::Result<Vec<Array>> {
    let params = ferrax::tree::leaves(m);
    let n = params.len();
    let mut args = params;
    args.push(x.array().clone());
    args.push(y.array().clone());
    // Parameters are shared by every example (in_axis None); x and y are mapped over
    // their leading axis. The body sees one example: x (784,), y ().
    let mut in_axes = vec![None; n];
    in_axes.extend([Some(0), Some(0)]);
    ferrax::vmap::vmap(
        |a| {
            let model = ferrax::tree::unflatten(m, a[..n].to_vec())?;
            let xi = Tensor::<(C<1>, C<784>)>::from_array(ferrax::prim::reshape::reshape(
                &a[n],
                &[1, 784],
            )?)?;
            let yi = Tensor::<(C<1>,), i32>::from_array(ferrax::prim::reshape::reshape(
                &a[n + 1],
                &[1],
            )?)?;
            let g = ferrax::ad::grad(&model, |mm: &Mlp3| mlp3_loss(mm, &xi, &yi))?;
            Ok(ferrax::tree::leaves(&g))
        },
        &args,
        &in_axes,
        &[Some(0)],
    )
}

fn bench_b5(c: &mut Criterion) {
    let (x, y) = b3_data().expect("B5 data");
    let m = Mlp3::new(&mut Rngs::new(5)).expect("B5 model");
    let first = b5_per_example_grads(&m, &x, &y);
    black_box(first[0].to_vec::<f32>().expect("B5 result"));
    let mut g = c.benchmark_group("B5_per_example_grads");
    g.sample_size(10);
    g.bench_function("mlp3_b128_vmap_grad", |b| {
        b.iter(|| {
            let r = b5_per_example_grads(&m, &x, &y);
            // Read one leaf back so the whole program has certainly run.
            black_box(r[0].to_vec::<f32>().expect("B5 result"))
        })
    });
    // The same computation through the composition macros: one typed expression, the
    // result a `Stacked<Mlp3, C<128>>` (one stacked array per parameter leaf).
    let per_example = fx::jit!(fx::vmap!(
        fx::grad!(
            |m: &Mlp3, x: &Tensor<(C<784>,)>, y: &Tensor<(), i32>| -> Tensor<()> {
                mlp3_loss(m, &x.reshape::<(C<1>, C<784>)>(), &y.reshape::<(C<1>,)>())
            },
            wrt = m
        ),
        in_axes = (None, 0, 0)
    ));
    let first = per_example(&m, &x, &y);
    black_box(first.leaves()[0].to_vec::<f32>().expect("B5 result"));
    g.bench_function("mlp3_b128_fx_jit_vmap_grad", |b| {
        b.iter(|| {
            let r = per_example(&m, &x, &y);
            black_box(r.leaves()[0].to_vec::<f32>().expect("B5 result"))
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// B6: conv net NHWC 28x28x1, batch 64: conv3x3 SAME 32 ReLU, conv3x3 SAME 64 ReLU,
// avgpool 2, dense 10, softmax CE, Adam.

const B6_BATCH: usize = 64;
type X6 = Tensor<(C<B6_BATCH>, C<28>, C<28>, C<1>)>;
type Y6 = Tensor<(C<B6_BATCH>,), i32>;

#[derive(Module, Clone)]
struct ConvNet {
    c1: Conv2d<1, 32, 3, 3>,
    c2: Conv2d<32, 64, 3, 3>,
    head: Linear<{ 14 * 14 * 64 }, 10>,
}

impl ConvNet {
    fn forward(&self, x: &X6) -> ferrax::Result<Tensor<(C<B6_BATCH>, C<10>)>> {
        let h: Tensor<(C<B6_BATCH>, C<28>, C<28>, C<32>)> = self.c1.forward(x)?.relu();
        let h: Tensor<(C<B6_BATCH>, C<28>, C<28>, C<64>)> = self.c2.forward(&h)?.relu();
        let p: Tensor<(C<B6_BATCH>, C<14>, C<14>, C<64>)> =
            avg_pool2d(&h, (2, 2), (2, 2), &Padding::Valid)?;
        let flat = p.reshape::<(C<B6_BATCH>, C<{ 14 * 14 * 64 }>)>();
        Ok(self.head.forward(&flat))
    }
}

#[grad(wrt = m)]
fn b6_loss(m: &ConvNet, x: &X6, y: &Y6) -> Tensor<()> {
    let logits = m.forward(x).expect("B6: conv net forward");
    losses::softmax_cross_entropy_with_integer_labels(&logits, y).mean()
}

#[jit]
fn b6_step(m: &mut ConvNet, opt: &mut Optimizer<ConvNet>, x: &X6, y: &Y6) -> Tensor<()> {
    let (l, g) = b6_loss::value_and_grad(m, x, y);
    opt.update(m, &g).expect("B6: Adam update");
    l
}

fn bench_b6(c: &mut Criterion) {
    let mut rngs = Rngs::new(6);
    let mut m = ConvNet {
        c1: Conv2d::new(&mut rngs, Conv2dOpts::same()).expect("B6 c1"),
        c2: Conv2d::new(&mut rngs, Conv2dOpts::same()).expect("B6 c2"),
        head: Linear::new(&mut rngs).expect("B6 head"),
    };
    let x: X6 = Key::new(60).normal().expect("B6 x");
    let y: Y6 = ferrax::random::randint(&Key::new(61), (C,), 0, 10).expect("B6 y");
    let mut opt = Optimizer::new(&m, adam(1e-3)).expect("B6 optimizer");
    b6_step(&mut m, &mut opt, &x, &y).item().expect("B6 loss");
    let mut g = c.benchmark_group("B6_convnet_train_step");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1)); // steps/s
    g.bench_function("nhwc28_b64_adam", |b| {
        b.iter(|| black_box(b6_step(&mut m, &mut opt, &x, &y).item().expect("B6 loss")))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// B10: GPT block d=256, 4 heads, seq 128, batch 8, pre-LayerNorm, fused QKV, causal
// attention, GELU(tanh) MLP 4x, MSE to a fixed target, Adam.

const D: usize = 256;
const HEADS: usize = 4;
const SEQ: usize = 128;
const B10_BATCH: usize = 8;
type X10 = Tensor<(C<B10_BATCH>, C<SEQ>, C<D>)>;

#[derive(Module, Clone)]
struct GptBlock {
    ln1: LayerNorm<D>,
    /// One projection to queries, keys and values (3 * D outputs), as GPT-2 does.
    qkv: Linear<D, { 3 * D }>,
    proj: Linear<D, D>,
    ln2: LayerNorm<D>,
    fc: Linear<D, { 4 * D }>,
    out: Linear<{ 4 * D }, D>,
}

/// Causal multi-head attention on a fused `(B, T, 3D)` projection, written with lax
/// functions so it traces and differentiates like any other op sequence.
fn causal_attention(qkv: &Array) -> ferrax::Result<Array> {
    use ferrax::prim::{
        broadcast_in_dim::broadcast_in_dim, compare, dot_general::dot_general, iota::iota,
        reshape::reshape, select::select, slice::slice_in_dim, transpose::transpose,
    };
    let dh = D / HEADS;
    let s = qkv.shape().to_vec();
    let (b, t) = (s[0], s[1]);
    // (B, T, 3D) -> (B, T, 3, H, Dh) -> (3, B, H, T, Dh)
    let r = transpose(&reshape(qkv, &[b, t, 3, HEADS, dh])?, &[2, 0, 3, 1, 4])?;
    let part = |i: usize| -> ferrax::Result<Array> {
        reshape(&slice_in_dim(&r, 0, i, i + 1, 1)?, &[b, HEADS, t, dh])
    };
    let (q, k, v) = (part(0)?, part(1)?, part(2)?);
    let logits = dot_general(&q, &k, &[3], &[3], &[0, 1], &[0, 1])?; // (B, H, T, T)
    let logits = ferrax::prim::binary::binary_scalar(
        ferrax::prim::binary::BinaryOp::Mul,
        &logits,
        1.0 / (dh as f64).sqrt(),
    )?;
    let ls = logits.shape().to_vec();
    let qi = iota(DType::I32, &[t, t], 0)?;
    let ki = iota(DType::I32, &[t, t], 1)?;
    let allowed = broadcast_in_dim(
        &compare::compare(compare::CompareOp::Ge, &qi, &ki)?,
        &ls,
        &[2, 3],
    )?;
    let masked = select(
        &allowed,
        &logits,
        &Array::full(&ls, logits.dtype(), f32::MIN as f64),
    )?;
    let w = ferrax::ops::composite::softmax(&masked, &[3])?;
    let o = dot_general(&w, &v, &[3], &[2], &[0, 1], &[0, 1])?; // (B, H, T, Dh)
    reshape(&transpose(&o, &[0, 2, 1, 3])?, &[b, t, D])
}

impl GptBlock {
    fn forward(&self, x: &X10) -> ferrax::Result<X10> {
        let qkv = self.qkv.forward(&self.ln1.forward(x));
        let a = X10::from_array(causal_attention(qkv.array())?)?;
        let x1 = x + &self.proj.forward(&a);
        let h = self.fc.forward(&self.ln2.forward(&x1)).gelu_tanh();
        Ok(&x1 + &self.out.forward(&h))
    }
}

#[grad(wrt = m)]
fn b10_loss(m: &GptBlock, x: &X10, target: &X10) -> Tensor<()> {
    let y = m.forward(x).expect("B10: GPT block forward");
    losses::mse(&y, target)
}

#[jit]
fn b10_step(m: &mut GptBlock, opt: &mut Optimizer<GptBlock>, x: &X10, t: &X10) -> Tensor<()> {
    let (l, g) = b10_loss::value_and_grad(m, x, t);
    opt.update(m, &g).expect("B10: Adam update");
    l
}

fn bench_b10(c: &mut Criterion) {
    let mut rngs = Rngs::new(10);
    let mut m = GptBlock {
        ln1: LayerNorm::new(),
        qkv: Linear::new(&mut rngs).expect("B10 qkv"),
        proj: Linear::new(&mut rngs).expect("B10 proj"),
        ln2: LayerNorm::new(),
        fc: Linear::new(&mut rngs).expect("B10 fc"),
        out: Linear::new(&mut rngs).expect("B10 out"),
    };
    let x: X10 = Key::new(100).normal().expect("B10 x");
    let target: X10 = Key::new(101).normal().expect("B10 target");
    let mut opt = Optimizer::new(&m, adam(1e-3)).expect("B10 optimizer");
    b10_step(&mut m, &mut opt, &x, &target)
        .item()
        .expect("B10 loss");
    let mut g = c.benchmark_group("B10_gpt_block_train_step");
    g.sample_size(10);
    g.throughput(Throughput::Elements((B10_BATCH * SEQ) as u64)); // tokens/s
    g.bench_function("d256_h4_t128_b8_adam", |b| {
        b.iter(|| {
            black_box(
                b10_step(&mut m, &mut opt, &x, &target)
                    .item()
                    .expect("B10 loss"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_b3, bench_b4, bench_b5, bench_b6, bench_b10);
criterion_main!(benches);
