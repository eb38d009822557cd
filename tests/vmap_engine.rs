//! The batching engine: `vmap` over array functions equals a per-example loop, for batch
//! axes in any position, unbatched (broadcast) arguments, nested vmap and out_axes.

use ferrax::prim::{binary, reduce, unary};
use ferrax::vmap::{index_axis, vmap};
use ferrax::Array;

fn arr(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 250.0 - 2.0)
        .collect();
    Array::from_vec(shape.to_vec(), v).unwrap()
}

fn per_example(
    f: &dyn Fn(&[Array]) -> Array,
    args: &[Array],
    in_axes: &[Option<usize>],
    n: usize,
) -> Vec<Array> {
    (0..n)
        .map(|i| {
            let ex: Vec<Array> = args
                .iter()
                .zip(in_axes)
                .map(|(a, d)| match d {
                    Some(d) => index_axis(a, *d, i).unwrap(),
                    None => a.clone(),
                })
                .collect();
            f(&ex)
        })
        .collect()
}

fn body(xs: &[Array]) -> Array {
    // tanh(x * w) summed over the last axis, plus w's mean: exercises elementwise,
    // broadcasting and reductions.
    let p = binary::mul(&xs[0], &xs[1]).unwrap();
    let t = unary::tanh(&p).unwrap();
    let s = reduce::reduce_sum(&t, &[t.rank() - 1]).unwrap();
    let m = reduce::reduce_sum(&xs[1], &(0..xs[1].rank()).collect::<Vec<_>>()).unwrap();
    let m = ferrax::prim::broadcast_in_dim::broadcast_to(&m, s.shape()).unwrap();
    binary::add(&s, &m).unwrap()
}

#[test]
fn vmap_matches_per_example_loop() {
    // (x batch axis, w batch axis)
    let cases: &[(&[usize], Option<usize>, &[usize], Option<usize>)] = &[
        (&[5, 3, 4], Some(0), &[3, 4], None),
        (&[3, 5, 4], Some(1), &[3, 4], None),
        (&[3, 4, 5], Some(2), &[5, 3, 4], Some(0)),
        (&[3, 4], None, &[3, 4, 5], Some(2)),
    ];
    for (k, (xs, xd, ws, wd)) in cases.iter().enumerate() {
        let x = arr(xs, k as u64);
        let w = arr(ws, 100 + k as u64);
        let n = xd.map(|d| xs[d]).or(wd.map(|d| ws[d])).unwrap();
        let got = vmap(
            |a| Ok(vec![body(a)]),
            &[x.clone(), w.clone()],
            &[*xd, *wd],
            &[Some(0)],
        )
        .unwrap();
        let want = per_example(&body, &[x, w], &[*xd, *wd], n);
        for (i, wi) in want.iter().enumerate() {
            let gi = index_axis(&got[0], 0, i).unwrap();
            assert!(gi.bit_eq(wi), "case {k} example {i}: {:?} vs {:?}", gi, wi);
        }
    }
}

#[test]
fn nested_vmap_pairwise_distances() {
    // out[j, i] = |P_i - Q_j|^2, as jax's vmap(vmap(f, (0, None)), (None, 0)).
    let p = arr(&[3, 2], 1);
    let q = arr(&[4, 2], 2);
    let sqdist = |a: &[Array]| -> ferrax::Result<Vec<Array>> {
        let d = binary::sub(&a[0], &a[1])?;
        let d2 = binary::mul(&d, &d)?;
        Ok(vec![reduce::reduce_sum(&d2, &[0])?])
    };
    let out = vmap(
        |outer| {
            Ok(vec![vmap(
                sqdist,
                &[outer[0].clone(), outer[1].clone()],
                &[Some(0), None],
                &[Some(0)],
            )?
            .remove(0)])
        },
        &[p.clone(), q.clone()],
        &[None, Some(0)],
        &[Some(0)],
    )
    .unwrap();
    assert_eq!(out[0].shape(), &[4, 3]);
    let pv = p.to_vec::<f64>().unwrap();
    let qv = q.to_vec::<f64>().unwrap();
    let got = out[0].to_vec::<f64>().unwrap();
    for j in 0..4 {
        for i in 0..3 {
            let want: f64 = (0..2)
                .map(|c| (pv[i * 2 + c] - qv[j * 2 + c]).powi(2))
                .sum();
            assert!((got[j * 3 + i] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn out_axes_and_unbatched_outputs() {
    let x = arr(&[4, 3], 7);
    let c = arr(&[3], 8);
    // Output 0 depends on x (batched), output 1 only on c (broadcast to the batch).
    let outs = vmap(
        |a| Ok(vec![binary::mul(&a[0], &a[1])?, unary::exp(&a[1])?]),
        &[x.clone(), c.clone()],
        &[Some(0), None],
        &[Some(1), Some(0)],
    )
    .unwrap();
    assert_eq!(outs[0].shape(), &[3, 4]);
    assert_eq!(outs[1].shape(), &[4, 3]);
    let e = unary::exp(&c).unwrap();
    for i in 0..4 {
        assert!(index_axis(&outs[1], 0, i).unwrap().bit_eq(&e));
    }
    let err = vmap(
        |a| Ok(vec![a[0].clone()]),
        &[x.clone(), arr(&[5], 1)],
        &[Some(0), Some(0)],
        &[Some(0)],
    );
    assert!(err.unwrap_err().to_string().contains("batch size"));
}
