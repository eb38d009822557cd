//! Structural primitives and typed shape ops against ndarray as the oracle: every primitive
//! over tables of shapes (empty dims, rank 0) and dtypes (f32, f64, i32, bool), plus the
//! JAX index conventions (clamped dynamic slices, clamped gathers, dropped scatters) and
//! the run-time errors of the `Dyn` / untyped paths.

use ferrax::prim::{
    broadcast_in_dim, concatenate, dynamic_slice, dynamic_update_slice, gather, iota, pad, reshape,
    rev, scatter_add, slice, transpose,
};
use ferrax::shape_axes::Ax;
use ferrax::{Array, DType, Dyn, Elem, Error, Tensor, C};
use gather::GatherMode;
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use scatter_add::IndexMode;

/// Deterministic test values per element type.
trait Gen: Elem {
    fn gen(i: usize) -> Self;
}
impl Gen for f32 {
    fn gen(i: usize) -> Self {
        (i as f32) * 0.5 - 3.0
    }
}
impl Gen for f64 {
    fn gen(i: usize) -> Self {
        (i as f64) * 0.25 - 7.5
    }
}
impl Gen for i32 {
    fn gen(i: usize) -> Self {
        (i * 7 % 23) as i32 - 11
    }
}
impl Gen for bool {
    fn gen(i: usize) -> Self {
        i % 3 == 1
    }
}

/// Runs a generic check for every dtype of the table.
macro_rules! all_dtypes {
    ($f:ident) => {{
        $f::<f32>();
        $f::<f64>();
        $f::<i32>();
        $f::<bool>();
    }};
}

fn gen<E: Gen>(shape: &[usize]) -> ArrayD<E> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(E::gen).collect()).unwrap()
}
fn arr<E: Elem>(a: &ArrayD<E>) -> Array {
    Array::from_vec(a.shape().to_vec(), a.iter().copied().collect()).unwrap()
}
fn nd<E: Elem>(a: &Array) -> ArrayD<E> {
    ArrayD::from_shape_vec(IxDyn(a.shape()), a.to_vec::<E>().unwrap()).unwrap()
}
fn idx_arr(shape: &[usize], v: &[i64], dt: DType) -> Array {
    match dt {
        DType::I32 => Array::from_vec(shape.to_vec(), v.iter().map(|&i| i as i32).collect()),
        DType::I64 => Array::from_vec(shape.to_vec(), v.to_vec()),
        DType::U32 => Array::from_vec(shape.to_vec(), v.iter().map(|&i| i as u32).collect()),
        _ => unreachable!(),
    }
    .unwrap()
}
fn scalar_idx(i: i64, dt: DType) -> Array {
    idx_arr(&[], &[i], dt)
}
/// Asserts a shape error naming `op` whose message contains every `parts` string.
fn assert_shape_err<T: std::fmt::Debug>(r: ferrax::Result<T>, op: &str, parts: &[&str]) {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{op}:")),
        "error {msg:?} should name {op}"
    );
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} should mention {p:?}");
    }
}

// ---------------------------------------------------------------- reshape

fn case_reshape<E: Gen>() {
    let table: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[3, 2]),
        (&[2, 3, 4], &[24]),
        (&[2, 3, 4], &[4, 1, 6]),
        (&[], &[1, 1]),
        (&[1], &[]),
        (&[0, 3], &[3, 0]),
        (&[0], &[2, 0, 5]),
    ];
    for &(from, to) in table {
        let a = gen::<E>(from);
        let y = reshape::reshape(&arr(&a), to).unwrap();
        let want = a.to_shape(IxDyn(to)).unwrap().to_owned();
        assert_eq!(nd::<E>(&y), want, "reshape {from:?} -> {to:?}");
    }
    let x = arr(&gen::<E>(&[2, 3]));
    assert_eq!(reshape::flatten(&x).unwrap().shape(), &[6]);
    assert_eq!(reshape::expand_dims(&x, 2).unwrap().shape(), &[2, 3, 1]);
    assert_eq!(reshape::expand_dims(&x, 0).unwrap().shape(), &[1, 2, 3]);
    let z = reshape::reshape(&x, &[1, 2, 1, 3]).unwrap();
    assert_eq!(
        reshape::squeeze(&z, &[0, 2])
            .unwrap()
            .to_vec::<E>()
            .unwrap(),
        x.to_vec::<E>().unwrap()
    );
}

#[test]
fn reshape_matches_ndarray() {
    all_dtypes!(case_reshape);
}

#[test]
fn reshape_errors_name_op_and_shapes() {
    let x = arr(&gen::<f32>(&[2, 3]));
    assert_shape_err(
        reshape::reshape(&x, &[7]),
        "reshape",
        &["[2, 3]", "[7]", "6", "7"],
    );
    assert!(matches!(
        reshape::expand_dims(&x, 3),
        Err(Error::Invalid {
            op: "expand_dims",
            ..
        })
    ));
    assert_shape_err(reshape::squeeze(&x, &[1]), "squeeze", &["[2, 3]", "size 3"]);
}

// ---------------------------------------------------------------- transpose

fn case_transpose<E: Gen>() {
    let table: &[(&[usize], &[usize])] = &[
        (&[], &[]),
        (&[5], &[0]),
        (&[2, 3], &[1, 0]),
        (&[2, 3, 4], &[2, 0, 1]),
        (&[2, 3, 4], &[1, 2, 0]),
        (&[2, 0, 4], &[2, 1, 0]),
        (&[2, 1, 3, 2], &[3, 1, 0, 2]),
        (&[40, 70, 3], &[1, 2, 0]),
    ];
    for &(shape, perm) in table {
        let a = gen::<E>(shape);
        let y = transpose::transpose(&arr(&a), perm).unwrap();
        let want = a.clone().permuted_axes(IxDyn(perm));
        assert_eq!(nd::<E>(&y), want, "transpose {shape:?} by {perm:?}");
    }
}

