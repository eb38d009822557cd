//! Matmul, dot_general, einsum, one_hot and convolutions against naive loops written here
//! (and ndarray's `dot`), plus determinism across thread counts and the run-time shape
//! errors of `Dyn` dims.
//!
//! Tolerances: f64 results must match the naive loop to 1e-12 relative to the sum of
//! |terms|; f32 to 1e-5 of it (a K-term dot product in f32 accumulates error ~K·eps·Σ|terms|
//! in the worst case; the bound used is loose by design yet far below any indexing bug);
//! bf16/f16 outputs must equal the f32 result rounded once; integers are exact.

use ferrax::ops::linalg::{einsum, one_hot, Conv2dOpts, Stride};
use ferrax::prim::conv::{conv, conv2d, conv_general_dilated, Padding};
use ferrax::prim::dot_general::{dot_general, matmul};
use ferrax::{Array, DType, Dyn, Tensor, C};

fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn arr_f64(shape: &[usize], seed: u64) -> Array {
    let n = shape.iter().product();
    Array::from_vec(shape.to_vec(), rand_vec(n, seed)).unwrap()
}

fn to_f32(a: &Array) -> Array {
    let v: Vec<f32> = a
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|&x| x as f32)
        .collect();
    Array::from_vec(a.shape().to_vec(), v).unwrap()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
    idx
}

/// dot_general by definition: returns (values, sum of |terms|) per output element.
fn naive_dot_general(
    a: &[f64],
    ash: &[usize],
    b: &[f64],
    bsh: &[usize],
    lc: &[usize],
    rc: &[usize],
    lb: &[usize],
    rb: &[usize],
) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let lfree: Vec<usize> = (0..ash.len())
        .filter(|x| !lc.contains(x) && !lb.contains(x))
        .collect();
    let rfree: Vec<usize> = (0..bsh.len())
        .filter(|x| !rc.contains(x) && !rb.contains(x))
        .collect();
    let mut oshape: Vec<usize> = lb.iter().map(|&d| ash[d]).collect();
    oshape.extend(lfree.iter().map(|&d| ash[d]));
    oshape.extend(rfree.iter().map(|&d| bsh[d]));
    let cshape: Vec<usize> = lc.iter().map(|&d| ash[d]).collect();
    let (sa, sb) = (strides(ash), strides(bsh));
    let n: usize = oshape.iter().product();
    let kn: usize = cshape.iter().product();
    let mut vals = vec![0.0; n];
    let mut mags = vec![0.0; n];
    for o in 0..n {
        let oi = unravel(o, &oshape);
        let mut ia = vec![0; ash.len()];
        let mut ib = vec![0; bsh.len()];
        for (j, (&da, &db)) in lb.iter().zip(rb).enumerate() {
            ia[da] = oi[j];
            ib[db] = oi[j];
        }
        for (j, &d) in lfree.iter().enumerate() {
            ia[d] = oi[lb.len() + j];
        }
        for (j, &d) in rfree.iter().enumerate() {
            ib[d] = oi[lb.len() + lfree.len() + j];
        }
        for k in 0..kn {
            let ki = unravel(k, &cshape);
            for (j, (&da, &db)) in lc.iter().zip(rc).enumerate() {
                ia[da] = ki[j];
                ib[db] = ki[j];
            }
            let pa: usize = ia.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let pb: usize = ib.iter().zip(&sb).map(|(i, s)| i * s).sum();
            vals[o] += a[pa] * b[pb];
            mags[o] += (a[pa] * b[pb]).abs();
        }
    }
    (oshape, vals, mags)
}

fn assert_close(op: &str, got: &[f64], want: &[f64], mags: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{op}: length");
    for i in 0..got.len() {
        let tol = rel * (mags[i] + 1e-30) + 1e-30;
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "{op}: element {i}: got {}, want {} (tol {tol:e})",
            got[i],
            want[i]
        );
    }
}

struct DotCase {
    name: &'static str,
    a: &'static [usize],
    b: &'static [usize],
    lc: &'static [usize],
    rc: &'static [usize],
    lb: &'static [usize],
    rb: &'static [usize],
}

