//! The elementwise family (unary, binary, compare, select, convert) and the typed arithmetic
//! surface, against independent oracles: std f64 math, series / continued fractions written
//! here for erf, erfc, lgamma and digamma, naive broadcasting loops, and hand-written tables.

use ferrax::ops::arith::{try_where, where_};
use ferrax::prim::binary::{binary, binary_bcast, BinaryOp};
use ferrax::prim::compare::{compare, compare_bcast, CompareOp};
use ferrax::prim::convert::convert;
use ferrax::prim::select::{select, select_bcast};
use ferrax::prim::unary::{unary, UnaryOp};
use ferrax::{bf16, f16, Array, DType, Dyn, Error, Tensor, C};

// ---------------------------------------------------------------------------------------
// Helpers.

fn a32(shape: &[usize], v: &[f32]) -> Array {
    Array::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}
fn a64(shape: &[usize], v: &[f64]) -> Array {
    Array::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}
fn f64s(a: &Array) -> Vec<f64> {
    a.storage("test").unwrap().to_f64_vec()
}

/// `got` is within `abs + rel·|want|` of `want`; NaN matches NaN and infinities match exactly.
fn close(got: f64, want: f64, abs: f64, rel: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= abs + rel * want.abs()
}

/// Bit-level equality that treats all NaNs as equal.
fn same_f32(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

// ---------------------------------------------------------------------------------------
// Oracles for the special functions (independent of the implementation under test).

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// erf by the all-positive series 2/√π e^{-x²} Σ 2ⁿ x^{2n+1} / (2n+1)!! (no cancellation).
fn erf_series(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum
}

/// erfc for x ≥ 2 by the continued fraction e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + ...))).
fn erfc_cf(x: f64) -> f64 {
    let mut t = x;
    for n in (1..=4000).rev() {
        t = x + (n as f64 / 2.0) / t;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / t
}

fn erf_ref(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x.abs() >= 2.0 {
        (1.0 - erfc_cf(x.abs())).copysign(x)
    } else {
        erf_series(x)
    }
}

fn erfc_ref(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        2.0 - erfc_ref(-x)
    } else if x >= 2.0 {
        erfc_cf(x)
    } else {
        1.0 - erf_series(x)
    }
}

/// ln|Γ(x)| by shifting to z ≥ 20, Stirling's series there, reflection for x < 0.5.
fn lgamma_ref(x: f64) -> f64 {
    if x <= 0.0 && x == x.floor() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin().abs()).ln() - lgamma_ref(1.0 - x);
    }
    let mut z = x;
    let mut shift = 0.0;
    while z < 20.0 {
        shift += z.ln();
        z += 1.0;
    }
    let z2 = z * z;
    let s = 1.0 / (12.0 * z) - 1.0 / (360.0 * z * z2) + 1.0 / (1260.0 * z * z2 * z2)
        - 1.0 / (1680.0 * z * z2 * z2 * z2);
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * std::f64::consts::PI).ln() + s - shift
}

/// ψ(x) by shifting to z ≥ 30 and four asymptotic terms; reflection via cot for x < 0.5.
fn digamma_ref(x: f64) -> f64 {
    if x <= 0.0 && x == x.floor() {
        return f64::NAN;
    }
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return digamma_ref(1.0 - x) - pi * (pi * x).cos() / (pi * x).sin();
    }
    let mut z = x;
    let mut acc = 0.0;
    while z < 30.0 {
        acc -= 1.0 / z;
        z += 1.0;
    }
    let z2 = 1.0 / (z * z);
    acc + z.ln() - 0.5 / z - z2 / 12.0 + z2 * z2 / 120.0 - z2 * z2 * z2 / 252.0
}

fn round_half_even(x: f64) -> f64 {
    let f = x.floor();
    let d = x - f;
    let r = if d > 0.5 || (d == 0.5 && f % 2.0 != 0.0) {
        f + 1.0
    } else {
        f
    };
    if r == 0.0 {
        0.0f64.copysign(x)
    } else {
        r
    }
}

/// The f64 closed form of each float unary op (`None`: no float meaning, or tested apart).
fn unary_oracle(op: UnaryOp, x: f64) -> Option<f64> {
    use UnaryOp::*;
    Some(match op {
        Neg => -x,
        Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }
        Abs => x.abs(),
        Floor => x.floor(),
        Ceil => x.ceil(),
        Round => round_half_even(x),
        Exp => x.exp(),
        Expm1 => x.exp_m1(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sqrt => x.sqrt(),
        Rsqrt => 1.0 / x.sqrt(),
        Cbrt => x.cbrt(),
        Sin => x.sin(),
        Cos => x.cos(),
        Tan => x.tan(),
        Asin => x.asin(),
        Acos => x.acos(),
        Atan => x.atan(),
        Sinh => x.sinh(),
        Cosh => x.cosh(),
        Tanh => x.tanh(),
        Asinh => x.asinh(),
        Acosh => x.acosh(),
        Atanh => x.atanh(),
        Logistic => 1.0 / (1.0 + (-x).exp()),
        Erf => erf_ref(x),
        Erfc => erfc_ref(x),
        Lgamma => lgamma_ref(x),
        Digamma => digamma_ref(x),
        IsFinite => {
            if x.is_finite() {
                1.0
            } else {
                0.0
            }
        }
        ErfInv | Not => return None,
    })
}

/// (abs, rel) tolerances for f64 and for f32 results.
fn unary_tol(op: UnaryOp) -> ((f64, f64), (f64, f64)) {
    use UnaryOp::*;
    match op {
        Erf | Erfc => ((1e-16, 1e-13), (1e-7, 1e-6)),
        // Near the roots of lgamma (1, 2) and digamma (1.4616...) only absolute error is
        // meaningful.
        Lgamma => ((1e-13, 1e-13), (1e-6, 1e-6)),
        Digamma => ((1e-13, 1e-12), (1e-6, 1e-6)),
        _ => ((1e-300, 1e-14), (1e-30, 1e-6)),
    }
}

const GRID: &[f64] = &[
    -30.0, -10.0, -3.7, -2.5, -2.0, -1.5, -1.0, -0.75, -0.5, -0.3, -0.1, -1e-5, -0.0, 0.0, 1e-5,
    0.1, 0.3, 0.5, 0.75, 0.9, 1.0, 1.4616, 1.5, 2.0, 2.5, 3.0, 3.7, 5.5, 10.0, 30.0, 87.0, 200.0,
];

// ---------------------------------------------------------------------------------------
// Unary.

