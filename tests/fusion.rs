//! The fused executor beyond elementwise chains: reductions run as the epilogue of the
//! region that produces their operand (one pass, no intermediate buffer, eager bits at any
//! thread count), `&mut` arguments donate their buffers, and dropped outputs are recycled.

use ferrax::exec::{bytes_allocated, clear_buffer_pool, pooled_idle_bytes, Executable};
use ferrax::jit::disable_jit;
use ferrax::prelude::*;

/// Deterministic, sign-mixed test data (no RNG needed).
fn data(n: usize, a: f32, b: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * a).sin() * 1.5 + b).collect()
}

fn tensor<S: StaticShape>(a: f32, b: f32) -> Tensor<S> {
    Tensor::from_vec(data(S::STATIC_NUMEL.unwrap(), a, b)).unwrap()
}

/// Runs `f` on a rayon pool of `threads` threads.
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Runs an executable once, returning its outputs and the bytes the executor allocated.
fn run_counted(exe: &Executable, args: &[&Array]) -> (Vec<Array>, u64) {
    clear_buffer_pool();
    let args: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
    let before = bytes_allocated();
    let out = exe.run(&args).unwrap();
    (out, bytes_allocated() - before)
}

/// `|got - want| <= tol * sum |terms|` for a sum whose exact value is `want` (f64 oracle):
/// f32 pairwise summation error is well below 1e-6 of the absolute mass at these sizes.
fn assert_sum_close(got: f32, want: f64, mass: f64, what: &str) {
    let tol = 1e-6 * mass.max(1.0);
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: fused {got} vs f64 oracle {want} (tol {tol})"
    );
}

// Not a multiple of the chunk or leaf size, and above the parallel threshold.
const N: usize = (1 << 18) + 37;

#[jit]
fn dot_plus(x: &Tensor<(C<N>,)>, y: &Tensor<(C<N>,)>, z: &Tensor<(C<N>,)>) -> Tensor<()> {
    (x * y + z).sum()
}

#[test]
fn full_sum_runs_as_the_regions_epilogue() {
    let (x, y, z) = (
        tensor::<(C<N>,)>(0.37, 0.1),
        tensor::<(C<N>,)>(0.11, -0.2),
        tensor::<(C<N>,)>(0.05, 0.3),
    );
    let exe = Executable::compile(&dot_plus::trace(&x, &y, &z).unwrap()).unwrap();
    assert_eq!(exe.step_count(), 1, "{:?}", exe.describe());
    assert_eq!(exe.fused_count(), 1);
    assert!(
        exe.describe()[0].contains("reduce_sum"),
        "{:?}",
        exe.describe()
    );
    let (out, bytes) = run_counted(&exe, &[x.array(), y.array(), z.array()]);
    // The scalar result plus one partial per 256-element leaf: no N-sized intermediate.
    assert_eq!(bytes, (4 + N.div_ceil(256) * 4) as u64);
    let got = out[0].to_vec::<f32>().unwrap()[0];
    let (xv, yv, zv) = (
        x.to_vec().unwrap(),
        y.to_vec().unwrap(),
        z.to_vec().unwrap(),
    );
    let terms: Vec<f64> = (0..N).map(|i| (xv[i] * yv[i] + zv[i]) as f64).collect();
    let want: f64 = terms.iter().sum();
    let mass: f64 = terms.iter().map(|t| t.abs()).sum();
    assert_sum_close(got, want, mass, "sum(x*y+z)");
    // Same leaves and tree as the eager reduction: the same bits, at any thread count.
    let eager = disable_jit(|| dot_plus(&x, &y, &z));
    let one = with_threads(1, || dot_plus(&x, &y, &z));
    let two = with_threads(2, || dot_plus(&x, &y, &z));
    let four = with_threads(4, || dot_plus(&x, &y, &z));
    assert_eq!(got.to_bits(), eager.item().unwrap().to_bits());
    assert!(one.array().bit_eq(eager.array()));
    assert!(two.array().bit_eq(one.array()));
    assert!(four.array().bit_eq(one.array()));
}

const R1: usize = 300;
const C1: usize = 1000;

#[jit]
fn short_rows(
    x: &Tensor<(C<R1>, C<C1>)>,
    y: &Tensor<(C<R1>, C<C1>)>,
) -> (Tensor<(C<R1>,)>, Tensor<(C<R1>,)>) {
    let v = (x * y + 0.25).tanh();
    (v.sum_axis::<1>(), v.max_axis::<1>())
}