#[test]
fn transpose_matches_ndarray() {
    all_dtypes!(case_transpose);
    let x = arr(&gen::<f32>(&[2, 3, 4]));
    for bad in [&[0, 1][..], &[0, 0, 1], &[0, 1, 3]] {
        let e = transpose::transpose(&x, bad).unwrap_err();
        assert!(
            e.to_string().starts_with("transpose:") && e.to_string().contains("[2, 3, 4]"),
            "{e}"
        );
    }
    let y = transpose::swap_axes(&x, 0, 2).unwrap();
    assert_eq!(y.shape(), &[4, 3, 2]);
}

// ---------------------------------------------------------------- slice

fn case_slice<E: Gen>() {
    type Case = (
        &'static [usize],
        &'static [usize],
        &'static [usize],
        &'static [usize],
    );
    let table: &[Case] = &[
        (&[], &[], &[], &[]),
        (&[6], &[1], &[5], &[1]),
        (&[6], &[1], &[6], &[2]),
        (&[7], &[0], &[7], &[3]),
        (&[4, 5], &[1, 0], &[3, 5], &[1, 2]),
        (&[4, 5], &[2, 2], &[2, 2], &[1, 1]),
        (&[3, 4, 5], &[0, 1, 4], &[3, 4, 5], &[2, 2, 1]),
        (&[3, 0, 2], &[1, 0, 0], &[3, 0, 2], &[1, 1, 1]),
    ];
    for &(shape, start, limit, strides) in table {
        let a = gen::<E>(shape);
        let y = slice::slice(&arr(&a), start, limit, Some(strides)).unwrap();
        let want = a
            .slice_each_axis(|ax| {
                let i = ax.axis.index();
                Slice::new(
                    start[i] as isize,
                    Some(limit[i] as isize),
                    strides[i] as isize,
                )
            })
            .to_owned();
        assert_eq!(
            nd::<E>(&y),
            want,
            "slice {shape:?} {start:?}..{limit:?} by {strides:?}"
        );
    }
    let a = gen::<E>(&[3, 5]);
    let y = slice::slice_in_dim(&arr(&a), 1, 1, 5, 3).unwrap();
    assert_eq!(
        nd::<E>(&y),
        a.slice(ndarray::s![.., 1..5;3]).into_dyn().to_owned()
    );
}

#[test]
fn slice_matches_ndarray() {
    all_dtypes!(case_slice);
    let x = arr(&gen::<f32>(&[4, 5]));
    assert_shape_err(
        slice::slice(&x, &[0, 0], &[5, 5], None),
        "slice",
        &["[4, 5]"],
    );
    assert_shape_err(slice::slice(&x, &[3, 0], &[2, 5], None), "slice", &["3..2"]);
    assert_shape_err(
        slice::slice(&x, &[0, 0], &[4, 5], Some(&[1, 0])),
        "slice",
        &["step 0"],
    );
    assert_shape_err(slice::slice(&x, &[0], &[4], None), "slice", &["[4, 5]"]);
}

// ---------------------------------------------------------------- dynamic_slice / update

/// JAX's clamp: each start moves into `0..=dim - size`.
fn clamp_starts(starts: &[i64], shape: &[usize], sizes: &[usize]) -> Vec<usize> {
    starts
        .iter()
        .zip(shape.iter().zip(sizes))
        .map(|(&s, (&d, &n))| s.clamp(0, (d - n) as i64) as usize)
        .collect()
}

