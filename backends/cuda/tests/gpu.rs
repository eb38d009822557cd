//! Tests that need a CUDA device. Without one each test prints why it skips and returns;
//! a skipped test is not a pass (scripts/gpu-check.sh runs them where a GPU is present).

use ferrax_core::prim::binary::{binary, BinaryOp};
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::prim::unary::{unary, UnaryOp};
use ferrax_core::trace::trace_fn;
use ferrax_core::{AVal, Array, DType};
use ferrax_cuda::{CudaDevice, CudaExecutable};
use std::sync::Arc;

fn device() -> Option<Arc<CudaDevice>> {
    match CudaDevice::get(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn input(shape: &[usize], seed: u32) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| 0.05 + (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1111.0)
        .collect()
}

fn assert_close(what: &str, got: &Array, want: &Array, rtol: f64) {
    let (g, w) = (
        got.to_vec::<f64>()
            .or_else(|_| {
                got.to_vec::<f32>()
                    .map(|v| v.iter().map(|&x| x as f64).collect())
            })
            .expect("float"),
        want.to_vec::<f64>()
            .or_else(|_| {
                want.to_vec::<f32>()
                    .map(|v| v.iter().map(|&x| x as f64).collect())
            })
            .expect("float"),
    );
    assert_eq!(g.len(), w.len(), "{what}");
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok =
            (a.is_nan() && b.is_nan()) || (a - b).abs() <= rtol * (1e-6 + a.abs().max(b.abs()));
        assert!(ok, "{what}: element {i}: gpu {a}, cpu {b}");
    }
}

#[test]
fn missing_cuda_is_an_error_not_a_panic() {
    // Runs everywhere: on a machine without CUDA this is the behaviour under test.
    match CudaDevice::new(0) {
        Ok(d) => eprintln!(
            "a CUDA device is present ({:?}); the error path is not exercised here",
            d.name()
        ),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("CUDA") || msg.contains("device"),
                "unclear error: {msg}"
            );
        }
    }
    assert!(ferrax_cuda::parse_device("cuda:1").is_ok());
    assert!(ferrax_cuda::parse_device("tpu").is_err());
}

#[test]
fn unary_and_binary_tables_match_the_cpu_on_the_gpu() {
    let Some(dev) = device() else { return };
    let aval = AVal::new(vec![1000], DType::F32);
    let x = Array::from_vec(vec![1000], input(&[1000], 3)).expect("x");
    let y = Array::from_vec(vec![1000], input(&[1000], 9)).expect("y");
    let ops: Vec<UnaryOp> = UnaryOp::ALL
        .iter()
        .copied()
        .filter(|op| op.cuda_expr("x", DType::F32).is_some())
        .collect();
    for op in ops {
        let (prog, _) =
            trace_fn(std::slice::from_ref(&aval), |a| Ok(vec![unary(op, &a[0])?])).expect("trace");
        let got = CudaExecutable::compile(&prog)
            .and_then(|e| e.run(&dev, std::slice::from_ref(&x)))
            .expect("gpu");
        let want = ferrax_core::exec::Executable::compile(&prog)
            .and_then(|e| e.run(std::slice::from_ref(&x)))
            .expect("cpu");
        assert_close(op.name(), &got[0], &want[0], 1e-5);
    }
    for op in BinaryOp::ALL
        .iter()
        .copied()
        .filter(|op| op.cuda_expr("a", "b", DType::F32).is_some())
    {
        let (prog, _) = trace_fn(&[aval.clone(), aval.clone()], |a| {
            Ok(vec![binary(op, &a[0], &a[1])?])
        })
        .expect("trace");
        let args = [x.clone(), y.clone()];
        let got = CudaExecutable::compile(&prog)
            .and_then(|e| e.run(&dev, &args))
            .expect("gpu");
        let want = ferrax_core::exec::Executable::compile(&prog)
            .and_then(|e| e.run(&args))
            .expect("cpu");
        assert_close(op.name(), &got[0], &want[0], 1e-5);
    }
}

#[test]
fn fused_chain_matmul_reduce_transpose_match_the_cpu_on_the_gpu() {
    let Some(dev) = device() else { return };
    let avals = [
        AVal::new(vec![64, 32], DType::F32),
        AVal::new(vec![32, 48], DType::F32),
        AVal::new(vec![48], DType::F32),
    ];
    let (prog, _) = trace_fn(&avals, |a| {
        let h = ferrax_core::prim::dot_general::dot_general(&a[0], &a[1], &[1], &[0], &[], &[])?;
        let b = broadcast_in_dim(&a[2], &[64, 48], &[1])?;
        let t = unary(UnaryOp::Tanh, &binary(BinaryOp::Add, &h, &b)?)?;
        let s = ferrax_core::prim::reduce::reduce_sum(&t, &[1])?;
        let tt = ferrax_core::prim::transpose::transpose(&t, &[1, 0])?;
        Ok(vec![t, s, tt])
    })
    .expect("trace");
    let args: Vec<Array> = avals
        .iter()
        .enumerate()
        .map(|(i, a)| Array::from_vec(a.shape.clone(), input(&a.shape, i as u32)).expect("arg"))
        .collect();
    let exe = CudaExecutable::compile(&prog).expect("compile");
    eprintln!("steps: {:?}", exe.describe());
    let got = exe.run(&dev, &args).expect("gpu");
    let want = ferrax_core::exec::Executable::compile(&prog)
        .and_then(|e| e.run(&args))
        .expect("cpu");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("output {i}"), g, w, 1e-4);
    }
}
