//! Gradient overhead: the B3 MLP loss (784-512-512-10, ReLU, softmax cross-entropy with
//! integer labels, batch 128; see BENCHMARKS.md) jitted forward alone vs jitted
//! `value_and_grad` (`#[grad]`'s staged companion). JAX's rule of thumb is a ratio of 2-3;
//! the goal here is <= 3. The ratio of medians is printed at the end.
//!
//! Run: `cargo bench --bench grad -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use ferrax::nn::{losses, Linear, Module, Rngs};
use ferrax::prelude::*;
use ferrax::random::Key;
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCH: usize = 128;
type X = Tensor<(C<BATCH>, C<784>)>;
type Y = Tensor<(C<BATCH>,), i32>;

#[derive(Module, Clone)]
struct Mlp {
    l1: Linear<784, 512>,
    l2: Linear<512, 512>,
    l3: Linear<512, 10>,
}

fn loss_of(m: &Mlp, x: &X, y: &Y) -> Tensor<()> {
    let h = m.l1.forward(x).relu();
    let h = m.l2.forward(&h).relu();
    losses::softmax_cross_entropy_with_integer_labels(&m.l3.forward(&h), y).mean()
}

#[jit]
fn forward(m: &Mlp, x: &X, y: &Y) -> Tensor<()> {
    loss_of(m, x, y)
}

#[grad(wrt = m)]
fn loss(m: &Mlp, x: &X, y: &Y) -> Tensor<()> {
    loss_of(m, x, y)
}

fn setup() -> (Mlp, X, Y) {
    let m = Mlp {
        l1: Linear::new(&mut Rngs::new(3)).expect("l1"),
        l2: Linear::new(&mut Rngs::new(4)).expect("l2"),
        l3: Linear::new(&mut Rngs::new(5)).expect("l3"),
    };
    let x = Key::new(30).normal::<(C<BATCH>, C<784>), f32>().expect("x");
    let y = ferrax::random::randint(&Key::new(31), (C,), 0, 10).expect("y");
    (m, x, y)
}

fn median_secs(mut f: impl FnMut(), n: usize) -> f64 {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2].as_secs_f64()
}

fn bench_grad_overhead(c: &mut Criterion) {
    let (m, x, y) = setup();
    // First calls trace and compile.
    let l0 = forward(&m, &x, &y).item().expect("loss");
    let (l1, _) = loss::value_and_grad(&m, &x, &y);
    assert!((l0 - l1.item().expect("loss")).abs() <= 1e-5 * l0.abs().max(1.0));
    let mut g = c.benchmark_group("grad_overhead_B3_mlp");
    g.sample_size(20);
    g.bench_function("forward_jit", |b| b.iter(|| black_box(forward(&m, &x, &y))));
    g.bench_function("value_and_grad_jit", |b| {
        b.iter(|| black_box(loss::value_and_grad(&m, &x, &y)))
    });
    g.finish();
    // Criterion does not expose its estimates to the caller, so the ratio is measured
    // directly, interleaving the two so machine noise affects both alike.
    let (mut fw, mut bw) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        fw.push(median_secs(|| drop(black_box(forward(&m, &x, &y))), 3));
        bw.push(median_secs(
            || drop(black_box(loss::value_and_grad(&m, &x, &y))),
            3,
        ));
    }
    fw.sort_by(f64::total_cmp);
    bw.sort_by(f64::total_cmp);
    let (f_med, b_med) = (fw[fw.len() / 2], bw[bw.len() / 2]);
    println!(
        "grad overhead B3: forward {:.3} ms, value_and_grad {:.3} ms, ratio {:.2} (goal <= 3)",
        f_med * 1e3,
        b_med * 1e3,
        b_med / f_med
    );
    // `FERRAX_BENCH_PROFILE=1`: where value_and_grad's time goes, step by step.
    if std::env::var_os("FERRAX_BENCH_PROFILE").is_some() {
        let (_, prof) = ferrax::profiler::profile(|| {
            for _ in 0..10 {
                drop(black_box(loss::value_and_grad(&m, &x, &y)));
            }
        });
        println!("value_and_grad, 10 calls:\n{}", prof.top(25));
    }
}

criterion_group!(benches, bench_grad_overhead);
criterion_main!(benches);
