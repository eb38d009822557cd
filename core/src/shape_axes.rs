//! Axis algebra on tuple shapes: removing, inserting and replacing one axis at a
//! const-generic position. Reductions (`sum::<I>`), `squeeze`/`unsqueeze`, `take` and
//! `concat` name their output shapes through these traits, so an out-of-range axis is a
//! compile error at the caller's line.
//!
//! The impls are spelled out per (rank, axis) pair by a generator (Rust has no variadic
//! tuples); edit the generator's pattern, not single impls.

use crate::dim::Dim;
use crate::shape::Shape;

/// `Self` with axis `I` removed. Implemented for every tuple shape of rank 1..=6 and every
/// `I < rank`.
///
/// ```
/// use ferrax_core::{shape_axes::RemoveAxis, C};
/// fn out<S: RemoveAxis<1>>() -> &'static str { std::any::type_name::<S::Out>() }
/// assert!(out::<(C<2>, C<3>, C<4>)>().contains("C<4>"));
/// ```
#[diagnostic::on_unimplemented(
    message = "axis {I} is out of range for shape `{Self}`",
    label = "this shape has no axis {I}",
    note = "axes count from 0; a rank-r shape has axes 0..r"
)]
pub trait RemoveAxis<const I: usize>: Shape {
    /// The shape without axis `I`.
    type Out: Shape;
    /// The dim that was removed.
    type Removed: Dim;
}

/// `Self` with dim `D` inserted so that it becomes axis `I`. Implemented for tuple shapes of
/// rank 0..=5 and every `I <= rank`.
#[diagnostic::on_unimplemented(
    message = "cannot insert an axis at position {I} of shape `{Self}`",
    label = "position {I} is out of range",
    note = "a new axis goes at a position 0..=rank, and shapes have at most 6 axes"
)]
pub trait InsertAxis<const I: usize, D: Dim>: Shape {
    /// The shape with the new axis.
    type Out: Shape;
}

/// `Self` with axis `I` replaced by dim `D`. Implemented for tuple shapes of rank 1..=6 and
/// every `I < rank`.
#[diagnostic::on_unimplemented(
    message = "axis {I} is out of range for shape `{Self}`",
    label = "this shape has no axis {I}",
    note = "axes count from 0; a rank-r shape has axes 0..r"
)]
pub trait ReplaceAxis<const I: usize, D: Dim>: Shape {
    /// The shape with axis `I` replaced.
    type Out: Shape;
    /// The dim that was replaced.
    type Replaced: Dim;
}

impl<D0: Dim> RemoveAxis<0> for (D0,) {
    type Out = ();
    type Removed = D0;
}
impl<D0: Dim, D1: Dim> RemoveAxis<0> for (D0, D1) {
    type Out = (D1,);
    type Removed = D0;
}
impl<D0: Dim, D1: Dim> RemoveAxis<1> for (D0, D1) {
    type Out = (D0,);
    type Removed = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim> RemoveAxis<0> for (D0, D1, D2) {
    type Out = (D1, D2);
    type Removed = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim> RemoveAxis<1> for (D0, D1, D2) {
    type Out = (D0, D2);
    type Removed = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim> RemoveAxis<2> for (D0, D1, D2) {
    type Out = (D0, D1);
    type Removed = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> RemoveAxis<0> for (D0, D1, D2, D3) {
    type Out = (D1, D2, D3);
    type Removed = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> RemoveAxis<1> for (D0, D1, D2, D3) {
    type Out = (D0, D2, D3);
    type Removed = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> RemoveAxis<2> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D3);
    type Removed = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> RemoveAxis<3> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2);
    type Removed = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> RemoveAxis<0> for (D0, D1, D2, D3, D4) {
    type Out = (D1, D2, D3, D4);
    type Removed = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> RemoveAxis<1> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D2, D3, D4);
    type Removed = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> RemoveAxis<2> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D3, D4);
    type Removed = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> RemoveAxis<3> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D2, D4);
    type Removed = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> RemoveAxis<4> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D2, D3);
    type Removed = D4;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<0>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D1, D2, D3, D4, D5);
    type Removed = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<1>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D2, D3, D4, D5);
    type Removed = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<2>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D3, D4, D5);
    type Removed = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<3>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D4, D5);
    type Removed = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<4>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D5);
    type Removed = D4;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> RemoveAxis<5>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D4);
    type Removed = D5;
}

