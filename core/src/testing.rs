//! Testing helpers users and the project share: `check_grads` (reverse mode, forward mode
//! and second order against central finite differences along random directions, as
//! `jax.test_util.check_grads` does) and `assert_allclose` for arrays and trees.

use crate::ad::{jvp_emit, vjp_emit};
use crate::array::Array;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ir::Program;
use crate::prim::convert::convert;
use crate::trace::trace_fn;
use crate::tree::{leaves_with_paths, Tree};

/// Whether two arrays are equal within `|a - b| <= atol + rtol * |b|` elementwise (NaNs
/// must match NaNs); the error names the first offending index and values.
pub fn allclose(a: &Array, b: &Array, rtol: f64, atol: f64) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            "allclose",
            format!("shapes differ: {:?} vs {:?}", a.shape(), b.shape()),
        ));
    }
    let x = a.storage("allclose")?.to_f64_vec();
    let y = b.storage("allclose")?.to_f64_vec();
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        let ok = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= atol + rtol * q.abs();
        if !ok {
            return Err(Error::invalid(
                "allclose",
                format!("element {i}: {p} vs {q} (|diff| {:.3e} > atol {atol:e} + rtol {rtol:e} * {:.3e})", (p - q).abs(), q.abs()),
            ));
        }
    }
    Ok(())
}

/// Panics with a message naming the leaf path if two trees differ beyond the tolerance.
pub fn assert_allclose<T: Tree>(a: &T, b: &T, rtol: f64, atol: f64) {
    let la = leaves_with_paths(a);
    let lb = leaves_with_paths(b);
    assert_eq!(
        la.len(),
        lb.len(),
        "assert_allclose: trees have {} and {} leaves",
        la.len(),
        lb.len()
    );
    for ((p, x), (_, y)) in la.iter().zip(&lb) {
        if let Err(e) = allclose(x, y, rtol, atol) {
            panic!("assert_allclose: leaf `{p}`: {e}");
        }
    }
}

/// What [`check_grads`] compares.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// Finite-difference step (in f64).
    pub eps: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Number of random directions.
    pub directions: usize,
    /// Also check second order (the gradient's own derivative).
    pub second_order: bool,
    /// Seed of the random directions.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-4,
            rtol: 1e-5,
            atol: 1e-7,
            directions: 3,
            second_order: false,
            seed: 0,
        }
    }
}

fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn to_f64(a: &Array) -> Result<Array> {
    if a.dtype().is_float() && a.dtype() != DType::F64 {
        convert(a, DType::F64)
    } else {
        Ok(a.clone())
    }
}

fn scalar_of(a: &Array) -> Result<f64> {
    Ok(a.storage("check_grads")?.get_f64(0))
}

fn axpy(x: &Array, t: &[f64], h: f64) -> Result<Array> {
    let v: Vec<f64> = x
        .storage("check_grads")?
        .to_f64_vec()
        .iter()
        .zip(t)
        .map(|(a, d)| a + h * d)
        .collect();
    Array::from_vec(x.shape().to_vec(), v)
}

