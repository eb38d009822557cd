//! Accuracy and determinism of the vectorized f32 exp / tanh / logistic: ulp error against
//! f64 libm over a strided sweep of every f32 bit pattern plus dense windows around the
//! breakpoints and the special values, and bit-for-bit agreement of every instruction-set
//! path, of the scalar form, of any slice offset, and of eager vs `#[jit]` fused.

use ferrax::jit::disable_jit;
use ferrax::prelude::*;
use ferrax::prim::unary::{SimdPath, UnaryOp};

/// Error bounds in ulp of the correctly rounded result (measured: 1.01 / 1.31 / 2.62).
const BOUNDS: [(UnaryOp, f64); 3] = [
    (UnaryOp::Exp, 1.5),
    (UnaryOp::Tanh, 2.0),
    (UnaryOp::Logistic, 3.0),
];

fn reference(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Exp => x.exp(),
        UnaryOp::Tanh => x.tanh(),
        // `1/(1+e^-x)` with the small side as `e/(1+e)`: relative error ~1e-16 in f64.
        UnaryOp::Logistic => {
            let e = (-x.abs()).exp();
            if x >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            }
        }
        _ => unreachable!(),
    }
}

/// |y - r| in units of the last place of `r` rounded to f32 (2^-149 for subnormals; the
/// ulp of f32::MAX when `r` is past it, so a finite y there counts its distance).
fn ulp_error(y: f32, r: f64) -> f64 {
    if r.is_nan() || y.is_nan() {
        return if r.is_nan() && y.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let rf = r as f32;
    if y.is_infinite() || r.is_infinite() {
        return if y == rf { 0.0 } else { f64::INFINITY };
    }
    let mag = rf.abs().min(f32::MAX);
    let ulp = if mag < f32::MIN_POSITIVE {
        2f64.powi(-149)
    } else {
        2f64.powi(((mag.to_bits() >> 23) as i32) - 127 - 23)
    };
    (y as f64 - r).abs() / ulp
}

/// Every 1021st bit pattern (about 4.2M values: all signs, exponents and mantissa bits),
/// ±2048 neighbours of each breakpoint, subnormals, and the special values.
fn inputs() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=u32::MAX).step_by(1021).map(f32::from_bits).collect();
    let breakpoints = [
        0.625f32,  // tanh: polynomial / exp switch
        88.72284,  // exp overflows to inf
        -87.33655, // exp leaves the normal range
        -103.9721, // exp underflows to 0
        0.5 * 88.72284,
        -9.0, // tanh rounds to ±1 near here
        1.0,
        f32::MIN_POSITIVE,
    ];
    for b in breakpoints {
        for s in [b, -b] {
            let bits = s.to_bits();
            xs.extend((bits - 2048..=bits + 2048).map(f32::from_bits));
        }
    }
    xs.extend((1..4096u32).map(|m| f32::from_bits(m * 2047)));
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        1e-30,
        -1e-30,
        1e30,
        -1e30,
    ]);
    xs
}

fn apply(op: UnaryOp, xs: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; xs.len()];
    op.apply_f32(xs, &mut out);
    out
}

#[test]
fn max_ulp_error_within_bounds() {
    let xs = inputs();
    for (op, bound) in BOUNDS {
        let ys = apply(op, &xs);
        let (worst, at) = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| (ulp_error(y, reference(op, x as f64)), x))
            .fold((0.0, 0.0f32), |m, e| if e.0 > m.0 { e } else { m });
        eprintln!("{}: max {worst:.3} ulp at x = {at:e}", op.name());
        assert!(
            worst <= bound,
            "{}: {worst:.3} ulp at x = {at:e} (bound {bound})",
            op.name()
        );
    }
}

