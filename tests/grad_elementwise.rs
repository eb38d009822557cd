//! Reverse-mode (`vjp`) and batching (`batch`) rules of the elementwise family (unary,
//! binary, compare, select, convert). Gradients are checked against central finite
//! differences in f64 (first and second order, reverse and forward mode) and against closed
//! forms at the conventional edge points (abs at 0, max/min ties, `0 ** y`); batching rules
//! against a per-example loop, which must agree exactly.

use ferrax::ad::{grad, jvp};
use ferrax::prim::binary::{binary, BinaryOp};
use ferrax::prim::compare::{compare, Compare, CompareOp};
use ferrax::prim::concatenate::stack;
use ferrax::prim::convert::{convert, Convert};
use ferrax::prim::reduce::reduce_sum;
use ferrax::prim::reshape::reshape;
use ferrax::prim::select::{select, Select};
use ferrax::prim::slice::slice_in_dim;
use ferrax::prim::transpose::transpose;
use ferrax::prim::unary::{trigamma, unary, Unary, UnaryOp};
use ferrax::prim::Primitive;
use ferrax::testing::{check_grads, GradCheck};
use ferrax::{Array, DType, Result};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// Helpers.

fn a64(shape: &[usize], v: &[f64]) -> Array {
    Array::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}

fn f64s(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

fn sum_all(x: &Array) -> Result<Array> {
    let axes: Vec<usize> = (0..x.rank()).collect();
    reduce_sum(x, &axes)
}

/// The project standard: eps 1e-4, rtol 1e-5, first and second order.
fn opts() -> GradCheck {
    GradCheck {
        eps: 1e-4,
        rtol: 1e-5,
        atol: 1e-7,
        directions: 3,
        second_order: true,
        seed: 7,
    }
}

/// Inputs inside each float unary op's domain and away from its kinks and poles (`None`:
/// the op is not differentiable, tested separately).
fn unary_inputs(op: UnaryOp) -> Option<Vec<f64>> {
    use UnaryOp::*;
    Some(match op {
        Sign | Floor | Ceil | Round | IsFinite | Not => return None,
        Neg | Atan | Asinh | Sinh | Cosh => vec![-1.3, 0.4, 1.7, -0.2],
        Abs => vec![-1.3, 0.7, 2.1, -0.4],
        Exp | Expm1 => vec![-1.3, 0.4, 1.2, -0.05],
        Log | Sqrt | Rsqrt => vec![0.5, 1.5, 4.0, 0.8],
        Log1p => vec![-0.5, 0.3, 2.0, 0.01],
        Cbrt => vec![-2.0, 0.5, 3.0, -0.7],
        Sin | Cos | Tan => vec![-1.0, 0.3, 1.2, 0.7],
        Asin | Acos | Atanh | ErfInv => vec![-0.6, 0.1, 0.7, -0.3],
        Tanh | Logistic | Erf | Erfc => vec![-1.2, 0.3, 0.9, -0.1],
        Acosh => vec![1.3, 2.0, 4.0, 1.6],
        // Include negative non-integers: lgamma = ln|Γ| is smooth there and digamma's
        // derivative takes trigamma's reflection branch.
        Lgamma | Digamma => vec![0.3, 1.7, 4.5, -0.5, -2.3, 12.0],
    })
}

fn unary_fn(op: UnaryOp) -> impl Fn(&[Array]) -> Result<Array> {
    move |xs: &[Array]| sum_all(&unary(op, &xs[0])?)
}

// ---------------------------------------------------------------------------------------
// Unary gradients.

#[test]
fn every_differentiable_unary_op_passes_check_grads_first_and_second_order() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for &op in UnaryOp::ALL {
        let Some(xs) = unary_inputs(op) else { continue };
        let x = a64(&[xs.len()], &xs);
        checked += 1;
        if let Err(e) = check_grads(&unary_fn(op), &[x], opts()) {
            failures.push(format!("{}: {e}", op.name()));
        }
    }
    assert!(checked >= 26, "only {checked} ops were checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unary_gradients_match_closed_forms() {
    use UnaryOp::*;
    let pi = std::f64::consts::PI;
    let xs = [0.2, 0.45, 0.8];
    let cases: Vec<(UnaryOp, fn(f64) -> f64)> = vec![
        (Logistic, |x| {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }),
        (Tanh, |x| 1.0 - x.tanh() * x.tanh()),
        (Sqrt, |x| 0.5 / x.sqrt()),
        (Rsqrt, |x| -0.5 * x.powf(-1.5)),
        (Log1p, |x| 1.0 / (1.0 + x)),
        (Expm1, |x| x.exp()),
        (Erf, |x| 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp()),
        (Atanh, |x| 1.0 / (1.0 - x * x)),
    ];
    for (op, d) in cases {
        let x = a64(&[3], &xs);
        let g = grad(&x, |x| sum_all(&unary(op, x).unwrap()).unwrap()).unwrap();
        for (i, &xi) in xs.iter().enumerate() {
            let want = d(xi);
            let got = f64s(&g)[i];
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                "{}'({xi}) = {got}, want {want}",
                op.name()
            );
        }
    }
    // erf_inv'(y) = sqrt(pi)/2 exp(erf_inv(y)^2): at y = erf(0.5) it is sqrt(pi)/2 e^{0.25}.
    let y = unary(Erf, &a64(&[1], &[0.5])).unwrap();
    let g = grad(&y, |y| sum_all(&unary(ErfInv, y).unwrap()).unwrap()).unwrap();
    let want = pi.sqrt() / 2.0 * 0.25f64.exp();
    assert!(
        (f64s(&g)[0] - want).abs() < 1e-13,
        "{} vs {want}",
        f64s(&g)[0]
    );
    // lgamma'(1) = digamma(1) = -γ; digamma'(1) = trigamma(1) = π²/6.
    let one = a64(&[1], &[1.0]);
    let g = grad(&one, |x| sum_all(&unary(Lgamma, x).unwrap()).unwrap()).unwrap();
    assert!((f64s(&g)[0] + 0.577_215_664_901_532_9).abs() < 1e-14);
    let g = grad(&one, |x| sum_all(&unary(Digamma, x).unwrap()).unwrap()).unwrap();
    assert!(
        (f64s(&g)[0] - pi * pi / 6.0).abs() < 1e-14,
        "{}",
        f64s(&g)[0]
    );
}