/// Checks `f` (a scalar function of arrays) in f64: for random directions `t`, the
/// reverse-mode directional derivative `<grad f, t>` and the forward-mode `jvp` must both
/// match the central difference `(f(x + eps t) - f(x - eps t)) / 2 eps`; with
/// `second_order`, the same check runs on `x ↦ <grad f(x), t0>` (grad of grad).
/// Integer arguments are held fixed. Errors describe the first mismatch.
pub fn check_grads(
    f: &dyn Fn(&[Array]) -> Result<Array>,
    args: &[Array],
    opts: GradCheck,
) -> Result<()> {
    let args: Vec<Array> = args.iter().map(to_f64).collect::<Result<_>>()?;
    let avals: Vec<_> = args.iter().map(|a| a.aval().clone()).collect();
    let (prog, captured) = trace_fn(&avals, |xs| Ok(vec![f(xs)?]))?;
    if !captured.is_empty() {
        return Err(Error::invalid(
            "check_grads",
            "the function captured a traced value",
        ));
    }
    check_program(&prog, &args, &opts, "first order")?;
    if opts.second_order {
        // g(x) = <grad f(x), t0>, a scalar function checked the same way.
        let mut seed = opts.seed ^ 0xA5A5;
        let t0: Vec<Vec<f64>> = args
            .iter()
            .map(|a| (0..a.numel()).map(|_| splitmix(&mut seed)).collect())
            .collect();
        let wrt: Vec<bool> = args.iter().map(|a| a.dtype().is_float()).collect();
        let (g, cap) = trace_fn(&avals, |xs| {
            let one = Array::full(&[], DType::F64, 1.0);
            let (_, grads) = vjp_emit(&prog, xs, &wrt, &[Some(one)])?;
            let mut acc = Array::full(&[], DType::F64, 0.0);
            for ((gr, t), w) in grads.iter().zip(&t0).zip(&wrt) {
                if !*w {
                    continue;
                }
                let tt = Array::from_vec(gr.shape().to_vec(), t.clone())?;
                let prod = crate::prim::binary::mul(gr, &tt)?;
                let all: Vec<usize> = (0..prod.rank()).collect();
                acc =
                    crate::prim::binary::add(&acc, &crate::prim::reduce::reduce_sum(&prod, &all)?)?;
            }
            Ok(vec![acc])
        })?;
        debug_assert!(cap.is_empty());
        check_program(&g, &args, &opts, "second order")?;
    }
    Ok(())
}

fn check_program(prog: &Program, args: &[Array], opts: &GradCheck, what: &str) -> Result<()> {
    let wrt: Vec<bool> = args.iter().map(|a| a.dtype().is_float()).collect();
    let one = Array::full(&[], DType::F64, 1.0);
    let (_, grads) = vjp_emit(prog, args, &wrt, &[Some(one)])?;
    let mut seed = opts.seed;
    for d in 0..opts.directions {
        let t: Vec<Vec<f64>> = args
            .iter()
            .zip(&wrt)
            .map(|(a, w)| {
                (0..a.numel())
                    .map(|_| if *w { splitmix(&mut seed) } else { 0.0 })
                    .collect()
            })
            .collect();
        let eval = |h: f64| -> Result<f64> {
            let xs: Vec<Array> = args
                .iter()
                .zip(&t)
                .zip(&wrt)
                .map(|((a, t), w)| if *w { axpy(a, t, h) } else { Ok(a.clone()) })
                .collect::<Result<_>>()?;
            scalar_of(&crate::ad::interpret(prog, &xs)?[0])
        };
        let fd = (eval(opts.eps)? - eval(-opts.eps)?) / (2.0 * opts.eps);
        let mut rev = 0.0;
        for (g, tv) in grads.iter().zip(&t) {
            let gv = g.storage("check_grads")?.to_f64_vec();
            rev += gv.iter().zip(tv).map(|(a, b)| a * b).sum::<f64>();
        }
        let tangents: Vec<Array> = args
            .iter()
            .zip(&t)
            .map(|(a, tv)| {
                if a.dtype().is_float() {
                    Array::from_vec(a.shape().to_vec(), tv.clone())
                } else {
                    Ok(Array::zeros(a.shape(), a.dtype()))
                }
            })
            .collect::<Result<_>>()?;
        let (_, tout) = jvp_emit(prog, args, &tangents)?;
        let fwd = scalar_of(&tout[0])?;
        let tol = opts.atol + opts.rtol * fd.abs().max(1.0);
        if (rev - fd).abs() > tol {
            return Err(Error::invalid(
                "check_grads",
                format!("{what}, direction {d}: reverse mode gives {rev:.12e}, finite differences {fd:.12e}"),
            ));
        }
        if (fwd - fd).abs() > tol {
            return Err(Error::invalid(
                "check_grads",
                format!("{what}, direction {d}: forward mode gives {fwd:.12e}, finite differences {fd:.12e}"),
            ));
        }
    }
    Ok(())
}