impl<N: Dim> InsertAxis<0, N> for () {
    type Out = (N,);
}
impl<D0: Dim, N: Dim> InsertAxis<0, N> for (D0,) {
    type Out = (N, D0);
}
impl<D0: Dim, N: Dim> InsertAxis<1, N> for (D0,) {
    type Out = (D0, N);
}
impl<D0: Dim, D1: Dim, N: Dim> InsertAxis<0, N> for (D0, D1) {
    type Out = (N, D0, D1);
}
impl<D0: Dim, D1: Dim, N: Dim> InsertAxis<1, N> for (D0, D1) {
    type Out = (D0, N, D1);
}
impl<D0: Dim, D1: Dim, N: Dim> InsertAxis<2, N> for (D0, D1) {
    type Out = (D0, D1, N);
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> InsertAxis<0, N> for (D0, D1, D2) {
    type Out = (N, D0, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> InsertAxis<1, N> for (D0, D1, D2) {
    type Out = (D0, N, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> InsertAxis<2, N> for (D0, D1, D2) {
    type Out = (D0, D1, N, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> InsertAxis<3, N> for (D0, D1, D2) {
    type Out = (D0, D1, D2, N);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> InsertAxis<0, N> for (D0, D1, D2, D3) {
    type Out = (N, D0, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> InsertAxis<1, N> for (D0, D1, D2, D3) {
    type Out = (D0, N, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> InsertAxis<2, N> for (D0, D1, D2, D3) {
    type Out = (D0, D1, N, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> InsertAxis<3, N> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2, N, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> InsertAxis<4, N> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2, D3, N);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<0, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (N, D0, D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<1, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, N, D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<2, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, N, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<3, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, N, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<4, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, D3, N, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> InsertAxis<5, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, D3, D4, N);
}

impl<D0: Dim, N: Dim> ReplaceAxis<0, N> for (D0,) {
    type Out = (N,);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, N: Dim> ReplaceAxis<0, N> for (D0, D1) {
    type Out = (N, D1);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, N: Dim> ReplaceAxis<1, N> for (D0, D1) {
    type Out = (D0, N);
    type Replaced = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> ReplaceAxis<0, N> for (D0, D1, D2) {
    type Out = (N, D1, D2);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> ReplaceAxis<1, N> for (D0, D1, D2) {
    type Out = (D0, N, D2);
    type Replaced = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, N: Dim> ReplaceAxis<2, N> for (D0, D1, D2) {
    type Out = (D0, D1, N);
    type Replaced = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> ReplaceAxis<0, N> for (D0, D1, D2, D3) {
    type Out = (N, D1, D2, D3);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> ReplaceAxis<1, N> for (D0, D1, D2, D3) {
    type Out = (D0, N, D2, D3);
    type Replaced = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> ReplaceAxis<2, N> for (D0, D1, D2, D3) {
    type Out = (D0, D1, N, D3);
    type Replaced = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, N: Dim> ReplaceAxis<3, N> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2, N);
    type Replaced = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> ReplaceAxis<0, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (N, D1, D2, D3, D4);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> ReplaceAxis<1, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, N, D2, D3, D4);
    type Replaced = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> ReplaceAxis<2, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, N, D3, D4);
    type Replaced = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> ReplaceAxis<3, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, N, D4);
    type Replaced = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, N: Dim> ReplaceAxis<4, N>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, D3, N);
    type Replaced = D4;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<0, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (N, D1, D2, D3, D4, D5);
    type Replaced = D0;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<1, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, N, D2, D3, D4, D5);
    type Replaced = D1;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<2, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, N, D3, D4, D5);
    type Replaced = D2;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<3, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, N, D4, D5);
    type Replaced = D3;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<4, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, N, D5);
    type Replaced = D4;
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, N: Dim> ReplaceAxis<5, N>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D4, N);
    type Replaced = D5;
}

/// An axis index as a type, for ops whose other generic parameters are inferred from their
/// arguments (`x.take(Ax::<0>, &idx)`) and for permutations (`(Ax<1>, Ax<0>)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ax<const I: usize>;

/// Permutes the axes of `Self` by `P = (Ax<p0>, Ax<p1>, ...)`: output axis `i` is axis
/// `p_i` of `Self`. Each `p_i` is range-checked by the trait system; that they are
/// distinct is checked by the `permute` method's `const` assertion.
#[diagnostic::on_unimplemented(
    message = "`{P}` is not a permutation of the axes of shape `{Self}`",
    label = "axis list does not fit this shape",
    note = "name one `Ax<i>` per axis, each in 0..rank, e.g. `(Ax<1>, Ax<0>)` for a rank-2 shape"
)]
pub trait Permute<P>: Shape {
    /// The permuted shape.
    type Out: Shape;
    /// The permutation as values.
    const PERM: &'static [usize];
}

/// `Self` with axis `I` replaced by all the axes of `SI` (the output shape of
/// `take(x, idx, axis = I)` where `idx: SI`). Implemented while the result has rank <= 6.
#[diagnostic::on_unimplemented(
    message = "cannot replace axis {I} of shape `{Self}` by the axes of `{SI}`",
    label = "axis out of range, or the result would have more than 6 axes",
    note = "axes count from 0; shapes have at most 6 axes"
)]
pub trait SpliceAxis<const I: usize, SI: Shape>: Shape {
    /// The spliced shape.
    type Out: Shape;
}

impl Permute<()> for () {
    type Out = ();
    const PERM: &'static [usize] = &[];
}

impl<D0: Dim, const P0: usize> Permute<(Ax<P0>,)> for (D0,)
where
    (D0,): RemoveAxis<P0>,
{
    type Out = (<(D0,) as RemoveAxis<P0>>::Removed,);
    const PERM: &'static [usize] = &[P0];
}
impl<D0: Dim, D1: Dim, const P0: usize, const P1: usize> Permute<(Ax<P0>, Ax<P1>)> for (D0, D1)
where
    (D0, D1): RemoveAxis<P0> + RemoveAxis<P1>,
{
    type Out = (
        <(D0, D1) as RemoveAxis<P0>>::Removed,
        <(D0, D1) as RemoveAxis<P1>>::Removed,
    );
    const PERM: &'static [usize] = &[P0, P1];
}
impl<D0: Dim, D1: Dim, D2: Dim, const P0: usize, const P1: usize, const P2: usize>
    Permute<(Ax<P0>, Ax<P1>, Ax<P2>)> for (D0, D1, D2)
where
    (D0, D1, D2): RemoveAxis<P0> + RemoveAxis<P1> + RemoveAxis<P2>,
{
    type Out = (
        <(D0, D1, D2) as RemoveAxis<P0>>::Removed,
        <(D0, D1, D2) as RemoveAxis<P1>>::Removed,
        <(D0, D1, D2) as RemoveAxis<P2>>::Removed,
    );
    const PERM: &'static [usize] = &[P0, P1, P2];
}
impl<
        D0: Dim,
        D1: Dim,
        D2: Dim,
        D3: Dim,
        const P0: usize,
        const P1: usize,
        const P2: usize,
        const P3: usize,
    > Permute<(Ax<P0>, Ax<P1>, Ax<P2>, Ax<P3>)> for (D0, D1, D2, D3)
where
    (D0, D1, D2, D3): RemoveAxis<P0> + RemoveAxis<P1> + RemoveAxis<P2> + RemoveAxis<P3>,
{
    type Out = (
        <(D0, D1, D2, D3) as RemoveAxis<P0>>::Removed,
        <(D0, D1, D2, D3) as RemoveAxis<P1>>::Removed,
        <(D0, D1, D2, D3) as RemoveAxis<P2>>::Removed,
        <(D0, D1, D2, D3) as RemoveAxis<P3>>::Removed,
    );
    const PERM: &'static [usize] = &[P0, P1, P2, P3];
}
impl<
        D0: Dim,
        D1: Dim,
        D2: Dim,
        D3: Dim,
        D4: Dim,
        const P0: usize,
        const P1: usize,
        const P2: usize,
        const P3: usize,
        const P4: usize,
    > Permute<(Ax<P0>, Ax<P1>, Ax<P2>, Ax<P3>, Ax<P4>)> for (D0, D1, D2, D3, D4)
where
    (D0, D1, D2, D3, D4):
        RemoveAxis<P0> + RemoveAxis<P1> + RemoveAxis<P2> + RemoveAxis<P3> + RemoveAxis<P4>,
{
    type Out = (
        <(D0, D1, D2, D3, D4) as RemoveAxis<P0>>::Removed,
        <(D0, D1, D2, D3, D4) as RemoveAxis<P1>>::Removed,
        <(D0, D1, D2, D3, D4) as RemoveAxis<P2>>::Removed,
        <(D0, D1, D2, D3, D4) as RemoveAxis<P3>>::Removed,
        <(D0, D1, D2, D3, D4) as RemoveAxis<P4>>::Removed,
    );
    const PERM: &'static [usize] = &[P0, P1, P2, P3, P4];
}
impl<
        D0: Dim,
        D1: Dim,
        D2: Dim,
        D3: Dim,
        D4: Dim,
        D5: Dim,
        const P0: usize,
        const P1: usize,
        const P2: usize,
        const P3: usize,
        const P4: usize,
        const P5: usize,
    > Permute<(Ax<P0>, Ax<P1>, Ax<P2>, Ax<P3>, Ax<P4>, Ax<P5>)> for (D0, D1, D2, D3, D4, D5)
where
    (D0, D1, D2, D3, D4, D5): RemoveAxis<P0>
        + RemoveAxis<P1>
        + RemoveAxis<P2>
        + RemoveAxis<P3>
        + RemoveAxis<P4>
        + RemoveAxis<P5>,
{
    type Out = (
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P0>>::Removed,
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P1>>::Removed,
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P2>>::Removed,
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P3>>::Removed,
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P4>>::Removed,
        <(D0, D1, D2, D3, D4, D5) as RemoveAxis<P5>>::Removed,
    );
    const PERM: &'static [usize] = &[P0, P1, P2, P3, P4, P5];
}
impl<D0: Dim> SpliceAxis<0, ()> for (D0,) {
    type Out = ();
}
impl<D0: Dim, J0: Dim> SpliceAxis<0, (J0,)> for (D0,) {
    type Out = (J0,);
}
impl<D0: Dim, J0: Dim, J1: Dim> SpliceAxis<0, (J0, J1)> for (D0,) {
    type Out = (J0, J1);
}
impl<D0: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<0, (J0, J1, J2)> for (D0,) {
    type Out = (J0, J1, J2);
}
impl<D0: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<0, (J0, J1, J2, J3)> for (D0,) {
    type Out = (J0, J1, J2, J3);
}
impl<D0: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim, J4: Dim> SpliceAxis<0, (J0, J1, J2, J3, J4)>
    for (D0,)
{
    type Out = (J0, J1, J2, J3, J4);
}
impl<D0: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim, J4: Dim, J5: Dim>
    SpliceAxis<0, (J0, J1, J2, J3, J4, J5)> for (D0,)
{
    type Out = (J0, J1, J2, J3, J4, J5);
}
impl<D0: Dim, D1: Dim> SpliceAxis<0, ()> for (D0, D1) {
    type Out = (D1,);
}
impl<D0: Dim, D1: Dim, J0: Dim> SpliceAxis<0, (J0,)> for (D0, D1) {
    type Out = (J0, D1);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim> SpliceAxis<0, (J0, J1)> for (D0, D1) {
    type Out = (J0, J1, D1);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<0, (J0, J1, J2)> for (D0, D1) {
    type Out = (J0, J1, J2, D1);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<0, (J0, J1, J2, J3)>
    for (D0, D1)
{
    type Out = (J0, J1, J2, J3, D1);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim, J4: Dim>
    SpliceAxis<0, (J0, J1, J2, J3, J4)> for (D0, D1)
{
    type Out = (J0, J1, J2, J3, J4, D1);
}
impl<D0: Dim, D1: Dim> SpliceAxis<1, ()> for (D0, D1) {
    type Out = (D0,);
}
impl<D0: Dim, D1: Dim, J0: Dim> SpliceAxis<1, (J0,)> for (D0, D1) {
    type Out = (D0, J0);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim> SpliceAxis<1, (J0, J1)> for (D0, D1) {
    type Out = (D0, J0, J1);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<1, (J0, J1, J2)> for (D0, D1) {
    type Out = (D0, J0, J1, J2);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<1, (J0, J1, J2, J3)>
    for (D0, D1)
{
    type Out = (D0, J0, J1, J2, J3);
}
impl<D0: Dim, D1: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim, J4: Dim>
    SpliceAxis<1, (J0, J1, J2, J3, J4)> for (D0, D1)
{
    type Out = (D0, J0, J1, J2, J3, J4);
}
impl<D0: Dim, D1: Dim, D2: Dim> SpliceAxis<0, ()> for (D0, D1, D2) {
    type Out = (D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim> SpliceAxis<0, (J0,)> for (D0, D1, D2) {
    type Out = (J0, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim> SpliceAxis<0, (J0, J1)> for (D0, D1, D2) {
    type Out = (J0, J1, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<0, (J0, J1, J2)>
    for (D0, D1, D2)
{
    type Out = (J0, J1, J2, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<0, (J0, J1, J2, J3)>
    for (D0, D1, D2)
{
    type Out = (J0, J1, J2, J3, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim> SpliceAxis<1, ()> for (D0, D1, D2) {
    type Out = (D0, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim> SpliceAxis<1, (J0,)> for (D0, D1, D2) {
    type Out = (D0, J0, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim> SpliceAxis<1, (J0, J1)> for (D0, D1, D2) {
    type Out = (D0, J0, J1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<1, (J0, J1, J2)>
    for (D0, D1, D2)
{
    type Out = (D0, J0, J1, J2, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<1, (J0, J1, J2, J3)>
    for (D0, D1, D2)
{
    type Out = (D0, J0, J1, J2, J3, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim> SpliceAxis<2, ()> for (D0, D1, D2) {
    type Out = (D0, D1);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim> SpliceAxis<2, (J0,)> for (D0, D1, D2) {
    type Out = (D0, D1, J0);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim> SpliceAxis<2, (J0, J1)> for (D0, D1, D2) {
    type Out = (D0, D1, J0, J1);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<2, (J0, J1, J2)>
    for (D0, D1, D2)
{
    type Out = (D0, D1, J0, J1, J2);
}
impl<D0: Dim, D1: Dim, D2: Dim, J0: Dim, J1: Dim, J2: Dim, J3: Dim> SpliceAxis<2, (J0, J1, J2, J3)>
    for (D0, D1, D2)
{
    type Out = (D0, D1, J0, J1, J2, J3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> SpliceAxis<0, ()> for (D0, D1, D2, D3) {
    type Out = (D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim> SpliceAxis<0, (J0,)> for (D0, D1, D2, D3) {
    type Out = (J0, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim> SpliceAxis<0, (J0, J1)>
    for (D0, D1, D2, D3)
{
    type Out = (J0, J1, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<0, (J0, J1, J2)>
    for (D0, D1, D2, D3)
{
    type Out = (J0, J1, J2, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> SpliceAxis<1, ()> for (D0, D1, D2, D3) {
    type Out = (D0, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim> SpliceAxis<1, (J0,)> for (D0, D1, D2, D3) {
    type Out = (D0, J0, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim> SpliceAxis<1, (J0, J1)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, J0, J1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<1, (J0, J1, J2)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, J0, J1, J2, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> SpliceAxis<2, ()> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim> SpliceAxis<2, (J0,)> for (D0, D1, D2, D3) {
    type Out = (D0, D1, J0, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim> SpliceAxis<2, (J0, J1)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, D1, J0, J1, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<2, (J0, J1, J2)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, D1, J0, J1, J2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim> SpliceAxis<3, ()> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim> SpliceAxis<3, (J0,)> for (D0, D1, D2, D3) {
    type Out = (D0, D1, D2, J0);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim> SpliceAxis<3, (J0, J1)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, D1, D2, J0, J1);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, J0: Dim, J1: Dim, J2: Dim> SpliceAxis<3, (J0, J1, J2)>
    for (D0, D1, D2, D3)
{
    type Out = (D0, D1, D2, J0, J1, J2);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> SpliceAxis<0, ()> for (D0, D1, D2, D3, D4) {
    type Out = (D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim> SpliceAxis<0, (J0,)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (J0, D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim, J1: Dim> SpliceAxis<0, (J0, J1)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (J0, J1, D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> SpliceAxis<1, ()> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim> SpliceAxis<1, (J0,)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, J0, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim, J1: Dim> SpliceAxis<1, (J0, J1)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, J0, J1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> SpliceAxis<2, ()> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim> SpliceAxis<2, (J0,)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, J0, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim, J1: Dim> SpliceAxis<2, (J0, J1)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, J0, J1, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> SpliceAxis<3, ()> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D2, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim> SpliceAxis<3, (J0,)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, J0, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim, J1: Dim> SpliceAxis<3, (J0, J1)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, J0, J1, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim> SpliceAxis<4, ()> for (D0, D1, D2, D3, D4) {
    type Out = (D0, D1, D2, D3);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim> SpliceAxis<4, (J0,)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, D3, J0);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, J0: Dim, J1: Dim> SpliceAxis<4, (J0, J1)>
    for (D0, D1, D2, D3, D4)
{
    type Out = (D0, D1, D2, D3, J0, J1);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<0, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D1, D2, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<0, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (J0, D1, D2, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<1, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D2, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<1, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, J0, D2, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<2, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<2, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, J0, D3, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<3, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<3, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, J0, D4, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<4, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<4, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, J0, D5);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim> SpliceAxis<5, ()>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D4);
}
impl<D0: Dim, D1: Dim, D2: Dim, D3: Dim, D4: Dim, D5: Dim, J0: Dim> SpliceAxis<5, (J0,)>
    for (D0, D1, D2, D3, D4, D5)
{
    type Out = (D0, D1, D2, D3, D4, J0);
}