fn case_dynamic_slice<E: Gen>() {
    type Case = (&'static [usize], &'static [i64], &'static [usize]);
    let table: &[Case] = &[
        (&[], &[], &[]),
        (&[6], &[2], &[3]),
        (&[6], &[5], &[3]),
        (&[6], &[-4], &[3]),
        (&[6], &[100], &[6]),
        (&[4, 5], &[1, 3], &[2, 2]),
        (&[4, 5], &[3, -1], &[2, 5]),
        (&[3, 0, 2], &[2, 0, 1], &[1, 0, 1]),
        (&[3, 4, 5], &[9, 9, 9], &[0, 2, 1]),
    ];
    for (k, &(shape, starts, sizes)) in table.iter().enumerate() {
        let dt = [DType::I32, DType::I64, DType::U32][k % 3];
        let dt = if dt == DType::U32 && starts.iter().any(|&s| s < 0) {
            DType::I64
        } else {
            dt
        };
        let a = gen::<E>(shape);
        let st: Vec<Array> = starts.iter().map(|&s| scalar_idx(s, dt)).collect();
        let refs: Vec<&Array> = st.iter().collect();
        let y = dynamic_slice::dynamic_slice(&arr(&a), &refs, sizes).unwrap();
        let c = clamp_starts(starts, shape, sizes);
        let want = a
            .slice_each_axis(|ax| {
                let i = ax.axis.index();
                Slice::from(c[i]..c[i] + sizes[i])
            })
            .to_owned();
        assert_eq!(
            nd::<E>(&y),
            want,
            "dynamic_slice {shape:?} at {starts:?} size {sizes:?}"
        );

        // Update the same window with distinct values.
        let u = gen::<E>(sizes);
        let base = ArrayD::from_elem(IxDyn(shape), E::gen(2));
        let y = dynamic_update_slice::dynamic_update_slice(&arr(&base), &arr(&u), &refs).unwrap();
        let mut want = base.clone();
        want.slice_each_axis_mut(|ax| {
            let i = ax.axis.index();
            Slice::from(c[i]..c[i] + sizes[i])
        })
        .assign(&u);
        assert_eq!(
            nd::<E>(&y),
            want,
            "dynamic_update_slice {shape:?} at {starts:?}"
        );
    }
    let a = gen::<E>(&[3, 4]);
    let y =
        dynamic_slice::dynamic_slice_in_dim(&arr(&a), &scalar_idx(3, DType::I32), 2, 1).unwrap();
    assert_eq!(
        nd::<E>(&y),
        a.slice(ndarray::s![.., 2..4]).into_dyn().to_owned()
    );
}

#[test]
fn dynamic_slice_and_update_clamp_like_jax() {
    all_dtypes!(case_dynamic_slice);
    let x = arr(&gen::<f32>(&[4, 5]));
    let i = scalar_idx(0, DType::I32);
    assert_shape_err(
        dynamic_slice::dynamic_slice(&x, &[&i, &i], &[5, 1]),
        "dynamic_slice",
        &["[5, 1]", "[4, 5]"],
    );
    assert_shape_err(
        dynamic_slice::dynamic_slice(&x, &[&i], &[1, 1]),
        "dynamic_slice",
        &["2 start indices"],
    );
    let f = Array::scalar(0.0f32);
    assert!(matches!(
        dynamic_slice::dynamic_slice(&x, &[&i, &f], &[1, 1]),
        Err(Error::DType {
            op: "dynamic_slice",
            ..
        })
    ));
    let u = arr(&gen::<f32>(&[2, 6]));
    assert_shape_err(
        dynamic_update_slice::dynamic_update_slice(&x, &u, &[&i, &i]),
        "dynamic_update_slice",
        &["[2, 6]", "[4, 5]"],
    );
    let ui = arr(&gen::<i32>(&[1, 1]));
    assert!(matches!(
        dynamic_update_slice::dynamic_update_slice(&x, &ui, &[&i, &i]),
        Err(Error::DType { .. })
    ));
}

// ---------------------------------------------------------------- pad

/// Oracle: pad with the non-negative parts of lo/hi and interior by assignment, then crop
/// the negative parts.
fn pad_oracle<E: Gen>(a: &ArrayD<E>, fill: E, cfg: &[(i64, i64, usize)]) -> ArrayD<E> {
    let big: Vec<usize> = a
        .shape()
        .iter()
        .zip(cfg)
        .map(|(&d, &(lo, hi, it))| {
            lo.max(0) as usize + hi.max(0) as usize + if d == 0 { 0 } else { d + it * (d - 1) }
        })
        .collect();
    let mut out = ArrayD::from_elem(IxDyn(&big), fill);
    if !a.is_empty() {
        out.slice_each_axis_mut(|ax| {
            let i = ax.axis.index();
            let (lo, _, it) = cfg[i];
            let s = lo.max(0) as usize;
            let d = a.shape()[i];
            Slice::new(
                s as isize,
                Some((s + (d - 1) * (it + 1) + 1) as isize),
                (it + 1) as isize,
            )
        })
        .assign(a);
    }
    out.slice_each_axis(|ax| {
        let i = ax.axis.index();
        let (lo, hi, _) = cfg[i];
        let s = (-lo).max(0) as isize;
        let e = big[i] as isize - (-hi).max(0) as isize;
        Slice::from(s..e.max(s))
    })
    .to_owned()
}

fn case_pad<E: Gen>() {
    type Case = (&'static [usize], &'static [(i64, i64, usize)]);
    let table: &[Case] = &[
        (&[], &[]),
        (&[3], &[(1, 2, 0)]),
        (&[3], &[(0, 0, 2)]),
        (&[3], &[(-1, 1, 1)]),
        (&[4], &[(-2, -1, 0)]),
        (&[4], &[(-3, -2, 1)]),
        (&[2, 3], &[(1, 0, 1), (0, 2, 0)]),
        (&[2, 3], &[(-1, 2, 0), (2, -3, 2)]),
        (&[0, 2], &[(1, 1, 3), (0, 1, 0)]),
        (&[2, 2, 2], &[(0, 1, 0), (1, 0, 1), (-1, -1, 2)]),
    ];
    let fill = E::gen(4);
    for &(shape, cfg) in table {
        let a = gen::<E>(shape);
        let y = pad::pad(&arr(&a), &Array::scalar(fill), cfg).unwrap();
        assert_eq!(
            nd::<E>(&y),
            pad_oracle(&a, fill, cfg),
            "pad {shape:?} by {cfg:?}"
        );
    }
}

#[test]
fn pad_matches_oracle_including_negative_padding() {
    all_dtypes!(case_pad);
    let x = arr(&gen::<f32>(&[3]));
    assert_shape_err(
        pad::pad(&x, &Array::scalar(0f32), &[(-2, -2, 0)]),
        "pad",
        &["[3]", "negative"],
    );
    assert_shape_err(pad::pad(&x, &Array::scalar(0f32), &[]), "pad", &["[3]"]);
    let v = Array::from_vec(vec![1], vec![0f32]).unwrap();
    assert_shape_err(pad::pad(&x, &v, &[(0, 0, 0)]), "pad", &["rank 0"]);
    assert!(matches!(
        pad::pad(&x, &Array::scalar(0i32), &[(0, 0, 0)]),
        Err(Error::DType { .. })
    ));
}

// ---------------------------------------------------------------- concatenate

fn case_concatenate<E: Gen>() {
    type Case = (usize, &'static [&'static [usize]]);
    let table: &[Case] = &[
        (0, &[&[2], &[3]]),
        (0, &[&[2], &[0], &[1]]),
        (1, &[&[2, 3], &[2, 1], &[2, 4]]),
        (0, &[&[1, 3], &[2, 3]]),
        (2, &[&[2, 0, 1], &[2, 0, 2]]),
        (1, &[&[2, 0, 3], &[2, 2, 3]]),
        (1, &[&[3, 2, 2]]),
    ];
    for &(axis, shapes) in table {
        let parts: Vec<ArrayD<E>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| gen::<E>(s).mapv(|v| if k % 2 == 1 { E::gen(5) } else { v }))
            .collect();
        let arrs: Vec<Array> = parts.iter().map(arr).collect();
        let refs: Vec<&Array> = arrs.iter().collect();
        let y = concatenate::concatenate(&refs, axis).unwrap();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let want = ndarray::concatenate(Axis(axis), &views).unwrap();
        assert_eq!(nd::<E>(&y), want, "concatenate {shapes:?} along {axis}");
    }
    let a = gen::<E>(&[2, 3]);
    let b = a.mapv(|_| E::gen(1));
    let y = concatenate::stack(&[&arr(&a), &arr(&b)], 1).unwrap();
    let want = ndarray::stack(Axis(1), &[a.view(), b.view()]).unwrap();
    assert_eq!(nd::<E>(&y), want);
}

