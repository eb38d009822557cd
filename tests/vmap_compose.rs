//! The composition macros (`fx::grad!`, `fx::value_and_grad!`, `fx::jvp!`, `fx::vmap!`,
//! `fx::jit!`) and `#[vmap]`: every JAX composition of jit/grad/vmap/jvp, checked against
//! per-example loops, closed forms and `tests/reference/vmap.json` (JAX's values, f64,
//! rtol 1e-10 / atol 1e-12).

use ferrax::prelude::*;
use ferrax::vmap::index_axis;

mod common;

type V3 = Tensor<(C<3>,), f64>;
type S = Tensor<(), f64>;

fn loss(w: &V3, x: &V3, y: &S) -> S {
    let d = w.dot(x) - y;
    &d * &d
}

fn vals<Sh: Shape>(t: &Tensor<Sh, f64>) -> Vec<f64> {
    t.to_vec().unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn data() -> (V3, Tensor<(C<4>, C<3>), f64>, Tensor<(C<4>,), f64>) {
    let w = V3::from_vec(vec![0.5, -1.0, 2.0]).unwrap();
    let xs = Tensor::from_vec((0..12).map(|i| (i as f64 - 5.0) / 4.0).collect()).unwrap();
    let ys = Tensor::from_vec(vec![1.0, 0.0, -1.0, 2.0]).unwrap();
    (w, xs, ys)
}

/// Closed form of d loss / dw = 2 (w.x - y) x for example `i`.
fn grad_closed(w: &[f64], x: &[f64], y: f64) -> Vec<f64> {
    let r: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() - y;
    x.iter().map(|xi| 2.0 * r * xi).collect()
}

#[test]
fn vmap_of_grad_and_jit_of_vmap_match_closed_form() {
    let (w, xs, ys) = data();
    let pe = fx::vmap!(fx::grad!(loss(w, x, y), wrt = w), in_axes = (None, 0, 0));
    let g: Tensor<(C<4>, C<3>), f64> = pe(&w, &xs, &ys);
    let (wv, xv, yv) = (vals(&w), vals(&xs), vals(&ys));
    let want: Vec<f64> = (0..4)
        .flat_map(|i| grad_closed(&wv, &xv[3 * i..3 * i + 3], yv[i]))
        .collect();
    assert_close("vmap!(grad!)", &vals(&g), &want, 1e-12);
    let staged = fx::jit!(fx::vmap!(
        fx::grad!(loss(w, x, y), wrt = w),
        in_axes = (None, 0, 0)
    ));
    for _ in 0..3 {
        assert_close(
            "jit!(vmap!(grad!))",
            &vals(&staged(&w, &xs, &ys)),
            &want,
            1e-12,
        );
    }
    // A `Dyn` batch works the same way (the batch dim is inferred as `Dyn`); a closure has
    // one type, so a new one is made for the new argument types.
    let pe = fx::vmap!(fx::grad!(loss(w, x, y), wrt = w), in_axes = (None, 0, 0));
    let xd: Tensor<(Dyn, C<3>), f64> = Tensor::from_array(xs.array().clone()).unwrap();
    let yd: Tensor<(Dyn,), f64> = Tensor::from_array(ys.array().clone()).unwrap();
    let gd: Tensor<(Dyn, C<3>), f64> = pe(&w, &xd, &yd);
    assert_close("Dyn batch", &vals(&gd), &want, 1e-12);
}

#[test]
fn value_and_grad_jvp_and_hvp() {
    let (w, xs, _) = data();
    let x = Tensor::<(C<3>,), f64>::from_array(index_axis(xs.array(), 0, 1).unwrap()).unwrap();
    let y = S::scalar(0.25);
    let (wv, xv) = (vals(&w), vals(&x));
    let vg = fx::value_and_grad!(|w: &V3, x: &V3, y: &S| -> S { loss(w, x, y) });
    let (v, g) = vg(&w, &x, &y);
    let r: f64 = wv.iter().zip(&xv).map(|(a, b)| a * b).sum::<f64>() - 0.25;
    assert_close("value", &[v.item().unwrap()], &[r * r], 1e-12);
    assert_close("grad", &vals(&g), &grad_closed(&wv, &xv, 0.25), 1e-12);

    // jvp along t: d/ds loss(w + s t) = 2 r (x.t).
    let t = V3::from_vec(vec![1.0, 2.0, -0.5]).unwrap();
    let tv = vals(&t);
    let jv = fx::jvp!(loss(w, x, y), wrt = w);
    let (v2, dt) = jv(&w, &x, &y, &t);
    let xt: f64 = xv.iter().zip(&tv).map(|(a, b)| a * b).sum();
    assert_close("jvp value", &[v2.item().unwrap()], &[r * r], 1e-12);
    assert_close("jvp tangent", &[dt.item().unwrap()], &[2.0 * r * xt], 1e-12);

    // jvp of grad = Hessian-vector product: H = 2 x x^T, so H t = 2 x (x.t).
    let hvp = fx::jvp!(fx::grad!(loss(w, x, y), wrt = w), wrt = w);
    let (_, ht) = hvp(&w, &x, &y, &t);
    let want: Vec<f64> = xv.iter().map(|xi| 2.0 * xi * xt).collect();
    assert_close("jvp!(grad!)", &vals(&ht), &want, 1e-12);
}

#[test]
fn grad_of_grad_and_grad_of_vmap_then_sum() {
    let w = V3::from_vec(vec![0.5, -1.5, 2.0]).unwrap();
    // f(w) = sum(w^3); grad = 3 w^2; grad(sum(grad f)) = 6 w.
    let gg = fx::grad!(|w: &V3| -> S { fx::grad!(|u: &V3| -> S { (u * u * u).sum() })(w).sum() });
    let want: Vec<f64> = vals(&w).iter().map(|a| 6.0 * a).collect();
    assert_close("grad!(grad!)", &vals(&gg(&w)), &want, 1e-12);

    // grad of (vmap of the loss, then sum) = sum of the per-example gradients.
    let (w, xs, ys) = data();
    let total = fx::grad!(
        |w: &V3, xs: &Tensor<(C<4>, C<3>), f64>, ys: &Tensor<(C<4>,), f64>| -> S {
            fx::vmap!(loss(w, x, y), in_axes = (None, 0, 0))(w, xs, ys).sum()
        },
        wrt = w
    );
    let (wv, xv, yv) = (vals(&w), vals(&xs), vals(&ys));
    let mut want = vec![0.0; 3];
    for i in 0..4 {
        for (k, g) in grad_closed(&wv, &xv[3 * i..3 * i + 3], yv[i])
            .iter()
            .enumerate()
        {
            want[k] += g;
        }
    }
    assert_close(
        "grad!(vmap! then sum)",
        &vals(&total(&w, &xs, &ys)),
        &want,
        1e-12,
    );
}

fn ref_tensor<Sh: StaticShape>(v: &common::Json) -> Tensor<Sh, f64> {
    Tensor::from_vec(common::f64_data(v)).unwrap()
}

#[test]
fn axes_and_nesting_match_jax() {
    let j = common::load("vmap.json");
    let (i, want) = (&j["extras"]["inputs"], &j["extras"]["float64"]);
    let tol = 1e-10;
    let a: Tensor<(C<3>, C<4>), f64> = ref_tensor(&i["A"]);
    let v: Tensor<(C<5>, C<4>), f64> = ref_tensor(&i["V"]);
    type M34 = Tensor<(C<3>, C<4>), f64>;
    type V4 = Tensor<(C<4>,), f64>;
    let mv = fx::vmap!(
        |a: &M34, v: &V4| -> Tensor<(C<3>,), f64> { a.matmul(v) },
        in_axes = (None, 0)
    );
    let r: Tensor<(C<5>, C<3>), f64> = mv(&a, &v);
    assert_close(
        "matvec in_axes (None, 0)",
        &vals(&r),
        &common::f64_data(&want["matvec_in_axes_None_0"]),
        tol,
    );
    let mv1 = fx::vmap!(
        |a: &M34, v: &V4| -> Tensor<(C<3>,), f64> { a.matmul(v) },
        in_axes = (None, 0),
        out_axes = 1
    );
    let r: Tensor<(C<3>, C<5>), f64> = mv1(&a, &v);
    assert_close(
        "matvec out_axes 1",
        &vals(&r),
        &common::f64_data(&want["matvec_out_axes_1"]),
        tol,
    );

    // vmap of vmap: out[j, i] = |P_i - Q_j|^2.
    type P2 = Tensor<(C<2>,), f64>;
    let p: Tensor<(C<3>, C<2>), f64> = ref_tensor(&i["P"]);
    let q: Tensor<(C<4>, C<2>), f64> = ref_tensor(&i["Q"]);
    let pair = fx::vmap!(
        fx::vmap!(
            |s: &P2, t: &P2| -> S {
                let d = s - t;
                (&d * &d).sum()
            },
            in_axes = (0, None)
        ),
        in_axes = (None, 0)
    );
    let r: Tensor<(C<4>, C<3>), f64> = pair(&p, &q);
    assert_close(
        "vmap!(vmap!)",
        &vals(&r),
        &common::f64_data(&want["nested_pairwise_sqdist"]),
        tol,
    );

    // in_axes = 1 (columns) and 2.
    type V3f = Tensor<(C<3>,), f64>;
    let cols = fx::vmap!(|c: &V3f| -> S { (c.softmax() * c).sum() }, in_axes = 1);
    let r: Tensor<(C<4>,), f64> = cols(&a);
    assert_close(
        "in_axes 1",
        &vals(&r),
        &common::f64_data(&want["in_axes_1_softmax_sum"]),
        tol,
    );
    let m: Tensor<(C<2>, C<3>, C<4>), f64> = ref_tensor(&i["M"]);
    let ones = Tensor::<(C<3>,), f64>::ones();
    let third = fx::vmap!(
        |s: &Tensor<(C<2>, C<3>), f64>| -> S { s.tanh().matmul(&ones).sum() },
        in_axes = 2
    );
    let r: Tensor<(C<4>,), f64> = third(&m);
    assert_close(
        "in_axes 2",
        &vals(&r),
        &common::f64_data(&want["in_axes_2_of_3d_then_sum"]),
        tol,
    );
}

#[derive(Tree)]
struct Pair {
    a: Tensor<(C<2>,), f64>,
    b: Tensor<(C<3>,), f64>,
}

/// A tree argument mapped as a whole (one in_axes entry for both leaves), a broadcast tree,
/// a static argument and a tuple output with per-element out_axes.
#[vmap(in_axes = (0, None, None), out_axes = (0, None))]
fn tree_fn(xy: &(V3, Tensor<(C<2>,), f64>), p: &Pair, scale: f64) -> (Pair, Tensor<(C<3>,), f64>) {
    let (x, y) = xy;
    let out = Pair {
        a: (y * &p.a) * scale,
        b: x + &p.b,
    };
    (out, p.b.exp())
}

#[test]
fn tree_level_in_axes_static_args_and_tuple_out_axes() {
    let x: Tensor<(C<4>, C<3>), f64> =
        Tensor::from_vec((0..12).map(|i| i as f64 * 0.5).collect()).unwrap();
    let y: Tensor<(C<4>, C<2>), f64> =
        Tensor::from_vec((0..8).map(|i| 1.0 - i as f64).collect()).unwrap();
    let p = Pair {
        a: Tensor::from_vec(vec![2.0, -1.0]).unwrap(),
        b: Tensor::from_vec(vec![0.1, 0.2, 0.3]).unwrap(),
    };
    let (batched, e): (Stacked<Pair, C<4>>, Tensor<(C<3>,), f64>) =
        tree_fn::vmap(&(x.clone(), y.clone()), &p, 3.0);
    assert_eq!(batched.len(), 4);
    assert_close("unmapped output", &vals(&e), &vals(&p.b.exp()), 0.0);
    // Oracle: a loop over examples calling the unbatched function.
    for i in 0..4 {
        let xi = Tensor::from_array(index_axis(x.array(), 0, i).unwrap()).unwrap();
        let yi = Tensor::from_array(index_axis(y.array(), 0, i).unwrap()).unwrap();
        let (want, _) = tree_fn(&(xi, yi), &p, 3.0);
        let got = batched.get(i).unwrap();
        assert!(got.a.array().bit_eq(want.a.array()), "example {i} a");
        assert!(got.b.array().bit_eq(want.b.array()), "example {i} b");
    }
    // A `Stacked` input maps over its examples (an ensemble): vmap of a struct tree.
    let norms = fx::vmap!(|q: &Pair| -> S { q.a.sum() + q.b.sum() });
    let n: Tensor<(C<4>,), f64> = norms(&batched);
    let want: Vec<f64> = batched
        .unstack()
        .unwrap()
        .iter()
        .map(|q| q.a.sum().item().unwrap() + q.b.sum().item().unwrap())
        .collect();
    assert_close("vmap over Stacked", &vals(&n), &want, 1e-12);
}

#[test]
fn untyped_tree_level_vmap() {
    // vmap_trees: one in_axes entry per tree (all its leaves), None broadcasts the tree.
    let x = Array::from_vec(vec![3, 2], (0..6).map(|i| i as f64).collect::<Vec<_>>()).unwrap();
    let z = Array::from_vec(
        vec![2, 3],
        (0..6).map(|i| 10.0 + i as f64).collect::<Vec<_>>(),
    )
    .unwrap();
    let c = Array::from_vec(vec![2], vec![1.0f64, -1.0]).unwrap();
    let out = ferrax::vmap::vmap_trees(
        |a| {
            // a = [x_i, z_i, c]: x mapped at 0, z at 1 (one tree), c broadcast.
            let s = ferrax::prim::binary::add(&a[0], &a[1])?;
            Ok(vec![ferrax::prim::binary::mul(&s, &a[2])?])
        },
        &[vec![x.clone(), z.clone()], vec![c.clone()]],
        &[Some(0), None],
        &[Some(0)],
    );
    // z's leaves are mapped at 0 too (tree-level), so z (2, 3) does not fit batch 3.
    assert!(out.unwrap_err().to_string().contains("batch size"));
    let zt = ferrax::prim::transpose::transpose(&z, &[1, 0]).unwrap();
    let out = ferrax::vmap::vmap_trees(
        |a| {
            let s = ferrax::prim::binary::add(&a[0], &a[1])?;
            Ok(vec![ferrax::prim::binary::mul(&s, &a[2])?])
        },
        &[vec![x.clone(), zt.clone()], vec![c]],
        &[Some(0), None],
        &[Some(0)],
    )
    .unwrap();
    let (xv, ztv) = (x.to_vec::<f64>().unwrap(), zt.to_vec::<f64>().unwrap());
    let want: Vec<f64> = (0..6)
        .map(|k| (xv[k] + ztv[k]) * if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), want);
}

