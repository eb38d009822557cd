//! B8: one Adam update (`chain(scale_by_adam, scale_by_learning_rate)` + `apply_updates`)
//! on 10M f32 parameters, eager (op by op) and compiled (traced once, run as fused loops,
//! buffers donated as a `#[jit]` step with `&mut` state does). Effective bandwidth counts
//! the compulsory traffic: read params, grads, mu, nu and write params, mu, nu
//! (7 x 4 bytes per parameter).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrax_core::exec::Executable;
use ferrax_core::trace::trace_fn;
use ferrax_core::tree::{self, Path, PathElem};
use ferrax_core::{Array, DType};
use ferrax_optim::{adam, apply_updates, OptState, Transform, UpdateCtx};

const N: usize = 10_000_000;

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
    grp.throughput(Throughput::Bytes((7 * 4 * N) as u64));

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
    let _ = DType::F32;
}

criterion_group!(benches, bench);
criterion_main!(benches);
