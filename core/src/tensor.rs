//! `Tensor<S, E>`: the typed, immutable tensor users hold. Its shape `S` and element `E` are
//! types; everything it does forwards to the non-generic [`Array`] so new shapes do not
//! compile new copies of the engine.

use crate::array::{Array, Device};
use crate::dim::{Dim, C};
use crate::dtype::{Elem, Float};
use crate::error::{Error, Result};
use crate::shape::{type_shape_string, Shape, StaticShape};
use std::fmt;
use std::marker::PhantomData;

/// An immutable tensor of shape `S` (a tuple of [`Dim`]s) and element type `E`.
///
/// ```
/// use ferrax_core::{Tensor, C};
/// let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
/// assert_eq!(x.dims(), &[2, 3]);
/// assert_eq!(x.to_vec().unwrap()[4], 5.0);
/// ```
pub struct Tensor<S: Shape, E: Elem = f32> {
    arr: Array,
    _p: PhantomData<fn() -> (S, E)>,
}

impl<S: Shape, E: Elem> Clone for Tensor<S, E> {
    fn clone(&self) -> Self {
        Tensor {
            arr: self.arr.clone(),
            _p: PhantomData,
        }
    }
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    /// Wraps an untyped array, checking its dtype and that its shape fits `S`.
    pub fn from_array(arr: Array) -> Result<Self> {
        if arr.dtype() != E::DTYPE {
            return Err(Error::dtype(
                "Tensor::from_array",
                format!(
                    "array holds {}, the tensor type wants {}",
                    arr.dtype(),
                    E::DTYPE
                ),
            ));
        }
        if S::from_dims(arr.shape()).is_none() {
            return Err(Error::shape(
                "Tensor::from_array",
                format!(
                    "array shape {:?} does not fit the type {}",
                    arr.shape(),
                    type_shape_string::<S>()
                ),
            ));
        }
        Ok(Tensor {
            arr,
            _p: PhantomData,
        })
    }
    /// Wraps an array the caller has already checked (shape rules of typed ops guarantee it).
    #[doc(hidden)]
    pub fn from_array_unchecked(arr: Array) -> Self {
        debug_assert_eq!(arr.dtype(), E::DTYPE, "typed op produced the wrong dtype");
        debug_assert!(
            S::from_dims(arr.shape()).is_some(),
            "typed op produced shape {:?} for type {}",
            arr.shape(),
            type_shape_string::<S>()
        );
        Tensor {
            arr,
            _p: PhantomData,
        }
    }
    /// The untyped array.
    pub fn array(&self) -> &Array {
        &self.arr
    }
    /// Unwraps into the untyped array.
    pub fn into_array(self) -> Array {
        self.arr
    }
    /// The shape value (with the run-time sizes of `Dyn` axes).
    pub fn shape(&self) -> S {
        S::from_dims(self.arr.shape()).expect("tensor shape fits its type")
    }
    /// Sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.arr.shape()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.arr.numel()
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        S::RANK
    }
    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.arr.device()
    }
    /// A copy on device `to` (see [`Array::to_device`]).
    pub fn to_device(&self, to: &Device) -> Result<Self> {
        Ok(Self::from_array_unchecked(self.arr.to_device(to)?))
    }
    /// Whether this tensor is a tracer of a function being staged.
    pub fn is_tracer(&self) -> bool {
        self.arr.is_tracer()
    }

    /// A tensor of `shape` filled with `x` (for shapes with `Dyn` axes).
    pub fn full_shape(shape: S, x: E) -> Self {
        Self::from_array_unchecked(Array::full(&shape.dims(), E::DTYPE, x.to_f64()))
            .with_exact_value(x)
    }
    fn with_exact_value(self, x: E) -> Self {
        // `full` goes through f64, which is exact for every element type except i64/u32
        // values beyond 2^53; rebuild from the typed value in that case.
        if E::from_f64(x.to_f64()) == x {
            return self;
        }
        let n = self.numel();
        Self::from_array_unchecked(
            Array::from_vec(self.dims().to_vec(), vec![x; n]).expect("sized"),
        )
    }
    /// Zeros of `shape` (for shapes with `Dyn` axes).
    pub fn zeros_shape(shape: S) -> Self {
        Self::full_shape(shape, E::zero())
    }
    /// Ones of `shape` (for shapes with `Dyn` axes).
    pub fn ones_shape(shape: S) -> Self {
        Self::full_shape(shape, E::one())
    }
    /// A tensor of `shape` from row-major data; errors if the length does not match.
    pub fn from_vec_shape(shape: S, data: Vec<E>) -> Result<Self> {
        Ok(Self::from_array_unchecked(Array::from_vec(
            shape.dims(),
            data,
        )?))
    }
    /// Copies the elements out, row-major. Errors inside a staged function (the value does
    /// not exist yet).
    pub fn to_vec(&self) -> Result<Vec<E>> {
        self.arr.to_vec()
    }
    /// Converts to an `ndarray` array with a dynamic number of axes.
    pub fn to_ndarray(&self) -> Result<ndarray::ArrayD<E>> {
        let v = self.to_vec()?;
        Ok(ndarray::ArrayD::from_shape_vec(self.dims().to_vec(), v).expect("sized"))
    }
    /// Builds a tensor from any `ndarray` array, checking its shape against `S`.
    pub fn from_ndarray<D: ndarray::Dimension>(a: &ndarray::Array<E, D>) -> Result<Self> {
        let shape = a.shape().to_vec();
        let data: Vec<E> = a.iter().copied().collect();
        Self::from_array(Array::from_vec(shape, data)?)
    }
    /// Changes only the type-level view of `Dyn` axes: checks at run time that this tensor's
    /// sizes fit `S2` (same rank, equal static dims).
    pub fn try_cast_shape<S2: Shape>(&self) -> Result<Tensor<S2, E>> {
        if S2::RANK != S::RANK {
            return Err(Error::shape(
                "cast_shape",
                format!(
                    "rank differs: {} vs {}",
                    type_shape_string::<S>(),
                    type_shape_string::<S2>()
                ),
            ));
        }
        S2::try_from_dims("cast_shape", self.dims())?;
        Ok(Tensor::from_array_unchecked(self.arr.clone()))
    }
}

