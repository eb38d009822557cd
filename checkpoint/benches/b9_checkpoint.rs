//! B9: checkpointing 256 MB (16 leaves of 16 MB f32). Measures the time the caller is
//! blocked in `save` (the snapshot), the time until the step is durably committed (write,
//! fsync, rename, fsync of the parent), and restore throughput.
//!
//! Run: `cargo bench -p ferrax-checkpoint --bench b9_checkpoint`. The directory is under
//! the system temp dir (`TMPDIR` to change it); restore reads a just-written step, so it
//! mostly measures the page cache, parsing and checksumming, not the disk.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ferrax_checkpoint::{CheckpointManager, Options, Value};
use ferrax_core::Array;
use std::time::{Duration, Instant};

const LEAVES: usize = 16;
const LEAF_ELEMS: usize = 4 << 20; // 16 MiB of f32
const TOTAL_BYTES: u64 = (LEAVES * LEAF_ELEMS * 4) as u64;

fn tree() -> Vec<Array> {
    (0..LEAVES)
        .map(|i| {
            let v: Vec<f32> = (0..LEAF_ELEMS)
                .map(|j| (i * LEAF_ELEMS + j) as f32 * 1e-3)
                .collect();
            Array::from_vec(vec![LEAF_ELEMS / 1024, 1024], v).unwrap()
        })
        .collect()
}

fn b9(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("ferrax-b9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mgr = CheckpointManager::new(&dir, Options::default()).unwrap();
    let t = tree();
    let mut step = 0u64;
    let mut next = |mgr: &CheckpointManager| {
        // Keep one step on disk, deleted outside the timed region.
        if let Some(prev) = mgr.latest_step() {
            mgr.delete(prev).unwrap();
        }
        step += 1;
        step
    };

    let mut g = c.benchmark_group("b9_checkpoint_256MB");
    // Flat sampling: one iteration per sample (each is hundreds of milliseconds).
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("save_caller_blocked", |b| {
        b.iter_custom(|iters| {
            let mut blocked = Duration::ZERO;
            for _ in 0..iters {
                let s = next(&mgr);
                let t0 = Instant::now();
                mgr.save(s, &t, Value::Null).unwrap();
                blocked += t0.elapsed();
                mgr.wait_until_finished().unwrap();
            }
            blocked
        })
    });
    g.throughput(Throughput::Bytes(TOTAL_BYTES));
    g.bench_function("save_until_durable_commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = next(&mgr);
                let t0 = Instant::now();
                mgr.save(s, &t, Value::Null).unwrap();
                mgr.wait_until_finished().unwrap();
                total += t0.elapsed();
            }
            total
        })
    });
    let last = mgr.latest_step().unwrap();
    g.bench_function("restore", |b| b.iter(|| mgr.restore(last, &t).unwrap()));
    g.finish();
    drop(mgr);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, b9);
criterion_main!(benches);