#[test]
fn row_sums_of_short_rows_fuse_and_match_eager_bits() {
    let x = tensor::<(C<R1>, C<C1>)>(0.013, 0.2);
    let y = tensor::<(C<R1>, C<C1>)>(0.007, -0.4);
    let exe = Executable::compile(&short_rows::trace(&x, &y).unwrap()).unwrap();
    assert_eq!(exe.step_count(), 1, "{:?}", exe.describe());
    let d = &exe.describe()[0];
    assert!(d.contains("reduce_sum") && d.contains("reduce_max"), "{d}");
    let (out, bytes) = run_counted(&exe, &[x.array(), y.array()]);
    assert_eq!(bytes, (2 * R1 * 4) as u64, "only the two row vectors");
    let (xv, yv) = (x.to_vec().unwrap(), y.to_vec().unwrap());
    let sums = out[0].to_vec::<f32>().unwrap();
    let maxs = out[1].to_vec::<f32>().unwrap();
    for r in 0..R1 {
        let row: Vec<f32> = (0..C1)
            .map(|j| (xv[r * C1 + j] * yv[r * C1 + j] + 0.25).tanh())
            .collect();
        let want: f64 = row.iter().map(|&v| v as f64).sum();
        let mass: f64 = row.iter().map(|&v| (v as f64).abs()).sum();
        // Our tanh differs from std's by a few ulps per element.
        assert_sum_close(sums[r], want, mass * 4.0, "row sum");
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert!((maxs[r] - m).abs() <= 1e-6, "row max {} vs {m}", maxs[r]);
    }
    let eager = disable_jit(|| short_rows(&x, &y));
    let one = with_threads(1, || short_rows(&x, &y));
    let three = with_threads(3, || short_rows(&x, &y));
    for (k, e) in [&eager.0, &eager.1].into_iter().enumerate() {
        assert!(out[k].bit_eq(e.array()), "output {k} differs from eager");
    }
    assert!(one.0.array().bit_eq(three.0.array()) && one.1.array().bit_eq(three.1.array()));
    assert!(one.0.array().bit_eq(&out[0]));
}

const R2: usize = 24;
const C2: usize = 10_000;

#[jit]
fn long_rows(x: &Tensor<(C<R2>, C<C2>)>, b: &Tensor<(C<C2>,)>) -> Tensor<(C<R2>,)> {
    (x * 2.0 - b).sum_axis::<1>()
}

#[test]
fn row_sums_of_long_rows_fold_by_leaves() {
    let x = tensor::<(C<R2>, C<C2>)>(0.003, 0.5);
    let b = tensor::<(C<C2>,)>(0.02, 0.1);
    let exe = Executable::compile(&long_rows::trace(&x, &b).unwrap()).unwrap();
    assert_eq!(exe.step_count(), 1, "{:?}", exe.describe());
    let (out, bytes) = run_counted(&exe, &[x.array(), b.array()]);
    assert_eq!(
        bytes,
        (R2 * C2.div_ceil(256) * 4 + R2 * 4) as u64,
        "leaf partials and the result"
    );
    let (xv, bv) = (x.to_vec().unwrap(), b.to_vec().unwrap());
    let got = out[0].to_vec::<f32>().unwrap();
    for r in 0..R2 {
        let terms: Vec<f64> = (0..C2)
            .map(|j| (xv[r * C2 + j] * 2.0 - bv[j]) as f64)
            .collect();
        let mass: f64 = terms.iter().map(|t| t.abs()).sum();
        assert_sum_close(got[r], terms.iter().sum(), mass, "long row sum");
    }
    let eager = disable_jit(|| long_rows(&x, &b));
    assert!(out[0].bit_eq(eager.array()));
    let one = with_threads(1, || long_rows(&x, &b));
    let two = with_threads(2, || long_rows(&x, &b));
    assert!(one.array().bit_eq(two.array()) && one.array().bit_eq(&out[0]));
}

#[jit]
fn value_and_total(x: &Tensor<(C<N>,)>) -> (Tensor<(C<N>,)>, Tensor<()>) {
    let y = (x * 0.5 + 1.0).exp();
    let s = y.sum();
    (y, s)
}

#[test]
fn a_reduced_value_can_also_be_an_output() {
    let x = tensor::<(C<N>,)>(0.21, -0.3);
    let exe = Executable::compile(&value_and_total::trace(&x).unwrap()).unwrap();
    assert_eq!(exe.step_count(), 1, "{:?}", exe.describe());
    let (out, bytes) = run_counted(&exe, &[x.array()]);
    assert_eq!(bytes, (N * 4 + 4 + N.div_ceil(256) * 4) as u64);
    let (ey, es) = disable_jit(|| value_and_total(&x));
    assert!(out[0].bit_eq(ey.array()));
    assert!(out[1].bit_eq(es.array()));
    let want: f64 = ey.to_vec().unwrap().iter().map(|&v| v as f64).sum();
    assert_sum_close(out[1].to_vec::<f32>().unwrap()[0], want, want, "sum(exp)");
}

