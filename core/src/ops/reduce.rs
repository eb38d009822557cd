//! Typed reductions, scans and sorts: `sum`, `max_axis::<I>`, `argmax_axis::<I>`,
//! `cumsum::<I>`, `sort_axis::<I>`, ... The axis is a const generic bounded by
//! [`RemoveAxis`], so an out-of-range axis is a compile error and the output type drops
//! exactly that axis. The float composites (`mean`, `softmax`, ...) are in
//! [`composite`](crate::ops::composite).

use crate::array::Array;
use crate::dtype::{DType, Elem};
use crate::error::Result;
use crate::prim::argreduce::{argreduce, ArgOp};
use crate::prim::cumulative::cumulative;
use crate::prim::reduce::{reduce, reduce_all, ReduceOp};
use crate::prim::sort::sort_with_indices;
use crate::shape::Shape;
use crate::shape_axes::RemoveAxis;
use crate::tensor::Tensor;

/// Wraps the result of a lax-level call whose shape rule the signature already guarantees.
/// An error here is a broken internal invariant, not bad user data.
pub(crate) fn typed<S: Shape, E: Elem>(op: &str, r: Result<Array>) -> Tensor<S, E> {
    match r {
        Ok(a) => Tensor::from_array_unchecked(a),
        Err(e) => panic!("{op}: internal error in a typed op: {e}"),
    }
}

