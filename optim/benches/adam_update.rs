//! B8: one Adam update (`chain(scale_by_adam, scale_by_learning_rate)` + `apply_updates`)
//! on 10M f32 parameters, eager (op by op) and compiled (traced once, run as fused loops,
//! buffers donated as a `#[jit]` step with `&mut` state does). Effective bandwidth counts
//! the compulsory traffic: read params, grads, mu, nu and write params, mu, nu
//! (7 x 4 bytes per parameter). The ceiling is a plain copy moving the same bytes (read
//! 14 bytes and write 14 bytes per parameter) on the same machine, single-threaded
//! (`memcpy`) and split over every core (the executor runs its fused loops on rayon); the
//! bench ends with a summary line per variant: median time, effective GB/s (1e9 bytes)
//! and the fraction of the best copy's bandwidth.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrax_core::exec::Executable;
use ferrax_core::trace::trace_fn;
use ferrax_core::tree::{self, Path, PathElem};
use ferrax_core::{Array, DType};
use ferrax_optim::{adam, apply_updates, OptState, Transform, UpdateCtx};
use std::time::{Duration, Instant};

const N: usize = 10_000_000;
/// Compulsory traffic of one Adam step: 4 f32 arrays read, 3 written.
const BYTES: usize = 7 * 4 * N;

/// Copies `src` into `dst` split into one contiguous piece per thread.
fn parallel_copy(dst: &mut [u8], src: &[u8], threads: usize) {
    let chunk = src.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (d, c) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
            s.spawn(move || d.copy_from_slice(c));
        }
    });
}

/// Median wall time of `iters` calls of `f` (after one warm-up call).
fn median_time(iters: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut ts: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    ts.sort();
    ts[iters / 2]
}

fn step(tx: &Transform, p: &Array, g: &Array, state: &mut OptState) -> Array {
    let paths = [Path(vec![PathElem::Index(0)])];
    let ctx = UpdateCtx {
        paths: &paths,
        params: Some(std::slice::from_ref(p)),
        value: None,
    };
    let u = tx.update_leaves(vec![g.clone()], state, &ctx).unwrap();
    apply_updates(p, &u[0]).unwrap()
}

fn bench(c: &mut Criterion) {
    let tx = adam(1e-3);
    let p = Array::from_vec(
        vec![N],
        (0..N)
            .map(|i| (i % 1000) as f32 * 1e-3)
            .collect::<Vec<f32>>(),
    )
    .unwrap();
    let g = Array::from_vec(
        vec![N],
        (0..N)
            .map(|i| ((i % 7) as f32 - 3.0) * 1e-2)
            .collect::<Vec<f32>>(),
    )
    .unwrap();
    let state0 = tx.init(&p).unwrap();
    let mut grp = c.benchmark_group("b8_adam_update_10M_f32");
    grp.sample_size(10);
    grp.throughput(Throughput::Bytes(BYTES as u64));

    // The copy ceiling: half the traffic read, half written.
    let src = vec![1u8; BYTES / 2];
    let mut dst = vec![0u8; BYTES / 2];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    grp.bench_function("copy_ceiling_memcpy", |b| {
        b.iter(|| dst.copy_from_slice(std::hint::black_box(&src)))
    });
    grp.bench_function("copy_ceiling_threads", |b| {
        b.iter(|| parallel_copy(&mut dst, std::hint::black_box(&src), threads))
    });

    grp.bench_function("eager", |b| {
        let mut state = state0.clone();
        let mut params = p.clone();
        b.iter(|| params = step(&tx, &params, &g, &mut state))
    });

    // The jitted step: inputs (params, grads, state leaves) -> (params, state leaves).
    let n_state = tree::leaf_count(&state0);
    let mut avals = vec![p.aval().clone(), g.aval().clone()];
    avals.extend(tree::leaves(&state0).iter().map(|a| a.aval().clone()));
    let (prog, captured) = trace_fn(&avals, |ins| {
        let mut st = tree::unflatten(&state0, ins[2..].to_vec())?;
        let newp = step(&tx, &ins[0], &ins[1], &mut st);
        let mut outs = vec![newp];
        outs.extend(tree::leaves(&st));
        Ok(outs)
    })
    .unwrap();
    assert!(captured.is_empty());
    if std::env::var_os("B8_PRINT_PROGRAM").is_some() {
        eprintln!("{prog}");
    }
    let exe = Executable::compile(&prog).unwrap();
    eprintln!(
        "jitted Adam step: {} kernel steps, {} fused regions",
        exe.step_count(),
        exe.fused_count()
    );
    grp.bench_function("jit", |b| {
        let mut args: Vec<Array> = vec![p.clone(), g.clone()];
        args.extend(tree::leaves(&state0));
        b.iter(|| {
            let mut outs = exe.run_owned(std::mem::take(&mut args)).unwrap();
            let state_leaves = outs.split_off(1);
            args = vec![outs.pop().unwrap(), g.clone()];
            args.extend(state_leaves);
            assert_eq!(args.len(), 2 + n_state);
        })
    });
    grp.finish();

    // Summary in GB/s against the copy ceiling (medians of a few runs each).
    let gbs = |t: Duration| BYTES as f64 / t.as_secs_f64() / 1e9;
    let t_memcpy = median_time(7, || dst.copy_from_slice(std::hint::black_box(&src)));
    let t_threads = median_time(7, || {
        parallel_copy(&mut dst, std::hint::black_box(&src), threads)
    });
    let t_eager = {
        let mut state = state0.clone();
        let mut params = p.clone();
        median_time(5, || params = step(&tx, &params, &g, &mut state))
    };
    let t_jit = {
        let mut args: Vec<Array> = vec![p.clone(), g.clone()];
        args.extend(tree::leaves(&state0));
        median_time(7, || {
            let mut outs = exe.run_owned(std::mem::take(&mut args)).unwrap();
            let state_leaves = outs.split_off(1);
            args = vec![outs.pop().unwrap(), g.clone()];
            args.extend(state_leaves);
        })
    };
    let ceiling = gbs(t_memcpy).max(gbs(t_threads));
    eprintln!("B8 summary ({threads} threads; {BYTES} bytes of compulsory traffic per step):");
    for (name, t) in [
        ("copy memcpy", t_memcpy),
        ("copy threads", t_threads),
        ("adam eager", t_eager),
        ("adam jit", t_jit),
    ] {
        eprintln!(
            "  {name:<13} median {:>8.2} ms  {:>6.2} GB/s  {:>5.1}% of the copy ceiling",
            t.as_secs_f64() * 1e3,
            gbs(t),
            100.0 * gbs(t) / ceiling
        );
    }
    assert_eq!(p.dtype(), DType::F32);
}

criterion_group!(benches, bench);
criterion_main!(benches);