#[jit]
fn reduce_then_use(x: &Tensor<(C<64>, C<32>)>) -> Tensor<(C<64>, C<32>)> {
    // softmax-like: the row max is broadcast back into a second region.
    let m = x.max_axis::<1>();
    let e = (x - m
        .reshape::<(C<64>, C<1>)>()
        .broadcast_to::<(C<64>, C<32>)>())
    .exp();
    let s = e.sum_axis::<1>();
    e / s
        .reshape::<(C<64>, C<1>)>()
        .broadcast_to::<(C<64>, C<32>)>()
}

#[test]
fn a_reduction_read_back_into_the_region_shape_splits_regions_correctly() {
    let x = tensor::<(C<64>, C<32>)>(0.3, 0.0);
    let got = reduce_then_use(&x);
    let xv = x.to_vec().unwrap();
    let g = got.to_vec().unwrap();
    for r in 0..64 {
        let row = &xv[r * 32..(r + 1) * 32];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for j in 0..32 {
            let want = (row[j] as f64 - m).exp() / z;
            assert!(
                (g[r * 32 + j] as f64 - want).abs() <= 1e-6,
                "softmax[{r},{j}]"
            );
        }
    }
    let eager = disable_jit(|| reduce_then_use(&x));
    assert!(got.array().bit_eq(eager.array()));
}

const P: usize = 1 << 18;

#[jit]
fn sgd(p: &mut Tensor<(C<P>,)>, g: &Tensor<(C<P>,)>, lr: f32) {
    *p = &*p - &(g * lr);
}

#[test]
fn mut_arguments_donate_their_buffers() {
    let start = data(P, 0.1, 0.0);
    let gv = data(P, 0.07, 0.2);
    let mut p = Tensor::<(C<P>,)>::from_vec(start.clone()).unwrap();
    let g = Tensor::<(C<P>,)>::from_vec(gv.clone()).unwrap();
    sgd(&mut p, &g, 0.5); // compiles
    clear_buffer_pool();
    let before = bytes_allocated();
    sgd(&mut p, &g, 0.5);
    assert_eq!(
        bytes_allocated() - before,
        0,
        "the update is written into p's own buffer"
    );
    let got = p.to_vec().unwrap();
    for i in (0..P).step_by(997) {
        let want = start[i] - gv[i] * 0.5 - gv[i] * 0.5;
        assert!(
            (got[i] - want).abs() <= 1e-6,
            "p[{i}] = {} vs {want}",
            got[i]
        );
    }
    // A parameter shared with another live value is not donated: the other copy keeps its
    // values and the update gets a new buffer.
    let keep = p.clone();
    let kept_before = keep.to_vec().unwrap();
    clear_buffer_pool();
    let before = bytes_allocated();
    sgd(&mut p, &g, 0.5);
    assert_eq!(bytes_allocated() - before, (P * 4) as u64);
    assert_eq!(keep.to_vec().unwrap(), kept_before);
    let now = p.to_vec().unwrap();
    for i in (0..P).step_by(991) {
        let want = kept_before[i] - gv[i] * 0.5;
        assert!((now[i] - want).abs() <= 1e-6);
    }
    assert_eq!(sgd::stats().compiles, 1);
}

#[jit]
fn affine(x: &Tensor<(C<P>,)>, a: f32) -> Tensor<(C<P>,)> {
    (x * a + 1.0).tanh()
}

#[test]
fn dropped_outputs_are_recycled_and_live_ones_never_are() {
    let x = tensor::<(C<P>,)>(0.01, 0.0);
    let want = |a: f32| -> Vec<f32> { disable_jit(|| affine(&x, a)).to_vec().unwrap() };
    clear_buffer_pool();
    let y1 = affine(&x, 2.0);
    drop(y1);
    assert_eq!(
        pooled_idle_bytes(),
        P * 4,
        "the dropped output waits in the pool"
    );
    let before = bytes_allocated();
    let y2 = affine(&x, 2.0);
    assert_eq!(
        bytes_allocated() - before,
        0,
        "the dropped buffer is refilled"
    );
    assert_eq!(y2.to_vec().unwrap(), want(2.0));
    // y2 is alive: the next call must not write into it.
    let before = bytes_allocated();
    let y3 = affine(&x, 3.0);
    assert_eq!(bytes_allocated() - before, (P * 4) as u64);
    assert_eq!(y2.to_vec().unwrap(), want(2.0));
    assert_eq!(y3.to_vec().unwrap(), want(3.0));
    clear_buffer_pool();
    assert_eq!(pooled_idle_bytes(), 0);
}

const BIG: usize = (1 << 22) + 5;

#[jit]
fn big_chain(x: &Tensor<(C<BIG>,)>) -> (Tensor<(C<BIG>,)>, Tensor<()>) {
    let y = (x * 1.25 - 0.5).gelu_tanh();
    let m = y.max();
    (y, m)
}

