//! Gradients against JAX: the functions of `tests/reference/grads_shared.json` not covered
//! by the per-family files, rebuilt from ferrax ops, checked for value, gradient, jvp and
//! Hessian-vector product in f64 (rtol 1e-10, atol 1e-12, the file's suggestion) and f32
//! (rtol 1e-4, atol 1e-5); plus Jacobians and Hessians against `vmap.json`'s extras.

use ferrax::ad;
use ferrax::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax::prim::{compare, reduce, select, stop_gradient::stop_gradient, unary};
use ferrax::{Array, DType, Result};
use serde_json::Value;

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(xs) => xs.iter().for_each(|x| flatten(x, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::String(s) => out.push(match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("unexpected string {other}"),
        }),
        other => panic!("unexpected {other}"),
    }
}

fn tensor(t: &Value, dtype: DType) -> Array {
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let mut data = Vec::new();
    flatten(&t["data"], &mut data);
    let a = Array::from_vec(shape, data).unwrap();
    ferrax::prim::convert::convert(&a, dtype).unwrap()
}

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

type F = fn(&[Array]) -> Result<Array>;

/// Each function with its argument names in the order the closure reads them (the JSON
/// object's key order is not preserved by the parser).
fn function(name: &str) -> Option<(&'static [&'static str], F)> {
    let args: &'static [&'static str] = match name {
        "broadcast_add_mul" => &["x", "b", "y"],
        "exp_log_log1p" | "softplus_sqrt_pow" => &["x", "p"],
        "layer_norm_affine" => &["x", "g", "beta", "y"],
        _ => &["x", "y"],
    };
    Some((
        args,
        match name {
            "broadcast_add_mul" => |a| sum(&sq(&mul(&add(&a[0], &a[1])?, &a[2])?)?),
            "exp_log_log1p" => |a| {
                add(
                    &sum(&mul(&unary::exp(&a[0])?, &unary::log(&a[1])?)?)?,
                    &mean(&mul(&unary::log1p(&a[1])?, &a[0])?)?,
                )
            },
            "sigmoid_relu_gelu" => |a| {
                let s = mul(
                    &unary::logistic(&a[0])?,
                    &binary_scalar(BinaryOp::Max, &a[0], 0.0)?,
                )?;
                sum(&add(&s, &mul(&gelu_tanh(&a[0])?, &a[1])?)?)
            },
            "softplus_sqrt_pow" => |a| {
                let p15 = binary_bcast(BinaryOp::Pow, &a[1], &Array::full(&[], a[1].dtype(), 1.5))?;
                let l = sum(&mul(&unary::sqrt(&add(&softplus(&a[0])?, &a[1])?)?, &p15)?)?;
                add(
                    &l,
                    &binary_scalar(BinaryOp::Mul, &sum(&mul(&sq(&a[0])?, &a[0])?)?, 0.1)?,
                )
            },
            "layer_norm_affine" => |a| {
                sum(&mul(
                    &unary::tanh(&add(&mul(&layer_norm(&a[0])?, &a[1])?, &a[2])?)?,
                    &a[3],
                )?)
            },
            "where_select" => |a| {
                let c = compare::compare(compare::CompareOp::Gt, &a[0], &a[1])?;
                sum(&select::select(
                    &c,
                    &mul(&a[0], &a[1])?,
                    &sub(&unary::exp(&a[0])?, &a[1])?,
                )?)
            },
            "stop_gradient" => |a| {
                sum(&add(
                    &mul(&a[0], &sq(&stop_gradient(&a[0])?)?)?,
                    &mul(&unary::sin(&a[1])?, &a[0])?,
                )?)
            },
            "clip" => |a| {
                sum(&add(
                    &mul(&clip(&a[0], -0.6, 0.7)?, &a[1])?,
                    &sq(&clip(&mul(&a[0], &a[1])?, -1.1, 0.9)?)?,
                )?)
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
    let text = include_str!("reference/grads_shared.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let mut checked = 0;
    for f in doc["functions"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let Some((order, func)) = function(name) else {
            continue;
        };
        for (section, dtype, rtol, atol) in [
            ("float64", DType::F64, 1e-10, 1e-12),
            ("float32", DType::F32, 1e-4, 1e-5),
        ] {
            let names: Vec<String> = order.iter().map(|n| n.to_string()).collect();
            assert_eq!(
                names.len(),
                f["inputs"].as_object().unwrap().len(),
                "{name}: argument list"
            );
            let args: Vec<Array> = names
                .iter()
                .map(|n| tensor(&f["inputs"][n], dtype))
                .collect();
            let tangents: Vec<Array> = names
                .iter()
                .map(|n| tensor(&f["tangent"][n], dtype))
                .collect();
            let r = &f[section];
            let ctx = format!("{name} ({section})");
            let value = func(&args).unwrap();
            close(
                &value,
                &tensor(&r["value"], dtype),
                rtol,
                atol,
                &format!("{ctx} value"),
            );
            let (v2, grads) = ad::value_and_grad(&args, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            close(&v2, &value, 0.0, 0.0, &format!("{ctx} value through grad"));
            for (n, g) in names.iter().zip(&grads) {
                close(
                    g,
                    &tensor(&r["grad"][n], dtype),
                    rtol,
                    atol,
                    &format!("{ctx} grad {n}"),
                );
            }
            let (p, t) = ad::jvp(&args, &tangents, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            close(
                &p,
                &tensor(&r["jvp"]["primal_out"], dtype),
                rtol,
                atol,
                &format!("{ctx} jvp primal"),
            );
            close(
                &t,
                &tensor(&r["jvp"]["tangent_out"], dtype),
                rtol,
                atol,
                &format!("{ctx} jvp tangent"),
            );
            let h = ad::hvp(&args, &tangents, |a: &Vec<Array>| func(a).unwrap()).unwrap();
            for (n, hv) in names.iter().zip(&h) {
                close(
                    hv,
                    &tensor(&r["hvp"][n], dtype),
                    rtol * 10.0,
                    atol * 10.0,
                    &format!("{ctx} hvp {n}"),
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16, "8 functions x 2 dtypes");
}

#[test]
fn jacobians_and_hessian_match_jax() {
    let text = include_str!("reference/vmap.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let ex = &doc["extras"];
    let w = tensor(&ex["inputs"]["W"], DType::F64);
    let x = tensor(&ex["inputs"]["x"], DType::F64);
    let f = |z: &Array| unary::tanh(&ferrax::prim::dot_general::matmul(&w, z)?);
    let jr = ad::jacrev(&x, f).unwrap();
    let jf = ad::jacfwd(&x, f).unwrap();
    let r = &ex["float64"];
    close(
        &jr,
        &tensor(&r["jacrev_tanh_Wx"], DType::F64),
        1e-10,
        1e-12,
        "jacrev",
    );
    close(
        &jf,
        &tensor(&r["jacfwd_tanh_Wx"], DType::F64),
        1e-10,
        1e-12,
        "jacfwd",
    );
    // jax.hessian(logsumexp)(x) at the same x.
    let h = ad::hessian(&x, |z| ferrax::ops::composite::logsumexp(z, &[0])).unwrap();
    close(
        &h,
        &tensor(&r["hessian_logsumexp"], DType::F64),
        1e-10,
        1e-12,
        "hessian",
    );
}