#[test]
fn concatenate_matches_ndarray() {
    all_dtypes!(case_concatenate);
    let a = arr(&gen::<f32>(&[2, 3]));
    let b = arr(&gen::<f32>(&[3, 3]));
    assert_shape_err(
        concatenate::concatenate(&[&a, &b], 1),
        "concatenate",
        &["[2, 3]", "[3, 3]", "axis 1"],
    );
    assert!(matches!(
        concatenate::concatenate(&[], 0),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        concatenate::concatenate(&[&a, &a], 2),
        Err(Error::Invalid { .. })
    ));
    let s = Array::scalar(1f32);
    assert!(
        concatenate::concatenate(&[&s, &s], 0).is_err(),
        "rank-0 operands have no axis"
    );
    let c = arr(&gen::<i32>(&[2, 3]));
    assert!(matches!(
        concatenate::concatenate(&[&a, &c], 0),
        Err(Error::DType { .. })
    ));
    assert_shape_err(
        concatenate::stack(&[&a, &b], 0),
        "stack",
        &["[1, 2, 3]", "[1, 3, 3]"],
    );
}

// ---------------------------------------------------------------- rev

fn case_rev<E: Gen>() {
    let table: &[(&[usize], &[usize])] = &[
        (&[], &[]),
        (&[5], &[0]),
        (&[2, 3], &[1]),
        (&[2, 3], &[0, 1]),
        (&[2, 3, 4], &[2, 0]),
        (&[2, 0, 4], &[0, 1]),
        (&[3, 1, 2, 2], &[3, 1, 0]),
    ];
    for &(shape, axes) in table {
        let a = gen::<E>(shape);
        let y = rev::rev(&arr(&a), axes).unwrap();
        let mut want = a.clone();
        for &ax in axes {
            want.invert_axis(Axis(ax));
        }
        assert_eq!(
            nd::<E>(&y),
            want.as_standard_layout().to_owned(),
            "rev {shape:?} {axes:?}"
        );
    }
}

#[test]
fn rev_matches_ndarray() {
    all_dtypes!(case_rev);
    let x = arr(&gen::<f32>(&[2, 3]));
    assert!(matches!(
        rev::rev(&x, &[2]),
        Err(Error::Invalid { op: "rev", .. })
    ));
    assert!(matches!(
        rev::rev(&x, &[1, 1]),
        Err(Error::Invalid { op: "rev", .. })
    ));
}

// ---------------------------------------------------------------- iota

#[test]
fn iota_matches_index_along_axis() {
    let table: &[(&[usize], usize)] = &[
        (&[5], 0),
        (&[2, 3], 0),
        (&[2, 3], 1),
        (&[2, 0, 3], 2),
        (&[2, 3, 4], 1),
    ];
    for &(shape, d) in table {
        for dt in [
            DType::F32,
            DType::F64,
            DType::I32,
            DType::I64,
            DType::U32,
            DType::BF16,
        ] {
            let y = iota::iota(dt, shape, d).unwrap();
            assert_eq!(y.dtype(), dt);
            let want = ArrayD::from_shape_fn(IxDyn(shape), |ix| ix[d] as f64);
            let got =
                ArrayD::from_shape_vec(IxDyn(shape), y.storage("t").unwrap().to_f64_vec()).unwrap();
            assert_eq!(got, want, "iota {dt} {shape:?} along {d}");
        }
    }
    assert_eq!(
        iota::arange(DType::I32, 4)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![0, 1, 2, 3]
    );
    assert!(matches!(
        iota::iota(DType::Bool, &[3], 0),
        Err(Error::DType { .. })
    ));
    assert!(matches!(
        iota::iota(DType::F32, &[3], 1),
        Err(Error::Invalid { .. })
    ));
    assert!(
        iota::iota(DType::F32, &[], 0).is_err(),
        "rank 0 has no axis"
    );
}

// ---------------------------------------------------------------- gather / scatter_add

/// numpy's wrap of one negative index, then JAX's clip.
fn clip(i: i64, d: usize) -> usize {
    let i = if i < 0 { i + d as i64 } else { i };
    i.clamp(0, d as i64 - 1) as usize
}

