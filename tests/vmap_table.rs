//! Batching of the primitives the per-family tables (`grad_elementwise`, `grad_reduce`,
//! `grad_structural`, `grad_linalg`, `control_flow`) do not cover: stop_gradient, the PRNG
//! primitives over batched keys (JAX's `vmap` over keys), custom_vjp, custom_jvp, remat
//! and debug_print. Each batched result must equal a loop over examples bit for bit, with
//! the batch axis at 0, at 1 and unbatched operands. Inputs are pseudo-random (fixed seeds).

use ferrax::prim::{binary, custom_jvp, custom_vjp, random, reduce, remat, stop_gradient, unary};
use ferrax::vmap::{index_axis, vmap};
use ferrax::{Array, Result};

fn arr(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as u64 * 2654435761 + seed * 7919) % 1009) as f64 / 252.0 - 2.0)
        .collect();
    Array::from_vec(shape.to_vec(), v).unwrap()
}

/// Batched result == per-example loop, for each in_axes choice.
fn check(
    what: &str,
    f: &dyn Fn(&[Array]) -> Result<Vec<Array>>,
    examples: &[Vec<Array>],
    in_axes: &[Option<usize>],
) {
    let n = examples.len();
    let args: Vec<Array> = (0..examples[0].len())
        .map(|k| match in_axes[k] {
            Some(d) => {
                let col: Vec<&Array> = examples.iter().map(|e| &e[k]).collect();
                ferrax::prim::concatenate::stack(&col, d).unwrap()
            }
            None => examples[0][k].clone(),
        })
        .collect();
    let got = vmap(f, &args, in_axes, &[Some(0)]).unwrap();
    for i in 0..n {
        let ex: Vec<Array> = (0..args.len())
            .map(|k| {
                if in_axes[k].is_some() {
                    examples[i][k].clone()
                } else {
                    examples[0][k].clone()
                }
            })
            .collect();
        let want = f(&ex).unwrap();
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            let gi = index_axis(g, 0, i).unwrap();
            assert!(
                gi.bit_eq(w),
                "{what} in_axes {in_axes:?} example {i} output {j}: {gi:?} vs {w:?}"
            );
        }
    }
}

fn two_operand_cases() -> [[Option<usize>; 2]; 4] {
    [
        [Some(0), Some(0)],
        [Some(1), None],
        [None, Some(1)],
        [Some(0), Some(1)],
    ]
}

#[test]
fn stop_gradient_and_debug_print_batch_per_example() {
    let ex: Vec<Vec<Array>> = (0..3)
        .map(|i| vec![arr(&[2, 4], i), arr(&[2, 4], 10 + i)])
        .collect();
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let s = stop_gradient::stop_gradient(&binary::mul(&a[0], &a[1])?)?;
        Ok(vec![unary::sin(&s)?])
    };
    for axes in two_operand_cases() {
        check("stop_gradient", &f, &ex, &axes);
    }
}

#[test]
fn prng_primitives_over_batched_keys() {
    // Keys from fold_in so each example has its own key; data mapped or shared.
    let base = ferrax::random::Key::new(42);
    let keys: Vec<Array> = (0..4u32)
        .map(|i| random::random_fold_in(base.array(), &Array::scalar(i)).unwrap())
        .collect();
    let ex: Vec<Vec<Array>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| vec![k.clone(), Array::scalar(7u32 + i as u32)])
        .collect();
    let bits = |a: &[Array]| -> Result<Vec<Array>> {
        let k = random::random_fold_in(&a[0], &a[1])?;
        let parts = random::random_split(&k, 2)?;
        Ok(vec![random::random_bits(&parts[1], &[3, 2], 32)?])
    };
    for axes in [[Some(0), Some(0)], [Some(0), None], [None, Some(0)]] {
        check("fold_in/split/bits", &bits, &ex, &axes);
    }
    let normal = |a: &[Array]| -> Result<Vec<Array>> {
        let k = random::random_fold_in(&a[0], &a[1])?;
        Ok(vec![random::random_sample(
            &k,
            random::Dist::Normal,
            &[5],
            ferrax::DType::F32,
            &[],
        )?])
    };
    check("sample normal", &normal, &ex, &[Some(0), None]);
}

#[test]
fn custom_rules_and_remat_batch_per_example() {
    let ex: Vec<Vec<Array>> = (0..3)
        .map(|i| vec![arr(&[3], 20 + i), arr(&[3], 30 + i)])
        .collect();
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let cv = custom_vjp::custom_vjp(
            |x| Ok(vec![unary::tanh(&binary::mul(&x[0], &x[1])?)?]),
            |x| {
                let y = unary::tanh(&binary::mul(&x[0], &x[1])?)?;
                Ok((vec![y.clone()], vec![y, x[0].clone(), x[1].clone()]))
            },
            |r, ct| {
                let one = Array::full(r[0].shape(), r[0].dtype(), 1.0);
                let d = binary::mul(&binary::sub(&one, &binary::mul(&r[0], &r[0])?)?, &ct[0])?;
                Ok(vec![binary::mul(&d, &r[2])?, binary::mul(&d, &r[1])?])
            },
            a,
        )?;
        let cj = custom_jvp::custom_jvp(
            |x| Ok(vec![unary::exp(&x[0])?]),
            |x, t| {
                let y = unary::exp(&x[0])?;
                Ok((vec![y.clone()], vec![binary::mul(&y, &t[0])?]))
            },
            &[a[1].clone()],
        )?;
        let rm = remat::remat(
            |x| Ok(vec![unary::cos(&binary::add(&x[0], &x[1])?)?]),
            &[cv[0].clone(), cj[0].clone()],
        )?;
        Ok(vec![reduce::reduce_sum(&rm[0], &[0])?, cv[0].clone()])
    };
    for axes in [[Some(0), Some(0)], [Some(0), None], [None, Some(0)]] {
        check("custom_vjp/custom_jvp/remat", &f, &ex, &axes);
    }
}
