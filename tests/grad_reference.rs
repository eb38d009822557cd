//! Gradients against JAX: all 18 functions of `tests/reference/grads_shared.json` (the
//! per-family files check some of them again in f64 only), rebuilt from ferrax ops, checked
//! for value, gradient, jvp and Hessian-vector product in f64 (rtol 1e-10, atol 1e-12, the file's suggestion) and f32
//! (rtol 1e-4, atol 1e-5); plus Jacobians and Hessians against `vmap.json`'s extras.

use ferrax::ad;
use ferrax::ops::composite;
use ferrax::ops::linalg::one_hot_array;
use ferrax::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax::prim::concatenate::concatenate;
use ferrax::prim::conv::conv_general_dilated;
use ferrax::prim::cumulative::cumulative;
use ferrax::prim::gather::take;
use ferrax::prim::reduce::ReduceOp;
use ferrax::prim::reshape::reshape;
use ferrax::prim::scan::scan;
use ferrax::prim::slice::slice_in_dim;
use ferrax::prim::transpose::transpose;
use ferrax::prim::{compare, reduce, select, stop_gradient::stop_gradient, unary};
use ferrax::{Array, DType, Result};

mod common;

fn add(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Add, a, b)
}
fn sub(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Sub, a, b)
}
fn mul(a: &Array, b: &Array) -> Result<Array> {
    binary_bcast(BinaryOp::Mul, a, b)
}
fn sum(a: &Array) -> Result<Array> {
    reduce::reduce_sum(a, &(0..a.rank()).collect::<Vec<_>>())
}
fn mean(a: &Array) -> Result<Array> {
    binary_scalar(BinaryOp::Div, &sum(a)?, a.numel() as f64)
}
fn sq(a: &Array) -> Result<Array> {
    mul(a, a)
}
fn clip(a: &Array, lo: f64, hi: f64) -> Result<Array> {
    binary_scalar(BinaryOp::Min, &binary_scalar(BinaryOp::Max, a, lo)?, hi)
}
fn gelu_tanh(x: &Array) -> Result<Array> {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    let x3 = mul(&sq(x)?, x)?;
    let inner = binary_scalar(
        BinaryOp::Mul,
        &add(x, &binary_scalar(BinaryOp::Mul, &x3, 0.044715)?)?,
        (2.0 / std::f64::consts::PI).sqrt(),
    )?;
    let t = binary_scalar(BinaryOp::Add, &unary::tanh(&inner)?, 1.0)?;
    binary_scalar(BinaryOp::Mul, &mul(x, &t)?, 0.5)
}
fn softplus(x: &Array) -> Result<Array> {
    // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))
    let m = binary_scalar(BinaryOp::Max, x, 0.0)?;
    add(
        &m,
        &unary::log1p(&unary::exp(&unary::neg(&unary::abs(x)?)?)?)?,
    )
}
fn layer_norm(x: &Array) -> Result<Array> {
    let last = x.rank() - 1;
    let n = x.shape()[last] as f64;
    let m = binary_scalar(BinaryOp::Div, &reduce::reduce_sum(x, &[last])?, n)?;
    let mut kshape = x.shape().to_vec();
    kshape[last] = 1;
    let m = ferrax::prim::reshape::reshape(&m, &kshape)?;
    let d = sub(x, &m)?;
    let v = binary_scalar(BinaryOp::Div, &reduce::reduce_sum(&sq(&d)?, &[last])?, n)?;
    let v = ferrax::prim::reshape::reshape(&v, &kshape)?;
    let s = unary::sqrt(&binary_scalar(BinaryOp::Add, &v, 1e-5)?)?;
    binary_bcast(BinaryOp::Div, &d, &s)
}

/// A reference function: differentiable inputs first, integer constants (labels, indices)
/// second.
type F = fn(&[Array], &[Array]) -> Result<Array>;

fn matmul(a: &Array, b: &Array) -> Result<Array> {
    ferrax::prim::dot_general::matmul(a, b)
}