/// Trigamma against closed forms and an independent oracle (the defining series
/// Σ 1/(x+k)², summed far out with an integral tail correction).
#[test]
fn trigamma_is_accurate_in_f64() {
    let pi = std::f64::consts::PI;
    let oracle = |x: f64| -> f64 {
        // Σ_{k<N} 1/(x+k)² + (Euler-Maclaurin tail) 1/w + 1/(2w²) + 1/(6w³) - 1/(30 w^5).
        let n = 2000;
        let mut s = 0.0;
        for k in (0..n).rev() {
            let t = x + k as f64;
            s += 1.0 / (t * t);
        }
        let w = x + n as f64;
        s + 1.0 / w + 0.5 / (w * w) + 1.0 / (6.0 * w * w * w) - 1.0 / (30.0 * w.powi(5))
    };
    let xs = [0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 25.0, 1e3, 0.1, 1e-3];
    let got = f64s(&trigamma(&a64(&[xs.len()], &xs)).unwrap());
    for (&x, &g) in xs.iter().zip(&got) {
        let want = oracle(x);
        assert!(
            (g - want).abs() <= 1e-13 * want.abs(),
            "trigamma({x}) = {g:e}, want {want:e}"
        );
    }
    // Closed forms: ψ₁(1) = π²/6, ψ₁(1/2) = π²/2, ψ₁(-1/2) = π²/2 + 4 (reflection branch).
    let special = f64s(&trigamma(&a64(&[3], &[1.0, 0.5, -0.5])).unwrap());
    for (g, want) in special
        .iter()
        .zip([pi * pi / 6.0, pi * pi / 2.0, pi * pi / 2.0 + 4.0])
    {
        assert!((g - want).abs() <= 2e-15 * want, "{g} vs {want}");
    }
    // Negative non-integers via reflection: ψ₁(x) = π²/sin²(πx) - ψ₁(1-x).
    for x in [-0.3, -1.7, -4.25] {
        let g = f64s(&trigamma(&a64(&[1], &[x])).unwrap())[0];
        let want = pi * pi / (pi * x).sin().powi(2) - oracle(1.0 - x);
        assert!(
            (g - want).abs() <= 1e-12 * want.abs(),
            "trigamma({x}) = {g}, want {want}"
        );
    }
    // Poles are not finite; integers and bools are rejected with an error (no panic).
    let p = f64s(&trigamma(&a64(&[2], &[0.0, -3.0])).unwrap());
    assert!(p.iter().all(|v| !v.is_finite()), "{p:?}");
    assert!(trigamma(&Array::from_vec(vec![1], vec![1i32]).unwrap()).is_err());
    // f32 computes in f32.
    let g32 = trigamma(&Array::from_vec(vec![1], vec![1.0f32]).unwrap()).unwrap();
    assert_eq!(g32.dtype(), DType::F32);
    assert!((g32.to_vec::<f32>().unwrap()[0] as f64 - pi * pi / 6.0).abs() < 1e-5);
}