fn case_take<E: Gen>() {
    type Case = (&'static [usize], usize, &'static [usize], &'static [i64]);
    let table: &[Case] = &[
        (&[5], 0, &[3], &[4, 0, 2]),
        (&[5], 0, &[], &[3]),
        (&[5], 0, &[4], &[-1, -5, -9, 12]),
        (&[4, 3], 0, &[2, 2], &[3, 1, 1, 0]),
        (&[4, 3], 1, &[5], &[2, 0, -1, 7, 1]),
        (&[2, 3, 4], 1, &[2, 1], &[2, -2]),
        (&[2, 3, 4], 2, &[0], &[]),
        (&[0, 3], 1, &[2], &[0, 2]),
    ];
    for (k, &(shape, axis, ishape, ids)) in table.iter().enumerate() {
        let dt = [DType::I32, DType::I64][k % 2];
        let a = gen::<E>(shape);
        let idx = idx_arr(ishape, ids, dt);
        let y = gather::take(&arr(&a), &idx, axis).unwrap();
        let pos: Vec<usize> = ids.iter().map(|&i| clip(i, shape[axis])).collect();
        let sel = a.select(Axis(axis), &pos);
        let mut out_shape = shape[..axis].to_vec();
        out_shape.extend_from_slice(ishape);
        out_shape.extend_from_slice(&shape[axis + 1..]);
        let want = sel.to_shape(IxDyn(&out_shape)).unwrap().to_owned();
        assert_eq!(nd::<E>(&y), want, "take {shape:?} axis {axis} idx {ids:?}");
    }
    // u32 indices, and gathering from an empty axis gives zeros.
    let a = gen::<E>(&[3, 2]);
    let y = gather::take(&arr(&a), &idx_arr(&[2], &[2, 9], DType::U32), 0).unwrap();
    assert_eq!(nd::<E>(&y), a.select(Axis(0), &[2, 2]));
    let e = ArrayD::<E>::from_shape_vec(IxDyn(&[2, 0]), vec![]).unwrap();
    let y = gather::take(&arr(&e), &idx_arr(&[3], &[0, 1, 2], DType::I32), 1).unwrap();
    assert_eq!(y.shape(), &[2, 3]);
    assert!(y.to_vec::<E>().unwrap().iter().all(|v| *v == E::zero()));
}

/// Oracle for take_along_axis: out[p] = x[p with axis replaced by clip(idx[p])].
fn along_oracle<E: Gen>(a: &ArrayD<E>, idx: &ArrayD<i64>, axis: usize) -> ArrayD<E> {
    ArrayD::from_shape_fn(idx.raw_dim(), |p| {
        let mut q = p.clone();
        q[axis] = clip(idx[&p], a.shape()[axis]);
        a[q]
    })
}

fn case_take_along<E: Gen>() {
    type Case = (&'static [usize], usize, &'static [usize]);
    let table: &[Case] = &[
        (&[5], 0, &[7]),
        (&[3, 4], 1, &[3, 2]),
        (&[3, 4], 0, &[6, 4]),
        (&[2, 3, 4], 2, &[2, 3, 1]),
        (&[2, 3, 4], 1, &[2, 0, 4]),
        (&[0, 4], 1, &[0, 3]),
    ];
    for (k, &(shape, axis, ishape)) in table.iter().enumerate() {
        let a = gen::<E>(shape);
        let n: usize = ishape.iter().product();
        let d = shape[axis] as i64;
        // Spans negatives and out-of-range on both sides.
        let ids: Vec<i64> = (0..n as i64)
            .map(|i| (i * 5 + k as i64) % (2 * d + 3) - d - 1)
            .collect();
        let idx_nd = ArrayD::from_shape_vec(IxDyn(ishape), ids.clone()).unwrap();
        let y =
            gather::take_along_axis(&arr(&a), &idx_arr(ishape, &ids, DType::I32), axis).unwrap();
        assert_eq!(
            nd::<E>(&y),
            along_oracle(&a, &idx_nd, axis),
            "take_along_axis {shape:?} {axis}"
        );
    }
}

#[test]
fn gather_matches_ndarray_with_clamped_indices() {
    all_dtypes!(case_take);
    all_dtypes!(case_take_along);
    let x = arr(&gen::<f32>(&[3, 4]));
    let i = idx_arr(&[3, 1], &[0, 1, 2], DType::I32);
    assert_shape_err(
        gather::take_along_axis(&x, &i, 0),
        "gather",
        &["[3, 1]", "[3, 4]"],
    );
    assert!(matches!(gather::take(&x, &x, 0), Err(Error::DType { .. })));
    assert!(matches!(
        gather::take(&x, &i, 2),
        Err(Error::Invalid { .. })
    ));
}

/// Oracle: accumulate in f64 in row-major order of the updates.
fn scatter_oracle(
    base: &ArrayD<f64>,
    idx: &[i64],
    ishape: &[usize],
    upd: &ArrayD<f64>,
    axis: usize,
    mode: GatherMode,
    im: IndexMode,
) -> ArrayD<f64> {
    let mut out = base.clone();
    let d = base.shape()[axis];
    let target = |i: i64| -> Option<usize> {
        let j = if i < 0 { i + d as i64 } else { i };
        match im {
            IndexMode::Drop => (0..d as i64).contains(&j).then_some(j as usize),
            IndexMode::Clip => (d > 0).then(|| clip(i, d)),
        }
    };
    let idx_nd = ArrayD::from_shape_vec(IxDyn(ishape), idx.to_vec()).unwrap();
    for (p, &u) in upd.indexed_iter() {
        let p = ndarray::Dimension::slice(&p).to_vec();
        let (q, t) = match mode {
            GatherMode::Take => {
                let k = ishape.len();
                let ip: Vec<usize> = p[axis..axis + k].to_vec();
                let mut q: Vec<usize> = p[..axis].to_vec();
                q.push(0);
                q.extend_from_slice(&p[axis + k..]);
                (q, target(idx_nd[IxDyn(&ip)]))
            }
            GatherMode::AlongAxis => (p.clone(), target(idx_nd[IxDyn(&p)])),
        };
        if let Some(t) = t {
            let mut q = q;
            q[axis] = t;
            out[IxDyn(&q)] += u;
        }
    }
    out
}

fn to_f64<E: Elem>(a: &ArrayD<E>) -> ArrayD<f64> {
    a.mapv(|v| v.to_f64())
}

fn case_scatter<E: Gen>() {
    type Case = (
        &'static [usize],
        usize,
        GatherMode,
        &'static [usize],
        &'static [i64],
    );
    let table: &[Case] = &[
        (&[5], 0, GatherMode::Take, &[6], &[1, 1, 4, -1, 9, -7]),
        (&[4, 3], 0, GatherMode::Take, &[2, 2], &[3, 3, 0, 3]),
        (&[4, 3], 1, GatherMode::Take, &[4], &[2, 2, 2, -3]),
        (&[2, 3, 2], 1, GatherMode::Take, &[], &[1]),
        (
            &[3, 4],
            1,
            GatherMode::AlongAxis,
            &[3, 5],
            &[0, 0, 3, 9, -1, 1, 1, 1, -2, 4, 2, 2, -9, 0, 0],
        ),
        (
            &[3, 4],
            0,
            GatherMode::AlongAxis,
            &[2, 4],
            &[2, 2, 2, 2, 2, 0, 5, -1],
        ),
        (&[0, 2], 0, GatherMode::Take, &[2], &[0, 1]),
        (&[3, 2], 0, GatherMode::Take, &[0], &[]),
    ];
    for &(shape, axis, mode, ishape, ids) in table {
        let base = gen::<E>(shape);
        let idx = idx_arr(ishape, ids, DType::I32);
        let ushape = gather::gather(&arr(&base), &idx, axis, mode)
            .unwrap()
            .shape()
            .to_vec();
        let upd = gen::<E>(&ushape);
        for im in [IndexMode::Drop, IndexMode::Clip] {
            let y =
                scatter_add::scatter_add(&arr(&base), &idx, &arr(&upd), axis, mode, im).unwrap();
            let want = scatter_oracle(&to_f64(&base), ids, ishape, &to_f64(&upd), axis, mode, im);
            assert_eq!(
                to_f64(&nd::<E>(&y)),
                want,
                "scatter_add {shape:?} {axis} {mode:?} {im:?} {ids:?}"
            );
        }
    }
}

#[test]
fn scatter_add_matches_oracle_with_duplicates_and_drops() {
    case_scatter::<f32>();
    case_scatter::<f64>();
    case_scatter::<i32>();
    let x = arr(&gen::<f32>(&[3]));
    let i = idx_arr(&[2], &[0, 1], DType::I32);
    assert!(matches!(
        scatter_add::scatter_add(
            &arr(&gen::<bool>(&[3])),
            &i,
            &arr(&gen::<bool>(&[2])),
            0,
            GatherMode::Take,
            IndexMode::Drop
        ),
        Err(Error::DType { .. })
    ));
    assert_shape_err(
        scatter_add::scatter_add(
            &x,
            &i,
            &arr(&gen::<f32>(&[3])),
            0,
            GatherMode::Take,
            IndexMode::Drop,
        ),
        "scatter_add",
        &["[3]", "[2]"],
    );
    // Integer accumulation wraps instead of overflowing.
    let b = Array::from_vec(vec![1], vec![i32::MAX]).unwrap();
    let u = Array::from_vec(vec![2], vec![1i32, 1]).unwrap();
    let y = scatter_add::scatter_add(
        &b,
        &idx_arr(&[2], &[0, 0], DType::I32),
        &u,
        0,
        GatherMode::Take,
        IndexMode::Drop,
    )
    .unwrap();
    assert_eq!(y.to_vec::<i32>().unwrap(), vec![i32::MIN + 1]);
}

#[test]
fn scatter_add_clip_is_the_transpose_of_gather() {
    // <gather(x), u> == <x, scatter_add(0, u)> for every mode, with clamped indices.
    let cases: &[(&[usize], usize, GatherMode, &[usize], &[i64])] = &[
        (&[5, 2], 0, GatherMode::Take, &[3, 2], &[4, 9, -1, 0, 0, -8]),
        (
            &[3, 4],
            1,
            GatherMode::AlongAxis,
            &[3, 6],
            &[0, 5, -1, 2, 2, 9, 1, 1, 1, 1, 0, 3, -7, 0, 0, 3, 3, 3],
        ),
    ];
    for &(shape, axis, mode, ishape, ids) in cases {
        let x = gen::<f64>(shape);
        let idx = idx_arr(ishape, ids, DType::I64);
        let g = gather::gather(&arr(&x), &idx, axis, mode).unwrap();
        let u = gen::<f64>(g.shape()).mapv(|v| v * 1.5 + 0.25);
        let zeros = Array::zeros(shape, DType::F64);
        let s =
            scatter_add::scatter_add(&zeros, &idx, &arr(&u), axis, mode, IndexMode::Clip).unwrap();
        let lhs: f64 = (&nd::<f64>(&g) * &u).sum();
        let rhs: f64 = (&x * &nd::<f64>(&s)).sum();
        assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
    }
}

#[test]
fn scatter_add_half_precision_accumulates_in_f32() {
    use ferrax::bf16;
    // 256 + 1 + 1 in bf16 step by step stays 256; accumulated in f32 and rounded once it is 258.
    let b = Array::from_vec(vec![1], vec![bf16::from_f32(256.0)]).unwrap();
    let u = Array::from_vec(vec![2], vec![bf16::ONE, bf16::ONE]).unwrap();
    let i = idx_arr(&[2], &[0, 0], DType::I32);
    let y = scatter_add::scatter_add(&b, &i, &u, 0, GatherMode::Take, IndexMode::Drop).unwrap();
    assert_eq!(y.to_vec::<bf16>().unwrap(), vec![bf16::from_f32(258.0)]);
}

// ---------------------------------------------------------------- broadcast helpers

#[test]
fn lax_level_broadcast_is_consistent() {
    let a = gen::<i32>(&[3, 1]);
    let y = broadcast_in_dim::broadcast_to(&arr(&a), &[2, 3, 4]).unwrap();
    assert_eq!(
        nd::<i32>(&y),
        a.broadcast(IxDyn(&[2, 3, 4])).unwrap().to_owned()
    );
}

// ---------------------------------------------------------------- typed surface

type T23 = Tensor<(C<2>, C<3>)>;

fn t23() -> T23 {
    T23::from_vec((0..6).map(|i| i as f32).collect()).unwrap()
}

#[test]
fn typed_reshape_flatten_permute() {
    let x = t23();
    let y = x.reshape::<(C<3>, C<1>, C<2>)>();
    assert_eq!(y.dims(), &[3, 1, 2]);
    assert_eq!(y.to_vec().unwrap(), x.to_vec().unwrap());
    assert_eq!(x.flatten::<6>().dims(), &[6]);
    assert_eq!(x.flatten_dyn().shape(), (Dyn(6),));
    let s = Tensor::<(), i32>::scalar(4);
    assert_eq!(s.reshape::<(C<1>, C<1>)>().to_vec().unwrap(), vec![4]);

    let ok = x.try_reshape((Dyn(3), C::<2>)).unwrap();
    assert_eq!(ok.shape(), (Dyn(3), C::<2>));
    let e = x.try_reshape((Dyn(4), C::<2>)).unwrap_err();
    assert_shape_err::<()>(Err(e), "reshape", &["[2, 3]", "[4, 2]"]);

    let t = x.t();
    assert_eq!(t.to_vec().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    let z = Tensor::<(C<2>, C<3>, C<4>), i32>::iota::<2>();
    let p: Tensor<(C<4>, C<2>, C<3>), i32> = z.permute::<(Ax<2>, Ax<0>, Ax<1>)>();
    let want = z
        .to_ndarray()
        .unwrap()
        .permuted_axes(IxDyn(&[2, 0, 1]))
        .as_standard_layout()
        .to_owned();
    assert_eq!(p.to_ndarray().unwrap(), want);
    let q: Tensor<(C<3>, C<2>, C<4>), i32> = z.try_permute(&[1, 0, 2]).unwrap();
    assert_eq!(q.dims(), &[3, 2, 4]);
    assert!(z.try_permute::<(C<3>, C<2>, C<4>)>(&[1, 0, 0]).is_err());
    assert_shape_err(
        z.try_permute::<(C<2>, C<3>, C<4>)>(&[1, 0, 2]),
        "transpose",
        &["[3, 2, 4]", "(2, 3, 4)"],
    );
    let d = Tensor::<(Dyn, C<3>)>::zeros_shape((Dyn(5), C));
    assert_eq!(d.t().shape(), (C::<3>, Dyn(5)));
}

#[test]
fn typed_broadcast_and_slices() {
    let x = Tensor::<(C<3>, C<1>), i32>::from_vec(vec![1, 2, 3]).unwrap();
    let y = x.broadcast_to::<(C<2>, C<3>, C<4>)>();
    let want = x
        .to_ndarray()
        .unwrap()
        .broadcast(IxDyn(&[2, 3, 4]))
        .unwrap()
        .to_owned();
    assert_eq!(y.to_ndarray().unwrap(), want);
    let d = x.try_broadcast_to((Dyn(2), C::<3>, C::<5>)).unwrap();
    assert_eq!(d.dims(), &[2, 3, 5]);
    assert_shape_err(
        x.try_broadcast_to((Dyn(2), C::<4>, C::<5>)),
        "broadcast_in_dim",
        &["[3, 1]", "[2, 4, 5]"],
    );

    let m = Tensor::<(C<3>, C<5>), i32>::iota::<1>();
    let s = m.slice_axis::<1, 2, 3>();
    assert_eq!(s.dims(), &[3, 3]);
    assert_eq!(s.to_vec().unwrap()[..3], [2, 3, 4]);
    let s = m.slice_axis_step::<1, 0, 3, 2>();
    assert_eq!(s.to_vec().unwrap()[..3], [0, 2, 4]);
    let e = m.slice_axis::<0, 3, 0>();
    assert_eq!(e.dims(), &[0, 5]);
    let g: Tensor<(Dyn, C<2>), i32> = m.try_slice(&[1, 1], &[3, 5], &[1, 3]).unwrap();
    assert_eq!(g.to_vec().unwrap(), vec![1, 4, 1, 4]);
    assert_shape_err(
        m.try_slice::<(Dyn, C<3>)>(&[1, 1], &[3, 5], &[1, 3]),
        "slice",
        &["[2, 2]", "(Dyn, 3)"],
    );
}

#[test]
fn typed_concat_stack_rev_pad() {
    let a = Tensor::<(C<2>, C<2>), i32>::zeros();
    let b = Tensor::<(C<2>, C<3>), i32>::ones();
    let c: Tensor<(C<2>, C<5>), i32> = a.concat(Ax::<1>, &b);
    assert_eq!(c.to_vec().unwrap(), vec![0, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
    let r = Tensor::<(C<1>, C<2>), i32>::full(7);
    assert_eq!(
        a.concat::<0, _, (C<3>, C<2>)>(Ax, &r).to_vec().unwrap()[4..],
        [7, 7]
    );

    let da = Tensor::<(Dyn, C<2>), i32>::zeros_shape((Dyn(3), C));
    let db = Tensor::<(Dyn, C<2>), i32>::ones_shape((Dyn(1), C));
    let dc: Tensor<(Dyn, C<2>), i32> = da.try_concat(Ax::<0>, &db).unwrap();
    assert_eq!(dc.dims(), &[4, 2]);
    let bad = da.try_concat::<0, _, (C<5>, C<2>)>(Ax, &db).unwrap_err();
    assert_shape_err::<()>(
        Err(bad),
        "concatenate",
        &["[3, 2]", "[1, 2]", "[4, 2]", "(5, 2)"],
    );
    let dd = Tensor::<(C<2>, Dyn), i32>::zeros_shape((C, Dyn(3)));
    let de = Tensor::<(C<2>, Dyn), i32>::zeros_shape((C, Dyn(2)));
    let dx = Tensor::<(Dyn, C<2>), i32>::zeros_shape((Dyn(3), C));
    assert!(dd.try_concat::<1, _, (C<2>, Dyn)>(Ax, &de).is_ok());
    let e = Tensor::<(Dyn, Dyn), i32>::zeros_shape((Dyn(2), Dyn(3)));
    let f = Tensor::<(Dyn, Dyn), i32>::zeros_shape((Dyn(4), Dyn(3)));
    assert_shape_err(
        e.try_concat::<1, _, (Dyn, Dyn)>(Ax, &f),
        "concatenate",
        &["[2, 3]", "[4, 3]"],
    );
    let _ = dx;

    let all = ferrax::ops::shape_ops::concat_all::<0, _, (C<6>, C<2>), _>(&[&a, &a, &a]).unwrap();
    assert_eq!(all.dims(), &[6, 2]);
    assert!(ferrax::ops::shape_ops::concat_all::<0, _, (C<5>, C<2>), _>(&[&a, &a, &a]).is_err());
    let st = ferrax::ops::shape_ops::stack::<0, C<2>, _, _>(&[&a, &a]).unwrap();
    assert_eq!(st.dims(), &[2, 2, 2]);
    assert_shape_err(
        ferrax::ops::shape_ops::stack::<0, C<3>, _, _>(&[&a, &a]),
        "stack",
        &["2 parts", "3"],
    );

    let v = Tensor::<(C<2>, C<3>), i32>::iota::<1>();
    assert_eq!(v.flip::<1>().to_vec().unwrap(), vec![2, 1, 0, 2, 1, 0]);
    assert_eq!(
        v.rev(&[0, 1]).unwrap().to_vec().unwrap(),
        vec![2, 1, 0, 2, 1, 0]
    );
    assert!(v.rev(&[2]).is_err());

    let p = v.pad::<(C<3>, C<5>)>(-1, &[(1, 0, 0), (-1, 1, 1)]).unwrap();
    let want = pad_oracle(&v.to_ndarray().unwrap(), -1, &[(1, 0, 0), (-1, 1, 1)]);
    assert_eq!(p.to_ndarray().unwrap(), want);
    assert_shape_err(
        v.pad::<(C<3>, C<4>)>(0, &[(1, 0, 0), (0, 0, 0)]),
        "pad",
        &["[3, 3]", "(3, 4)"],
    );
}

#[test]
fn typed_take_and_gradient_shapes() {
    let table = Tensor::<(C<4>, C<2>)>::from_vec((0..8).map(|i| i as f32).collect()).unwrap();
    let ids = Tensor::<(C<2>, C<3>), i64>::from_vec(vec![0, 3, -1, 9, 1, -9]).unwrap();
    let y: Tensor<(C<2>, C<3>, C<2>)> = table.take(Ax::<0>, &ids);
    let rows = [0, 3, 3, 3, 1, 0];
    let want: Vec<f32> = rows
        .iter()
        .flat_map(|&r| [2.0 * r as f32, 2.0 * r as f32 + 1.0])
        .collect();
    assert_eq!(y.to_vec().unwrap(), want);
    // The same through the untyped API, and a take of a rank-0 index removes the axis.
    let z = gather::take(table.array(), ids.array(), 0).unwrap();
    assert_eq!(z.to_vec::<f32>().unwrap(), want);
    let col: Tensor<(C<4>,)> = table.take(Ax::<1>, &Tensor::<(), i32>::scalar(1));
    assert_eq!(col.to_vec().unwrap(), vec![1., 3., 5., 7.]);

    let dyn_ids = Tensor::<(Dyn,), u32>::from_vec_shape((Dyn(2),), vec![2, 0]).unwrap();
    let w: Tensor<(Dyn, C<2>)> = table.take(Ax::<0>, &dyn_ids);
    assert_eq!(w.to_vec().unwrap(), vec![4., 5., 0., 1.]);

    let logits = Tensor::<(C<2>, C<3>)>::from_vec(vec![0., 1., 2., 3., 4., 5.]).unwrap();
    let lab = Tensor::<(C<2>, C<1>), i32>::from_vec(vec![2, 0]).unwrap();
    assert_eq!(
        logits.take_along_axis(Ax::<1>, &lab).to_vec().unwrap(),
        vec![2., 3.]
    );
    let dl = Tensor::<(Dyn, C<3>)>::zeros_shape((Dyn(2), C));
    let dlab = Tensor::<(Dyn, C<1>), i32>::zeros_shape((Dyn(3), C));
    assert_shape_err(
        dl.try_take_along_axis(Ax::<1>, &dlab),
        "gather",
        &["[3, 1]", "[2, 3]"],
    );
    let ok = dl.try_take_along_axis(
        Ax::<1>,
        &Tensor::<(Dyn, C<1>), i32>::zeros_shape((Dyn(2), C)),
    );
    assert_eq!(ok.unwrap().dims(), &[2, 1]);
}

#[test]
fn typed_axes_dynamic_slices_iota() {
    let x = t23();
    let u = x.unsqueeze::<0>();
    assert_eq!(u.dims(), &[1, 2, 3]);
    assert_eq!(u.squeeze::<0>().to_vec().unwrap(), x.to_vec().unwrap());
    assert_eq!(x.unsqueeze::<2>().squeeze::<2>().dims(), &[2, 3]);
    let s = Tensor::<(), f64>::scalar(2.5);
    assert_eq!(s.unsqueeze::<0>().dims(), &[1]);

    let m = Tensor::<(C<4>, C<5>), i32>::from_vec((0..20).collect()).unwrap();
    let i = Tensor::<(), i32>::scalar(3);
    let j = Tensor::<(), i32>::scalar(-2);
    let w: Tensor<(C<2>, C<2>), i32> = m.dynamic_slice([&i, &j]);
    assert_eq!(w.to_vec().unwrap(), vec![10, 11, 15, 16]);
    let upd = Tensor::<(C<1>, C<3>), i32>::full(-1);
    let k = Tensor::<(), i32>::scalar(9);
    let r = m.dynamic_update_slice(&upd, [&k, &k]);
    assert_eq!(r.to_vec().unwrap()[15..], [15, 16, -1, -1, -1]);

    let dm = Tensor::<(Dyn, C<5>), i32>::from_vec_shape((Dyn(4), C), (0..20).collect()).unwrap();
    let dw = dm.try_dynamic_slice(&[&i, &i], (Dyn(2), C::<2>)).unwrap();
    assert_eq!(dw.to_vec().unwrap(), vec![13, 14, 18, 19]);
    assert_shape_err(
        dm.try_dynamic_slice(&[&i, &i], (Dyn(5), C::<2>)),
        "dynamic_slice",
        &["[5, 2]", "[4, 5]"],
    );
    assert!(dm.try_dynamic_update_slice(&upd, &[&i, &i]).is_ok());
    let big = Tensor::<(C<5>, C<1>), i32>::zeros();
    assert_shape_err(
        dm.try_dynamic_update_slice(&big, &[&i, &i]),
        "dynamic_update_slice",
        &["[5, 1]", "[4, 5]"],
    );

    assert_eq!(
        Tensor::<(C<3>,), f64>::iota::<0>().to_vec().unwrap(),
        vec![0., 1., 2.]
    );
    let di = Tensor::<(Dyn, C<2>), i32>::iota_shape::<0>((Dyn(3), C)).unwrap();
    assert_eq!(di.to_vec().unwrap(), vec![0, 0, 1, 1, 2, 2]);
    assert!(Tensor::<(C<2>,), bool>::iota_shape::<0>((C,)).is_err());
}
