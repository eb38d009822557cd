//! The debugging tools of staged functions: `debug_nans` names the primitive that first
//! produced a NaN (eagerly and in compiled programs), and the profiler records steps and
//! writes a Chrome trace.

use ferrax::debug::debug_nans;
use ferrax::prelude::*;
use ferrax::profiler::profile;

#[test]
fn debug_nans_names_the_primitive_eagerly() {
    let x = Tensor::<(C<3>,)>::from_vec(vec![1.0, -1.0, 4.0]).unwrap();
    let ok = debug_nans(true, || x.try_add(&x));
    assert!(ok.is_ok());
    let err = debug_nans(true, || ferrax::prim::unary::log(x.array())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("log") && msg.contains("NaN"), "{msg}");
    assert!(msg.contains("flat index 1"), "{msg}");
    // Off by default: the same op returns NaN silently.
    let y = ferrax::prim::unary::log(x.array()).unwrap();
    assert!(y.to_vec::<f32>().unwrap()[1].is_nan());
}

#[test]
fn debug_nans_in_a_compiled_program() {
    use ferrax::exec::Executable;
    use ferrax::trace::trace_fn;
    let x = Tensor::<(C<3>,)>::from_vec(vec![1.0, 0.0, 4.0]).unwrap();
    let (prog, _) = trace_fn(&[x.array().aval().clone()], |a| {
        let z = ferrax::prim::binary::sub(&a[0], &a[0])?;
        Ok(vec![ferrax::prim::binary::div(&a[0], &z)?])
    })
    .unwrap();
    let exe = Executable::compile_with(
        &prog,
        ferrax::exec::CompileOptions {
            fuse: false,
            ..Default::default()
        },
    )
    .unwrap();
    let err = debug_nans(true, || exe.run(&[x.array().clone()])).unwrap_err();
    assert!(err.to_string().contains("div"), "{err}");
    assert!(exe.run(&[x.array().clone()]).is_ok());
}

#[test]
fn profiler_records_eager_ops_and_compiled_steps() {
    #[jit]
    fn f(x: &Tensor<(C<4>,)>) -> Tensor<()> {
        (x * x).sum()
    }
    let x = Tensor::<(C<4>,)>::ones();
    let _ = f(&x);
    let (_, prof) = profile(|| {
        let _ = f(&x);
        let _ = x.exp();
    });
    let names: Vec<&str> = prof.events.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"exp"), "{names:?}");
    assert!(names.iter().any(|n| n.contains("reduce_sum")), "{names:?}");
    let json = prof.chrome_trace_json();
    assert!(json.starts_with("{\"traceEvents\":[") && json.contains("\"ph\":\"X\""));
    assert!(prof.top(3).contains("count"));
    // Off outside the scope: nothing recorded.
    let (_, empty) = profile(|| ());
    assert!(empty.events.is_empty());
}
