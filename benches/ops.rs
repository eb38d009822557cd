//! Op-level benchmarks (BENCHMARKS.md). B1: square matmul through the whole stack
//! (`Tensor::matmul` → `dot_general` → gemm), f32 at n = 256, 1024, 2048 and f64 at 1024.
//! Throughput is `2·n³` elements per iteration, so criterion's "elem/s" reads as FLOP/s.
//!
//! Run: `cargo bench --bench ops -- b1` (about a minute).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrax::{Elem, Tensor, C};
use std::hint::black_box;
use std::time::Duration;

fn filled<const N: usize, E: Elem>(seed: u32) -> Tensor<(C<N>, C<N>), E> {
    let mut s = seed;
    let v = (0..N * N)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            E::from_f64((s >> 8) as f64 / 16_777_216.0 - 0.5)
        })
        .collect();
    Tensor::from_vec(v).expect("sized")
}

fn b1_case<const N: usize, E: Elem + ferrax::ops::arith::Num>(c: &mut Criterion, samples: usize) {
    let a = filled::<N, E>(1);
    let b = filled::<N, E>(2);
    let mut g = c.benchmark_group(format!("b1_matmul_{}", E::DTYPE));
    g.sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(2 * (N as u64).pow(3)));
    g.bench_with_input(BenchmarkId::from_parameter(N), &N, |bench, _| {
        bench.iter(|| black_box(a.matmul(black_box(&b))))
    });
    g.finish();
}

/// B1: f32 square matmul at n = 256, 1024, 2048 and f64 at n = 1024.
fn b1(c: &mut Criterion) {
    b1_case::<256, f32>(c, 50);
    b1_case::<1024, f32>(c, 20);
    b1_case::<2048, f32>(c, 10);
    b1_case::<1024, f64>(c, 10);
}

criterion_group!(b1_group, b1);
criterion_main!(b1_group);