macro_rules! full_and_axis {
    ($(#[$m:meta])* $full:ident, $(#[$ma:meta])* $axis:ident, $op:expr) => {
        $(#[$m])*
        pub fn $full(&self) -> Tensor<(), E> {
            typed(stringify!($full), reduce_all(self.array(), $op))
        }
        $(#[$ma])*
        pub fn $axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, E>
        where
            S: RemoveAxis<I>,
        {
            typed(stringify!($axis), reduce(self.array(), $op, &[I]))
        }
    };
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    full_and_axis!(
        /// Sum of all elements (0 for an empty tensor; logical or for bool; wrapping for
        /// integers). Floats are summed in a fixed pairwise order: the result is accurate
        /// and bit-identical for any number of threads.
        ///
        /// ```
        /// use ferrax_core::{Tensor, C};
        /// let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
        /// assert_eq!(x.sum().item().unwrap(), 21.0);
        /// ```
        sum,
        /// Sum over axis `I`, which the output type drops.
        ///
        /// ```
        /// use ferrax_core::{Tensor, C};
        /// let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
        /// let rows: Tensor<(C<2>,)> = x.sum_axis::<1>();
        /// assert_eq!(rows.to_vec().unwrap(), vec![6.0, 15.0]);
        /// let cols: Tensor<(C<3>,)> = x.sum_axis::<0>();
        /// assert_eq!(cols.to_vec().unwrap(), vec![5.0, 7.0, 9.0]);
        /// ```
        sum_axis,
        ReduceOp::Sum
    );
    full_and_axis!(
        /// Largest element (NaN if any element is NaN; `-inf` / the minimum integer for an
        /// empty tensor; logical or for bool).
        max,
        /// Largest element along axis `I` (NaN propagates).
        max_axis,
        ReduceOp::Max
    );
    full_and_axis!(
        /// Smallest element (NaN if any element is NaN; `+inf` / the maximum integer for an
        /// empty tensor; logical and for bool).
        min,
        /// Smallest element along axis `I` (NaN propagates).
        min_axis,
        ReduceOp::Min
    );
    full_and_axis!(
        /// Product of all elements (1 for an empty tensor; logical and for bool).
        prod,
        /// Product along axis `I`.
        prod_axis,
        ReduceOp::Prod
    );

    /// Index of the largest element along axis `I` (first one on ties; a NaN counts as
    /// the largest, as `jnp.argmax`).
    ///
    /// # Panics
    /// If axis `I` has no elements (only possible with a size-0 dim), like `jnp.argmax`;
    /// use [`Tensor::try_argmax_axis`] where that can happen.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 7., 7., 0., -1., 2.]).unwrap();
    /// assert_eq!(x.argmax_axis::<1>().to_vec().unwrap(), vec![1, 2]);
    /// ```
    pub fn argmax_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, i32>
    where
        S: RemoveAxis<I>,
    {
        self.try_argmax_axis::<I>()
            .unwrap_or_else(|e| panic!("{e}"))
    }
    /// Index of the smallest element along axis `I` (first on ties; NaN counts as the
    /// smallest, as `jnp.argmin`).
    ///
    /// # Panics
    /// If axis `I` has no elements; see [`Tensor::try_argmin_axis`].
    pub fn argmin_axis<const I: usize>(&self) -> Tensor<<S as RemoveAxis<I>>::Out, i32>
    where
        S: RemoveAxis<I>,
    {
        self.try_argmin_axis::<I>()
            .unwrap_or_else(|e| panic!("{e}"))
    }
    /// [`Tensor::argmax_axis`] returning an error for an empty axis.
    pub fn try_argmax_axis<const I: usize>(&self) -> Result<Tensor<<S as RemoveAxis<I>>::Out, i32>>
    where
        S: RemoveAxis<I>,
    {
        argreduce(self.array(), ArgOp::ArgMax, I, DType::I32).map(Tensor::from_array_unchecked)
    }
    /// [`Tensor::argmin_axis`] returning an error for an empty axis.
    pub fn try_argmin_axis<const I: usize>(&self) -> Result<Tensor<<S as RemoveAxis<I>>::Out, i32>>
    where
        S: RemoveAxis<I>,
    {
        argreduce(self.array(), ArgOp::ArgMin, I, DType::I32).map(Tensor::from_array_unchecked)
    }

    /// Running `op` along axis `I`, from the end when `reverse`. Same shape.
    pub fn cumulative<const I: usize>(&self, op: ReduceOp, reverse: bool) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        typed("cumulative", cumulative(self.array(), op, I, reverse))
    }
    /// Running sum along axis `I`.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<4>,), i32>::from_vec(vec![1, 2, 3, 4]).unwrap();
    /// assert_eq!(x.cumsum::<0>().to_vec().unwrap(), vec![1, 3, 6, 10]);
    /// ```
    pub fn cumsum<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        self.cumulative::<I>(ReduceOp::Sum, false)
    }
    /// Running product along axis `I`.
    pub fn cumprod<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        self.cumulative::<I>(ReduceOp::Prod, false)
    }
    /// Running maximum along axis `I`.
    pub fn cummax<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        self.cumulative::<I>(ReduceOp::Max, false)
    }
    /// Running minimum along axis `I`.
    pub fn cummin<const I: usize>(&self) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        self.cumulative::<I>(ReduceOp::Min, false)
    }

    /// Sorts along axis `I` (stable; NaN last when ascending, first when descending).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<4>,)>::from_vec(vec![3., f32::NAN, 1., 2.]).unwrap();
    /// let s = x.sort_axis::<0>(false).to_vec().unwrap();
    /// assert_eq!(&s[..3], &[1., 2., 3.]);
    /// assert!(s[3].is_nan());
    /// assert_eq!(x.argsort_axis::<0>(false).to_vec().unwrap(), vec![2, 3, 0, 1]);
    /// ```
    pub fn sort_axis<const I: usize>(&self, descending: bool) -> Tensor<S, E>
    where
        S: RemoveAxis<I>,
    {
        self.sort_with_indices_axis::<I>(descending).0
    }
    /// The i32 indices that sort along axis `I` (stable).
    pub fn argsort_axis<const I: usize>(&self, descending: bool) -> Tensor<S, i32>
    where
        S: RemoveAxis<I>,
    {
        self.sort_with_indices_axis::<I>(descending).1
    }
    /// Sorted values and the i32 indices that produce them, in one pass.
    pub fn sort_with_indices_axis<const I: usize>(
        &self,
        descending: bool,
    ) -> (Tensor<S, E>, Tensor<S, i32>)
    where
        S: RemoveAxis<I>,
    {
        match sort_with_indices(self.array(), I, descending) {
            Ok((v, i)) => (
                Tensor::from_array_unchecked(v),
                Tensor::from_array_unchecked(i),
            ),
            Err(e) => panic!("sort: internal error in a typed op: {e}"),
        }
    }
}