#[test]
fn abs_has_zero_gradient_at_zero_and_sign_elsewhere() {
    let x = a64(&[4], &[-2.0, -0.0, 0.0, 3.0]);
    let g = grad(&x, |x| sum_all(&unary(UnaryOp::Abs, x).unwrap()).unwrap()).unwrap();
    assert_eq!(f64s(&g), vec![-1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn rounding_and_sign_have_zero_gradients() {
    use UnaryOp::*;
    // Away from their jumps these are locally constant, so finite differences agree too.
    let x = a64(&[4], &[-1.3, 0.3, 1.7, 2.2]);
    for op in [Sign, Floor, Ceil, Round] {
        let g = grad(&x, |x| sum_all(&unary(op, x).unwrap()).unwrap()).unwrap();
        assert_eq!(f64s(&g), vec![0.0; 4], "{}", op.name());
        check_grads(&unary_fn(op), std::slice::from_ref(&x), opts())
            .unwrap_or_else(|e| panic!("{}: {e}", op.name()));
        // The rule itself reports "no cotangent".
        let y = unary(op, &x).unwrap();
        let ct = Unary(op)
            .vjp(
                std::slice::from_ref(&x),
                std::slice::from_ref(&y),
                &[Some(y.clone())],
            )
            .unwrap();
        assert!(ct[0].is_none(), "{}", op.name());
    }
    // `x * floor(x)`: only the product rule's `floor(x)` term survives.
    let g = grad(&x, |x| {
        sum_all(&binary(BinaryOp::Mul, x, &unary(Floor, x).unwrap()).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(f64s(&g), vec![-2.0, 0.0, 1.0, 2.0]);
}

#[test]
fn integer_and_bool_operands_get_no_cotangent() {
    let xi = Array::from_vec(vec![3], vec![1i32, -2, 3]).unwrap();
    for op in [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign] {
        let y = unary(op, &xi).unwrap();
        let ct = Unary(op)
            .vjp(
                std::slice::from_ref(&xi),
                std::slice::from_ref(&y),
                &[Some(y.clone())],
            )
            .unwrap();
        assert!(ct[0].is_none(), "{}", op.name());
    }
    for op in [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Max, BinaryOp::And] {
        let y = binary(op, &xi, &xi).unwrap();
        let ct = ferrax::prim::binary::Binary(op)
            .vjp(
                &[xi.clone(), xi.clone()],
                std::slice::from_ref(&y),
                &[Some(y.clone())],
            )
            .unwrap();
        assert!(ct.iter().all(Option::is_none), "{}", op.name());
    }
    // A zero (absent) cotangent stays absent.
    let x = a64(&[2], &[1.0, 2.0]);
    let y = unary(UnaryOp::Exp, &x).unwrap();
    assert!(Unary(UnaryOp::Exp)
        .vjp(std::slice::from_ref(&x), &[y], &[None])
        .unwrap()[0]
        .is_none());
}

// ---------------------------------------------------------------------------------------
// Binary gradients.

/// Operands (a, b) inside each float binary op's domain, away from kinks and ties.
fn binary_inputs(op: BinaryOp) -> Option<(Vec<f64>, Vec<f64>)> {
    use BinaryOp::*;
    Some(match op {
        And | Or | Xor => return None,
        Add | Sub | Mul | Atan2 => (vec![-1.3, 0.7, 2.1, -0.4], vec![0.6, 1.9, -0.8, -1.1]),
        Div => (vec![-1.3, 0.7, 2.1, -0.4], vec![0.6, 1.9, -0.8, -1.6]),
        // a / b well away from integers (rem jumps there).
        Rem => (vec![5.3, -3.7, 2.9, 0.4], vec![1.7, 1.1, -0.8, 0.9]),
        Pow => (vec![0.5, 1.3, 2.2, 0.9], vec![-0.7, 1.5, 2.5, 3.0]),
        Max | Min => (vec![-1.3, 0.7, 2.1, -0.4], vec![0.6, 0.2, 2.5, -1.1]),
    })
}

#[test]
fn every_differentiable_binary_op_passes_check_grads_first_and_second_order() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for &op in BinaryOp::ALL {
        let Some((a, b)) = binary_inputs(op) else {
            continue;
        };
        checked += 1;
        let f = move |xs: &[Array]| sum_all(&binary(op, &xs[0], &xs[1])?);
        let args = [a64(&[a.len()], &a), a64(&[b.len()], &b)];
        if let Err(e) = check_grads(&f, &args, opts()) {
            failures.push(format!("{}: {e}", op.name()));
        }
        // A product with another op makes the second-order check mix the operands.
        let g = move |xs: &[Array]| {
            let y = binary(op, &xs[0], &xs[1])?;
            sum_all(&binary(BinaryOp::Mul, &y, &unary(UnaryOp::Sin, &xs[0])?)?)
        };
        if let Err(e) = check_grads(&g, &args, opts()) {
            failures.push(format!("{} * sin: {e}", op.name()));
        }
    }
    assert_eq!(checked, 9);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn max_and_min_split_ties_evenly_like_jax() {
    for op in [BinaryOp::Max, BinaryOp::Min] {
        let a = a64(&[3], &[1.0, 2.0, 5.0]);
        let b = a64(&[3], &[1.0, 3.0, 4.0]);
        let g = grad(&(a.clone(), b.clone()), |(a, b)| {
            sum_all(&binary(op, a, b).unwrap()).unwrap()
        })
        .unwrap();
        let (ga, gb) = (f64s(&g.0), f64s(&g.1));
        let (wa, wb) = if op == BinaryOp::Max {
            (vec![0.5, 0.0, 1.0], vec![0.5, 1.0, 0.0])
        } else {
            (vec![0.5, 1.0, 0.0], vec![0.5, 0.0, 1.0])
        };
        assert_eq!((ga, gb), (wa, wb), "{}", op.name());
        // max(x, x) = x: the halves add up to 1.
        let g = grad(&a, |x| sum_all(&binary(op, x, x).unwrap()).unwrap()).unwrap();
        assert_eq!(f64s(&g), vec![1.0; 3]);
    }
}

#[test]
fn pow_gradients_follow_jax_at_zero() {
    // d/da a^b = b a^(b-1) (0 where b == 0); d/db a^b = log(a) a^b (0 where a == 0).
    let a = a64(&[5], &[0.0, 0.0, 2.0, 0.0, 3.0]);
    let b = a64(&[5], &[2.0, 0.0, 0.0, 3.5, 1.5]);
    let g = grad(&(a.clone(), b.clone()), |(a, b)| {
        sum_all(&binary(BinaryOp::Pow, a, b).unwrap()).unwrap()
    })
    .unwrap();
    let ln2 = std::f64::consts::LN_2;
    assert_eq!(f64s(&g.0)[..4], [0.0, 0.0, 0.0, 0.0]);
    assert!((f64s(&g.0)[4] - 1.5 * 3f64.sqrt()).abs() < 1e-14);
    let gb = f64s(&g.1);
    assert_eq!(gb[..2], [0.0, 0.0]);
    assert!((gb[2] - ln2).abs() < 1e-15);
    assert_eq!(gb[3], 0.0);
    assert!((gb[4] - 3f64.ln() * 3f64.powf(1.5)).abs() < 1e-14);
    assert!(f64s(&g.0).iter().chain(&gb).all(|v| v.is_finite()));
}

#[test]
fn rem_and_atan2_gradients_match_closed_forms() {
    let a = a64(&[3], &[5.3, -3.7, 2.9]);
    let b = a64(&[3], &[1.7, 1.1, -0.8]);
    let g = grad(&(a.clone(), b.clone()), |(a, b)| {
        sum_all(&binary(BinaryOp::Rem, a, b).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(f64s(&g.0), vec![1.0; 3]);
    // -trunc(a / b): trunc(3.12) = 3, trunc(-3.36) = -3, trunc(-3.625) = -3.
    assert_eq!(f64s(&g.1), vec![-3.0, 3.0, 3.0]);
    let g = grad(&(a.clone(), b.clone()), |(a, b)| {
        sum_all(&binary(BinaryOp::Atan2, a, b).unwrap()).unwrap()
    })
    .unwrap();
    let (av, bv) = (f64s(&a), f64s(&b));
    for i in 0..3 {
        let d = av[i] * av[i] + bv[i] * bv[i];
        assert!((f64s(&g.0)[i] - bv[i] / d).abs() < 1e-15);
        assert!((f64s(&g.1)[i] + av[i] / d).abs() < 1e-15);
    }
}

// ---------------------------------------------------------------------------------------
// Compare, select, convert.

#[test]
fn comparisons_have_no_gradient() {
    let a = a64(&[3], &[1.0, 2.0, 3.0]);
    let b = a64(&[3], &[2.0, 2.0, 1.0]);
    for &op in CompareOp::ALL {
        let y = compare(op, &a, &b).unwrap();
        let ct = Compare(op)
            .vjp(
                &[a.clone(), b.clone()],
                std::slice::from_ref(&y),
                &[Some(y.clone())],
            )
            .unwrap();
        assert_eq!(ct.len(), 2);
        assert!(ct.iter().all(Option::is_none), "{}", op.name());
        // Through a conversion to float: still zero.
        let g = grad(&(a.clone(), b.clone()), |(a, b)| {
            let c = convert(&compare(op, a, b).unwrap(), DType::F64).unwrap();
            sum_all(&c).unwrap()
        })
        .unwrap();
        assert_eq!(
            (f64s(&g.0), f64s(&g.1)),
            (vec![0.0; 3], vec![0.0; 3]),
            "{}",
            op.name()
        );
    }
}

#[test]
fn select_routes_the_cotangent_to_the_chosen_branch() {
    let p = Array::from_vec(vec![4], vec![true, false, false, true]).unwrap();
    let t = a64(&[4], &[0.3, -1.2, 2.0, 0.7]);
    let f = a64(&[4], &[1.1, 0.4, -0.6, 1.9]);
    let w = a64(&[4], &[1.0, 2.0, 3.0, 4.0]);
    let g = grad(&(t.clone(), f.clone()), |(t, f)| {
        let s = select(&p, t, f).unwrap();
        sum_all(&binary(BinaryOp::Mul, &s, &w).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(f64s(&g.0), vec![1.0, 0.0, 0.0, 4.0]);
    assert_eq!(f64s(&g.1), vec![0.0, 2.0, 3.0, 0.0]);
    // Nonlinear branches, first and second order (the predicate is a captured constant).
    let p2 = p.clone();
    let h = move |xs: &[Array]| {
        let s = select(
            &p2,
            &unary(UnaryOp::Sin, &xs[0])?,
            &binary(BinaryOp::Mul, &xs[0], &xs[1])?,
        )?;
        sum_all(&binary(BinaryOp::Mul, &s, &s)?)
    };
    check_grads(&h, &[t.clone(), f.clone()], opts()).unwrap();
    // A predicate computed from the operand: `where(x > 0, x², -x)`.
    let relu_ish = |xs: &[Array]| {
        let zero = Array::full(&[4], DType::F64, 0.0);
        let pos = compare(CompareOp::Gt, &xs[0], &zero)?;
        let s = select(
            &pos,
            &binary(BinaryOp::Mul, &xs[0], &xs[0])?,
            &unary(UnaryOp::Neg, &xs[0])?,
        )?;
        sum_all(&s)
    };
    check_grads(&relu_ish, std::slice::from_ref(&t), opts()).unwrap();
    // The rule: no cotangent for the predicate; integer branches none either.
    let y = select(&p, &t, &f).unwrap();
    let ct = Select
        .vjp(
            &[p.clone(), t.clone(), f.clone()],
            std::slice::from_ref(&y),
            &[Some(y.clone())],
        )
        .unwrap();
    assert!(ct[0].is_none() && ct[1].is_some() && ct[2].is_some());
    let ti = Array::from_vec(vec![4], vec![1i32, 2, 3, 4]).unwrap();
    let yi = select(&p, &ti, &ti).unwrap();
    let ct = Select
        .vjp(
            &[p.clone(), ti.clone(), ti],
            std::slice::from_ref(&yi),
            &[Some(yi.clone())],
        )
        .unwrap();
    assert!(ct.iter().all(Option::is_none));
}

#[test]
fn convert_sends_the_cotangent_back_in_the_operand_dtype() {
    // f32 -> f64: the gradient is f32 and equals the weights.
    let x = Array::from_vec(vec![3], vec![0.5f32, -1.25, 2.0]).unwrap();
    let w = a64(&[3], &[1.5, -2.0, 0.25]);
    let g = grad(&x, |x| {
        let y = convert(x, DType::F64).unwrap();
        sum_all(&binary(BinaryOp::Mul, &y, &w).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.5, -2.0, 0.25]);
    // f64 -> f32 -> f64 round trip inside x² (values exact in f32): d/dx = 2x, and the
    // second derivative through the conversions (forward over reverse) is 2.
    let x = a64(&[3], &[0.5, -1.25, 2.0]);
    let sq = |x: &Array| {
        let y = convert(&convert(x, DType::F32).unwrap(), DType::F64).unwrap();
        sum_all(&binary(BinaryOp::Mul, &y, &y).unwrap()).unwrap()
    };
    let g = grad(&x, sq).unwrap();
    assert_eq!(f64s(&g), vec![1.0, -2.5, 4.0]);
    let t = a64(&[3], &[1.0, 1.0, 1.0]);
    let (_, hv) = jvp(&x, &t, |x| grad(x, sq).unwrap()).unwrap();
    assert_eq!(f64s(&hv), vec![2.0, 2.0, 2.0]);
    // f64 -> i32 (and bool -> f64): no gradient.
    let g = grad(&x, |x| {
        let i = convert(x, DType::I32).unwrap();
        sum_all(&convert(&i, DType::F64).unwrap()).unwrap()
    })
    .unwrap();
    assert_eq!(f64s(&g), vec![0.0; 3]);
    let xi = convert(&x, DType::I32).unwrap();
    let yi = convert(&xi, DType::F64).unwrap();
    let ct = Convert { to: DType::F64 }
        .vjp(&[xi], std::slice::from_ref(&yi), &[Some(yi.clone())])
        .unwrap();
    assert!(ct[0].is_none());
}

#[test]
fn broadcasting_binary_ops_reduce_the_cotangent_to_the_operand_shape() {
    use ferrax::prim::binary::binary_bcast;
    let a = a64(&[2, 3], &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
    let b = a64(&[3], &[0.7, -0.2, 1.3]);
    for op in [BinaryOp::Mul, BinaryOp::Div, BinaryOp::Atan2, BinaryOp::Pow] {
        let f = move |xs: &[Array]| sum_all(&binary_bcast(op, &xs[0], &xs[1])?);
        check_grads(&f, &[a.clone(), b.clone()], opts())
            .unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    }
}

// ---------------------------------------------------------------------------------------
// Batching rules vs a per-example loop.

const B: usize = 3;
const EX: [usize; 2] = [2, 4];

/// A batched operand with the batch axis at `dim` (or an unbatched one), deterministic
/// values spread over `lo..hi`.
fn batched_operand(dim: Option<usize>, seed: usize, lo: f64, hi: f64, dtype: DType) -> Array {
    let mut shape = EX.to_vec();
    if let Some(d) = dim {
        shape.insert(d, B);
    }
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let u = ((i * 7919 + seed * 104_729) % 1009) as f64 / 1009.0;
            lo + (hi - lo) * u
        })
        .collect();
    convert(&a64(&shape, &v), dtype).unwrap()
}

/// Example `i` of an operand batched along `dim` (the operand itself if unbatched).
fn example(x: &Array, dim: Option<usize>, i: usize) -> Array {
    match dim {
        None => x.clone(),
        Some(d) => {
            let s = slice_in_dim(x, d, i, i + 1, 1).unwrap();
            let mut shape = x.shape().to_vec();
            shape.remove(d);
            reshape(&s, &shape).unwrap()
        }
    }
}

/// Runs `prim`'s batch rule and a per-example loop; both must agree bit for bit.
fn check_batch(prim: Arc<dyn Primitive>, args: &[Array], dims: &[Option<usize>]) {
    let (outs, out_dims) = prim
        .batch(args, dims)
        .unwrap_or_else(|e| panic!("{} batch {dims:?}: {e}", prim.name()));
    assert_eq!(outs.len(), 1);
    let apply = |xs: &[Array]| {
        let refs: Vec<&Array> = xs.iter().collect();
        ferrax::bind(prim.clone(), &refs).unwrap().pop().unwrap()
    };
    if dims.iter().all(Option::is_none) {
        assert_eq!(out_dims, vec![None], "{}", prim.name());
        assert!(outs[0].bit_eq(&apply(args)), "{} unbatched", prim.name());
        return;
    }
    let Some(od) = out_dims[0] else {
        panic!("{} {dims:?}: batched result has no batch axis", prim.name())
    };
    let per: Vec<Array> = (0..B)
        .map(|i| {
            let xs: Vec<Array> = args
                .iter()
                .zip(dims)
                .map(|(a, d)| example(a, *d, i))
                .collect();
            apply(&xs)
        })
        .collect();
    let want = stack(&per.iter().collect::<Vec<_>>(), 0).unwrap();
    let mut perm: Vec<usize> = (0..outs[0].rank()).filter(|&a| a != od).collect();
    perm.insert(0, od);
    let got = transpose(&outs[0], &perm).unwrap();
    assert_eq!(got.shape(), want.shape(), "{} {dims:?}", prim.name());
    assert_eq!(got.dtype(), want.dtype());
    assert!(
        got.bit_eq(&want),
        "{} {dims:?}: batched result differs from the per-example loop",
        prim.name()
    );
}

const DIMS1: [Option<usize>; 4] = [None, Some(0), Some(1), Some(2)];

#[test]
fn unary_and_convert_batching_matches_a_per_example_loop() {
    for &op in UnaryOp::ALL {
        let dtype = if op == UnaryOp::Not {
            DType::I32
        } else {
            DType::F64
        };
        // Values over (-1.5, 4): some ops produce NaN outside their domain, which the
        // bitwise comparison treats like any other value (the same kernel computes both).
        for d in DIMS1 {
            let x = batched_operand(d, 1, -1.5, 4.0, dtype);
            check_batch(Arc::new(Unary(op)), &[x], &[d]);
        }
    }
    for d in DIMS1 {
        let x = batched_operand(d, 2, -3.0, 3.0, DType::F64);
        for to in [DType::F32, DType::I32, DType::Bool, DType::BF16] {
            check_batch(Arc::new(Convert { to }), std::slice::from_ref(&x), &[d]);
        }
    }
}

#[test]
fn binary_and_compare_batching_matches_a_per_example_loop() {
    for &da in &DIMS1 {
        for &db in &DIMS1 {
            for &op in BinaryOp::ALL {
                let dtype = if op.info().domain == ferrax::prim::unary::Domain::Logical {
                    DType::I32
                } else {
                    DType::F64
                };
                let (lo, hi) = if dtype == DType::I32 {
                    (-50.0, 50.0)
                } else {
                    (0.1, 3.0)
                };
                let a = batched_operand(da, 3, lo, hi, dtype);
                let b = batched_operand(db, 4, lo, hi, dtype);
                check_batch(
                    Arc::new(ferrax::prim::binary::Binary(op)),
                    &[a, b],
                    &[da, db],
                );
            }
            for &op in CompareOp::ALL {
                // Integers give plenty of ties, so eq/le/ge see both outcomes.
                let a = batched_operand(da, 5, -3.0, 3.0, DType::I32);
                let b = batched_operand(db, 6, -3.0, 3.0, DType::I32);
                check_batch(Arc::new(Compare(op)), &[a, b], &[da, db]);
            }
        }
    }
}

#[test]
fn select_batching_matches_a_per_example_loop() {
    for &dp in &DIMS1 {
        for &dt in &DIMS1 {
            for &df in &DIMS1 {
                let p =
                    convert(&batched_operand(dp, 7, -1.0, 1.0, DType::I32), DType::Bool).unwrap();
                let t = batched_operand(dt, 8, -1.0, 1.0, DType::F64);
                let f = batched_operand(df, 9, -1.0, 1.0, DType::F64);
                check_batch(Arc::new(Select), &[p, t, f], &[dp, dt, df]);
            }
        }
    }
}

#[test]
fn batching_rejects_mismatched_operands_with_errors() {
    let bin = ferrax::prim::binary::Binary(BinaryOp::Add);
    let a = batched_operand(Some(0), 1, 0.0, 1.0, DType::F64);
    // Batch axis out of range.
    assert!(bin
        .batch(&[a.clone(), a.clone()], &[Some(0), Some(5)])
        .is_err());
    // Different batch sizes.
    let small = slice_in_dim(&a, 0, 0, 2, 1).unwrap();
    assert!(bin.batch(&[a.clone(), small], &[Some(0), Some(0)]).is_err());
    // Per-example shapes differ.
    let other = a64(&[7], &[0.0; 7]);
    assert!(bin.batch(&[a.clone(), other], &[Some(0), None]).is_err());
    // Wrong number of batch dims.
    assert!(bin.batch(&[a.clone(), a.clone()], &[Some(0)]).is_err());
    assert!(Unary(UnaryOp::Exp).batch(&[a], &[Some(3)]).is_err());
}

// ---------------------------------------------------------------------------------------
// The typed surface.

mod typed {
    use ferrax::prelude::*;

    #[grad]
    fn f(x: &Tensor<(C<3>,), f64>) -> Tensor<(), f64> {
        (x.exp() * x).sum()
    }

    #[test]
    fn grad_macro_gives_the_closed_form() {
        let xs = vec![-0.5, 0.25, 1.5];
        let x = Tensor::<(C<3>,), f64>::from_vec(xs.clone()).unwrap();
        let g = f::grad(&x).to_vec().unwrap();
        // d/dx (x e^x) = (1 + x) e^x.
        for (gi, xi) in g.iter().zip(&xs) {
            let want = (1.0 + xi) * xi.exp();
            assert!(
                (gi - want).abs() <= 1e-14 * want.abs().max(1.0),
                "{gi} vs {want}"
            );
        }
        let (v, g2) = f::value_and_grad(&x);
        let want_v: f64 = xs.iter().map(|x| x * x.exp()).sum();
        assert!((v.to_vec().unwrap()[0] - want_v).abs() < 1e-14);
        assert_eq!(g2.to_vec().unwrap(), g);
    }
}
