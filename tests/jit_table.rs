//! Compiled == eager for every primitive and for composite programs: each case is traced
//! into a program, optimized, compiled (with fusion) and run, and compared with running the
//! same function eagerly op by op. Elementwise kernels share their slice forms between the
//! fused and eager paths, so most cases are bit-identical; the rest state a tolerance.

use ferrax::exec::Executable;
use ferrax::prim::unary::{Domain, UnaryOp};
use ferrax::prim::{self, binary::BinaryOp, compare::CompareOp};
use ferrax::trace::trace_fn;
use ferrax::{Array, DType};

type Case = (
    &'static str,
    Vec<Array>,
    Box<dyn Fn(&[Array]) -> ferrax::Result<Vec<Array>>>,
    f64,
);

fn data(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let u = ((i as u64 * 2654435761 + seed * 40503) % 10007) as f64 / 10007.0;
            (lo + (hi - lo) * u) as f32
        })
        .collect();
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn ints(shape: &[usize], modulo: i32) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec(
        shape.to_vec(),
        (0..n as i32)
            .map(|i| (i * 7 + 3) % modulo)
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn scalar_i32(x: i32) -> Array {
    Array::scalar(x)
}

fn cases() -> Vec<Case> {
    let mut cs: Vec<Case> = Vec::new();
    for &op in UnaryOp::ALL {
        if op.info().domain != Domain::Float {
            continue;
        }
        // Inputs inside every float op's domain (log, sqrt, erf_inv, lgamma...).
        let x = data(&[3, 700], op as u64, 0.05, 0.95);
        cs.push((
            op.name(),
            vec![x],
            Box::new(move |a| Ok(vec![prim::unary::unary(op, &a[0])?])),
            0.0,
        ));
    }
    for &op in BinaryOp::ALL {
        if matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) {
            continue;
        }
        let a = data(&[5, 300], 1, 0.1, 2.0);
        let b = data(&[5, 300], 2, 0.1, 2.0);
        cs.push((
            op.name(),
            vec![a, b],
            Box::new(move |x| Ok(vec![prim::binary::binary(op, &x[0], &x[1])?])),
            0.0,
        ));
    }
    for &op in CompareOp::ALL {
        let a = data(&[40], 3, -1.0, 1.0);
        let b = data(&[40], 4, -1.0, 1.0);
        cs.push((
            "compare",
            vec![a, b],
            Box::new(move |x| Ok(vec![prim::compare::compare(op, &x[0], &x[1])?])),
            0.0,
        ));
    }
    let x = data(&[4, 6], 5, -2.0, 2.0);
    let y = data(&[4, 6], 6, -2.0, 2.0);
    cs.push((
        "select",
        vec![x.clone(), y.clone()],
        Box::new(|a| {
            let p = prim::compare::compare(CompareOp::Gt, &a[0], &a[1])?;
            Ok(vec![prim::select::select(&p, &a[0], &a[1])?])
        }),
        0.0,
    ));
    for to in [DType::F64, DType::I32, DType::BF16, DType::Bool] {
        cs.push((
            "convert",
            vec![x.clone()],
            Box::new(move |a| Ok(vec![prim::convert::convert(&a[0], to)?])),
            0.0,
        ));
    }
    cs.push((
        "broadcast_in_dim",
        vec![data(&[3], 7, 0.0, 1.0)],
        Box::new(|a| {
            Ok(vec![prim::broadcast_in_dim::broadcast_in_dim(
                &a[0],
                &[2, 3, 4],
                &[1],
            )?])
        }),
        0.0,
    ));
    cs.push((
        "reshape",
        vec![x.clone()],
        Box::new(|a| Ok(vec![prim::reshape::reshape(&a[0], &[3, 8])?])),
        0.0,
    ));
    cs.push((
        "transpose",
        vec![data(&[2, 3, 4], 8, 0.0, 1.0)],
        Box::new(|a| Ok(vec![prim::transpose::transpose(&a[0], &[2, 0, 1])?])),
        0.0,
    ));
    cs.push((
        "slice",
        vec![x.clone()],
        Box::new(|a| {
            Ok(vec![prim::slice::slice(
                &a[0],
                &[1, 0],
                &[4, 6],
                Some(&[2, 3]),
            )?])
        }),
        0.0,
    ));
    cs.push((
        "dynamic_slice",
        vec![x.clone(), scalar_i32(2), scalar_i32(5)],
        Box::new(|a| {
            Ok(vec![prim::dynamic_slice::dynamic_slice(
                &a[0],
                &[&a[1], &a[2]],
                &[2, 3],
            )?])
        }),
        0.0,
    ));
    cs.push((
        "dynamic_update_slice",
        vec![x.clone(), data(&[2, 2], 9, 5.0, 6.0), scalar_i32(1)],
        Box::new(|a| {
            Ok(vec![prim::dynamic_update_slice::dynamic_update_slice(
                &a[0],
                &a[1],
                &[&a[2], &a[2]],
            )?])
        }),
        0.0,
    ));
    cs.push((
        "pad",
        vec![x.clone(), Array::scalar(0.5f32)],
        Box::new(|a| {
            Ok(vec![prim::pad::pad(
                &a[0],
                &a[1],
                &[(1, -1, 1), (0, 2, 0)],
            )?])
        }),
        0.0,
    ));
    cs.push((
        "concatenate",
        vec![x.clone(), y.clone()],
        Box::new(|a| Ok(vec![prim::concatenate::concatenate(&[&a[0], &a[1]], 1)?])),
        0.0,
    ));
    cs.push((
        "rev",
        vec![x.clone()],
        Box::new(|a| Ok(vec![prim::rev::rev(&a[0], &[0, 1])?])),
        0.0,
    ));
    cs.push((
        "iota",
        vec![x.clone()],
        Box::new(|a| {
            Ok(vec![prim::binary::add(
                &a[0],
                &prim::iota::iota(DType::F32, &[4, 6], 1)?,
            )?])
        }),
        0.0,
    ));
    cs.push((
        "gather",
        vec![x.clone(), ints(&[5], 4)],
        Box::new(|a| Ok(vec![prim::gather::take(&a[0], &a[1], 0)?])),
        0.0,
    ));
    cs.push((
        "scatter_add",
        vec![x.clone(), ints(&[5], 4), data(&[5, 6], 10, 0.0, 1.0)],
        Box::new(|a| {
            Ok(vec![prim::scatter_add::scatter_add(
                &a[0],
                &a[1],
                &a[2],
                0,
                prim::gather::GatherMode::Take,
                prim::scatter_add::IndexMode::Drop,
            )?])
        }),
        0.0,
    ));
    let big = data(&[64, 513], 11, -1.0, 1.0);
    cs.push((
        "reduce_sum",
        vec![big.clone()],
        Box::new(|a| Ok(vec![prim::reduce::reduce_sum(&a[0], &[1])?])),
        0.0,
    ));
    cs.push((
        "reduce_max",
        vec![big.clone()],
        Box::new(|a| Ok(vec![prim::reduce::reduce_max(&a[0], &[0])?])),
        0.0,
    ));
    cs.push((
        "argmax",
        vec![big.clone()],
        Box::new(|a| Ok(vec![prim::argreduce::argmax(&a[0], 1)?])),
        0.0,
    ));
    cs.push((
        "cumsum",
        vec![big.clone()],
        Box::new(|a| Ok(vec![prim::cumulative::cumsum(&a[0], 1, true)?])),
        0.0,
    ));
    cs.push((
        "sort",
        vec![big.clone()],
        Box::new(|a| Ok(vec![prim::sort::sort(&a[0], 1, false)?])),
        0.0,
    ));
    cs.push((
        "dot_general",
        vec![
            data(&[2, 17, 33], 12, -1.0, 1.0),
            data(&[2, 33, 9], 13, -1.0, 1.0),
        ],
        Box::new(|a| Ok(vec![prim::dot_general::matmul(&a[0], &a[1])?])),
        0.0,
    ));
    cs.push((
        "conv",
        vec![
            data(&[2, 9, 9, 3], 14, -1.0, 1.0),
            data(&[3, 3, 3, 4], 15, -1.0, 1.0),
        ],
        Box::new(|a| {
            Ok(vec![prim::conv::conv(
                &a[0],
                &a[1],
                &[2, 1],
                &prim::conv::Padding::Same,
                &[1, 1],
                1,
            )?])
        }),
        0.0,
    ));
    // Composite programs: fusion regions, broadcasts of scalars and rows, reductions.
    cs.push((
        "mlp_softmax",
        vec![
            data(&[8, 16], 16, -1.0, 1.0),
            data(&[16, 10], 17, -0.5, 0.5),
            data(&[10], 18, -0.1, 0.1),
        ],
        Box::new(|a| {
            let h = prim::binary::binary_bcast(
                BinaryOp::Add,
                &prim::dot_general::matmul(&a[0], &a[1])?,
                &a[2],
            )?;
            let h = prim::unary::tanh(&h)?;
            Ok(vec![
                ferrax::ops::composite::softmax(&h, &[1])?,
                ferrax::ops::composite::logsumexp(&h, &[0, 1])?,
            ])
        }),
        0.0,
    ));
    cs.push((
        "long_chain_inplace",
        vec![data(&[300_000], 19, -1.0, 1.0)],
        Box::new(|a| {
            let y = prim::binary::binary_scalar(BinaryOp::Mul, &a[0], 1.25)?;
            let y = prim::binary::binary_scalar(BinaryOp::Sub, &y, 0.5)?;
            let y = prim::unary::tanh(&y)?;
            let z = prim::binary::mul(&y, &a[0])?;
            Ok(vec![z, prim::reduce::reduce_sum(&y, &[0])?])
        }),
        0.0,
    ));
    cs
}

