//! Tensors as values: constructors, numpy-style printing, ndarray interop, `item`, the
//! `shape!` sugar, and run-time shape errors naming the op and both shapes.

use ferrax::prelude::*;

#[test]
fn constructors_match_numpy() {
    assert_eq!(
        Tensor::<(C<2>, C<2>)>::zeros().to_vec().unwrap(),
        vec![0.0; 4]
    );
    assert_eq!(
        Tensor::<(C<3>,), i32>::ones().to_vec().unwrap(),
        vec![1, 1, 1]
    );
    assert_eq!(
        Tensor::<(C<2>,), f64>::full(2.5).to_vec().unwrap(),
        vec![2.5, 2.5]
    );
    assert_eq!(
        Tensor::<(C<4>,), i64>::arange().to_vec().unwrap(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        Tensor::<(C<5>,), f64>::linspace(0.0, 1.0).to_vec().unwrap(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        Tensor::<(C<2>, C<2>), u32>::eye().to_vec().unwrap(),
        vec![1, 0, 0, 1]
    );
    assert_eq!(Tensor::<()>::scalar(3.0).item().unwrap(), 3.0);
    let big = Tensor::<(C<1>,), i64>::full(i64::MAX - 1);
    assert_eq!(
        big.to_vec().unwrap(),
        vec![i64::MAX - 1],
        "large integers survive exactly"
    );
    let s: Tensor<shape![Dyn, 3]> = Tensor::zeros_shape((Dyn(2), C));
    assert_eq!(s.dims(), &[2, 3]);
}

#[test]
fn printing_looks_like_numpy() {
    let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1.0, 2.5, -3.0, 0.0, 10.0, 0.125]).unwrap();
    assert_eq!(
        x.to_string(),
        "[[   1.,   2.5,   -3.],\n [   0.,   10., 0.125]]"
    );
    let b = Tensor::<(C<3>,), bool>::from_vec(vec![true, false, true]).unwrap();
    assert_eq!(b.to_string(), "[ True, False,  True]");
    let i = Tensor::<(C<2>, C<2>, C<2>), i32>::from_vec((0..8).collect()).unwrap();
    assert_eq!(
        i.to_string(),
        "[[[0, 1],\n  [2, 3]],\n\n [[4, 5],\n  [6, 7]]]"
    );
    assert_eq!(Tensor::<()>::scalar(f32::NAN).to_string(), "nan");
    let big = Tensor::<(C<2000>,)>::zeros();
    assert_eq!(
        big.to_string(),
        "[0., 0., 0., ..., 0., 0., 0.]",
        "large arrays are summarized"
    );
    assert!(format!("{x:?}").contains("shape=[2, 3], dtype=f32"));
}

#[test]
fn ndarray_round_trip_and_shape_checks() {
    let a = ndarray::Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32);
    let t = Tensor::<(C<2>, C<3>)>::from_ndarray(&a).unwrap();
    assert_eq!(
        t.to_ndarray()
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap(),
        a
    );
    let err = Tensor::<(C<3>, C<2>)>::from_ndarray(&a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("(3, 2)"), "{err}");
    let err = Tensor::<(C<2>, C<2>)>::from_vec(vec![1.0; 3])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("from_vec") && err.contains("4") && err.contains("3"),
        "{err}"
    );
    let d = Tensor::<(Dyn, C<2>)>::from_vec_shape((Dyn(2), C), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let e = Tensor::<(Dyn, C<2>)>::from_vec_shape((Dyn(3), C), vec![0.0; 6]).unwrap();
    let err = d.try_add(&e).unwrap_err().to_string();
    assert!(err.contains("[2, 2]") && err.contains("[3, 2]"), "{err}");
}