#[test]
fn special_values_exact() {
    let cases: [(UnaryOp, f32, f32); 16] = [
        (UnaryOp::Exp, 0.0, 1.0),
        (UnaryOp::Exp, -0.0, 1.0),
        (UnaryOp::Exp, f32::INFINITY, f32::INFINITY),
        (UnaryOp::Exp, f32::NEG_INFINITY, 0.0),
        (UnaryOp::Exp, 89.0, f32::INFINITY),
        (UnaryOp::Exp, -104.0, 0.0),
        (UnaryOp::Tanh, 0.0, 0.0),
        (UnaryOp::Tanh, -0.0, -0.0),
        (UnaryOp::Tanh, f32::INFINITY, 1.0),
        (UnaryOp::Tanh, f32::NEG_INFINITY, -1.0),
        (UnaryOp::Tanh, 1e-30, 1e-30),
        (UnaryOp::Logistic, 0.0, 0.5),
        (UnaryOp::Logistic, -0.0, 0.5),
        (UnaryOp::Logistic, f32::INFINITY, 1.0),
        (UnaryOp::Logistic, f32::NEG_INFINITY, 0.0),
        (UnaryOp::Logistic, 200.0, 1.0),
    ];
    for (op, x, want) in cases {
        let got = apply(op, &[x])[0];
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{}({x:e}) = {got:e}, want {want:e}",
            op.name()
        );
    }
    for (op, _) in BOUNDS {
        for x in [f32::NAN, -f32::NAN] {
            assert!(apply(op, &[x])[0].is_nan(), "{}(NaN) is not NaN", op.name());
        }
    }
    // Subnormal results: e^-100 = 3.72e-44 is 27 subnormal steps; within 1 step.
    let y = apply(UnaryOp::Exp, &[-100.0])[0];
    assert!(
        (y as f64 - (-100f64).exp()).abs() <= 2f64.powi(-149),
        "{y:e}"
    );
    let y = apply(UnaryOp::Logistic, &[-100.0])[0];
    assert!(
        (y as f64 - (-100f64).exp()).abs() <= 2f64.powi(-149),
        "{y:e}"
    );
}

#[test]
fn every_path_offset_and_scalar_form_agree_bitwise() {
    // Every 7th pattern of the sweep keeps the libcall-based scalar path quick.
    let xs: Vec<f32> = inputs().into_iter().step_by(7).collect();
    let paths = [SimdPath::Scalar, SimdPath::Avx2, SimdPath::Avx512];
    for (op, _) in BOUNDS {
        let want = apply(op, &xs);
        let mut ran = 0;
        for path in paths {
            let mut got = vec![0.0f32; xs.len()];
            if !op.apply_f32_on(path, &xs, &mut got) {
                continue;
            }
            ran += 1;
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{} {path:?} differs at x = {:e}: {g:e} vs {w:e}",
                    op.name(),
                    xs[i]
                );
            }
        }
        assert!(ran >= 1, "no path ran");
        // The scalar form (used outside slice loops) and shifted slices (vector lanes and
        // remainder loops see different elements) give the same bits.
        for (i, &x) in xs.iter().enumerate().step_by(97) {
            assert_eq!(
                op.f32(x).to_bits(),
                want[i].to_bits(),
                "{} scalar x={x:e}",
                op.name()
            );
        }
        for off in 1..19 {
            let got = apply(op, &xs[off..off + 1000]);
            for (k, g) in got.iter().enumerate() {
                assert_eq!(
                    g.to_bits(),
                    want[off + k].to_bits(),
                    "{} offset {off}",
                    op.name()
                );
            }
        }
    }
}

const N: usize = 3001;

#[jit]
fn chain(x: &Tensor<(C<N>,)>) -> Tensor<(C<N>,)> {
    let y = (x * 1.25 - 0.5).gelu_tanh();
    &y + &(x.tanh() * x.exp().logistic())
}

#[test]
fn eager_equals_jit_fused_bitwise() {
    let x =
        Tensor::<(C<N>,)>::from_vec((0..N).map(|i| (i as f32) * 0.013 - 19.5).collect()).unwrap();
    let eager = disable_jit(|| chain(&x)).to_vec().unwrap();
    let jitted = chain(&x).to_vec().unwrap();
    for (i, (a, b)) in jitted.iter().zip(&eager).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "element {i}: jit {a:e} vs eager {b:e}"
        );
    }
    // And against the closed form in f64 (gelu_tanh + tanh(x) σ(e^x)), loosely.
    let xs = x.to_vec().unwrap();
    for (i, (&v, &y)) in xs.iter().zip(&jitted).enumerate() {
        let u = (v * 1.25 - 0.5) as f64;
        let g = 0.5
            * u
            * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (u + 0.044715 * u * u * u)).tanh());
        let v = v as f64;
        let want = g + v.tanh() / (1.0 + (-v.exp()).exp());
        assert!(
            (y as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
            "element {i}: {y} vs {want}"
        );
    }
}