#[test]
fn every_float_unary_op_matches_f64_closed_forms_in_f32_and_f64() {
    let mut failures = Vec::new();
    for &op in UnaryOp::ALL {
        let ((abs64, rel64), (abs32, rel32)) = unary_tol(op);
        if unary_oracle(op, 0.0).is_none() {
            continue;
        }
        // f64
        let got = unary(op, &a64(&[GRID.len()], GRID)).unwrap();
        for (i, &x) in GRID.iter().enumerate() {
            let want = unary_oracle(op, x).unwrap();
            let g = f64s(&got)[i];
            if !close(g, want, abs64, rel64) {
                failures.push(format!(
                    "{} f64 at {x}: got {g:e}, want {want:e}",
                    op.name()
                ));
            }
        }
        // f32: the oracle is evaluated at the f32-rounded input.
        let xs: Vec<f32> = GRID.iter().map(|&x| x as f32).collect();
        let got = unary(op, &a32(&[xs.len()], &xs)).unwrap();
        let dt = if op == UnaryOp::IsFinite {
            DType::Bool
        } else {
            DType::F32
        };
        assert_eq!(got.dtype(), dt, "{}", op.name());
        for (i, &x) in xs.iter().enumerate() {
            let want = unary_oracle(op, x as f64).unwrap();
            // An f32 result saturates where the f64 one is still finite.
            let want = if dt == DType::F32 {
                want as f32 as f64
            } else {
                want
            };
            let g = f64s(&got)[i];
            if !close(g, want, abs32, rel32) {
                failures.push(format!(
                    "{} f32 at {x}: got {g:e}, want {want:e}",
                    op.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unary_special_values() {
    let inf = f64::INFINITY;
    let nan = f64::NAN;
    use UnaryOp::*;
    let table: &[(UnaryOp, f64, f64)] = &[
        (Exp, -inf, 0.0),
        (Exp, inf, inf),
        (Exp, 1000.0, inf),
        (Exp, -1000.0, 0.0),
        (Log, 0.0, -inf),
        (Log, -1.0, nan),
        (Log, inf, inf),
        (Log1p, -1.0, -inf),
        (Sqrt, -1.0, nan),
        (Sqrt, inf, inf),
        (Rsqrt, 0.0, inf),
        (Tanh, inf, 1.0),
        (Tanh, -inf, -1.0),
        (Tanh, 50.0, 1.0),
        (Logistic, -inf, 0.0),
        (Logistic, inf, 1.0),
        (Logistic, 0.0, 0.5),
        (Erf, inf, 1.0),
        (Erf, -inf, -1.0),
        (Erfc, -inf, 2.0),
        (Erfc, inf, 0.0),
        (ErfInv, 1.0, inf),
        (ErfInv, -1.0, -inf),
        (ErfInv, 1.5, nan),
        (ErfInv, 0.0, 0.0),
        (Lgamma, 0.0, inf),
        (Lgamma, -1.0, inf),
        (Lgamma, -2.0, inf),
        (Lgamma, 1.0, 0.0),
        (Lgamma, 2.0, 0.0),
        (Lgamma, inf, inf),
        (Digamma, 0.0, nan),
        (Digamma, -3.0, nan),
        (Digamma, inf, inf),
        (Round, 0.5, 0.0),
        (Round, 1.5, 2.0),
        (Round, 2.5, 2.0),
        (Round, -2.5, -2.0),
        (Round, -3.5, -4.0),
        (Sign, nan, nan),
        (Abs, -inf, inf),
        (IsFinite, nan, 0.0),
        (IsFinite, inf, 0.0),
        (IsFinite, -inf, 0.0),
        (IsFinite, 3.0, 1.0),
        (Atanh, 1.0, inf),
        (Acosh, 0.5, nan),
    ];
    for &(op, x, want) in table {
        let g64 = f64s(&unary(op, &a64(&[], &[x])).unwrap())[0];
        let g32 = f64s(&unary(op, &a32(&[1], &[x as f32])).unwrap())[0];
        assert!(
            close(g64, want, 0.0, 0.0),
            "{} f64({x}) = {g64}, want {want}",
            op.name()
        );
        assert!(
            close(g32, want, 0.0, 0.0),
            "{} f32({x}) = {g32}, want {want}",
            op.name()
        );
    }
    // Every float op maps NaN to NaN (except the predicate).
    for &op in UnaryOp::ALL {
        if op == IsFinite || op == Not {
            continue;
        }
        let g = f64s(&unary(op, &a32(&[1], &[f32::NAN])).unwrap())[0];
        assert!(g.is_nan(), "{}(NaN) = {g}", op.name());
    }
    // Signed zeros: sign(-0) = -0, round(-0.4) = -0, neg(0) = -0.
    for (op, x) in [
        (Sign, -0.0f32),
        (Round, -0.4),
        (Neg, 0.0),
        (Floor, -0.0),
        (Ceil, -0.5),
    ] {
        let g = unary(op, &a32(&[1], &[x]))
            .unwrap()
            .to_vec::<f32>()
            .unwrap()[0];
        assert!(g == 0.0 && g.is_sign_negative(), "{}({x}) = {g}", op.name());
    }
}

#[test]
fn special_function_known_values() {
    let pi = std::f64::consts::PI;
    let ln2 = std::f64::consts::LN_2;
    use UnaryOp::*;
    let table: &[(UnaryOp, f64, f64)] = &[
        (Lgamma, 0.5, pi.sqrt().ln()),
        (Lgamma, -0.5, (2.0 * pi.sqrt()).ln()),
        (Lgamma, 10.0, 362_880f64.ln()),
        (Lgamma, 3.0, 2f64.ln()),
        (Digamma, 1.0, -EULER_GAMMA),
        (Digamma, 0.5, -EULER_GAMMA - 2.0 * ln2),
        (Digamma, -0.5, -EULER_GAMMA - 2.0 * ln2 + 2.0),
        (Digamma, 4.0, -EULER_GAMMA + 1.0 + 0.5 + 1.0 / 3.0),
        (Digamma, 0.25, -EULER_GAMMA - pi / 2.0 - 3.0 * ln2),
        (Digamma, 0.75, -EULER_GAMMA + pi / 2.0 - 3.0 * ln2),
        (
            Digamma,
            1.0 / 3.0,
            -EULER_GAMMA - pi / (2.0 * 3f64.sqrt()) - 1.5 * 3f64.ln(),
        ),
        (Erf, 0.5, 0.520_499_877_813_046_5),
        (Erf, 1.0, 0.842_700_792_949_714_9),
        (Erf, 2.0, 0.995_322_265_018_952_7),
        (Erfc, 3.0, 2.209_049_699_858_544e-5),
    ];
    for &(op, x, want) in table {
        let g = f64s(&unary(op, &a64(&[], &[x])).unwrap())[0];
        assert!(
            close(g, want, 1e-15, 2e-14),
            "{} f64({x}) = {g:e}, want {want:e}",
            op.name()
        );
        let g = f64s(&unary(op, &a32(&[], &[x as f32])).unwrap())[0];
        let w = unary_oracle(op, x as f32 as f64).unwrap();
        assert!(
            close(g, w, 1e-7, 1e-6),
            "{} f32({x}) = {g:e}, want {w:e}",
            op.name()
        );
    }
    // ψ(x + 1) - ψ(x) = 1/x and lgamma(x + 1) - lgamma(x) = ln x on a grid.
    let xs: Vec<f64> = (1..60).map(|i| -7.3 + 0.37 * i as f64).collect();
    let xs1: Vec<f64> = xs.iter().map(|x| x + 1.0).collect();
    let d0 = f64s(&unary(Digamma, &a64(&[xs.len()], &xs)).unwrap());
    let d1 = f64s(&unary(Digamma, &a64(&[xs.len()], &xs1)).unwrap());
    let l0 = f64s(&unary(Lgamma, &a64(&[xs.len()], &xs)).unwrap());
    let l1 = f64s(&unary(Lgamma, &a64(&[xs.len()], &xs1)).unwrap());
    for i in 0..xs.len() {
        let x = xs[i];
        assert!(
            close(d1[i] - d0[i], 1.0 / x, 1e-12, 1e-11),
            "digamma recurrence at {x}"
        );
        assert!(
            close(l1[i] - l0[i], x.abs().ln(), 1e-12, 1e-11),
            "lgamma recurrence at {x}"
        );
    }
}

#[test]
fn erf_inv_inverts_erf() {
    let ys: Vec<f64> = [
        -0.999_999_999,
        -0.99,
        -0.9,
        -0.5,
        -0.1,
        -1e-8,
        1e-8,
        0.01,
        0.3,
        0.5,
        0.7,
        0.9,
        0.99,
        0.999_9,
        0.999_999_9,
        1.0 - 1e-12,
    ]
    .to_vec();
    let xs = f64s(&unary(UnaryOp::ErfInv, &a64(&[ys.len()], &ys)).unwrap());
    for (&y, &x) in ys.iter().zip(&xs) {
        // Error in x from the residual: dx = (erf(x) - y) / erf'(x), with erfc for |y| near 1.
        let resid = if y.abs() > 0.5 {
            (1.0 - y.abs()) - erfc_ref(x.abs())
        } else {
            erf_ref(x) - y
        };
        let deriv = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
        let dx = resid / deriv;
        assert!(
            dx.abs() <= 1e-13 * x.abs(),
            "erf_inv({y}) = {x}, dx = {dx:e}"
        );
    }
    // f32: the f32 op equals the f64 op rounded (within 1 ulp).
    let ys32: Vec<f32> = ys
        .iter()
        .map(|&y| y as f32)
        .filter(|y| y.abs() < 1.0)
        .collect();
    let g = unary(UnaryOp::ErfInv, &a32(&[ys32.len()], &ys32))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let w64: Vec<f64> = ys32.iter().map(|&y| y as f64).collect();
    let w = f64s(&unary(UnaryOp::ErfInv, &a64(&[w64.len()], &w64)).unwrap());
    for i in 0..g.len() {
        assert!(
            close(g[i] as f64, w[i], 0.0, 1.2e-7),
            "erf_inv f32({})",
            ys32[i]
        );
    }
}

#[test]
fn fast_f32_exp_tanh_logistic_are_accurate_on_dense_sweeps() {
    // Dense sweeps through the vectorized kernels (parallel path: > 32K elements).
    let cases: &[(UnaryOp, f32, f32)] = &[
        (UnaryOp::Exp, -103.0, 88.7),
        (UnaryOp::Tanh, -12.0, 12.0),
        (UnaryOp::Logistic, -90.0, 90.0),
    ];
    for &(op, lo, hi) in cases {
        let n = 100_001;
        let xs: Vec<f32> = (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect();
        let got = unary(op, &a32(&[n], &xs)).unwrap().to_vec::<f32>().unwrap();
        let mut worst = 0.0f64;
        for (&x, &g) in xs.iter().zip(&got) {
            let w = unary_oracle(op, x as f64).unwrap();
            // Relative error, measured against the smallest normal for subnormal results.
            let err = (g as f64 - w).abs() / w.abs().max(f32::MIN_POSITIVE as f64);
            worst = worst.max(err);
            // The slice form equals the scalar form.
            assert!(
                same_f32(g, op.f32(x)),
                "{} slice vs scalar at {x}",
                op.name()
            );
        }
        assert!(
            worst <= 1e-6,
            "{}: worst relative error {worst:e}",
            op.name()
        );
    }
    // Subnormal and overflow edges of exp.
    for (x, w) in [
        (-87.5f32, (-87.5f64).exp()),
        (-100.0, (-100f64).exp()),
        (-104.0, 0.0),
        (89.0, f64::INFINITY),
    ] {
        let g = UnaryOp::Exp.f32(x) as f64;
        let want = w as f32 as f64;
        assert!(
            close(g, want, 2.0 * 1.4e-45, 1e-6),
            "exp({x}) = {g:e}, want {want:e}"
        );
    }
}

#[test]
fn half_precision_unary_equals_f32_result_rounded() {
    let xs: Vec<f32> = GRID.iter().map(|&x| x as f32).collect();
    for &op in UnaryOp::ALL {
        if op == UnaryOp::Not {
            continue;
        }
        let xb: Vec<bf16> = xs.iter().map(|&x| bf16::from_f32(x)).collect();
        let xh: Vec<f16> = xs.iter().map(|&x| f16::from_f32(x)).collect();
        let gb = unary(op, &Array::from_vec(vec![xb.len()], xb.clone()).unwrap()).unwrap();
        let gh = unary(op, &Array::from_vec(vec![xh.len()], xh.clone()).unwrap()).unwrap();
        if op == UnaryOp::IsFinite {
            let b = gb.to_vec::<bool>().unwrap();
            let h = gh.to_vec::<bool>().unwrap();
            for i in 0..xs.len() {
                assert_eq!(b[i], xb[i].is_finite());
                assert_eq!(h[i], xh[i].is_finite());
            }
            continue;
        }
        let b = gb.to_vec::<bf16>().unwrap();
        let h = gh.to_vec::<f16>().unwrap();
        for i in 0..xs.len() {
            let wb = bf16::from_f32(op.f32(xb[i].to_f32()));
            let wh = f16::from_f32(op.f32(xh[i].to_f32()));
            assert!(
                same_f32(b[i].to_f32(), wb.to_f32()),
                "{} bf16({})",
                op.name(),
                xb[i]
            );
            assert!(
                same_f32(h[i].to_f32(), wh.to_f32()),
                "{} f16({})",
                op.name(),
                xh[i]
            );
        }
    }
}

#[test]
fn unary_on_ints_and_bool_and_dtype_errors() {
    let v32 = [0i32, 1, -1, 7, -7, i32::MAX, i32::MIN];
    let x = Array::from_vec(vec![v32.len()], v32.to_vec()).unwrap();
    let neg = unary(UnaryOp::Neg, &x).unwrap().to_vec::<i32>().unwrap();
    let abs = unary(UnaryOp::Abs, &x).unwrap().to_vec::<i32>().unwrap();
    let sign = unary(UnaryOp::Sign, &x).unwrap().to_vec::<i32>().unwrap();
    let not = unary(UnaryOp::Not, &x).unwrap().to_vec::<i32>().unwrap();
    for i in 0..v32.len() {
        let v = v32[i];
        assert_eq!(neg[i], v.wrapping_neg());
        assert_eq!(abs[i], if v == i32::MIN { i32::MIN } else { v.abs() });
        assert_eq!(sign[i], (v > 0) as i32 - (v < 0) as i32);
        assert_eq!(not[i], v.wrapping_neg().wrapping_sub(1));
    }
    let v64 = [0i64, 5, -5, i64::MIN];
    let x = Array::from_vec(vec![4], v64.to_vec()).unwrap();
    assert_eq!(
        unary(UnaryOp::Neg, &x).unwrap().to_vec::<i64>().unwrap(),
        vec![0, -5, 5, i64::MIN]
    );
    assert_eq!(
        unary(UnaryOp::Sign, &x).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 1, -1, -1]
    );
    let vu = [0u32, 1, 5, u32::MAX];
    let x = Array::from_vec(vec![4], vu.to_vec()).unwrap();
    assert_eq!(
        unary(UnaryOp::Neg, &x).unwrap().to_vec::<u32>().unwrap(),
        vec![0, u32::MAX, u32::MAX - 4, 1]
    );
    assert_eq!(
        unary(UnaryOp::Abs, &x).unwrap().to_vec::<u32>().unwrap(),
        vu.to_vec()
    );
    assert_eq!(
        unary(UnaryOp::Sign, &x).unwrap().to_vec::<u32>().unwrap(),
        vec![0, 1, 1, 1]
    );
    assert_eq!(
        unary(UnaryOp::Not, &x).unwrap().to_vec::<u32>().unwrap(),
        vec![u32::MAX, u32::MAX - 1, !5, 0]
    );
    let b = Array::from_vec(vec![2], vec![true, false]).unwrap();
    assert_eq!(
        unary(UnaryOp::Not, &b).unwrap().to_vec::<bool>().unwrap(),
        vec![false, true]
    );

    // Float-only ops reject ints and bool; `not` rejects floats; numeric ops reject bool.
    let xi = Array::from_vec(vec![1], vec![1i32]).unwrap();
    for &op in UnaryOp::ALL {
        let info = op.info();
        for (arr, dt) in [
            (&xi, DType::I32),
            (&b, DType::Bool),
            (&a32(&[1], &[1.0]), DType::F32),
        ] {
            let r = unary(op, arr);
            if info.domain.accepts(dt) {
                assert!(r.is_ok(), "{} on {dt}", op.name());
            } else {
                match r {
                    Err(Error::DType { op: name, msg }) => {
                        assert_eq!(name, op.name());
                        assert!(msg.contains(dt.name()), "{msg}");
                    }
                    other => panic!(
                        "{} on {dt}: expected a dtype error, got {other:?}",
                        op.name()
                    ),
                }
            }
        }
    }
}

#[test]
fn unary_on_empty_and_rank0_and_large_parallel_arrays() {
    let e = unary(UnaryOp::Exp, &a32(&[0, 3], &[])).unwrap();
    assert_eq!(e.shape(), &[0, 3]);
    assert_eq!(e.numel(), 0);
    let e = unary(UnaryOp::IsFinite, &a64(&[2, 0], &[])).unwrap();
    assert_eq!((e.shape(), e.dtype()), (&[2usize, 0][..], DType::Bool));
    let s = unary(UnaryOp::Sqrt, &a64(&[], &[9.0])).unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![3.0]);
    // Above the parallel threshold the result equals the scalar form element by element
    // (so it cannot depend on the thread count).
    let n = 70_001;
    let xs: Vec<f64> = (0..n).map(|i| (i as f64) * 1e-3 - 35.0).collect();
    for op in [UnaryOp::Sin, UnaryOp::Tanh, UnaryOp::Lgamma] {
        let g = unary(op, &a64(&[n], &xs)).unwrap().to_vec::<f64>().unwrap();
        for i in (0..n).step_by(97) {
            assert_eq!(g[i].to_bits(), op.f64(xs[i]).to_bits());
        }
    }
    let xb: Vec<bf16> = xs.iter().map(|&x| bf16::from_f64(x)).collect();
    let g = unary(UnaryOp::Exp, &Array::from_vec(vec![n], xb.clone()).unwrap()).unwrap();
    let g = g.to_vec::<bf16>().unwrap();
    for i in (0..n).step_by(89) {
        assert_eq!(g[i], bf16::from_f32(UnaryOp::Exp.f32(xb[i].to_f32())));
    }
}

// ---------------------------------------------------------------------------------------
// Binary.

fn binary_oracle(op: BinaryOp, a: f64, b: f64) -> f64 {
    use BinaryOp::*;
    match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div => a / b,
        Rem => {
            // C fmod: a - trunc(a / b) b, exact for the small values used here.
            if b == 0.0 || a.is_infinite() || a.is_nan() || b.is_nan() {
                f64::NAN
            } else if b.is_infinite() {
                a
            } else {
                a - (a / b).trunc() * b
            }
        }
        Pow => a.powf(b),
        Max => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        Min => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
        Atan2 => a.atan2(b),
        And | Or | Xor => unreachable!(),
    }
}

const BIN_VALS: &[f64] = &[
    -3.5,
    -2.0,
    -1.0,
    -0.0,
    0.0,
    0.5,
    1.0,
    2.0,
    3.0,
    7.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

#[test]
fn every_float_binary_op_matches_oracle_in_f32_f64_and_halves() {
    let n = BIN_VALS.len();
    // All pairs.
    let a: Vec<f64> = (0..n * n).map(|i| BIN_VALS[i / n]).collect();
    let b: Vec<f64> = (0..n * n).map(|i| BIN_VALS[i % n]).collect();
    let a32v: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let b32v: Vec<f32> = b.iter().map(|&x| x as f32).collect();
    for &op in BinaryOp::ALL {
        if !op.info().domain.accepts(DType::F32) {
            continue;
        }
        let g64 = f64s(&binary(op, &a64(&[n, n], &a), &a64(&[n, n], &b)).unwrap());
        let g32 = f64s(&binary(op, &a32(&[n * n], &a32v), &a32(&[n * n], &b32v)).unwrap());
        for i in 0..n * n {
            let w = binary_oracle(op, a[i], b[i]);
            assert!(
                close(g64[i], w, 0.0, 1e-15),
                "{} f64({}, {}) = {}, want {w}",
                op.name(),
                a[i],
                b[i],
                g64[i]
            );
            let w32 = w as f32 as f64;
            assert!(
                close(g32[i], w32, 0.0, 2e-7),
                "{} f32({}, {}) = {}, want {w32}",
                op.name(),
                a[i],
                b[i],
                g32[i]
            );
        }
        // bf16 / f16: the f32 result rounded once.
        let ab: Vec<bf16> = a32v.iter().map(|&x| bf16::from_f32(x)).collect();
        let bb: Vec<bf16> = b32v.iter().map(|&x| bf16::from_f32(x)).collect();
        let gb = binary(
            op,
            &Array::from_vec(vec![n * n], ab.clone()).unwrap(),
            &Array::from_vec(vec![n * n], bb.clone()).unwrap(),
        )
        .unwrap()
        .to_vec::<bf16>()
        .unwrap();
        let ah: Vec<f16> = a32v.iter().map(|&x| f16::from_f32(x)).collect();
        let bh: Vec<f16> = b32v.iter().map(|&x| f16::from_f32(x)).collect();
        let gh = binary(
            op,
            &Array::from_vec(vec![n * n], ah.clone()).unwrap(),
            &Array::from_vec(vec![n * n], bh.clone()).unwrap(),
        )
        .unwrap()
        .to_vec::<f16>()
        .unwrap();
        for i in 0..n * n {
            let wb = bf16::from_f32(op.f32(ab[i].to_f32(), bb[i].to_f32()));
            let wh = f16::from_f32(op.f32(ah[i].to_f32(), bh[i].to_f32()));
            assert!(same_f32(gb[i].to_f32(), wb.to_f32()), "{} bf16", op.name());
            assert!(same_f32(gh[i].to_f32(), wh.to_f32()), "{} f16", op.name());
        }
    }
    // Rounding once: (1 + 2^-7) · 3 = 3 + 1.5 ulp is a bf16 tie, decided from the exact f32
    // product (ties to even: 3 + 2 ulp).
    let x = Array::from_vec(vec![1], vec![bf16::from_f32(1.0 + 2f32.powi(-7))]).unwrap();
    let y = Array::from_vec(vec![1], vec![bf16::from_f32(3.0)]).unwrap();
    let p = binary(BinaryOp::Mul, &x, &y)
        .unwrap()
        .to_vec::<bf16>()
        .unwrap()[0];
    assert_eq!(p.to_f32(), 3.0 + 2.0 * 2f32.powi(-6));
}

#[test]
fn integer_binary_ops_wrap_and_define_division_by_zero() {
    use BinaryOp::*;
    let ia = [7i32, -7, 7, -7, 7, i32::MIN, i32::MIN, i32::MAX, 0, 12];
    let ib = [2i32, 2, -2, -2, 0, -1, 0, 1, 0, 10];
    let expect: &[(BinaryOp, [i32; 10])] = &[
        (Add, [9, -5, 5, -9, 7, i32::MAX, i32::MIN, i32::MIN, 0, 22]),
        (
            Sub,
            [5, -9, 9, -5, 7, i32::MIN + 1, i32::MIN, i32::MAX - 1, 0, 2],
        ),
        (Mul, [14, -14, -14, 14, 0, i32::MIN, 0, i32::MAX, 0, 120]),
        (Div, [3, -3, -3, 3, -1, i32::MIN, -1, i32::MAX, -1, 1]),
        (Rem, [1, -1, 1, -1, 7, 0, i32::MIN, 0, 0, 2]),
        (Max, [7, 2, 7, -2, 7, -1, 0, i32::MAX, 0, 12]),
        (Min, [2, -7, -2, -7, 0, i32::MIN, i32::MIN, 1, 0, 10]),
        (And, [2, 0, 6, -8, 0, i32::MIN, 0, 1, 0, 8]),
        (Or, [7, -5, -1, -1, 7, -1, i32::MIN, i32::MAX, 0, 14]),
        (
            Xor,
            [5, -5, -7, 7, 7, i32::MAX, i32::MIN, i32::MAX - 1, 0, 6],
        ),
    ];
    let x = Array::from_vec(vec![10], ia.to_vec()).unwrap();
    let y = Array::from_vec(vec![10], ib.to_vec()).unwrap();
    for (op, want) in expect {
        assert_eq!(
            binary(*op, &x, &y).unwrap().to_vec::<i32>().unwrap(),
            want.to_vec(),
            "{}",
            op.name()
        );
        // i64 with the same small values agrees except where i32 wrapped.
        let x64 =
            Array::from_vec(vec![10], ia.iter().map(|&v| v as i64).collect::<Vec<_>>()).unwrap();
        let y64 =
            Array::from_vec(vec![10], ib.iter().map(|&v| v as i64).collect::<Vec<_>>()).unwrap();
        let g = binary(*op, &x64, &y64).unwrap().to_vec::<i64>().unwrap();
        for i in [0, 1, 2, 3, 4, 8, 9] {
            assert_eq!(g[i], want[i] as i64, "{} i64 at {i}", op.name());
        }
    }
    // u32: division by zero gives all bits set, remainder by zero the dividend; wrapping sub.
    let x = Array::from_vec(vec![4], vec![7u32, 0, 5, u32::MAX]).unwrap();
    let y = Array::from_vec(vec![4], vec![0u32, 3, 7, 2]).unwrap();
    assert_eq!(
        binary(Div, &x, &y).unwrap().to_vec::<u32>().unwrap(),
        vec![u32::MAX, 0, 0, u32::MAX / 2]
    );
    assert_eq!(
        binary(Rem, &x, &y).unwrap().to_vec::<u32>().unwrap(),
        vec![7, 0, 5, 1]
    );
    assert_eq!(
        binary(Sub, &x, &y).unwrap().to_vec::<u32>().unwrap(),
        vec![7, u32::MAX - 2, u32::MAX - 1, u32::MAX - 2]
    );
    assert_eq!(
        binary(Add, &x, &y).unwrap().to_vec::<u32>().unwrap(),
        vec![7, 3, 12, 1]
    );
}

#[test]
fn bool_logic_truth_tables() {
    let a = Array::from_vec(vec![4], vec![false, false, true, true]).unwrap();
    let b = Array::from_vec(vec![4], vec![false, true, false, true]).unwrap();
    let t = |op| binary(op, &a, &b).unwrap().to_vec::<bool>().unwrap();
    assert_eq!(t(BinaryOp::And), vec![false, false, false, true]);
    assert_eq!(t(BinaryOp::Or), vec![false, true, true, true]);
    assert_eq!(t(BinaryOp::Xor), vec![false, true, true, false]);
    assert_eq!(t(BinaryOp::Max), vec![false, true, true, true]);
    assert_eq!(t(BinaryOp::Min), vec![false, false, false, true]);
}

#[test]
fn binary_dtype_and_shape_errors() {
    let f = a32(&[3], &[1.0, 2.0, 3.0]);
    let d = a64(&[3], &[1.0, 2.0, 3.0]);
    let i = Array::from_vec(vec![3], vec![1i32, 2, 3]).unwrap();
    let b = Array::from_vec(vec![3], vec![true, false, true]).unwrap();
    assert!(matches!(
        binary(BinaryOp::Add, &f, &d),
        Err(Error::DType { op: "add", .. })
    ));
    assert!(matches!(
        binary_bcast(BinaryOp::Mul, &f, &d),
        Err(Error::DType { op: "mul", .. })
    ));
    assert!(matches!(
        binary(BinaryOp::Add, &b, &b),
        Err(Error::DType { op: "add", .. })
    ));
    assert!(matches!(
        binary(BinaryOp::Pow, &i, &i),
        Err(Error::DType { op: "pow", .. })
    ));
    assert!(matches!(
        binary(BinaryOp::Atan2, &i, &i),
        Err(Error::DType { op: "atan2", .. })
    ));
    assert!(matches!(
        binary(BinaryOp::And, &f, &f),
        Err(Error::DType { op: "and", .. })
    ));
    let g = a32(&[4], &[0.0; 4]);
    match binary(BinaryOp::Sub, &f, &g) {
        Err(Error::Shape { op: "sub", msg }) => {
            assert!(msg.contains("[3]") && msg.contains("[4]"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    match binary_bcast(BinaryOp::Sub, &f, &g) {
        Err(Error::Shape { op: "sub", msg }) => {
            assert!(msg.contains("[3]") && msg.contains("[4]"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

/// The numpy broadcast of two shapes and, for each output position, the operand indices,
/// computed naively.
fn naive_bcast(a: &[usize], b: &[usize]) -> Option<(Vec<usize>, Vec<(usize, usize)>)> {
    let r = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        std::iter::repeat_n(1, r - s.len())
            .chain(s.iter().copied())
            .collect()
    };
    let (pa, pb) = (pad(a), pad(b));
    let mut out = Vec::new();
    for k in 0..r {
        if pa[k] == pb[k] || pb[k] == 1 {
            out.push(pa[k]);
        } else if pa[k] == 1 {
            out.push(pb[k]);
        } else {
            return None;
        }
    }
    let n: usize = out.iter().product();
    let mut idx = Vec::with_capacity(n);
    for flat in 0..n {
        let mut rem = flat;
        let mut coords = vec![0; r];
        for k in (0..r).rev() {
            coords[k] = rem % out[k];
            rem /= out[k];
        }
        let lin = |p: &[usize]| {
            coords
                .iter()
                .zip(p)
                .fold(0, |acc, (&c, &d)| acc * d + if d == 1 { 0 } else { c })
        };
        idx.push((lin(&pa), lin(&pb)));
    }
    Some((out, idx))
}

#[test]
fn broadcasting_corner_cases_for_binary_compare_and_select() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[], &[]),
        (&[], &[3]),
        (&[1], &[4]),
        (&[3, 1], &[4]),
        (&[2, 3], &[3]),
        (&[2, 1, 3], &[4, 1]),
        (&[0], &[1]),
        (&[0, 3], &[3]),
        (&[1, 0], &[3, 1]),
        (&[2, 0], &[]),
        (&[3], &[4]),
        (&[2, 3], &[2]),
        (&[0], &[2]),
    ];
    for &(sa, sb) in cases {
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let va: Vec<f64> = (0..na).map(|i| i as f64 * 1.5 - 2.0).collect();
        let vb: Vec<f64> = (0..nb).map(|i| 3.0 - i as f64).collect();
        let (a, b) = (a64(sa, &va), a64(sb, &vb));
        for (x, y, sx, sy, vx, vy) in [(&a, &b, sa, sb, &va, &vb), (&b, &a, sb, sa, &vb, &va)] {
            let r = binary_bcast(BinaryOp::Sub, x, y);
            let c = compare_bcast(CompareOp::Lt, x, y);
            match naive_bcast(sx, sy) {
                None => {
                    assert!(
                        matches!(r, Err(Error::Shape { .. })),
                        "{sx:?} vs {sy:?}: {r:?}"
                    );
                    assert!(matches!(c, Err(Error::Shape { .. })), "{sx:?} vs {sy:?}");
                }
                Some((shape, idx)) => {
                    let r = r.unwrap();
                    let c = c.unwrap();
                    assert_eq!(r.shape(), &shape[..], "{sx:?} vs {sy:?}");
                    assert_eq!(c.shape(), &shape[..]);
                    let rv = r.to_vec::<f64>().unwrap();
                    let cv = c.to_vec::<bool>().unwrap();
                    for (k, &(i, j)) in idx.iter().enumerate() {
                        assert_eq!(rv[k], vx[i] - vy[j]);
                        assert_eq!(cv[k], vx[i] < vy[j]);
                    }
                    // where(x < y, x, y) == minimum for these NaN-free values.
                    let w = select_bcast(&c, x, y).unwrap().to_vec::<f64>().unwrap();
                    for (k, &(i, j)) in idx.iter().enumerate() {
                        assert_eq!(w[k], vx[i].min(vy[j]));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compare, select, convert.

fn cmp_oracle(op: CompareOp, a: f64, b: f64) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

#[test]
fn every_comparison_on_every_dtype() {
    let vals = [-2.0, -0.0, 0.0, 1.0, 3.0, f64::NAN, f64::INFINITY];
    for dt in DType::ALL {
        // Values representable in dt (ints: non-negative, finite; bool: 0/1).
        let usable: Vec<f64> = vals
            .iter()
            .copied()
            .filter(|v| dt.is_float() || (v.is_finite() && (*v >= 0.0 || dt != DType::U32)))
            .map(|v| {
                if dt == DType::Bool {
                    (v > 0.0) as i32 as f64
                } else {
                    v
                }
            })
            .collect();
        let m = usable.len();
        let a: Vec<f64> = (0..m * m).map(|i| usable[i / m]).collect();
        let b: Vec<f64> = (0..m * m).map(|i| usable[i % m]).collect();
        let xa = convert(&a64(&[m * m], &a), dt).unwrap();
        let xb = convert(&a64(&[m * m], &b), dt).unwrap();
        for &op in CompareOp::ALL {
            let g = compare(op, &xa, &xb).unwrap();
            assert_eq!(g.dtype(), DType::Bool);
            let g = g.to_vec::<bool>().unwrap();
            for i in 0..m * m {
                assert_eq!(
                    g[i],
                    cmp_oracle(op, a[i], b[i]),
                    "{} {dt} ({}, {})",
                    op.name(),
                    a[i],
                    b[i]
                );
            }
        }
    }
    // Dtype mismatch is an error naming the op.
    assert!(matches!(
        compare(CompareOp::Lt, &a32(&[1], &[1.0]), &a64(&[1], &[1.0])),
        Err(Error::DType { op: "lt", .. })
    ));
}

#[test]
fn select_on_every_dtype_and_its_errors() {
    let pred = Array::from_vec(vec![2, 2], vec![true, false, false, true]).unwrap();
    for dt in DType::ALL {
        let t = convert(&a64(&[2, 2], &[1.0, 1.0, 1.0, 1.0]), dt).unwrap();
        let f = convert(&a64(&[2, 2], &[0.0, 0.0, 0.0, 0.0]), dt).unwrap();
        let g = select(&pred, &t, &f).unwrap();
        assert_eq!(g.dtype(), dt);
        assert_eq!(f64s(&g), vec![1.0, 0.0, 0.0, 1.0], "{dt}");
    }
    let t = a32(&[2, 2], &[1.0; 4]);
    let f = a32(&[2, 2], &[0.0; 4]);
    // Predicate must be bool; shapes and branch dtypes must agree.
    assert!(matches!(
        select(&t, &t, &f),
        Err(Error::DType { op: "select", .. })
    ));
    assert!(matches!(
        select(&pred, &t, &a64(&[2, 2], &[0.0; 4])),
        Err(Error::DType { op: "select", .. })
    ));
    match select(&pred, &t, &a32(&[4], &[0.0; 4])) {
        Err(Error::Shape { op: "select", msg }) => {
            assert!(msg.contains("[2, 2]") && msg.contains("[4]"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // Broadcast: scalar predicate and scalar branch.
    let p0 = Array::from_vec(vec![], vec![false]).unwrap();
    let s = select_bcast(&p0, &t, &a32(&[], &[5.0])).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![5.0; 4]);
    let col = Array::from_vec(vec![2, 1], vec![true, false]).unwrap();
    let row = a32(&[2], &[1.0, 2.0]);
    let s = select_bcast(&col, &row, &a32(&[], &[0.0])).unwrap();
    assert_eq!(
        (s.shape(), s.to_vec::<f32>().unwrap()),
        (&[2usize, 2][..], vec![1.0, 2.0, 0.0, 0.0])
    );
}

/// The expected value of converting `v` (exactly representable in the source dtype) to `to`.
/// Float → int: truncate, saturate, NaN → 0; int → int wraps; → bool is `v != 0`.
fn convert_oracle(v: f64, src_int: Option<i64>, to: DType) -> f64 {
    match to {
        DType::F32 => v as f32 as f64,
        DType::F64 => v,
        DType::BF16 => bf16::from_f64(v).to_f64(),
        DType::F16 => f16::from_f64(v).to_f64(),
        DType::I32 => match src_int {
            Some(i) => i as i32 as f64,
            None => v as i32 as f64,
        },
        DType::I64 => match src_int {
            Some(i) => i as f64,
            None => v as i64 as f64,
        },
        DType::U32 => match src_int {
            Some(i) => i as u32 as f64,
            None => v as u32 as f64,
        },
        DType::Bool => (v != 0.0) as i32 as f64,
    }
}

#[test]
fn convert_between_all_dtype_pairs() {
    let fvals = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.7,
        -2.7,
        0.5,
        1e10,
        -1e10,
        65504.0,
        1e5,
        3.0e38,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0 + 1e-7,
    ];
    let ivals: [i64; 8] = [
        0,
        1,
        -1,
        300,
        (1 << 40) + 5,
        -(1 << 33) - 7,
        i32::MAX as i64 + 1,
        16_777_217,
    ];
    for from in DType::ALL {
        // Source values as arrays of `from` (built from exactly representable values).
        let (src, ints): (Array, Vec<Option<i64>>) = match from {
            DType::F64 => (a64(&[fvals.len()], &fvals), vec![None; fvals.len()]),
            DType::F32 => (
                a32(&[fvals.len()], &fvals.map(|v| v as f32)),
                vec![None; fvals.len()],
            ),
            DType::BF16 => (
                Array::from_vec(vec![fvals.len()], fvals.map(bf16::from_f64).to_vec()).unwrap(),
                vec![None; fvals.len()],
            ),
            DType::F16 => (
                Array::from_vec(vec![fvals.len()], fvals.map(f16::from_f64).to_vec()).unwrap(),
                vec![None; fvals.len()],
            ),
            DType::I64 => (
                Array::from_vec(vec![ivals.len()], ivals.to_vec()).unwrap(),
                ivals.map(Some).to_vec(),
            ),
            DType::I32 => {
                let v: Vec<i32> = ivals.iter().map(|&i| i as i32).collect();
                let ints = v.iter().map(|&i| Some(i as i64)).collect();
                (Array::from_vec(vec![v.len()], v).unwrap(), ints)
            }
            DType::U32 => {
                let v: Vec<u32> = ivals.iter().map(|&i| i as u32).collect();
                let ints = v.iter().map(|&i| Some(i as i64)).collect();
                (Array::from_vec(vec![v.len()], v).unwrap(), ints)
            }
            DType::Bool => (
                Array::from_vec(vec![3], vec![true, false, true]).unwrap(),
                vec![Some(1), Some(0), Some(1)],
            ),
        };
        let exact = f64s(&src);
        for to in DType::ALL {
            let g = convert(&src, to).unwrap();
            assert_eq!((g.dtype(), g.shape()), (to, src.shape()));
            let gv = f64s(&g);
            for k in 0..exact.len() {
                let want = convert_oracle(exact[k], ints[k], to);
                assert!(
                    close(gv[k], want, 0.0, 0.0),
                    "{from} {} -> {to}: got {}, want {want}",
                    exact[k],
                    gv[k]
                );
            }
        }
    }
    // A few spelled-out cases.
    let x = a32(&[5], &[2.7, -2.7, f32::NAN, 1e10, -1.0]);
    assert_eq!(
        convert(&x, DType::I32).unwrap().to_vec::<i32>().unwrap(),
        vec![2, -2, 0, i32::MAX, -1]
    );
    assert_eq!(
        convert(&x, DType::U32).unwrap().to_vec::<u32>().unwrap(),
        vec![2, 0, 0, u32::MAX, 0]
    );
    assert_eq!(
        convert(&x, DType::Bool).unwrap().to_vec::<bool>().unwrap(),
        vec![true; 5]
    );
    let u = Array::from_vec(vec![1], vec![u32::MAX]).unwrap();
    assert_eq!(
        convert(&u, DType::I32).unwrap().to_vec::<i32>().unwrap(),
        vec![-1]
    );
    let h = Array::from_vec(vec![1], vec![bf16::from_f32(1e5)]).unwrap();
    assert!(convert(&h, DType::F16).unwrap().to_vec::<f16>().unwrap()[0].is_infinite());
    // Empty and rank 0.
    assert_eq!(
        convert(&a32(&[0, 2], &[]), DType::I64).unwrap().shape(),
        &[0, 2]
    );
    assert_eq!(
        convert(&a64(&[], &[-3.9]), DType::I32)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![-3]
    );
}

// ---------------------------------------------------------------------------------------
// Typed surface.

type M23 = (C<2>, C<3>);

#[test]
fn typed_operators_broadcast_and_take_scalars() {
    let x = Tensor::<M23>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let r = Tensor::<(C<3>,)>::from_vec(vec![10., 20., 30.]).unwrap();
    let s = Tensor::<()>::scalar(2.0);
    let want_add: Vec<f32> = vec![11., 22., 33., 14., 25., 36.];
    assert_eq!((&x + &r).to_vec().unwrap(), want_add);
    assert_eq!((x.clone() + r.clone()).to_vec().unwrap(), want_add);
    assert_eq!((&x + r.clone()).to_vec().unwrap(), want_add);
    assert_eq!((x.clone() + &r).to_vec().unwrap(), want_add);
    let y: Tensor<M23> = &r - &x; // (3,) - (2, 3)
    assert_eq!(y.to_vec().unwrap(), vec![9., 18., 27., 6., 15., 24.]);
    assert_eq!((&x * &s).to_vec().unwrap(), vec![2., 4., 6., 8., 10., 12.]);
    assert_eq!(
        (&x / 2.0).to_vec().unwrap(),
        vec![0.5, 1., 1.5, 2., 2.5, 3.]
    );
    assert_eq!(
        (2.0 - &x).to_vec().unwrap(),
        vec![1., 0., -1., -2., -3., -4.]
    );
    assert_eq!((&x % 4.0).to_vec().unwrap(), vec![1., 2., 3., 0., 1., 2.]);
    assert_eq!((-&x).to_vec().unwrap(), vec![-1., -2., -3., -4., -5., -6.]);
    let i = Tensor::<(C<3>,), i32>::from_vec(vec![7, -7, 9]).unwrap();
    assert_eq!((&i / 2).to_vec().unwrap(), vec![3, -3, 4]);
    assert_eq!((&i % 0).to_vec().unwrap(), vec![7, -7, 9]);
    assert_eq!((10 * &i).to_vec().unwrap(), vec![70, -70, 90]);
    let d = Tensor::<(C<2>,), f64>::from_vec(vec![1.5, -2.0]).unwrap();
    assert_eq!((3.0 * d + 1.0).to_vec().unwrap(), vec![5.5, -5.0]);
    // Rank-0 with rank-0, and empty tensors.
    assert_eq!((&s + &s).item().unwrap(), 4.0);
    let e = Tensor::<(C<0>, C<3>)>::zeros();
    assert_eq!((&e + &r).dims(), &[0, 3]);
    // bf16 arithmetic rounds once.
    let h =
        Tensor::<(C<2>,), bf16>::from_vec(vec![bf16::from_f32(1.5), bf16::from_f32(-3.0)]).unwrap();
    assert_eq!(
        (&h * bf16::from_f32(2.0)).to_vec().unwrap(),
        vec![bf16::from_f32(3.0), bf16::from_f32(-6.0)]
    );
}

#[test]
fn typed_dyn_mismatch_is_an_error_from_try_and_a_panic_from_operators() {
    let a = Tensor::<(Dyn,)>::from_vec_shape((Dyn(3),), vec![1., 2., 3.]).unwrap();
    let b = Tensor::<(Dyn,)>::from_vec_shape((Dyn(4),), vec![1., 2., 3., 4.]).unwrap();
    let one = Tensor::<(Dyn,)>::from_vec_shape((Dyn(1),), vec![10.]).unwrap();
    assert_eq!((&a + &one).to_vec().unwrap(), vec![11., 12., 13.]);
    match a.try_add(&b) {
        Err(Error::Shape { op: "add", msg }) => {
            assert!(msg.contains("[3]") && msg.contains("[4]"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert!(a.try_maximum(&b).is_err());
    assert!(a.try_lt(&b).is_err());
    assert!(try_where(&a.lt(&one), &a, &b).is_err());
    let p = std::panic::catch_unwind(|| {
        let _ = &a * &b;
    });
    let msg = p.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.contains("mul") && msg.contains("[3]") && msg.contains("[4]"),
        "{msg}"
    );
}

#[test]
fn typed_unary_methods_and_composites() {
    let xs = [-30.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 30.0];
    let x = Tensor::<(C<9>,), f64>::from_slice(&xs).unwrap();
    let xf = Tensor::<(C<9>,)>::from_vec(xs.iter().map(|&v| v as f32).collect()).unwrap();
    let phi = |v: f64| 0.5 * erfc_ref(-v / std::f64::consts::SQRT_2);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let k = (2.0 / std::f64::consts::PI).sqrt();
    type F = fn(&Tensor<(C<9>,), f64>) -> Tensor<(C<9>,), f64>;
    type G = fn(&Tensor<(C<9>,)>) -> Tensor<(C<9>,)>;
    type O = Box<dyn Fn(f64) -> f64>;
    let table: Vec<(&str, F, G, O)> = vec![
        ("exp", |t| t.exp(), |t| t.exp(), Box::new(f64::exp)),
        ("tanh", |t| t.tanh(), |t| t.tanh(), Box::new(f64::tanh)),
        ("sigmoid", |t| t.sigmoid(), |t| t.sigmoid(), Box::new(sig)),
        ("relu", |t| t.relu(), |t| t.relu(), Box::new(|v| v.max(0.0))),
        (
            "gelu_exact",
            |t| t.gelu_exact(),
            |t| t.gelu_exact(),
            Box::new(move |v| v * phi(v)),
        ),
        // `gelu` is jax.nn.gelu's default (approximate=True): the tanh form, as `gelu_tanh`.
        (
            "gelu",
            |t| t.gelu(),
            |t| t.gelu(),
            Box::new(move |v| 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())),
        ),
        (
            "gelu_tanh",
            |t| t.gelu_tanh(),
            |t| t.gelu_tanh(),
            Box::new(move |v| 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())),
        ),
        (
            "silu",
            |t| t.silu(),
            |t| t.silu(),
            Box::new(move |v| v * sig(v)),
        ),
        // ln(1 + e^v) written differently from the implementation: v + ln(1 + e^-v) for v > 0.
        (
            "softplus",
            |t| t.softplus(),
            |t| t.softplus(),
            Box::new(|v| {
                if v > 0.0 {
                    v + (-v).exp().ln_1p()
                } else {
                    v.exp().ln_1p()
                }
            }),
        ),
        (
            "log_sigmoid",
            |t| t.log_sigmoid(),
            |t| t.log_sigmoid(),
            Box::new(|v| {
                if v > 0.0 {
                    -(-v).exp().ln_1p()
                } else {
                    v - v.exp().ln_1p()
                }
            }),
        ),
        (
            "leaky_relu",
            |t| t.leaky_relu(0.1),
            |t| t.leaky_relu(0.1),
            Box::new(|v| if v >= 0.0 { v } else { 0.1 * v }),
        ),
        (
            "elu",
            |t| t.elu(1.5),
            |t| t.elu(1.5),
            Box::new(|v| if v > 0.0 { v } else { 1.5 * v.exp_m1() }),
        ),
        (
            "clip",
            |t| t.clip(-1.0, 0.75),
            |t| t.clip(-1.0, 0.75),
            Box::new(|v| v.clamp(-1.0, 0.75)),
        ),
        (
            "square",
            |t| t.square(),
            |t| t.square(),
            Box::new(|v| v * v),
        ),
        (
            "reciprocal",
            |t| t.reciprocal(),
            |t| t.reciprocal(),
            Box::new(|v| 1.0 / v),
        ),
        ("abs", |t| t.abs(), |t| t.abs(), Box::new(f64::abs)),
        (
            "sign",
            |t| t.sign(),
            |t| t.sign(),
            Box::new(|v| if v == 0.0 { v } else { v.signum() }),
        ),
        (
            "pow_scalar",
            |t| t.pow_scalar(3.0),
            |t| t.pow_scalar(3.0),
            Box::new(|v| v.powi(3)),
        ),
    ];
    for (name, f64f, f32f, oracle) in &table {
        let g = f64f(&x).to_vec().unwrap();
        let g32 = f32f(&xf).to_vec().unwrap();
        for i in 0..xs.len() {
            let w = oracle(xs[i]);
            // 1e-12: gelu_exact(-30) is erfc(21.2), whose relative condition number is 2z² ≈ 900.
            assert!(
                close(g[i], w, 1e-300, 1e-12),
                "{name} f64({}) = {:e}, want {w:e}",
                xs[i],
                g[i]
            );
            assert!(
                close(g32[i] as f64, w as f32 as f64, 1e-37, 2e-6),
                "{name} f32({}) = {:e}, want {w:e}",
                xs[i],
                g32[i]
            );
        }
    }
    // Stability in the tails.
    let big = Tensor::<(C<4>,), f64>::from_slice(&[-1000.0, -40.0, 40.0, 1000.0]).unwrap();
    assert_eq!(
        big.softplus().to_vec().unwrap(),
        vec![0.0, (-40f64).exp().ln_1p(), 40.0 + (-40f64).exp(), 1000.0]
    );
    assert_eq!(big.log_sigmoid().to_vec().unwrap()[0], -1000.0);
    // gelu_exact(-20) = -20 Φ(-20) ≈ -5.5e-88: kept by the erfc form (1 + erf would give 0).
    let g = Tensor::<(), f64>::scalar(-20.0)
        .gelu_exact()
        .item()
        .unwrap();
    assert!(
        close(
            g,
            -20.0 * 0.5 * erfc_cf(20.0 / std::f64::consts::SQRT_2),
            0.0,
            1e-12
        ),
        "{g:e}"
    );
    // Float-only predicates and rounding.
    let r = Tensor::<(C<4>,)>::from_slice(&[0.5, 1.5, f32::INFINITY, f32::NAN]).unwrap();
    assert_eq!(
        r.is_finite().to_vec().unwrap(),
        vec![true, true, false, false]
    );
    assert_eq!(r.round().to_vec().unwrap()[..2], [0.0, 2.0]);
    // Integer abs/sign/relu/clip.
    let i = Tensor::<(C<4>,), i64>::from_slice(&[-5, 0, 3, 9]).unwrap();
    assert_eq!(i.abs().to_vec().unwrap(), vec![5, 0, 3, 9]);
    assert_eq!(i.sign().to_vec().unwrap(), vec![-1, 0, 1, 1]);
    assert_eq!(i.relu().to_vec().unwrap(), vec![0, 0, 3, 9]);
    assert_eq!(i.clip(-1, 4).to_vec().unwrap(), vec![-1, 0, 3, 4]);
    // Empty and rank 0.
    assert_eq!(Tensor::<(C<0>,)>::zeros().gelu().dims(), &[0]);
    assert_eq!(Tensor::<(C<0>,)>::zeros().gelu_exact().dims(), &[0]);
    assert!(
        (Tensor::<(), f64>::scalar(1.0).erf().item().unwrap() - 0.842_700_792_949_714_9).abs()
            < 1e-15
    );
}

#[test]
fn typed_binary_methods_comparisons_where_cast_and_logic() {
    let x = Tensor::<M23>::from_vec(vec![1., -2., 3., f32::NAN, 5., -6.]).unwrap();
    let r = Tensor::<(C<3>,)>::from_vec(vec![0., 0., 4.]).unwrap();
    let mx = x.maximum(&r).to_vec().unwrap();
    assert_eq!(mx[..3], [1., 0., 4.]);
    assert!(mx[3].is_nan(), "maximum propagates NaN");
    assert_eq!(mx[4..], [5., 4.]);
    let mn = x.minimum(&r).to_vec().unwrap();
    assert!(mn[3].is_nan());
    assert_eq!(mn[5], -6.0);
    let p = Tensor::<(C<2>,), f64>::from_slice(&[2.0, 9.0]).unwrap();
    assert_eq!(
        p.pow(&Tensor::scalar(0.5)).to_vec().unwrap(),
        vec![2f64.sqrt(), 3.0]
    );
    let yy = Tensor::<(C<2>,), f64>::from_slice(&[1.0, -1.0]).unwrap();
    assert_eq!(
        yy.atan2(&Tensor::<(C<2>,), f64>::from_slice(&[-1.0, -1.0]).unwrap())
            .to_vec()
            .unwrap(),
        vec![(1f64).atan2(-1.0), (-1f64).atan2(-1.0)]
    );
    // Comparisons with broadcasting, NaN is unordered.
    let lt: Tensor<M23, bool> = x.lt(&r);
    assert_eq!(
        lt.to_vec().unwrap(),
        vec![false, true, true, false, false, true]
    );
    assert_eq!(
        x.ge(&r).to_vec().unwrap(),
        vec![true, false, false, false, true, false]
    );
    assert_eq!(
        x.ne(&x).to_vec().unwrap(),
        vec![false, false, false, true, false, false]
    );
    assert_eq!(
        x.eq(&x).to_vec().unwrap(),
        vec![true, true, true, false, true, true]
    );
    assert!(x.le(&r).to_vec().unwrap()[1]);
    assert_eq!(
        x.gt(&Tensor::scalar(2.0)).to_vec().unwrap(),
        vec![false, false, true, false, true, false]
    );
    // where_ with broadcasting of all three operands.
    let w = where_(&x.gt(&r), &x, &Tensor::<()>::scalar(-1.0));
    assert_eq!(w.to_vec().unwrap()[..3], [1., -1., -1.]);
    let c = Tensor::<(C<3>,), bool>::from_slice(&[true, false, true]).unwrap();
    let a2 = Tensor::<M23>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let w: Tensor<M23> = where_(&c, &a2, &Tensor::<()>::scalar(0.0));
    assert_eq!(w.to_vec().unwrap(), vec![1., 0., 3., 4., 0., 6.]);
    // cast
    let ci: Tensor<M23, i32> = x.cast();
    assert_eq!(ci.to_vec().unwrap(), vec![1, -2, 3, 0, 5, -6]);
    let cb: Tensor<M23, bool> = x.cast();
    assert_eq!(cb.to_vec().unwrap(), vec![true; 6]);
    let back: Tensor<M23, f64> = ci.cast();
    assert_eq!(back.to_vec().unwrap(), vec![1., -2., 3., 0., 5., -6.]);
    // Logical ops on bool and bitwise on ints.
    let a = Tensor::<(C<4>,), bool>::from_slice(&[false, false, true, true]).unwrap();
    let b = Tensor::<(C<4>,), bool>::from_slice(&[false, true, false, true]).unwrap();
    assert_eq!((&a & &b).to_vec().unwrap(), vec![false, false, false, true]);
    assert_eq!((&a | &b).to_vec().unwrap(), vec![false, true, true, true]);
    assert_eq!(
        (a.clone() ^ b.clone()).to_vec().unwrap(),
        vec![false, true, true, false]
    );
    assert_eq!((!&a).to_vec().unwrap(), vec![true, true, false, false]);
    assert_eq!(
        (&a & &Tensor::<(), bool>::scalar(true)).to_vec().unwrap(),
        a.to_vec().unwrap()
    );
    let m = Tensor::<(C<2>,), u32>::from_slice(&[0b1100, 0b1010]).unwrap();
    assert_eq!(
        (&m & &Tensor::scalar(0b0110u32)).to_vec().unwrap(),
        vec![0b0100, 0b0010]
    );
    assert_eq!((!m).to_vec().unwrap(), vec![!0b1100u32, !0b1010u32]);
}

// ---------------------------------------------------------------------------------------
// Eager `array op scalar` fast path of `binary_bcast` (one pass, the scalar in a register).

/// The eager kernels split work across threads from this many elements (`PAR_THRESHOLD` in
/// `core/src/prim/unary.rs`); the sizes below straddle it.
const PAR_MIN: usize = 1 << 15;

/// One float type's table: every float op, the scalar on either side, against a plain loop
/// and against the primitive on the scalar materialized at full size. The values cover
/// every IEEE corner of the ops: signed zeros, infinities, NaN, subnormals, the extremes.
macro_rules! scalar_fast_path_case {
    ($name:ident, $t:ty) => {
        fn $name() {
            use BinaryOp::*;
            let specials: Vec<$t> = vec![
                <$t>::NAN,
                <$t>::INFINITY,
                <$t>::NEG_INFINITY,
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.5,
                -2.5,
                3.0,
                7.25,
                <$t>::MIN_POSITIVE,
                <$t>::MIN_POSITIVE / 8.0,
                -<$t>::MIN_POSITIVE / 8.0,
                <$t>::MAX,
                -<$t>::MAX,
                1e10,
                -1e-10,
            ];
            // Specials first, then a fixed-seed LCG sweep over many exponents.
            let data = |n: usize| -> Vec<$t> {
                let mut s = 0x9E37_79B9_7F4A_7C15u64;
                (0..n)
                    .map(|i| {
                        if i < specials.len() {
                            return specials[i];
                        }
                        s = s
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                        let e = ((s >> 3) % 41) as i32 - 20;
                        ((u * 2.0 - 1.0) * 2f64.powi(e)) as $t
                    })
                    .collect()
            };
            // A plain loop with the op written out, operand order as given.
            let oracle = |op: BinaryOp, a: $t, b: $t| -> $t {
                match op {
                    Add => a + b,
                    Sub => a - b,
                    Mul => a * b,
                    Div => a / b,
                    Rem => a % b,
                    Pow => a.powf(b),
                    Max => {
                        if a.is_nan() || b.is_nan() {
                            <$t>::NAN
                        } else if a > b {
                            a
                        } else {
                            b
                        }
                    }
                    Min => {
                        if a.is_nan() || b.is_nan() {
                            <$t>::NAN
                        } else if a < b {
                            a
                        } else {
                            b
                        }
                    }
                    Atan2 => a.atan2(b),
                    And | Or | Xor => unreachable!(),
                }
            };
            // Bit equality; any NaN matches any NaN (Rust leaves NaN payloads unspecified).
            let same = |g: $t, w: $t| (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits();
            let ops = [Add, Sub, Mul, Div, Rem, Pow, Max, Min, Atan2];
            // Every scalar on small sizes; three on the parallel sizes to bound the run time.
            let cases: Vec<(usize, Vec<$t>)> = vec![
                (1, specials.clone()),
                (37, specials.clone()),
                (1000, specials.clone()),
                (PAR_MIN, vec![2.0, -0.0, <$t>::NAN]),
                (2 * PAR_MIN + 77, vec![-0.5, <$t>::INFINITY, 0.0]),
            ];
            let mut checked = 0usize;
            for (n, scalars) in &cases {
                let xv = data(*n);
                let x = Array::from_vec(vec![*n], xv.clone()).unwrap();
                for &op in &ops {
                    for &c in scalars {
                        let cs = Array::scalar(c);
                        // The general path: the primitive on the scalar materialized at size n.
                        let full = Array::from_vec(vec![*n], vec![c; *n]).unwrap();
                        for c_left in [false, true] {
                            let (got, slow) = if c_left {
                                (binary_bcast(op, &cs, &x), binary(op, &full, &x))
                            } else {
                                (binary_bcast(op, &x, &cs), binary(op, &x, &full))
                            };
                            let got = got.unwrap();
                            let slow = slow.unwrap();
                            assert_eq!(got.shape(), &[*n]);
                            let g = got.to_vec::<$t>().unwrap();
                            let s = slow.to_vec::<$t>().unwrap();
                            for i in 0..*n {
                                let (a, b) = if c_left { (c, xv[i]) } else { (xv[i], c) };
                                let w = oracle(op, a, b);
                                assert!(
                                    same(g[i], w) && same(g[i], s[i]),
                                    "{} {:?}({a:e}, {b:e}) n={n} [{i}]: fast {:e}, \
                                     oracle {w:e}, general path {:e}",
                                    stringify!($t),
                                    op,
                                    g[i],
                                    s[i]
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
            assert!(checked > 1_000_000, "{checked}");
        }
    };
}
scalar_fast_path_case!(scalar_fast_path_f32, f32);
scalar_fast_path_case!(scalar_fast_path_f64, f64);

#[test]
fn eager_scalar_operand_matches_a_plain_loop_bit_for_bit_in_f32_and_f64() {
    scalar_fast_path_f32();
    scalar_fast_path_f64();
}

#[test]
fn eager_scalar_operand_runs_one_pass_and_keeps_other_dtypes_shapes_and_errors() {
    use ferrax::prim::broadcast_in_dim::broadcast_to;
    use ferrax::profiler::profile;
    let n = 2 * PAR_MIN + 5;
    let xv: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 100.0).collect();
    let x = a32(&[n], &xv);
    // One `mul` step and nothing else: the scalar is not broadcast to full size first.
    let (y, p) = profile(|| binary_bcast(BinaryOp::Mul, &x, &Array::scalar(2.0f32)).unwrap());
    let names: Vec<&str> = p.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["mul"]);
    let want: Vec<f32> = xv.iter().map(|v| v * 2.0).collect();
    assert_eq!(y.to_vec::<f32>().unwrap(), want);
    // The typed operators take it, both operand orders, f32 and f64.
    let t = Tensor::<(Dyn,)>::from_array(x.clone()).unwrap();
    let got = (2.0f32 / &t - 0.5).to_vec().unwrap();
    let want: Vec<f32> = xv.iter().map(|&v| 2.0 / v - 0.5).collect();
    assert!(got.iter().zip(&want).all(|(g, w)| same_f32(*g, *w)));
    let t64 = Tensor::<(C<3>,), f64>::from_slice(&[-0.0, 1.5, f64::INFINITY]).unwrap();
    let got = (0.5 - &t64 * 3.0).to_vec().unwrap();
    assert_eq!(got[0].to_bits(), 0.5f64.to_bits());
    assert_eq!(got[1], 0.5 - 4.5);
    assert_eq!(got[2], f64::NEG_INFINITY);
    // Results do not depend on the thread count.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for op in [BinaryOp::Sub, BinaryOp::Pow, BinaryOp::Atan2] {
        let c = Array::scalar(-1.75f32);
        let multi = binary_bcast(op, &c, &x).unwrap();
        let single = one.install(|| binary_bcast(op, &c, &x).unwrap());
        assert!(multi.bit_eq(&single), "{op:?}");
    }
    // Other dtypes: bit-identical to the primitive on the materialized scalar.
    let cases: Vec<(Array, Array)> = vec![
        (
            Array::from_vec(vec![4], vec![-7i32, 0, 9, i32::MIN]).unwrap(),
            Array::scalar(-1i32),
        ),
        (
            Array::from_vec(vec![3], vec![5i64, -5, 0]).unwrap(),
            Array::scalar(0i64),
        ),
        (
            Array::from_vec(vec![3], vec![1u32, 7, u32::MAX]).unwrap(),
            Array::scalar(3u32),
        ),
        (
            Array::from_vec(vec![3], vec![bf16::from_f32(1.1), bf16::NAN, bf16::ZERO]).unwrap(),
            Array::scalar(bf16::from_f32(-0.3)),
        ),
        (
            Array::from_vec(vec![3], vec![f16::from_f32(1.1), f16::INFINITY, f16::MIN]).unwrap(),
            Array::scalar(f16::from_f32(3.7)),
        ),
        (
            Array::from_vec(vec![3], vec![true, false, true]).unwrap(),
            Array::scalar(true),
        ),
    ];
    for (x, c) in &cases {
        let full = broadcast_to(c, x.shape()).unwrap();
        for &op in BinaryOp::ALL {
            for c_left in [false, true] {
                let (fast, slow) = if c_left {
                    (binary_bcast(op, c, x), binary(op, &full, x))
                } else {
                    (binary_bcast(op, x, c), binary(op, x, &full))
                };
                match (fast, slow) {
                    (Ok(f), Ok(s)) => {
                        assert!(f.bit_eq(&s), "{op:?} {} left={c_left}", x.dtype())
                    }
                    // An op outside the dtype's domain fails the same way.
                    (Err(f), Err(s)) => assert_eq!(f.to_string(), s.to_string()),
                    (f, s) => panic!("{op:?} {}: fast {f:?} vs general {s:?}", x.dtype()),
                }
            }
        }
    }
    // Size-1 operands of higher rank broadcast the shape as before; empty stays empty.
    let x3 = a32(&[3], &[1.0, 2.0, 3.0]);
    let c11 = a32(&[1, 1], &[10.0]);
    let y = binary_bcast(BinaryOp::Sub, &c11, &x3).unwrap();
    assert_eq!(y.shape(), &[1, 3]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![9.0, 8.0, 7.0]);
    let y = binary_bcast(BinaryOp::Add, &a32(&[0, 2], &[]), &Array::scalar(1.0f32)).unwrap();
    assert_eq!(y.shape(), &[0, 2]);
    let y = binary_bcast(BinaryOp::Mul, &a32(&[1], &[3.0]), &a32(&[1, 1], &[2.0])).unwrap();
    assert_eq!(
        (y.shape(), y.to_vec::<f32>().unwrap()),
        (&[1usize, 1][..], vec![6.0])
    );
    // A size-1 operand whose shape does not broadcast is still the general path's error.
    let e = binary_bcast(
        BinaryOp::Add,
        &a32(&[2, 3], &[0.0; 6]),
        &a32(&[1, 1, 1, 4], &[0.0; 4]),
    );
    assert!(e.is_err());
    // Tracing is unchanged: the scalar is broadcast inside the trace, then `mul` recorded.
    let (prog, _) = ferrax::trace::trace_fn(&[x3.aval().clone()], |a| {
        Ok(vec![binary_bcast(
            BinaryOp::Mul,
            &a[0],
            &Array::scalar(2.0f32),
        )?])
    })
    .unwrap();
    let prims: Vec<&str> = prog.eqns.iter().map(|e| e.prim.name()).collect();
    assert_eq!(prims, ["broadcast_in_dim", "mul"], "{prog}");
}