#[test]
fn compiled_equals_eager_for_every_primitive() {
    let mut failures = Vec::new();
    for (name, args, f, tol) in cases() {
        let avals: Vec<_> = args.iter().map(|a| a.aval().clone()).collect();
        let (prog, captured) = trace_fn(&avals, |xs| f(xs)).unwrap();
        assert!(captured.is_empty());
        ferrax::ir::verify(&prog).unwrap();
        let exe = Executable::compile(&prog).unwrap();
        let compiled = exe.run(&args).unwrap();
        let eager = f(&args).unwrap();
        for (c, e) in compiled.iter().zip(&eager) {
            let ok = if tol == 0.0 {
                c.bit_eq(e)
            } else {
                ferrax::testing::allclose(c, e, tol, tol).is_ok()
            };
            if !ok {
                failures.push(format!("{name}: compiled {:?} vs eager {:?}", c, e));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn debug_print_prints_runtime_values_from_compiled_programs() {
    use ferrax::prelude::*;
    #[jit]
    fn f(x: &Tensor<(C<3>,)>) -> Tensor<(C<3>,)> {
        let y = x * 2.0;
        debug_print!("y = {}, sum = {}", y, y.sum());
        y
    }
    let x = Tensor::<(C<3>,)>::from_vec(vec![1.0, 2.5, -1.0]).unwrap();
    let (_, first) = ferrax::prim::debug_print::capture_debug_prints(|| f(&x));
    let (_, second) = ferrax::prim::debug_print::capture_debug_prints(|| f(&x));
    assert_eq!(first, vec!["y = [ 2.,  5., -2.], sum = 5.".to_string()]);
    assert_eq!(second, first, "the cached executable prints too");
    assert_eq!(f::stats().compiles, 1);
    let prog = f::trace(&x).unwrap();
    assert!(prog.to_string().contains("debug_print"));
}
