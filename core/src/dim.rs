//! Dimensions: compile-time `C<N>` and run-time `Dyn`, the letters shapes are spelled with.

use crate::error::{Error, Result};
use std::fmt;

/// One axis of a shape: either a const-generic size [`C<N>`] or a run-time size [`Dyn`].
pub trait Dim:
    Copy + Clone + fmt::Debug + PartialEq + Eq + std::hash::Hash + Send + Sync + 'static
{
    /// The size when it is known at compile time.
    const STATIC: Option<usize>;
    /// The size of this axis.
    fn size(&self) -> usize;
    /// Builds the dim from a run-time size, checking it against the static size.
    fn from_size(n: usize) -> Option<Self>;
}

/// A dimension whose size `N` is part of the type: mismatches are compile errors.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct C<const N: usize>;

impl<const N: usize> fmt::Debug for C<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N}")
    }
}

impl<const N: usize> Dim for C<N> {
    const STATIC: Option<usize> = Some(N);
    #[inline]
    fn size(&self) -> usize {
        N
    }
    fn from_size(n: usize) -> Option<Self> {
        (n == N).then_some(C)
    }
}

/// A dimension whose size is known only at run time (a CSV's row count).
/// Operations involving `Dyn` check sizes when they run and return [`Error::Shape`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dyn(pub usize);

impl fmt::Debug for Dyn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dyn({})", self.0)
    }
}

impl Dim for Dyn {
    const STATIC: Option<usize> = None;
    #[inline]
    fn size(&self) -> usize {
        self.0
    }
    fn from_size(n: usize) -> Option<Self> {
        Some(Dyn(n))
    }
}

/// Checks a run-time size against a dim, for ops that mix `Dyn` and static dims.
pub fn check_dim<D: Dim>(op: &'static str, n: usize) -> Result<D> {
    D::from_size(n).ok_or_else(|| {
        Error::shape(
            op,
            format!("expected a dim of {}, found {n}", D::STATIC.unwrap_or(0)),
        )
    })
}
