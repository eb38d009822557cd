//! Staged functions: `#[jit]` equals eager, caches per key, threads `&mut` state, inlines
//! into enclosing traces, fuses elementwise chains, and keeps results deterministic.

use ferrax::exec::{bytes_allocated, Executable};
use ferrax::jit::disable_jit;
use ferrax::prelude::*;

fn ramp<S: StaticShape>(scale: f32, shift: f32) -> Tensor<S> {
    let n = S::STATIC_NUMEL.unwrap();
    Tensor::from_vec(
        (0..n)
            .map(|i| (i as f32 * 0.37).sin() * scale + shift)
            .collect(),
    )
    .unwrap()
}

#[jit]
fn affine_tanh(x: &Tensor<(C<4>, C<3>)>, b: &Tensor<(C<3>,)>, scale: f32) -> Tensor<(C<4>, C<3>)> {
    ((x * scale) + b).tanh()
}

#[test]
fn jit_equals_eager_and_caches() {
    let x = ramp::<(C<4>, C<3>)>(2.0, 0.1);
    let b = ramp::<(C<3>,)>(1.0, -0.3);
    let eager = disable_jit(|| affine_tanh(&x, &b, 1.5));
    let before = affine_tanh::stats();
    let y1 = affine_tanh(&x, &b, 1.5);
    let y2 = affine_tanh(&x, &b, 1.5);
    let after = affine_tanh::stats();
    assert_eq!(
        after.compiles - before.compiles,
        1,
        "first call compiles once"
    );
    assert_eq!(after.hits - before.hits, 1, "second call hits the cache");
    assert_eq!(y1.to_vec().unwrap(), y2.to_vec().unwrap());
    for (a, e) in y1.to_vec().unwrap().iter().zip(eager.to_vec().unwrap()) {
        assert!((a - e).abs() <= 1e-6, "jit {a} vs eager {e}");
    }
    // A different static value compiles again; the same one does not.
    let _ = affine_tanh(&x, &b, 2.5);
    let _ = affine_tanh(&x, &b, 2.5);
    let last = affine_tanh::stats();
    assert_eq!(last.compiles - after.compiles, 1);
}

#[jit]
fn row_sum_sq<B: Dim>(x: &Tensor<(B, C<2>)>) -> Tensor<(B, C<2>)> {
    x * x
}