/// A generic function: the companion keeps the user's generic parameters.
#[vmap(in_axes = (0, None))]
fn scaled_norm<E: ferrax::Float + ferrax::ops::arith::Num>(
    x: &Tensor<(C<3>,), E>,
    s: &Tensor<(), E>,
) -> Tensor<(), E> {
    (x * x).sum() * s
}

#[jit]
fn staged_norms(xs: &Tensor<(C<4>, C<3>), f64>, s: &S) -> Tensor<(C<4>,), f64> {
    scaled_norm::vmap(xs, s)
}

#[test]
fn vmap_attribute_generic_and_inside_jit() {
    let (_, xs, _) = data();
    let s = S::scalar(0.5);
    let xv = vals(&xs);
    let want: Vec<f64> = (0..4)
        .map(|i| xv[3 * i..3 * i + 3].iter().map(|a| a * a).sum::<f64>() * 0.5)
        .collect();
    assert_close(
        "#[vmap] generic",
        &vals(&scaled_norm::vmap(&xs, &s)),
        &want,
        1e-12,
    );
    for _ in 0..2 {
        assert_close(
            "#[vmap] in #[jit]",
            &vals(&staged_norms(&xs, &s)),
            &want,
            1e-12,
        );
    }
    assert_eq!(staged_norms::stats().compiles, 1);
}