const DOT_CASES: &[DotCase] = &[
    DotCase {
        name: "plain",
        a: &[3, 4],
        b: &[4, 5],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "non-square edges",
        a: &[37, 53],
        b: &[53, 29],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "lhs transposed",
        a: &[4, 3],
        b: &[4, 5],
        lc: &[0],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "rhs transposed",
        a: &[3, 4],
        b: &[5, 4],
        lc: &[1],
        rc: &[1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "both transposed",
        a: &[19, 7],
        b: &[11, 19],
        lc: &[0],
        rc: &[1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "batched",
        a: &[2, 3, 4],
        b: &[2, 4, 5],
        lc: &[2],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "batch in the middle",
        a: &[3, 2, 4],
        b: &[4, 2, 5],
        lc: &[2],
        rc: &[0],
        lb: &[1],
        rb: &[1],
    },
    DotCase {
        name: "two batch dims swapped",
        a: &[2, 3, 4, 5],
        b: &[3, 2, 5, 6],
        lc: &[3],
        rc: &[2],
        lb: &[0, 1],
        rb: &[1, 0],
    },
    DotCase {
        name: "two contracting, mergeable",
        a: &[3, 4, 6],
        b: &[4, 6, 5],
        lc: &[1, 2],
        rc: &[0, 1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "two contracting, crossed",
        a: &[3, 4, 6],
        b: &[6, 4, 5],
        lc: &[1, 2],
        rc: &[1, 0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "contract first of three",
        a: &[5, 3, 2],
        b: &[2, 5],
        lc: &[0],
        rc: &[1],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "vector dot",
        a: &[7],
        b: &[7],
        lc: &[0],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "outer",
        a: &[3],
        b: &[4],
        lc: &[],
        rc: &[],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "batched outer",
        a: &[2, 3],
        b: &[2, 4],
        lc: &[],
        rc: &[],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "size-1 dims",
        a: &[1, 4, 1],
        b: &[1, 4, 3],
        lc: &[1],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "empty M",
        a: &[0, 4],
        b: &[4, 5],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "empty K gives zeros",
        a: &[3, 0],
        b: &[0, 5],
        lc: &[1],
        rc: &[0],
        lb: &[],
        rb: &[],
    },
    DotCase {
        name: "empty batch",
        a: &[0, 3, 4],
        b: &[0, 4, 2],
        lc: &[2],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
    DotCase {
        name: "many small batches",
        a: &[40, 9, 8],
        b: &[40, 8, 7],
        lc: &[2],
        rc: &[1],
        lb: &[0],
        rb: &[0],
    },
];

#[test]
fn dot_general_table_f64_f32() {
    for (ci, c) in DOT_CASES.iter().enumerate() {
        let a = arr_f64(c.a, 2 * ci as u64);
        let b = arr_f64(c.b, 2 * ci as u64 + 1);
        let (oshape, want, mags) = naive_dot_general(
            &a.to_vec::<f64>().unwrap(),
            c.a,
            &b.to_vec::<f64>().unwrap(),
            c.b,
            c.lc,
            c.rc,
            c.lb,
            c.rb,
        );
        let got = dot_general(&a, &b, c.lc, c.rc, c.lb, c.rb).unwrap();
        assert_eq!(got.shape(), &oshape[..], "{}: shape", c.name);
        assert_close(c.name, &got.to_vec::<f64>().unwrap(), &want, &mags, 1e-12);

        let got32 = dot_general(&to_f32(&a), &to_f32(&b), c.lc, c.rc, c.lb, c.rb).unwrap();
        assert_eq!(got32.dtype(), DType::F32);
        let g: Vec<f64> = got32
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        assert_close(c.name, &g, &want, &mags, 1e-5);
    }
}

#[test]
fn dot_general_ints_bool_and_half() {
    for c in DOT_CASES {
        let a = arr_f64(c.a, 7);
        let b = arr_f64(c.b, 8);
        let ai: Vec<i32> = a
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| (x * 10.0) as i32)
            .collect();
        let bi: Vec<i32> = b
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| (x * 10.0) as i32)
            .collect();
        let af: Vec<f64> = ai.iter().map(|&x| x as f64).collect();
        let bf: Vec<f64> = bi.iter().map(|&x| x as f64).collect();
        let (_, want, _) = naive_dot_general(&af, c.a, &bf, c.b, c.lc, c.rc, c.lb, c.rb);
        let ga = Array::from_vec(c.a.to_vec(), ai).unwrap();
        let gb = Array::from_vec(c.b.to_vec(), bi).unwrap();
        let got = dot_general(&ga, &gb, c.lc, c.rc, c.lb, c.rb)
            .unwrap()
            .to_vec::<i32>()
            .unwrap();
        let want_i: Vec<i32> = want.iter().map(|&x| x as i32).collect();
        assert_eq!(got, want_i, "{}: i32", c.name);

        // bf16: inputs exactly representable, product computed in f32 and rounded once.
        let ab: Vec<ferrax::bf16> = a
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|&x| ferrax::bf16::from_f64(x))
            .collect();
        let bb: Vec<ferrax::bf16> = b
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|&x| ferrax::bf16::from_f64(x))
            .collect();
        let a32 = Array::from_vec(
            c.a.to_vec(),
            ab.iter().map(|x| x.to_f32()).collect::<Vec<f32>>(),
        )
        .unwrap();
        let b32 = Array::from_vec(
            c.b.to_vec(),
            bb.iter().map(|x| x.to_f32()).collect::<Vec<f32>>(),
        )
        .unwrap();
        let want16: Vec<ferrax::bf16> = dot_general(&a32, &b32, c.lc, c.rc, c.lb, c.rb)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(ferrax::bf16::from_f32)
            .collect();
        let got16 = dot_general(
            &Array::from_vec(c.a.to_vec(), ab).unwrap(),
            &Array::from_vec(c.b.to_vec(), bb).unwrap(),
            c.lc,
            c.rc,
            c.lb,
            c.rb,
        )
        .unwrap();
        assert_eq!(
            got16.to_vec::<ferrax::bf16>().unwrap(),
            want16,
            "{}: bf16",
            c.name
        );
    }
    // bool: or of ands.
    let a = Array::from_vec(vec![2, 2], vec![true, false, false, false]).unwrap();
    let b = Array::from_vec(vec![2, 2], vec![false, true, true, true]).unwrap();
    let c = dot_general(&a, &b, &[1], &[0], &[], &[]).unwrap();
    assert_eq!(c.to_vec::<bool>().unwrap(), vec![false, true, false, false]);
    // i32 wraps like XLA instead of panicking.
    let big = Array::from_vec(vec![2], vec![i32::MAX, 2]).unwrap();
    let d = dot_general(&big, &big, &[0], &[0], &[], &[]).unwrap();
    assert_eq!(d.to_vec::<i32>().unwrap(), vec![1i32.wrapping_add(4)]);
}

#[test]
fn matmul_numpy_rules() {
    // (lhs, rhs, expected output shape)
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[5], &[5], &[]),
        (&[5], &[5, 3], &[3]),
        (&[4, 5], &[5], &[4]),
        (&[4, 5], &[5, 3], &[4, 3]),
        (&[2, 4, 5], &[5, 3], &[2, 4, 3]),
        (&[4, 5], &[2, 5, 3], &[2, 4, 3]),
        (&[5], &[2, 5, 3], &[2, 3]),
        (&[2, 1, 4, 5], &[3, 5, 2], &[2, 3, 4, 2]),
        (&[6, 4, 5], &[6, 5, 3], &[6, 4, 3]),
    ];
    for (i, &(sa, sb, so)) in cases.iter().enumerate() {
        let a = arr_f64(sa, 100 + i as u64);
        let b = arr_f64(sb, 200 + i as u64);
        let got = matmul(&a, &b).unwrap();
        assert_eq!(got.shape(), so, "matmul {sa:?}·{sb:?}");
        // Oracle: promote to >= 2-D, broadcast batches by index arithmetic, multiply naively.
        let (av, bv) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        let a2: Vec<usize> = if sa.len() == 1 {
            vec![1, sa[0]]
        } else {
            sa.to_vec()
        };
        let b2: Vec<usize> = if sb.len() == 1 {
            vec![sb[0], 1]
        } else {
            sb.to_vec()
        };
        let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
        let (ba, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
        let r = ba.len().max(bb.len());
        let pad = |s: &[usize]| -> Vec<usize> {
            let mut v = vec![1; r - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (pa, pb) = (pad(ba), pad(bb));
        let batch: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
        let nb: usize = batch.iter().product();
        let mut want = Vec::new();
        for p in 0..nb {
            let bi = unravel(p, &batch);
            let off = |ps: &[usize]| -> usize {
                let st = strides(ps);
                bi.iter()
                    .zip(ps)
                    .zip(&st)
                    .map(|((&i, &d), &s)| if d == 1 { 0 } else { i * s })
                    .sum()
            };
            let (oa, ob) = (off(&pa) * m * k, off(&pb) * k * n);
            for i in 0..m {
                for j in 0..n {
                    want.push(
                        (0..k)
                            .map(|l| av[oa + i * k + l] * bv[ob + l * n + j])
                            .sum::<f64>(),
                    );
                }
            }
        }
        let g = got.to_vec::<f64>().unwrap();
        let mags: Vec<f64> = want.iter().map(|_| k as f64).collect();
        assert_close("matmul", &g, &want, &mags, 1e-12);
    }
    let err = matmul(&arr_f64(&[2, 3], 1), &arr_f64(&[4, 2], 2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 2]"),
        "{err}"
    );
    let err = matmul(&arr_f64(&[2, 2, 3], 1), &arr_f64(&[3, 3, 2], 2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 2, 3]") && err.contains("[3, 3, 2]"),
        "{err}"
    );
}

#[test]
fn dot_general_shape_errors_name_both_shapes() {
    let a = arr_f64(&[2, 3], 1);
    let b = arr_f64(&[4, 5], 2);
    let e = dot_general(&a, &b, &[1], &[0], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("dot_general") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    let e = dot_general(&a, &b, &[2], &[0], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range") && e.contains("[2, 3]"), "{e}");
    let e = dot_general(&a, &a, &[1, 1], &[1, 0], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice"), "{e}");
    let e = dot_general(&a, &to_f32(&a), &[1], &[1], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("f64") && e.contains("f32"), "{e}");
}

#[test]
fn typed_matmul_matches_ndarray() {
    let a = Tensor::<(C<3>, C<4>), f64>::from_array(arr_f64(&[3, 4], 11)).unwrap();
    let b = Tensor::<(C<4>, C<2>), f64>::from_array(arr_f64(&[4, 2], 12)).unwrap();
    let c: Tensor<(C<3>, C<2>), f64> = a.matmul(&b);
    let want = a
        .to_ndarray()
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .dot(
            &b.to_ndarray()
                .unwrap()
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap(),
        );
    for (g, w) in c.to_vec().unwrap().iter().zip(want.iter()) {
        assert!((g - w).abs() < 1e-12);
    }
    // Batched by a shared matrix, and batched by a batch.
    let x = Tensor::<(C<5>, C<3>, C<4>), f64>::from_array(arr_f64(&[5, 3, 4], 13)).unwrap();
    let y: Tensor<(C<5>, C<3>, C<2>), f64> = x.matmul(&b);
    let xb = Tensor::<(C<5>, C<4>, C<2>), f64>::from_array(arr_f64(&[5, 4, 2], 14)).unwrap();
    let z: Tensor<(C<5>, C<3>, C<2>), f64> = x.matmul(&xb);
    let xn = x
        .to_ndarray()
        .unwrap()
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let bn = b
        .to_ndarray()
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let xbn = xb
        .to_ndarray()
        .unwrap()
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let (yv, zv) = (y.to_vec().unwrap(), z.to_vec().unwrap());
    for p in 0..5 {
        let w1 = xn.index_axis(ndarray::Axis(0), p).dot(&bn);
        let w2 = xn
            .index_axis(ndarray::Axis(0), p)
            .dot(&xbn.index_axis(ndarray::Axis(0), p));
        for (i, (u, v)) in w1.iter().zip(w2.iter()).enumerate() {
            assert!((yv[p * 6 + i] - u).abs() < 1e-12 && (zv[p * 6 + i] - v).abs() < 1e-12);
        }
    }
    // Vectors.
    let v = Tensor::<(C<4>,), f64>::from_vec(vec![1., 2., 3., 4.]).unwrap();
    assert_eq!(v.dot(&v).item().unwrap(), 30.0);
    let av: Tensor<(C<3>,), f64> = a.matmul(&v);
    assert_eq!(av.dims(), &[3]);
    let o = v.outer(&Tensor::<(C<2>,), f64>::from_vec(vec![1., -1.]).unwrap());
    assert_eq!(
        o.to_vec().unwrap(),
        vec![1., -1., 2., -2., 3., -3., 4., -4.]
    );
    // Rank-4 (attention-style) batches.
    let q = Tensor::<(C<2>, C<3>, C<4>, C<5>)>::ones();
    let k = Tensor::<(C<2>, C<3>, C<5>, C<4>)>::ones();
    let s: Tensor<(C<2>, C<3>, C<4>, C<4>)> = q.matmul(&k);
    assert!(s.to_vec().unwrap().iter().all(|&x| x == 5.0));
}

#[test]
fn dyn_inner_dim_mismatch_is_an_error_naming_both_shapes() {
    let a = Tensor::<(Dyn, Dyn)>::zeros_shape((Dyn(2), Dyn(3)));
    let b = Tensor::<(Dyn, C<5>)>::zeros_shape((Dyn(4), C));
    let e = a
        .try_matmul(&Tensor::<(Dyn, Dyn)>::zeros_shape((Dyn(4), Dyn(5))))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    // A static inner dim with a Dyn row count never needs a check.
    let x = Tensor::<(Dyn, C<4>)>::ones_shape((Dyn(3), C));
    let y: Tensor<(Dyn, C<5>)> = x.matmul(&Tensor::<(C<4>, C<5>)>::ones());
    assert_eq!(y.dims(), &[3, 5]);
    let ok = Tensor::<(Dyn, Dyn)>::ones_shape((Dyn(4), Dyn(3)))
        .try_matmul(&Tensor::<(Dyn, Dyn)>::ones_shape((Dyn(3), Dyn(2))))
        .unwrap();
    assert_eq!(ok.dims(), &[4, 2]);
    let _ = b;
    let v = Tensor::<(Dyn,)>::ones_shape((Dyn(3),));
    let e = v
        .try_dot(&Tensor::<(Dyn,)>::ones_shape((Dyn(4),)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3]") && e.contains("[4]"), "{e}");
    // Batch dims too.
    let p = Tensor::<(Dyn, C<2>, C<3>)>::ones_shape((Dyn(2), C, C));
    let q = Tensor::<(Dyn, C<3>, C<2>)>::ones_shape((Dyn(5), C, C));
    let e = p.try_matmul(&q).unwrap_err().to_string();
    assert!(e.contains("[2, 2, 3]") && e.contains("[5, 3, 2]"), "{e}");
}

/// The determinism check runs in a child process per thread count: matrixmultiply reads its
/// thread count (MATMUL_NUM_THREADS) once per process. The child writes the bits of a
/// 512x512 product (and of a rayon-parallel batched product run in 1- and 2-thread pools).
#[test]
fn child_matmul_bits() {
    let Ok(path) = std::env::var("FERRAX_LINALG_CHILD_OUT") else {
        return; // only does work when spawned by `matmul_bits_do_not_depend_on_threads`
    };
    let bits = matmul_bits();
    std::fs::write(
        path,
        bits.iter()
            .map(|b| format!("{b:08x}"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
}

fn matmul_bits() -> Vec<u32> {
    let a = to_f32(&arr_f64(&[512, 512], 21));
    let b = to_f32(&arr_f64(&[512, 512], 22));
    let mut bits: Vec<u32> = matmul(&a, &b)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect();
    // Transposed rhs (strided, no copy) goes through the same kernel.
    let c = dot_general(&a, &b, &[1], &[1], &[], &[]).unwrap();
    bits.extend(c.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()));
    bits
}

fn batched_bits() -> Vec<u32> {
    // Small matrices: spread over rayon tasks.
    let a = to_f32(&arr_f64(&[96, 48, 40], 23));
    let b = to_f32(&arr_f64(&[96, 40, 56], 24));
    matmul(&a, &b)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn matmul_bits_do_not_depend_on_threads() {
    // Rayon pools of 1 and 2 threads, and repeated runs, in this process.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let r1 = one.install(batched_bits);
    let r2 = two.install(batched_bits);
    assert!(
        r1 == r2,
        "batched matmul differs between 1 and 2 rayon threads"
    );
    assert!(
        r2 == two.install(batched_bits),
        "batched matmul differs across runs"
    );
    let m1 = one.install(matmul_bits);
    let m2 = two.install(matmul_bits);
    assert!(
        m1 == m2 && m1 == matmul_bits(),
        "512x512 matmul differs across pools or runs"
    );

    // matrixmultiply's own threads: one child process per thread count.
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir();
    let mut outs = Vec::new();
    for t in ["1", "2"] {
        let path = dir.join(format!("ferrax_linalg_bits_{}_{t}.txt", std::process::id()));
        let status = std::process::Command::new(&exe)
            .args(["--exact", "child_matmul_bits", "--test-threads", "1"])
            .env("MATMUL_NUM_THREADS", t)
            .env("FERRAX_LINALG_CHILD_OUT", &path)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "child with MATMUL_NUM_THREADS={t} failed");
        outs.push(std::fs::read_to_string(&path).unwrap());
        let _ = std::fs::remove_file(&path);
    }
    assert!(!outs[0].is_empty());
    assert!(
        outs[0] == outs[1],
        "512x512 matmul differs between 1 and 2 gemm threads"
    );
    let here: Vec<String> = m1.iter().map(|b| format!("{b:08x}")).collect();
    assert!(
        outs[0] == here.join("\n"),
        "child result differs from this process's"
    );
}

// ---------------------------------------------------------------------------------------
// Convolutions against a direct loop over an explicitly dilated and padded input.

struct ConvCase {
    name: &'static str,
    x: &'static [usize],
    w: &'static [usize],
    strides: &'static [usize],
    pad: &'static [(i64, i64)],
    lhs_dil: &'static [usize],
    rhs_dil: &'static [usize],
    groups: usize,
}

/// Materializes the input with `l-1` zeros between elements and the (possibly negative)
/// padding, then slides the dilated kernel over it. N spatial dims, NHWC / HWIO.
fn naive_conv(
    x: &[f64],
    xs: &[usize],
    w: &[f64],
    ws: &[usize],
    c: &ConvCase,
) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let d = xs.len() - 2;
    let (n, ci, co) = (xs[0], xs[d + 1], ws[d + 1]);
    let (cg, og) = (ci / c.groups, co / c.groups);
    // Dilate and pad into a dense buffer `[n, P.., ci]`.
    let psz: Vec<i64> = (0..d)
        .map(|i| {
            (if xs[1 + i] == 0 {
                0
            } else {
                (xs[1 + i] as i64 - 1) * c.lhs_dil[i] as i64 + 1
            }) + c.pad[i].0
                + c.pad[i].1
        })
        .collect();
    let pshape: Vec<usize> = std::iter::once(n)
        .chain(psz.iter().map(|&p| p.max(0) as usize))
        .chain([ci])
        .collect();
    let mut padded = vec![0.0; pshape.iter().product()];
    for (flat, &v) in x.iter().enumerate() {
        let idx = unravel(flat, xs);
        let mut q = vec![idx[0]];
        let mut inside = true;
        for i in 0..d {
            let p = (idx[1 + i] * c.lhs_dil[i]) as i64 + c.pad[i].0;
            if p < 0 || p >= psz[i] {
                inside = false;
            }
            q.push(p.max(0) as usize);
        }
        q.push(idx[d + 1]);
        if inside {
            let st = strides(&pshape);
            padded[q.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()] = v;
        }
    }
    let win: Vec<i64> = (0..d)
        .map(|i| (ws[i] as i64 - 1) * c.rhs_dil[i] as i64 + 1)
        .collect();
    let osp: Vec<usize> = (0..d)
        .map(|i| {
            if psz[i] < win[i] {
                0
            } else {
                ((psz[i] - win[i]) as usize) / c.strides[i] + 1
            }
        })
        .collect();
    let oshape: Vec<usize> = std::iter::once(n)
        .chain(osp.iter().copied())
        .chain([co])
        .collect();
    let total: usize = oshape.iter().product();
    let ksp: Vec<usize> = ws[..d].to_vec();
    let ktaps: usize = ksp.iter().product();
    let (pst, wst) = (strides(&pshape), strides(ws));
    let mut out = vec![0.0; total];
    let mut mags = vec![0.0; total];
    for o in 0..total {
        let oi = unravel(o, &oshape);
        let oc = oi[d + 1];
        let g = oc / og;
        for t in 0..ktaps {
            let ki = unravel(t, &ksp);
            for cc in 0..cg {
                let mut pidx = oi[0] * pst[0];
                for i in 0..d {
                    pidx += (oi[1 + i] * c.strides[i] + ki[i] * c.rhs_dil[i]) * pst[1 + i];
                }
                pidx += g * cg + cc;
                let mut widx = cc * wst[d] + oc;
                for i in 0..d {
                    widx += ki[i] * wst[i];
                }
                out[o] += padded[pidx] * w[widx];
                mags[o] += (padded[pidx] * w[widx]).abs();
            }
        }
    }
    (oshape, out, mags)
}

const CONV_CASES: &[ConvCase] = &[
    ConvCase {
        name: "3x3 valid",
        x: &[2, 7, 6, 3],
        w: &[3, 3, 3, 4],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "3x3 pad 1",
        x: &[2, 7, 6, 3],
        w: &[3, 3, 3, 4],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "stride 2 asym pad",
        x: &[1, 9, 8, 2],
        w: &[3, 2, 2, 5],
        strides: &[2, 3],
        pad: &[(0, 1), (2, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "negative pad crops",
        x: &[1, 8, 8, 2],
        w: &[2, 2, 2, 3],
        strides: &[1, 1],
        pad: &[(-1, -2), (0, -1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "rhs dilation",
        x: &[2, 9, 10, 2],
        w: &[3, 3, 2, 3],
        strides: &[1, 2],
        pad: &[(2, 2), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[2, 3],
        groups: 1,
    },
    ConvCase {
        name: "lhs dilation (transposed conv)",
        x: &[1, 4, 5, 3],
        w: &[3, 3, 3, 2],
        strides: &[1, 1],
        pad: &[(2, 2), (1, 2)],
        lhs_dil: &[2, 3],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "groups 2",
        x: &[2, 6, 6, 4],
        w: &[3, 3, 2, 6],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 2,
    },
    ConvCase {
        name: "depthwise",
        x: &[1, 5, 5, 3],
        w: &[3, 3, 1, 3],
        strides: &[2, 2],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 3,
    },
    ConvCase {
        name: "pointwise 1x1",
        x: &[3, 4, 5, 6],
        w: &[1, 1, 6, 7],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "pointwise grouped",
        x: &[2, 3, 3, 4],
        w: &[1, 1, 2, 6],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 2,
    },
    ConvCase {
        name: "1-D",
        x: &[2, 11, 3],
        w: &[4, 3, 5],
        strides: &[2],
        pad: &[(1, 2)],
        lhs_dil: &[1],
        rhs_dil: &[2],
        groups: 1,
    },
    ConvCase {
        name: "3-D",
        x: &[1, 4, 5, 3, 2],
        w: &[2, 3, 2, 2, 3],
        strides: &[1, 2, 1],
        pad: &[(0, 1), (1, 1), (0, 0)],
        lhs_dil: &[1, 1, 2],
        rhs_dil: &[1, 1, 1],
        groups: 1,
    },
    ConvCase {
        name: "window larger than input",
        x: &[1, 2, 2, 1],
        w: &[3, 3, 1, 1],
        strides: &[1, 1],
        pad: &[(0, 0), (0, 0)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "empty batch",
        x: &[0, 5, 5, 2],
        w: &[3, 3, 2, 2],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
    ConvCase {
        name: "many rows (several im2col blocks)",
        x: &[4, 40, 40, 8],
        w: &[3, 3, 8, 4],
        strides: &[1, 1],
        pad: &[(1, 1), (1, 1)],
        lhs_dil: &[1, 1],
        rhs_dil: &[1, 1],
        groups: 1,
    },
];

#[test]
fn conv_matches_direct_loop() {
    for (ci, c) in CONV_CASES.iter().enumerate() {
        let x = arr_f64(c.x, 300 + ci as u64);
        let w = arr_f64(c.w, 400 + ci as u64);
        let (oshape, want, mags) = naive_conv(
            &x.to_vec::<f64>().unwrap(),
            c.x,
            &w.to_vec::<f64>().unwrap(),
            c.w,
            c,
        );
        let got =
            conv_general_dilated(&x, &w, c.strides, c.pad, c.lhs_dil, c.rhs_dil, c.groups).unwrap();
        assert_eq!(got.shape(), &oshape[..], "{}: shape", c.name);
        assert_close(c.name, &got.to_vec::<f64>().unwrap(), &want, &mags, 1e-12);
        let g32 = conv_general_dilated(
            &to_f32(&x),
            &to_f32(&w),
            c.strides,
            c.pad,
            c.lhs_dil,
            c.rhs_dil,
            c.groups,
        )
        .unwrap();
        let g: Vec<f64> = g32
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_close(c.name, &g, &want, &mags, 1e-5);
        // Integers take the naive-product path over the same patches.
        let xi: Vec<i32> = x
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| (v * 5.0) as i32)
            .collect();
        let wi: Vec<i32> = w
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| (v * 5.0) as i32)
            .collect();
        let (_, want_i, _) = naive_conv(
            &xi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            c.x,
            &wi.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            c.w,
            c,
        );
        let gi = conv_general_dilated(
            &Array::from_vec(c.x.to_vec(), xi).unwrap(),
            &Array::from_vec(c.w.to_vec(), wi).unwrap(),
            c.strides,
            c.pad,
            c.lhs_dil,
            c.rhs_dil,
            c.groups,
        )
        .unwrap();
        assert_eq!(
            gi.to_vec::<i32>().unwrap(),
            want_i.iter().map(|&v| v as i32).collect::<Vec<_>>(),
            "{}: i32",
            c.name
        );
    }
}

#[test]
fn same_padding_like_jax() {
    // (input, kernel, stride, dilation) -> JAX's lax.padtype_to_pads(..., 'SAME').
    let cases: &[(usize, usize, usize, usize, (i64, i64))] = &[
        (28, 3, 1, 1, (1, 1)),
        (8, 3, 2, 1, (0, 1)),
        (7, 4, 2, 1, (1, 2)),
        (5, 1, 1, 1, (0, 0)),
        (10, 3, 1, 2, (2, 2)),
        (4, 5, 3, 1, (2, 2)),
        (9, 2, 3, 1, (0, 0)),
    ];
    for &(n, k, s, d, want) in cases {
        let p = Padding::Same.pads(&[n], &[k], &[s], &[d]).unwrap();
        assert_eq!(p, vec![want], "SAME for in={n} k={k} s={s} d={d}");
    }
    // conv2d with SAME keeps ceil(in / stride) and equals the explicit-padding convolution.
    let x = arr_f64(&[2, 7, 9, 3], 50);
    let w = arr_f64(&[3, 4, 3, 2], 51);
    let y = conv2d(&x, &w, (2, 2), &Padding::Same, (1, 1), 1).unwrap();
    assert_eq!(y.shape(), &[2, 4, 5, 2]);
    let pads = Padding::Same
        .pads(&[7, 9], &[3, 4], &[2, 2], &[1, 1])
        .unwrap();
    let z = conv_general_dilated(&x, &w, &[2, 2], &pads, &[1, 1], &[1, 1], 1).unwrap();
    assert!(y.bit_eq(&z));
    let v = conv(&x, &w, &[1, 1], &Padding::Valid, &[1, 1], 1).unwrap();
    assert_eq!(v.shape(), &[2, 5, 6, 2]);
}

#[test]
fn conv_errors_name_shapes() {
    let x = arr_f64(&[1, 5, 5, 4], 1);
    let e = conv2d(
        &x,
        &arr_f64(&[3, 3, 3, 2], 2),
        (1, 1),
        &Padding::Valid,
        (1, 1),
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("[1, 5, 5, 4]") && e.contains("[3, 3, 3, 2]"),
        "{e}"
    );
    let e = conv2d(
        &x,
        &arr_f64(&[3, 3, 2, 3], 2),
        (1, 1),
        &Padding::Valid,
        (1, 1),
        2,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("feature_group_count 2") && e.contains("output channels 3"),
        "{e}"
    );
    let e = conv2d(
        &x,
        &arr_f64(&[3, 3, 4, 2], 2),
        (0, 1),
        &Padding::Valid,
        (1, 1),
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("positive"), "{e}");
    let e = conv2d(
        &arr_f64(&[5, 5, 4], 1),
        &arr_f64(&[3, 3, 4, 2], 2),
        (1, 1),
        &Padding::Valid,
        (1, 1),
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("[5, 5, 4]"), "{e}");
}

#[test]
fn typed_conv2d() {
    let x = Tensor::<(Dyn, C<6>, C<6>, C<4>), f64>::from_array(arr_f64(&[2, 6, 6, 4], 60)).unwrap();
    let w =
        Tensor::<(C<3>, C<3>, C<2>, C<6>), f64>::from_array(arr_f64(&[3, 3, 2, 6], 61)).unwrap();
    // Groups = 4 / 2, implied by the kernel's input channels.
    let same: Tensor<(Dyn, C<3>, C<3>, C<6>), f64> = x.conv2d_same(&w, Stride::<2>);
    let want = conv2d(x.array(), w.array(), (2, 2), &Padding::Same, (1, 1), 2).unwrap();
    assert!(same.array().bit_eq(&want));
    let valid: Tensor<(Dyn, C<4>, C<4>, C<6>), f64> = x.conv2d_valid(&w, Stride::<1>);
    assert_eq!(valid.dims(), &[2, 4, 4, 6]);
    let opts = Conv2dOpts::same().dilation(2, 2);
    let y: Tensor<(Dyn, C<6>, C<6>, C<6>), f64> = x.conv2d(&w, &opts).unwrap();
    assert!(y
        .array()
        .bit_eq(&conv2d(x.array(), w.array(), (1, 1), &Padding::Same, (2, 2), 2).unwrap()));
    // A wrong output size named by the caller is a run-time error naming the shapes.
    let e = x
        .conv2d::<3, 3, 2, 6, 5, 5>(&w, &Conv2dOpts::valid())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv2d") && e.contains("[2, 4, 4, 6]") && e.contains("(5, 5)"),
        "{e}"
    );
}

#[test]
fn einsum_table() {
    let a = arr_f64(&[3, 4], 70);
    let b = arr_f64(&[4, 5], 71);
    let bt = arr_f64(&[2, 3, 4], 72);
    let bu = arr_f64(&[2, 4, 5], 73);
    let v = arr_f64(&[4], 74);
    let u = arr_f64(&[3], 75);
    let close = |x: &Array, y: &Array| {
        assert_eq!(x.shape(), y.shape());
        let (p, q) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
        assert!(
            p.iter().zip(&q).all(|(s, t)| (s - t).abs() < 1e-12),
            "{p:?} vs {q:?}"
        );
    };
    close(
        &einsum("ij,jk->ik", &[&a, &b]).unwrap(),
        &matmul(&a, &b).unwrap(),
    );
    close(
        &einsum("ij,jk", &[&a, &b]).unwrap(),
        &matmul(&a, &b).unwrap(),
    );
    close(
        &einsum("bij,bjk->bik", &[&bt, &bu]).unwrap(),
        &matmul(&bt, &bu).unwrap(),
    );
    close(
        &einsum("i,j->ij", &[&u, &v]).unwrap(),
        &dot_general(&u, &v, &[], &[], &[], &[]).unwrap(),
    );
    let t = einsum("ij->ji", &[&a]).unwrap();
    assert_eq!(t.shape(), &[4, 3]);
    let (av, tv) = (a.to_vec::<f64>().unwrap(), t.to_vec::<f64>().unwrap());
    assert!((0..3).all(|i| (0..4).all(|j| av[i * 4 + j] == tv[j * 3 + i])));
    // "bi,bi->b": row-wise dot products.
    let r = einsum("bi,bi->b", &[&a, &a])
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for i in 0..3 {
        let w: f64 = (0..4).map(|j| av[i * 4 + j] * av[i * 4 + j]).sum();
        assert!((r[i] - w).abs() < 1e-12);
    }
    // Sums: full, over one axis, and of a letter present in one operand only.
    let s = einsum("ij->", &[&a]).unwrap().to_vec::<f64>().unwrap()[0];
    assert!((s - av.iter().sum::<f64>()).abs() < 1e-12);
    let c1 = einsum("ij->j", &[&a]).unwrap().to_vec::<f64>().unwrap();
    assert!((0..4).all(|j| (c1[j] - (0..3).map(|i| av[i * 4 + j]).sum::<f64>()).abs() < 1e-12));
    let m1 = einsum("ij,k->ik", &[&a, &v]).unwrap();
    let rs = einsum("ij->i", &[&a]).unwrap();
    // "ij,k->ik": j is summed inside a alone, k broadcasts: rowsum(a)[i] * v[k].
    let vk = v.to_vec::<f64>().unwrap();
    let want: Vec<f64> = rs
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .flat_map(|&r| vk.iter().map(move |&x| r * x).collect::<Vec<_>>())
        .collect();
    assert_eq!(m1.shape(), &[3, 4]);
    assert!(m1
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(&want)
        .all(|(s, t)| (s - t).abs() < 1e-12));
    // Three operands: u^T A v, and a chain with the output transposed.
    let q = einsum("i,ij,j->", &[&u, &a, &v])
        .unwrap()
        .to_vec::<f64>()
        .unwrap()[0];
    let uv = u.to_vec::<f64>().unwrap();
    let vv = v.to_vec::<f64>().unwrap();
    let wq: f64 = (0..3)
        .flat_map(|i| (0..4).map(move |j| (i, j)))
        .map(|(i, j)| uv[i] * av[i * 4 + j] * vv[j])
        .sum();
    assert!((q - wq).abs() < 1e-12);
    let c = arr_f64(&[5, 2], 76);
    let chain = einsum("ij,jk,kl->li", &[&a, &b, &c]).unwrap();
    let direct = matmul(&matmul(&a, &b).unwrap(), &c).unwrap();
    close(
        &chain,
        &ferrax::prim::transpose::transpose(&direct, &[1, 0]).unwrap(),
    );
    // Errors.
    let e = einsum("ij,jk->ik", &[&a, &a]).unwrap_err().to_string();
    assert!(
        e.contains("einsum") && e.contains("'j'") && e.contains("[3, 4]"),
        "{e}"
    );
    assert!(einsum("ii->i", &[&arr_f64(&[3, 3], 1)]).is_err());
    assert!(einsum("ij->ik", &[&a]).is_err());
    assert!(einsum("ij,jk->ik", &[&a]).is_err());
    // Typed wrapper checks the named shape.
    let tb = Tensor::<(C<4>, C<3>), f64>::einsum("ij->ji", &[&a]).unwrap();
    assert_eq!(tb.dims(), &[4, 3]);
    assert!(Tensor::<(C<3>, C<4>), f64>::einsum("ij->ji", &[&a]).is_err());
}

#[test]
fn one_hot_encodes_and_zeroes_out_of_range() {
    let y = Tensor::<(C<2>, C<3>), i32>::from_vec(vec![0, 2, 1, -1, 3, 2]).unwrap();
    let h: Tensor<(C<2>, C<3>, C<3>)> = one_hot::<3, _, _, _>(&y);
    assert_eq!(
        h.to_vec().unwrap(),
        vec![1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1.]
    );
    let h64 = y.one_hot::<3, f64>();
    assert_eq!(h64.dims(), &[2, 3, 3]);
    let l = Tensor::<(Dyn,), i64>::from_vec_shape((Dyn(2),), vec![1, 0]).unwrap();
    let hl: Tensor<(Dyn, C<2>), i32> = l.one_hot::<2, i32>();
    assert_eq!(hl.to_vec().unwrap(), vec![0, 1, 1, 0]);
}
