//! Special functions the samplers need, written to match XLA's CPU lowering where
//! `jax.random` results depend on it (the inverse error function behind `normal`).

/// XLA's f32 `erf_inv`: Giles' single-precision approximation ("Approximating the erfinv
/// function", GPU Computing Gems, 2010) on `w = -log1p(-x*x)`, Horner steps fused
/// (XLA:CPU contracts `p*w + c` into one FMA), `±1 -> ±inf`.
// The constants are XLA's source literals, kept verbatim so they round identically.
#[allow(clippy::excessive_precision)]
pub fn erfinv_f32(x: f32) -> f32 {
    const LT5: [f32; 9] = [
        2.81022636e-08,
        3.43273939e-07,
        -3.5233877e-06,
        -4.39150654e-06,
        0.00021858087,
        -0.00125372503,
        -0.00417768164,
        0.246640727,
        1.50140941,
    ];
    const GE5: [f32; 9] = [
        -0.000200214257,
        0.000100950558,
        0.00134934322,
        -0.00367342844,
        0.00573950773,
        -0.0076224613,
        0.00943887047,
        1.00167406,
        2.83297682,
    ];
    if x.abs() == 1.0 {
        return x * f32::INFINITY;
    }
    let w = -(-(x * x)).ln_1p();
    let (w, c) = if w < 5.0 {
        (w - 2.5, &LT5)
    } else {
        (w.sqrt() - 3.0, &GE5)
    };
    let mut p = c[0];
    for &ci in &c[1..] {
        p = p.mul_add(w, ci);
    }
    p * x
}

/// XLA's f64 `erf_inv`: Giles' double-precision approximation (three branches on
/// `w = -log1p(-x*x)`: `< 6.25`, `< 16`, else), fused Horner steps, `±1 -> ±inf`.
#[allow(clippy::excessive_precision)]
pub fn erfinv_f64(x: f64) -> f64 {
    const A: [f64; 23] = [
        -3.6444120640178196996e-21,
        -1.685059138182016589e-19,
        1.2858480715256400167e-18,
        1.115787767802518096e-17,
        -1.333171662854620906e-16,
        2.0972767875968561637e-17,
        6.6376381343583238325e-15,
        -4.0545662729752068639e-14,
        -8.1519341976054721522e-14,
        2.6335093153082322977e-12,
        -1.2975133253453532498e-11,
        -5.4154120542946279317e-11,
        1.051212273321532285e-09,
        -4.1126339803469836976e-09,
        -2.9070369957882005086e-08,
        4.2347877827932403518e-07,
        -1.3654692000834678645e-06,
        -1.3882523362786468719e-05,
        0.0001867342080340571352,
        -0.00074070253416626697512,
        -0.0060336708714301490533,
        0.24015818242558961693,
        1.6536545626831027356,
    ];
    const B: [f64; 19] = [
        2.2137376921775787049e-09,
        9.0756561938885390979e-08,
        -2.7517406297064545428e-07,
        1.8239629214389227755e-08,
        1.5027403968909827627e-06,
        -4.013867526981545969e-06,
        2.9234449089955446044e-06,
        1.2475304481671778723e-05,
        -4.7318229009055733981e-05,
        6.8284851459573175448e-05,
        2.4031110387097893999e-05,
        -0.0003550375203628474796,
        0.00095328937973738049703,
        -0.0016882755560235047313,
        0.0024914420961078508066,
        -0.0037512085075692412107,
        0.005370914553590063617,
        1.0052589676941592334,
        3.0838856104922207635,
    ];
    const C: [f64; 17] = [
        -2.7109920616438573243e-11,
        -2.5556418169965252055e-10,
        1.5076572693500548083e-09,
        -3.7894654401267369937e-09,
        7.6157012080783393804e-09,
        -1.4960026627149240478e-08,
        2.9147953450901080826e-08,
        -6.7711997758452339498e-08,
        2.2900482228026654717e-07,
        -9.9298272942317002539e-07,
        4.5260625972231537039e-06,
        -1.9681778105531670567e-05,
        7.5995277030017761139e-05,
        -0.00021503011930044477347,
        -0.00013871931833623122026,
        1.0103004648645343977,
        4.8499064014085844221,
    ];
    if x.abs() == 1.0 {
        return x * f64::INFINITY;
    }
    let w = -(-(x * x)).ln_1p();
    let (w, c): (f64, &[f64]) = if w < 6.25 {
        (w - 3.125, &A)
    } else if w < 16.0 {
        (w.sqrt() - 3.25, &B)
    } else {
        (w.sqrt() - 5.0, &C)
    };
    let mut p = c[0];
    for &ci in &c[1..] {
        p = p.mul_add(w, ci);
    }
    p * x
}

/// The error function in double precision (relative error a few ulp).
///
/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`: every term is
/// positive, so the sum loses nothing to cancellation; past |x| = 6, `erf` is ±1 in f64.
pub fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a >= 6.0 {
        return x.signum();
    }
    let x2 = a * a;
    let mut term = a;
    let mut sum = a;
    let mut n = 0.0f64;
    loop {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    let r = std::f64::consts::FRAC_2_SQRT_PI * (-x2).exp() * sum;
    r.min(1.0).copysign(x)
}