#[test]
fn dyn_size_is_part_of_the_key() {
    let a =
        Tensor::<(Dyn, C<2>)>::from_vec_shape((Dyn(3), C), vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::<(Dyn, C<2>)>::from_vec_shape((Dyn(2), C), vec![1., 2., 3., 4.]).unwrap();
    let s0 = row_sum_sq::stats();
    assert_eq!(
        row_sum_sq(&a).to_vec().unwrap(),
        vec![1., 4., 9., 16., 25., 36.]
    );
    assert_eq!(row_sum_sq(&b).to_vec().unwrap(), vec![1., 4., 9., 16.]);
    assert_eq!(
        row_sum_sq(&a).to_vec().unwrap(),
        vec![1., 4., 9., 16., 25., 36.]
    );
    let s1 = row_sum_sq::stats();
    assert_eq!(s1.compiles - s0.compiles, 2, "two Dyn sizes, two programs");
    assert_eq!(s1.hits - s0.hits, 1);
}

#[derive(Tree, Clone)]
struct State {
    w: Tensor<(C<3>,)>,
    count: Tensor<()>,
}

#[jit]
fn sgd_step(state: &mut State, g: &Tensor<(C<3>,)>, lr: f32) -> Tensor<()> {
    state.w = &state.w - &(g * lr);
    state.count = &state.count + 1.0;
    state.count.clone()
}

#[test]
fn mut_state_is_written_back() {
    let mut s = State {
        w: Tensor::from_vec(vec![1.0, 2.0, 3.0]).unwrap(),
        count: Tensor::scalar(0.0),
    };
    let g = Tensor::<(C<3>,)>::from_vec(vec![1.0, -1.0, 0.5]).unwrap();
    for i in 1..=3 {
        let c = sgd_step(&mut s, &g, 0.5);
        assert_eq!(c.item().unwrap(), i as f32);
    }
    assert_eq!(s.w.to_vec().unwrap(), vec![-0.5, 3.5, 2.25]);
    assert_eq!(s.count.item().unwrap(), 3.0);
    assert_eq!(sgd_step::stats().compiles, 1);
}

fn helper_softplusish(x: &Tensor<(C<8>,)>) -> Tensor<(C<8>,)> {
    (x.exp() + 1.0).log()
}

#[jit]
fn uses_helper(x: &Tensor<(C<8>,)>) -> Tensor<(C<8>,)> {
    helper_softplusish(x) * 2.0
}

#[jit]
fn outer(x: &Tensor<(C<8>,)>) -> Tensor<(C<8>,)> {
    uses_helper(x) + 1.0
}

#[test]
fn helpers_and_nested_jit_are_inlined() {
    let x = ramp::<(C<8>,)>(1.0, 0.0);
    let prog = outer::trace(&x).unwrap();
    let text = prog.to_string();
    // The nested staged function and the helper appear as plain equations.
    assert!(text.contains("exp"), "{text}");
    assert!(text.contains("log"), "{text}");
    assert!(!text.contains("call"), "{text}");
    let eager = disable_jit(|| outer(&x));
    let staged = outer(&x);
    for (a, e) in staged.to_vec().unwrap().iter().zip(eager.to_vec().unwrap()) {
        assert!((a - e).abs() <= 1e-6);
    }
    assert!(uses_helper::stats().inlined >= 1);
}

#[test]
fn concretizing_a_tracer_is_a_clear_error() {
    #[jit]
    fn reads_value(x: &Tensor<()>) -> Tensor<()> {
        let err = x.item().unwrap_err();
        assert!(err.to_string().contains("traced"), "{err}");
        x.clone()
    }
    let _ = reads_value(&Tensor::scalar(1.0));
}

#[test]
fn five_op_chain_fuses_into_one_kernel_without_intermediates() {
    const N: usize = 1 << 18;
    let x = Tensor::<(C<N>,)>::from_vec((0..N).map(|i| (i % 97) as f32 * 0.01).collect()).unwrap();
    #[jit]
    fn chain(x: &Tensor<(C<262144>,)>) -> Tensor<(C<262144>,)> {
        ((x * 1.25 - 0.5).tanh() + 2.0).sqrt() * 3.0
    }
    let prog = chain::trace(&x).unwrap();
    let exe = Executable::compile(&prog).unwrap();
    assert_eq!(exe.step_count(), 1, "{:?}", exe.describe());
    assert_eq!(exe.fused_count(), 1);
    let before = bytes_allocated();
    let out = exe.run(&[x.array().clone()]).unwrap();
    let allocated = bytes_allocated() - before;
    assert_eq!(
        allocated,
        (N * 4) as u64,
        "only the output buffer is allocated"
    );
    let eager = disable_jit(|| chain(&x));
    let got = out[0].to_vec::<f32>().unwrap();
    for (a, e) in got.iter().zip(eager.to_vec().unwrap()) {
        assert!((a - e).abs() <= 2e-6 * e.abs().max(1.0), "{a} vs {e}");
    }
}

#[test]
fn compiled_results_do_not_depend_on_thread_count() {
    const N: usize = 1 << 19;
    #[jit]
    fn f(x: &Tensor<(C<524288>,)>) -> Tensor<(C<524288>,)> {
        (x * 0.5 + 0.25).exp() * x
    }
    let x = Tensor::<(C<N>,)>::from_vec((0..N).map(|i| ((i * 7) % 1000) as f32 * 1e-3).collect())
        .unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let a = one.install(|| f(&x));
    let b = two.install(|| f(&x));
    let c = f(&x);
    assert!(a.array().bit_eq(b.array()));
    assert!(a.array().bit_eq(c.array()));
}

#[test]
fn exact_algebraic_identities_are_removed() {
    use ferrax::exec::Executable;
    #[jit]
    fn ids(x: &Tensor<(C<4>,)>) -> Tensor<(C<4>,)> {
        (((x * 1.0) / 1.0) - 0.0).exp()
    }
    #[jit]
    fn not_an_identity(x: &Tensor<(C<4>,)>) -> Tensor<(C<4>,)> {
        // x + 0.0 maps -0.0 to +0.0, so it must stay.
        x + 0.0
    }
    let x = Tensor::<(C<4>,)>::from_vec(vec![-0.0, 1.0, 2.0, -3.0]).unwrap();
    let exe = Executable::compile(&ids::trace(&x).unwrap()).unwrap();
    assert_eq!(exe.describe(), vec!["exp".to_string()]);
    let exe = Executable::compile(&not_an_identity::trace(&x).unwrap()).unwrap();
    assert!(exe.program().contains_prim("add"));
    assert_eq!(
        not_an_identity(&x).to_vec().unwrap()[0].to_bits(),
        0.0f32.to_bits()
    );
}

#[derive(Tree)]
struct Scaled {
    w: Tensor<(C<2>,)>,
    #[tree(static)]
    factor: f32,
    #[tree(static)]
    label: Vec<&'static str>,
}

#[jit]
fn apply_scaled(m: &Scaled) -> Tensor<(C<2>,)> {
    &m.w * m.factor
}

#[test]
fn static_fields_of_tree_arguments_select_the_program() {
    let a = Scaled {
        w: Tensor::ones(),
        factor: 2.0,
        label: vec!["a"],
    };
    let b = Scaled {
        w: Tensor::ones(),
        factor: 3.0,
        label: vec!["a"],
    };
    assert_eq!(apply_scaled(&a).to_vec().unwrap(), vec![2.0, 2.0]);
    assert_eq!(apply_scaled(&b).to_vec().unwrap(), vec![3.0, 3.0]);
    assert_eq!(apply_scaled(&a).to_vec().unwrap(), vec![2.0, 2.0]);
    let s = apply_scaled::stats();
    assert_eq!((s.compiles, s.hits), (2, 1));
}
