//! Typed structural ops: reshape, transpose, broadcast, slicing, concatenation, padding,
//! reversal, indexing (`take`), axis insertion/removal and iota.
//!
//! Shape algebra without arithmetic is in the signatures (the `shape_axes` traits), so a bad
//! axis is a trait error at the caller's line. Where arithmetic is needed (reshape, flatten,
//! concat, slices) the caller names the output type and an inline `const` assertion checks
//! it after monomorphization; its note shows the instantiated types with their numbers.
//! Those static forms require static shapes; each has a `try_` twin for shapes with `Dyn`
//! axes that checks at run time and returns an error naming the op and both shapes.

use crate::array::Array;
use crate::dim::{Dim, Dyn, C};
use crate::dtype::{DType, Elem, Int};
use crate::error::{Error, Result};
use crate::prim::{
    broadcast_in_dim, concatenate, dynamic_slice, dynamic_update_slice, gather, iota, pad, reshape,
    rev, slice, transpose,
};
use crate::shape::{type_shape_string, Shape, StaticDim, StaticShape};
use crate::shape_axes::{Ax, InsertAxis, Permute, RemoveAxis, ReplaceAxis, SpliceAxis};
use crate::tensor::Tensor;

/// Unwraps the result of an op whose typed signature already guarantees the shape rule.
fn typed<S: Shape, E: Elem>(op: &str, r: Result<Array>) -> Tensor<S, E> {
    match r {
        Ok(a) => Tensor::from_array_unchecked(a),
        Err(e) => panic!("{op}: the typed shape rule should have ruled this out: {e}"),
    }
}

/// Wraps an array whose run-time shape must still be checked against `S` (Dyn outputs).
fn checked<S: Shape, E: Elem>(op: &'static str, from: &[usize], a: Array) -> Result<Tensor<S, E>> {
    if S::from_dims(a.shape()).is_none() {
        return Err(Error::shape(
            op,
            format!(
                "result of shape {:?} (from {from:?}) does not fit the type {}",
                a.shape(),
                type_shape_string::<S>()
            ),
        ));
    }
    Ok(Tensor::from_array_unchecked(a))
}

const fn static_numel<S: Shape>() -> usize {
    match S::STATIC_NUMEL {
        Some(n) => n,
        None => 0,
    }
}

const fn static_dim(d: Option<usize>) -> usize {
    match d {
        Some(n) => n,
        None => 0,
    }
}