/// Each function with its differentiable argument names in the order the closure reads
/// them (the JSON object's key order is not preserved by the parser) and its integer
/// constants.
fn function(name: &str) -> Option<(&'static [&'static str], &'static [&'static str], F)> {
    let args: &'static [&'static str] = match name {
        "broadcast_add_mul" => &["x", "b", "y"],
        "exp_log_log1p" | "softplus_sqrt_pow" => &["x", "p"],
        "layer_norm_affine" => &["x", "g", "beta", "y"],
        "matmul_tanh" | "cross_entropy_int_labels" => &["x", "W", "b"],
        "logsumexp" | "reshape_transpose" => &["x", "W"],
        "reductions_axes" | "cumsum" | "conv1d_valid" => &["x", "w"],
        "concat_take" => &["x", "y", "w"],
        "rnn_scan_5_steps" => &["h0", "xs", "Wh", "Wx", "b"],
        _ => &["x", "y"],
    };
    let consts: &'static [&'static str] = match name {
        "cross_entropy_int_labels" => &["labels"],
        "concat_take" => &["idx"],
        _ => &[],
    };
    Some((
        args,
        consts,
        match name {
            "broadcast_add_mul" => |a, _| sum(&sq(&mul(&add(&a[0], &a[1])?, &a[2])?)?),
            "exp_log_log1p" => |a, _| {
                add(
                    &sum(&mul(&unary::exp(&a[0])?, &unary::log(&a[1])?)?)?,
                    &mean(&mul(&unary::log1p(&a[1])?, &a[0])?)?,
                )
            },
            "sigmoid_relu_gelu" => |a, _| {
                let s = mul(
                    &unary::logistic(&a[0])?,
                    &binary_scalar(BinaryOp::Max, &a[0], 0.0)?,
                )?;
                sum(&add(&s, &mul(&gelu_tanh(&a[0])?, &a[1])?)?)
            },
            "softplus_sqrt_pow" => |a, _| {
                let p15 = binary_bcast(BinaryOp::Pow, &a[1], &Array::full(&[], a[1].dtype(), 1.5))?;
                let l = sum(&mul(&unary::sqrt(&add(&softplus(&a[0])?, &a[1])?)?, &p15)?)?;
                add(
                    &l,
                    &binary_scalar(BinaryOp::Mul, &sum(&mul(&sq(&a[0])?, &a[0])?)?, 0.1)?,
                )
            },
            "layer_norm_affine" => |a, _| {
                sum(&mul(
                    &unary::tanh(&add(&mul(&layer_norm(&a[0])?, &a[1])?, &a[2])?)?,
                    &a[3],
                )?)
            },
            "where_select" => |a, _| {
                let c = compare::compare(compare::CompareOp::Gt, &a[0], &a[1])?;
                sum(&select::select(
                    &c,
                    &mul(&a[0], &a[1])?,
                    &sub(&unary::exp(&a[0])?, &a[1])?,
                )?)
            },
            "stop_gradient" => |a, _| {
                sum(&add(
                    &mul(&a[0], &sq(&stop_gradient(&a[0])?)?)?,
                    &mul(&unary::sin(&a[1])?, &a[0])?,
                )?)
            },
            "clip" => |a, _| {
                sum(&add(
                    &mul(&clip(&a[0], -0.6, 0.7)?, &a[1])?,
                    &sq(&clip(&mul(&a[0], &a[1])?, -1.1, 0.9)?)?,
                )?)
            },
            // sum(tanh(x @ W + b) ** 2)
            "matmul_tanh" => |a, _| sum(&sq(&unary::tanh(&add(&matmul(&a[0], &a[1])?, &a[2])?)?)?),
            // sum(max(x, axis=1) ** 2) + sum(mean(x, axis=0) * w) + sum(x, axis=(0, 1)) * 0.5
            "reductions_axes" => |a, _| {
                let m = reduce::reduce_max(&a[0], &[1])?;
                let t2 = sum(&mul(&composite::mean(&a[0], &[0])?, &a[1])?)?;
                let t3 = binary_scalar(BinaryOp::Mul, &sum(&a[0])?, 0.5)?;
                add(&add(&sum(&sq(&m)?)?, &t2)?, &t3)
            },
            // sum(logsumexp(x @ W, axis=-1)) + logsumexp(x)
            "logsumexp" => |a, _| {
                let t1 = sum(&composite::logsumexp(&matmul(&a[0], &a[1])?, &[1])?)?;
                add(&t1, &composite::logsumexp(&a[0], &[0, 1])?)
            },
            // sum(softmax(x, axis=-1) * y) + sum(log_softmax(x, axis=-1)[:, 0])
            "softmax_log_softmax" => |a, _| {
                let t1 = sum(&mul(&composite::softmax(&a[0], &[1])?, &a[1])?)?;
                let ls = composite::log_softmax(&a[0], &[1])?;
                add(&t1, &sum(&slice_in_dim(&ls, 1, 0, 1, 1)?)?)
            },
            // mean over rows of -log_softmax(x @ W + b)[i, labels[i]]
            "cross_entropy_int_labels" => |a, c| {
                let logits = add(&matmul(&a[0], &a[1])?, &a[2])?;
                let ls = composite::log_softmax(&logits, &[1])?;
                let oh = one_hot_array(&c[0], a[1].shape()[1], a[0].dtype())?;
                let picked = sum(&mul(&ls, &oh)?)?;
                binary_scalar(BinaryOp::Mul, &picked, -1.0 / a[0].shape()[0] as f64)
            },
            // sum((reshape(x, (4, 3)) @ transpose(W)) ** 2)
            "reshape_transpose" => |a, _| {
                let x = reshape(&a[0], &[4, 3])?;
                sum(&sq(&matmul(&x, &transpose(&a[1], &[1, 0])?)?)?)
            },
            // sum(take(concatenate([x, y], axis=0), idx, axis=0) ** 2 * w)
            "concat_take" => |a, c| {
                let cat = concatenate(&[&a[0], &a[1]], 0)?;
                sum(&mul(&sq(&take(&cat, &c[0], 0)?)?, &a[2])?)
            },
            // sum(conv1d(x, w) ** 2), JAX's NCH/OIH layout moved to NHC/HIO.
            "conv1d_valid" => |a, _| {
                let x = transpose(&a[0], &[0, 2, 1])?;
                let w = transpose(&a[1], &[2, 1, 0])?;
                sum(&sq(&conv_general_dilated(
                    &x,
                    &w,
                    &[1],
                    &[(0, 0)],
                    &[1],
                    &[1],
                    1,
                )?)?)
            },
            // sum(cumsum(x, axis=1) ** 2 * w)
            "cumsum" => |a, _| {
                sum(&mul(
                    &sq(&cumulative(&a[0], ReduceOp::Sum, 1, false)?)?,
                    &a[1],
                )?)
            },
            // sum(rnn_scan(h0, xs, Wh, Wx, b) ** 2), h_t = tanh(h_{t-1} @ Wh + xs[t] @ Wx + b)
            "rnn_scan_5_steps" => |a, _| {
                let (wh, wx, b) = (&a[2], &a[3], &a[4]);
                let (_, hs) = scan(
                    |c, x| {
                        let h =
                            unary::tanh(&add(&add(&matmul(&c[0], wh)?, &matmul(&x[0], wx)?)?, b)?)?;
                        Ok((vec![h.clone()], vec![h]))
                    },
                    std::slice::from_ref(&a[0]),
                    std::slice::from_ref(&a[1]),
                    None,
                    false,
                )?;
                sum(&sq(&hs[0])?)
            },
            _ => return None,
        },
    ))
}