impl<S: StaticShape, E: Elem> Tensor<S, E> {
    /// A tensor filled with `x`.
    pub fn full(x: E) -> Self {
        Self::full_shape(S::default(), x)
    }
    /// Zeros.
    pub fn zeros() -> Self {
        Self::zeros_shape(S::default())
    }
    /// Ones.
    pub fn ones() -> Self {
        Self::ones_shape(S::default())
    }
    /// From row-major data; errors if `data.len()` is not the shape's element count.
    pub fn from_vec(data: Vec<E>) -> Result<Self> {
        Self::from_vec_shape(S::default(), data)
    }
    /// From a row-major slice; errors if the length does not match.
    pub fn from_slice(data: &[E]) -> Result<Self> {
        Self::from_vec(data.to_vec())
    }
}

impl<E: Elem> Tensor<(), E> {
    /// A rank-0 tensor.
    pub fn scalar(x: E) -> Self {
        Self::from_array_unchecked(Array::scalar(x))
    }
    /// The value of a rank-0 tensor. Errors inside a staged function.
    pub fn item(&self) -> Result<E> {
        Ok(self.to_vec()?[0])
    }
}

impl<const N: usize, E: Elem> Tensor<(C<N>,), E> {
    /// `[0, 1, ..., N-1]`.
    pub fn arange() -> Self {
        Self::from_array_unchecked(
            Array::from_vec(vec![N], (0..N).map(|i| E::from_f64(i as f64)).collect())
                .expect("sized"),
        )
    }
}

impl<E: Elem> Tensor<(crate::Dyn,), E> {
    /// `[0, 1, ..., n-1]` with a run-time length.
    pub fn arange_dyn(n: usize) -> Self {
        Self::from_array_unchecked(
            Array::from_vec(vec![n], (0..n).map(|i| E::from_f64(i as f64)).collect())
                .expect("sized"),
        )
    }
}

impl<const N: usize, E: Float> Tensor<(C<N>,), E> {
    /// `N` evenly spaced values from `start` to `stop` inclusive, as `numpy.linspace`.
    pub fn linspace(start: f64, stop: f64) -> Self {
        let step = if N > 1 {
            (stop - start) / (N - 1) as f64
        } else {
            0.0
        };
        let v = (0..N)
            .map(|i| {
                E::from_f64(if i + 1 == N && N > 1 {
                    stop
                } else {
                    start + step * i as f64
                })
            })
            .collect();
        Self::from_array_unchecked(Array::from_vec(vec![N], v).expect("sized"))
    }
}

impl<const N: usize, E: Elem> Tensor<(C<N>, C<N>), E> {
    /// The identity matrix.
    pub fn eye() -> Self {
        let mut v = vec![E::zero(); N * N];
        for i in 0..N {
            v[i * N + i] = E::one();
        }
        Self::from_array_unchecked(Array::from_vec(vec![N, N], v).expect("sized"))
    }
}

impl<S: Shape, E: Elem> fmt::Display for Tensor<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_tracer() {
            return write!(f, "Traced<{}{:?}>", E::DTYPE, self.dims());
        }
        f.write_str(&crate::format::format_array(&self.arr))
    }
}

impl<S: Shape, E: Elem> fmt::Debug for Tensor<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_tracer() {
            return write!(
                f,
                "Tensor(traced, shape={:?}, dtype={})",
                self.dims(),
                E::DTYPE
            );
        }
        let body = crate::format::format_array(&self.arr);
        write!(
            f,
            "Tensor({}, shape={:?}, dtype={})",
            body,
            self.dims(),
            E::DTYPE
        )
    }
}

/// Gives a dim value for a tensor axis (used by generated code and typed ops).
pub fn dim_of<D: Dim>(n: usize) -> D {
    D::from_size(n).expect("dim fits its type")
}