#[test]
fn large_outputs_streamed_past_the_cache_equal_eager() {
    // Above the streaming threshold (non-temporal stores) with a tail that is not a whole
    // vector; values against eager bits and a closed form at sampled points.
    let x =
        Tensor::<(C<BIG>,)>::from_vec((0..BIG).map(|i| (i % 4001) as f32 * 1e-3 - 2.0).collect())
            .unwrap();
    let (y, m) = big_chain(&x);
    let (ey, em) = disable_jit(|| big_chain(&x));
    assert!(y.array().bit_eq(ey.array()));
    assert!(m.array().bit_eq(em.array()));
    let yv = y.to_vec().unwrap();
    for i in (0..BIG).step_by(65_537).chain([BIG - 1]) {
        let u = ((i % 4001) as f32 * 1e-3 - 2.0) as f64 * 1.25 - 0.5;
        let want = 0.5
            * u
            * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (u + 0.044715 * u * u * u)).tanh());
        assert!(
            (yv[i] as f64 - want).abs() <= 1e-5,
            "gelu[{i}] = {} vs {want}",
            yv[i]
        );
    }
}

/// B2's program on array ops, with a runtime scalar input `a` (a splat of a program
/// input, not a constant) and two outputs: the pre-activation and the result.
fn b2_program(n: usize) -> ferrax::ir::Program {
    use ferrax::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
    use ferrax::{AVal, DType};
    let avals = [
        AVal::new(vec![n], DType::F32),
        AVal::new(vec![], DType::F32),
    ];
    let (prog, captured) = ferrax::trace::trace_fn(&avals, |v| {
        let y = binary_bcast(BinaryOp::Mul, &v[0], &v[1])?;
        let y = binary_scalar(BinaryOp::Sub, &y, 0.5)?;
        let g = ferrax::ops::arith::gelu_tanh(&y)?;
        let t = ferrax::prim::unary::unary(ferrax::prim::unary::UnaryOp::Tanh, &g)?;
        let e = ferrax::prim::unary::unary(ferrax::prim::unary::UnaryOp::Exp, &t)?;
        Ok(vec![y, binary_bcast(BinaryOp::Div, &e, &g)?])
    })
    .unwrap();
    assert!(captured.is_empty());
    prog
}

/// Generated code (one loop, the whole chain in vector registers) gives the chunked
/// interpreter's bits for every output, at any thread count, for lengths with and without
/// a partial last vector, and when its output takes over a dying input's buffer.
#[test]
fn generated_regions_equal_the_interpreter_bit_for_bit() {
    use ferrax::exec::CompileOptions;
    let avx512 = cfg!(all(target_arch = "x86_64", target_os = "linux"))
        && std::env::var_os("FERRAX_NO_CODEGEN").is_none()
        && {
            #[cfg(target_arch = "x86_64")]
            {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        };
    for n in [(1 << 18) + 37, 1 << 18, 4096 + 16, 100] {
        let prog = b2_program(n);
        let gen = Executable::compile(&prog).unwrap();
        let interp = Executable::compile_with(
            &prog,
            CompileOptions {
                codegen: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(interp.generated_count(), 0);
        if avx512 {
            assert_eq!(gen.generated_count(), 1, "{:?}", gen.describe());
        } else {
            eprintln!("generated code not checked: no AVX-512F/FMA on x86-64 Linux here");
        }
        // Specials in the data: NaN, infinities, signed zeros, values past exp's clamp.
        let mut x = data(n, 0.37, 0.1);
        for (i, s) in [
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            -0.0,
            0.0,
            300.0,
            -300.0,
        ]
        .into_iter()
        .enumerate()
        {
            x[i * 13 % n] = s;
        }
        let args = || {
            vec![
                Array::from_vec(vec![n], x.clone()).unwrap(),
                Array::from_vec(vec![], vec![1.25f32]).unwrap(),
            ]
        };
        let bits = |a: &Array| -> Vec<u32> {
            a.to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        let want: Vec<Vec<u32>> = interp.run(&args()).unwrap().iter().map(bits).collect();
        for threads in [1, 2] {
            // `run_owned` lets the region write into the dying input's buffer.
            let got = with_threads(threads, || gen.run_owned(args()).unwrap());
            let got: Vec<Vec<u32>> = got.iter().map(bits).collect();
            assert_eq!(got.len(), want.len());
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Some(i) = (0..n).find(|&i| g[i] != w[i]) {
                    panic!(
                        "n {n}, {threads} threads, output {k} at {i} (x = {}): generated {} vs interpreter {}",
                        x[i],
                        f32::from_bits(g[i]),
                        f32::from_bits(w[i])
                    );
                }
            }
        }
    }
}