fn close(got: &Array, want: &Array, rtol: f64, atol: f64, what: &str) {
    if let Err(e) = ferrax::testing::allclose(got, want, rtol, atol) {
        panic!("{what}: {e}");
    }
}

#[test]
fn jax_reference_values_grads_jvps_and_hvps() {
    let doc = common::load("grads_shared.json");
    let mut checked = 0;
    for f in doc["functions"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let (order, const_names, func) =
            function(name).unwrap_or_else(|| panic!("no ferrax definition of `{name}`"));
        for (section, dtype, rtol, atol) in [
            ("float64", DType::F64, 1e-10, 1e-12),
            ("float32", DType::F32, 1e-4, 1e-5),
        ] {
            let names: Vec<String> = order.iter().map(|n| n.to_string()).collect();
            assert_eq!(
                names.len() + const_names.len(),
                f["inputs"].as_object().unwrap().len(),
                "{name}: argument list"
            );
            let consts: Vec<Array> = const_names
                .iter()
                .map(|n| common::tensor_as(&f["inputs"][*n], DType::I32))
                .collect();
            let func = |a: &[Array]| func(a, &consts);
            let args: Vec<Array> = names
                .iter()
                .map(|n| common::tensor_as(&f["inputs"][n], dtype))
                .collect();
            let tangents: Vec<Array> = names
                .iter()
                .map(|n| common::tensor_as(&f["tangent"][n], dtype))
                .collect();
            let r = &f[section];
            let ctx = format!("{name} ({section})");
            let value = func(&args).unwrap();
            close(
                &value,
                &common::tensor_as(&r["value"], dtype),
                rtol,
                atol,
                &format!("{ctx} value"),
            );
            let (v2, grads) = ad::value_and_grad(&args, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            close(&v2, &value, 0.0, 0.0, &format!("{ctx} value through grad"));
            for (n, g) in names.iter().zip(&grads) {
                close(
                    g,
                    &common::tensor_as(&r["grad"][n], dtype),
                    rtol,
                    atol,
                    &format!("{ctx} grad {n}"),
                );
            }
            let (p, t) = ad::jvp(&args, &tangents, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            close(
                &p,
                &common::tensor_as(&r["jvp"]["primal_out"], dtype),
                rtol,
                atol,
                &format!("{ctx} jvp primal"),
            );
            close(
                &t,
                &common::tensor_as(&r["jvp"]["tangent_out"], dtype),
                rtol,
                atol,
                &format!("{ctx} jvp tangent"),
            );
            let h = ad::hvp(&args, &tangents, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            for (n, hv) in names.iter().zip(&h) {
                close(
                    hv,
                    &common::tensor_as(&r["hvp"][n], dtype),
                    rtol * 10.0,
                    atol * 10.0,
                    &format!("{ctx} hvp {n}"),
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 36, "18 functions x 2 dtypes");
}

#[test]
fn jacobians_and_hessian_match_jax() {
    let doc = common::load("vmap.json");
    let ex = &doc["extras"];
    let w = common::tensor_as(&ex["inputs"]["W"], DType::F64);
    let x = common::tensor_as(&ex["inputs"]["x"], DType::F64);
    let f = |z: &Array| unary::tanh(&ferrax::prim::dot_general::matmul(&w, z)?);
    let jr = ad::jacrev(&x, f).unwrap();
    let jf = ad::jacfwd(&x, f).unwrap();
    let r = &ex["float64"];
    close(
        &jr,
        &common::tensor_as(&r["jacrev_tanh_Wx"], DType::F64),
        1e-10,
        1e-12,
        "jacrev",
    );
    close(
        &jf,
        &common::tensor_as(&r["jacfwd_tanh_Wx"], DType::F64),
        1e-10,
        1e-12,
        "jacfwd",
    );
    // jax.hessian(logsumexp)(x) at the same x.
    let h = ad::hessian(&x, |z| ferrax::ops::composite::logsumexp(z, &[0])).unwrap();
    close(
        &h,
        &common::tensor_as(&r["hessian_logsumexp"], DType::F64),
        1e-10,
        1e-12,
        "hessian",
    );
}
