//! B2 (elementwise chain, eager vs `#[jit]` fused vs the copy ceiling) and B4-style call
//! overhead of a cached tiny jitted function. See shared/design/BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrax::prelude::*;
use std::hint::black_box;

const N: usize = 1 << 24; // 16M f32

#[jit]
fn gelu_affine(x: &Tensor<(C<N>,)>) -> Tensor<(C<N>,)> {
    (x * 1.25 - 0.5).gelu_tanh()
}

fn b2(c: &mut Criterion) {
    let x = Tensor::<(C<N>,)>::from_vec((0..N).map(|i| ((i % 4001) as f32) * 1e-3 - 2.0).collect())
        .unwrap();
    let mut g = c.benchmark_group("B2_gelu_tanh_16M");
    g.sample_size(10);
    // Decimal units: BENCHMARKS.md states B2 and the copy ceiling in GB/s (1e9 bytes).
    g.throughput(Throughput::BytesDecimal((N * 8) as u64));
    g.bench_function("eager", |b| {
        b.iter(|| black_box((&x * 1.25 - 0.5).gelu_tanh()))
    });
    let _ = gelu_affine(&x);
    g.bench_function("jit_fused", |b| b.iter(|| black_box(gelu_affine(&x))));
    // The ceilings: the same bytes copied into a buffer that already exists (memory
    // bandwidth), and into a freshly allocated one (plus page faults on first touch).
    let src = x.to_vec().unwrap();
    let mut dst = vec![0.0f32; N];
    g.bench_function("copy_ceiling_prealloc", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    // The same copy split across the rayon pool (the fused pass runs there too).
    g.bench_function("copy_ceiling_prealloc_parallel", |b| {
        use rayon::prelude::*;
        b.iter(|| {
            dst.par_chunks_mut(1 << 16)
                .zip(black_box(&src).par_chunks(1 << 16))
                .for_each(|(d, s)| d.copy_from_slice(s));
            black_box(&dst);
        })
    });
    g.bench_function("copy_ceiling_fresh", |b| {
        b.iter(|| {
            let v: Vec<f32> = black_box(&src).clone();
            black_box(v)
        })
    });
    g.finish();
}

#[jit]
fn tiny(x: &Tensor<(C<16>, C<2>)>, w: &Tensor<(C<16>, C<2>)>) -> Tensor<(C<16>, C<2>)> {
    (x * w + 1.0).tanh()
}

fn b4_overhead(c: &mut Criterion) {
    let x = Tensor::<(C<16>, C<2>)>::ones();
    let w = Tensor::<(C<16>, C<2>)>::full(0.5);
    let _ = tiny(&x, &w);
    c.bench_function("B4_cached_tiny_jit_call", |b| {
        b.iter(|| black_box(tiny(&x, &w)))
    });
}

criterion_group!(benches, b2, b4_overhead);
criterion_main!(benches);