/// numpy broadcasting of static dims: right-aligned, each source dim equals the target's
/// or is 1.
const fn broadcastable(from: &[Option<usize>], to: &[Option<usize>]) -> bool {
    if from.len() > to.len() {
        return false;
    }
    let off = to.len() - from.len();
    let mut i = 0;
    while i < from.len() {
        let (f, t) = (static_dim(from[i]), static_dim(to[i + off]));
        if f != t && f != 1 {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `p` is a permutation of `0..p.len()`.
const fn is_permutation(p: &[usize]) -> bool {
    let mut i = 0;
    while i < p.len() {
        if p[i] >= p.len() {
            return false;
        }
        let mut j = 0;
        while j < i {
            if p[j] == p[i] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Whether every static dim of `small` is at most the matching dim of `big` (same rank).
const fn fits_within(small: &[Option<usize>], big: &[Option<usize>]) -> bool {
    if small.len() != big.len() {
        return false;
    }
    let mut i = 0;
    while i < small.len() {
        if static_dim(small[i]) > static_dim(big[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// Rank-0 index tensors as arrays.
fn index_arrays<I: Int>(starts: &[&Tensor<(), I>]) -> Vec<Array> {
    starts.iter().map(|t| t.array().clone()).collect()
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    /// Reshapes to the static shape `S2`, named by the caller; the element counts must be
    /// equal (a compile-time check).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>)>::from_vec((0..6).map(|i| i as f32).collect()).unwrap();
    /// let y = x.reshape::<(C<3>, C<2>)>();
    /// assert_eq!(y.dims(), &[3, 2]);
    /// assert_eq!(y.to_vec().unwrap(), x.to_vec().unwrap());
    /// ```
    pub fn reshape<S2: StaticShape>(&self) -> Tensor<S2, E>
    where
        S: StaticShape,
    {
        const {
            assert!(
                static_numel::<S>() == static_numel::<S2>(),
                "reshape: element count must be equal (the source and target shapes hold different numbers of elements)"
            )
        };
        typed(
            "reshape",
            reshape::reshape(self.arr_ref(), &S2::default().dims()),
        )
    }

    /// Reshapes to `shape` (which may have `Dyn` axes), checking the element count at run time.
    ///
    /// ```
    /// use ferrax_core::{Dyn, Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>)>::zeros();
    /// assert!(x.try_reshape((Dyn(3), C::<2>)).is_ok());
    /// let e = x.try_reshape((Dyn(4), C::<2>)).unwrap_err();
    /// assert!(e.to_string().contains("reshape"));
    /// ```
    pub fn try_reshape<S2: Shape>(&self, shape: S2) -> Result<Tensor<S2, E>> {
        Ok(Tensor::from_array_unchecked(reshape::reshape(
            self.arr_ref(),
            &shape.dims(),
        )?))
    }

    /// Flattens to rank 1 with the length `N` named by the caller (a compile-time check).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>), i32>::zeros();
    /// assert_eq!(x.flatten::<6>().dims(), &[6]);
    /// ```
    pub fn flatten<const N: usize>(&self) -> Tensor<(C<N>,), E>
    where
        S: StaticShape,
    {
        const {
            assert!(
                static_numel::<S>() == N,
                "flatten: the length must equal the element count of the shape"
            )
        };
        typed("flatten", reshape::flatten(self.arr_ref()))
    }

    /// Flattens to rank 1 with a run-time length.
    pub fn flatten_dyn(&self) -> Tensor<(Dyn,), E> {
        typed("flatten", reshape::flatten(self.arr_ref()))
    }

    /// Permutes axes by `P = (Ax<p0>, Ax<p1>, ...)`: output axis `i` is input axis `p_i`.
    /// Axes out of range are trait errors; repeated axes fail a compile-time assertion.
    ///
    /// ```
    /// use ferrax_core::{shape_axes::Ax, Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>, C<4>)>::zeros();
    /// let y: Tensor<(C<4>, C<2>, C<3>)> = x.permute::<(Ax<2>, Ax<0>, Ax<1>)>();
    /// assert_eq!(y.dims(), &[4, 2, 3]);
    /// ```
    pub fn permute<P>(&self) -> Tensor<<S as Permute<P>>::Out, E>
    where
        S: Permute<P>,
    {
        const {
            assert!(
                is_permutation(<S as Permute<P>>::PERM),
                "permute: each axis must appear exactly once"
            )
        };
        typed(
            "transpose",
            transpose::transpose(self.arr_ref(), <S as Permute<P>>::PERM),
        )
    }

    /// Permutes axes by a run-time permutation; the caller names the output type.
    pub fn try_permute<S2: Shape>(&self, perm: &[usize]) -> Result<Tensor<S2, E>> {
        let y = transpose::transpose(self.arr_ref(), perm)?;
        checked("transpose", self.dims(), y)
    }

    /// Broadcasts to the static shape `S2` under numpy's rules (right-aligned; each source
    /// dim equals the target's or is 1), checked at compile time.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<3>, C<1>)>::from_vec(vec![1., 2., 3.]).unwrap();
    /// let y = x.broadcast_to::<(C<2>, C<3>, C<2>)>();
    /// assert_eq!(y.to_vec().unwrap()[..6], [1., 1., 2., 2., 3., 3.]);
    /// ```
    pub fn broadcast_to<S2: StaticShape>(&self) -> Tensor<S2, E>
    where
        S: StaticShape,
    {
        const {
            assert!(
                broadcastable(S::STATIC_DIMS, S2::STATIC_DIMS),
                "broadcast_to: each source dim must equal the target dim or be 1 (shapes align on the right)"
            )
        };
        typed(
            "broadcast_to",
            broadcast_in_dim::broadcast_to(self.arr_ref(), &S2::default().dims()),
        )
    }

    /// Broadcasts to `shape` (which may have `Dyn` axes), checking numpy's rules at run time.
    pub fn try_broadcast_to<S2: Shape>(&self, shape: S2) -> Result<Tensor<S2, E>> {
        Ok(Tensor::from_array_unchecked(
            broadcast_in_dim::broadcast_to(self.arr_ref(), &shape.dims())?,
        ))
    }

    /// `LEN` elements of axis `AXIS` from `START` (a compile-time window; the axis must be
    /// static).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<5>), i32>::from_vec((0..10).collect()).unwrap();
    /// let y = x.slice_axis::<1, 1, 3>();
    /// assert_eq!(y.to_vec().unwrap(), vec![1, 2, 3, 6, 7, 8]);
    /// ```
    pub fn slice_axis<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Tensor<<S as ReplaceAxis<AXIS, C<LEN>>>::Out, E>
    where
        S: ReplaceAxis<AXIS, C<LEN>>,
        <S as ReplaceAxis<AXIS, C<LEN>>>::Replaced: StaticDim,
    {
        self.slice_axis_step::<AXIS, START, LEN, 1>()
    }

    /// `LEN` elements of axis `AXIS`: `START, START + STEP, ...` (compile-time checked).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<7>,), i32>::from_vec((0..7).collect()).unwrap();
    /// assert_eq!(x.slice_axis_step::<0, 1, 3, 2>().to_vec().unwrap(), vec![1, 3, 5]);
    /// ```
    pub fn slice_axis_step<
        const AXIS: usize,
        const START: usize,
        const LEN: usize,
        const STEP: usize,
    >(
        &self,
    ) -> Tensor<<S as ReplaceAxis<AXIS, C<LEN>>>::Out, E>
    where
        S: ReplaceAxis<AXIS, C<LEN>>,
        <S as ReplaceAxis<AXIS, C<LEN>>>::Replaced: StaticDim,
    {
        const {
            let d = static_dim(<<S as ReplaceAxis<AXIS, C<LEN>>>::Replaced as Dim>::STATIC);
            assert!(STEP >= 1, "slice_axis: the step must be at least 1");
            assert!(
                LEN == 0 || START + (LEN - 1) * STEP < d,
                "slice_axis: the window START + (LEN - 1) * STEP must lie inside the axis"
            );
        };
        let limit = if LEN == 0 {
            START.min(self.dims()[AXIS])
        } else {
            START + (LEN - 1) * STEP + 1
        };
        let start = if LEN == 0 { limit } else { START };
        typed(
            "slice",
            slice::slice_in_dim(self.arr_ref(), AXIS, start, limit, STEP),
        )
    }

    /// A strided slice `start..limit` by `strides` on every axis, checked at run time; the
    /// caller names the output type.
    pub fn try_slice<S2: Shape>(
        &self,
        start: &[usize],
        limit: &[usize],
        strides: &[usize],
    ) -> Result<Tensor<S2, E>> {
        let y = slice::slice(self.arr_ref(), start, limit, Some(strides))?;
        checked("slice", self.dims(), y)
    }

    /// Joins `other` after `self` along `AXIS`; the caller names the output shape `SOut`
    /// (usually through a `let` binding's type). The other dims must be the same types (a
    /// trait check), and the output dim along `AXIS` must be the sum of the inputs' (a
    /// compile-time check). Static shapes only; see [`Tensor::try_concat`].
    ///
    /// ```
    /// use ferrax_core::{shape_axes::Ax, Tensor, C};
    /// let a = Tensor::<(C<2>, C<2>)>::zeros();
    /// let b = Tensor::<(C<2>, C<3>)>::ones();
    /// let c: Tensor<(C<2>, C<5>)> = a.concat(Ax::<1>, &b);
    /// assert_eq!(c.to_vec().unwrap()[..5], [0., 0., 1., 1., 1.]);
    /// ```
    pub fn concat<const AXIS: usize, S2, SOut>(
        &self,
        _axis: Ax<AXIS>,
        other: &Tensor<S2, E>,
    ) -> Tensor<SOut, E>
    where
        S: RemoveAxis<AXIS> + StaticShape,
        S2: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out> + StaticShape,
        SOut: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out> + StaticShape,
    {
        const {
            let x = static_dim(<<S as RemoveAxis<AXIS>>::Removed as Dim>::STATIC);
            let y = static_dim(<<S2 as RemoveAxis<AXIS>>::Removed as Dim>::STATIC);
            let z = static_dim(<<SOut as RemoveAxis<AXIS>>::Removed as Dim>::STATIC);
            assert!(
                x + y == z,
                "concat: the output dim along the axis must equal the sum of the input dims"
            );
        };
        typed(
            "concatenate",
            concatenate::concatenate(&[self.arr_ref(), other.arr_ref()], AXIS),
        )
    }

    /// Joins `other` after `self` along `AXIS`, checking sizes at run time (for `Dyn` axes).
    pub fn try_concat<const AXIS: usize, S2, SOut>(
        &self,
        _axis: Ax<AXIS>,
        other: &Tensor<S2, E>,
    ) -> Result<Tensor<SOut, E>>
    where
        S: RemoveAxis<AXIS>,
        S2: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out>,
        SOut: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out>,
    {
        let y = concatenate::concatenate(&[self.arr_ref(), other.arr_ref()], AXIS)?;
        if SOut::from_dims(y.shape()).is_none() {
            return Err(Error::shape(
                "concatenate",
                format!(
                    "joining {:?} and {:?} along axis {AXIS} gives {:?}, which does not fit the type {}",
                    self.dims(),
                    other.dims(),
                    y.shape(),
                    type_shape_string::<SOut>()
                ),
            ));
        }
        Ok(Tensor::from_array_unchecked(y))
    }

    /// Reverses the listed axes (`lax.rev`); errors for an out-of-range or repeated axis.
    pub fn rev(&self, axes: &[usize]) -> Result<Self> {
        Ok(Tensor::from_array_unchecked(rev::rev(
            self.arr_ref(),
            axes,
        )?))
    }

    /// Reverses axis `AXIS` (`jnp.flip`), range-checked at compile time.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<3>,), i32>::from_vec(vec![1, 2, 3]).unwrap();
    /// assert_eq!(x.flip::<0>().to_vec().unwrap(), vec![3, 2, 1]);
    /// ```
    pub fn flip<const AXIS: usize>(&self) -> Self
    where
        S: RemoveAxis<AXIS>,
    {
        typed("rev", rev::rev(self.arr_ref(), &[AXIS]))
    }

    /// Pads with `value` (`lax.pad`): `config[i] = (lo, hi, interior)` per axis; negative
    /// `lo`/`hi` crop. The caller names the output type, checked at run time.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>,), i32>::from_vec(vec![1, 2]).unwrap();
    /// let y = x.pad::<(C<6>,)>(0, &[(1, 2, 1)]).unwrap();
    /// assert_eq!(y.to_vec().unwrap(), vec![0, 1, 0, 2, 0, 0]);
    /// ```
    pub fn pad<S2: Shape>(&self, value: E, config: &[(i64, i64, usize)]) -> Result<Tensor<S2, E>> {
        let y = pad::pad(self.arr_ref(), &Array::scalar(value), config)?;
        checked("pad", self.dims(), y)
    }

    /// `jnp.take(x, idx, axis=AXIS)`: the output replaces axis `AXIS` by the index shape.
    /// Negative indices count from the end; out-of-range indices are clamped (JAX's clip
    /// mode), and taking from an empty axis gives zeros.
    ///
    /// ```
    /// use ferrax_core::{shape_axes::Ax, Tensor, C};
    /// let table = Tensor::<(C<3>, C<2>)>::from_vec(vec![0., 1., 10., 11., 20., 21.]).unwrap();
    /// let ids = Tensor::<(C<2>, C<2>), i32>::from_vec(vec![2, 0, -1, 7]).unwrap();
    /// let y: Tensor<(C<2>, C<2>, C<2>)> = table.take(Ax::<0>, &ids);
    /// assert_eq!(y.to_vec().unwrap(), vec![20., 21., 0., 1., 20., 21., 20., 21.]);
    /// ```
    pub fn take<const AXIS: usize, SI: Shape, I: Int>(
        &self,
        _axis: Ax<AXIS>,
        indices: &Tensor<SI, I>,
    ) -> Tensor<<S as SpliceAxis<AXIS, SI>>::Out, E>
    where
        S: SpliceAxis<AXIS, SI>,
    {
        typed(
            "gather",
            gather::take(self.arr_ref(), indices.arr_ref(), AXIS),
        )
    }

    /// `jnp.take_along_axis(x, idx, axis=AXIS)` for static shapes: `idx` has `x`'s dims off
    /// `AXIS` (a trait check) and the output has `idx`'s shape. Same index convention as
    /// [`Tensor::take`].
    ///
    /// ```
    /// use ferrax_core::{shape_axes::Ax, Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![0., 1., 2., 3., 4., 5.]).unwrap();
    /// let idx = Tensor::<(C<2>, C<1>), i32>::from_vec(vec![2, 0]).unwrap();
    /// assert_eq!(x.take_along_axis(Ax::<1>, &idx).to_vec().unwrap(), vec![2., 3.]);
    /// ```
    pub fn take_along_axis<const AXIS: usize, SI, I: Int>(
        &self,
        _axis: Ax<AXIS>,
        indices: &Tensor<SI, I>,
    ) -> Tensor<SI, E>
    where
        S: RemoveAxis<AXIS> + StaticShape,
        SI: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out> + StaticShape,
    {
        typed(
            "gather",
            gather::take_along_axis(self.arr_ref(), indices.arr_ref(), AXIS),
        )
    }

    /// [`Tensor::take_along_axis`] for shapes with `Dyn` axes: the dims off `AXIS` are
    /// compared at run time.
    pub fn try_take_along_axis<const AXIS: usize, SI, I: Int>(
        &self,
        _axis: Ax<AXIS>,
        indices: &Tensor<SI, I>,
    ) -> Result<Tensor<SI, E>>
    where
        S: RemoveAxis<AXIS>,
        SI: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out>,
    {
        Ok(Tensor::from_array_unchecked(gather::take_along_axis(
            self.arr_ref(),
            indices.arr_ref(),
            AXIS,
        )?))
    }

    /// Inserts a size-1 axis at position `AXIS` (`jnp.expand_dims`).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>)>::zeros();
    /// assert_eq!(x.unsqueeze::<1>().dims(), &[2, 1, 3]);
    /// ```
    pub fn unsqueeze<const AXIS: usize>(&self) -> Tensor<<S as InsertAxis<AXIS, C<1>>>::Out, E>
    where
        S: InsertAxis<AXIS, C<1>>,
    {
        typed("expand_dims", reshape::expand_dims(self.arr_ref(), AXIS))
    }

    /// Removes axis `AXIS`, whose type must be `C<1>` (`jnp.squeeze`).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<1>)>::zeros();
    /// assert_eq!(x.squeeze::<1>().dims(), &[2]);
    /// ```
    pub fn squeeze<const AXIS: usize>(&self) -> Tensor<<S as RemoveAxis<AXIS>>::Out, E>
    where
        S: RemoveAxis<AXIS, Removed = C<1>>,
    {
        typed("squeeze", reshape::squeeze(self.arr_ref(), &[AXIS]))
    }

    /// A window of the static shape `S2` whose starts are rank-0 integer tensors, one per
    /// axis, clamped so the window fits (`lax.dynamic_slice`). `S2` fitting inside `S` and
    /// the number of starts are compile-time checks.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<5>,), i32>::from_vec((0..5).collect()).unwrap();
    /// let i = Tensor::<(), i32>::scalar(4); // clamped to 3 so two elements fit
    /// let y: Tensor<(C<2>,), i32> = x.dynamic_slice([&i]);
    /// assert_eq!(y.to_vec().unwrap(), vec![3, 4]);
    /// ```
    pub fn dynamic_slice<S2: StaticShape, const R: usize>(
        &self,
        starts: [&Tensor<(), impl Int>; R],
    ) -> Tensor<S2, E>
    where
        S: StaticShape,
    {
        const {
            assert!(R == S::RANK, "dynamic_slice: give one start index per axis");
            assert!(
                fits_within(S2::STATIC_DIMS, S::STATIC_DIMS),
                "dynamic_slice: the window shape must have the operand's rank and fit inside it"
            );
        };
        let idx = index_arrays(&starts);
        let refs: Vec<&Array> = idx.iter().collect();
        typed(
            "dynamic_slice",
            dynamic_slice::dynamic_slice(self.arr_ref(), &refs, &S2::default().dims()),
        )
    }

    /// [`Tensor::dynamic_slice`] for shapes with `Dyn` axes: the window is `sizes`, checked
    /// at run time.
    pub fn try_dynamic_slice<S2: Shape, I: Int>(
        &self,
        starts: &[&Tensor<(), I>],
        sizes: S2,
    ) -> Result<Tensor<S2, E>> {
        let idx = index_arrays(starts);
        let refs: Vec<&Array> = idx.iter().collect();
        Ok(Tensor::from_array_unchecked(dynamic_slice::dynamic_slice(
            self.arr_ref(),
            &refs,
            &sizes.dims(),
        )?))
    }

    /// Writes `update` at rank-0 integer starts, clamped so it fits
    /// (`lax.dynamic_update_slice`); compile-time checked for static shapes.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<4>,), i32>::zeros();
    /// let u = Tensor::<(C<2>,), i32>::from_vec(vec![7, 8]).unwrap();
    /// let y = x.dynamic_update_slice(&u, [&Tensor::<(), i32>::scalar(-5)]);
    /// assert_eq!(y.to_vec().unwrap(), vec![7, 8, 0, 0]);
    /// ```
    pub fn dynamic_update_slice<S2: StaticShape, const R: usize>(
        &self,
        update: &Tensor<S2, E>,
        starts: [&Tensor<(), impl Int>; R],
    ) -> Self
    where
        S: StaticShape,
    {
        const {
            assert!(
                R == S::RANK,
                "dynamic_update_slice: give one start index per axis"
            );
            assert!(
                fits_within(S2::STATIC_DIMS, S::STATIC_DIMS),
                "dynamic_update_slice: the update must have the operand's rank and fit inside it"
            );
        };
        let idx = index_arrays(&starts);
        let refs: Vec<&Array> = idx.iter().collect();
        typed(
            "dynamic_update_slice",
            dynamic_update_slice::dynamic_update_slice(self.arr_ref(), update.arr_ref(), &refs),
        )
    }

    /// [`Tensor::dynamic_update_slice`] for shapes with `Dyn` axes, checked at run time.
    pub fn try_dynamic_update_slice<S2: Shape, I: Int>(
        &self,
        update: &Tensor<S2, E>,
        starts: &[&Tensor<(), I>],
    ) -> Result<Self> {
        let idx = index_arrays(starts);
        let refs: Vec<&Array> = idx.iter().collect();
        Ok(Tensor::from_array_unchecked(
            dynamic_update_slice::dynamic_update_slice(self.arr_ref(), update.arr_ref(), &refs)?,
        ))
    }

    /// The index along `AXIS` at every position of `shape` (`lax.broadcasted_iota`); for
    /// shapes with `Dyn` axes. Errors for bool.
    pub fn iota_shape<const AXIS: usize>(shape: S) -> Result<Self>
    where
        S: RemoveAxis<AXIS>,
    {
        Ok(Tensor::from_array_unchecked(iota::iota(
            E::DTYPE,
            &shape.dims(),
            AXIS,
        )?))
    }

    fn arr_ref(&self) -> &Array {
        self.array()
    }
}

impl<S: StaticShape, E: Elem> Tensor<S, E> {
    /// The index along `AXIS` at every position (`lax.broadcasted_iota`); numeric element
    /// types only (a compile-time check).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let r = Tensor::<(C<2>, C<3>), i32>::iota::<1>();
    /// assert_eq!(r.to_vec().unwrap(), vec![0, 1, 2, 0, 1, 2]);
    /// ```
    pub fn iota<const AXIS: usize>() -> Self
    where
        S: RemoveAxis<AXIS>,
    {
        const {
            assert!(
                !matches!(E::DTYPE, DType::Bool),
                "iota: bool has no iota; use a numeric element type"
            )
        };
        typed("iota", iota::iota(E::DTYPE, &S::default().dims(), AXIS))
    }
}

impl<A: Dim, B: Dim, E: Elem> Tensor<(A, B), E> {
    /// The transpose of a matrix.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>), i32>::from_vec((0..6).collect()).unwrap();
    /// assert_eq!(x.t().to_vec().unwrap(), vec![0, 3, 1, 4, 2, 5]);
    /// ```
    pub fn t(&self) -> Tensor<(B, A), E> {
        typed("transpose", transpose::transpose(self.array(), &[1, 0]))
    }
}

/// Joins same-typed tensors along `AXIS`; the caller names the output type, whose dim along
/// `AXIS` is checked at run time against the sum (the number of parts is a run-time value).
pub fn concat_all<const AXIS: usize, S, SOut, E: Elem>(
    parts: &[&Tensor<S, E>],
) -> Result<Tensor<SOut, E>>
where
    S: RemoveAxis<AXIS>,
    SOut: RemoveAxis<AXIS, Out = <S as RemoveAxis<AXIS>>::Out>,
{
    let arrs: Vec<&Array> = parts.iter().map(|t| t.array()).collect();
    let y = concatenate::concatenate(&arrs, AXIS)?;
    checked(
        "concatenate",
        parts.first().map_or(&[][..], |p| p.dims()),
        y,
    )
}

/// Stacks same-typed tensors along a new axis `AXIS` whose dim `N` is named by the caller
/// and checked against the number of parts at run time (`jnp.stack`).
///
/// ```
/// use ferrax_core::{ops::shape_ops::stack, Tensor, C};
/// let a = Tensor::<(C<2>,)>::zeros();
/// let s = stack::<1, C<3>, _, _>(&[&a, &a, &a]).unwrap();
/// assert_eq!(s.dims(), &[2, 3]);
/// ```
pub fn stack<const AXIS: usize, N: Dim, S, E: Elem>(
    parts: &[&Tensor<S, E>],
) -> Result<Tensor<<S as InsertAxis<AXIS, N>>::Out, E>>
where
    S: InsertAxis<AXIS, N>,
{
    if N::from_size(parts.len()).is_none() {
        return Err(Error::shape(
            "stack",
            format!(
                "{} parts cannot fill a new axis of size {}",
                parts.len(),
                N::STATIC.unwrap_or(0)
            ),
        ));
    }
    let arrs: Vec<&Array> = parts.iter().map(|t| t.array()).collect();
    Ok(Tensor::from_array_unchecked(concatenate::stack(
        &arrs, AXIS,
    )?))
}
