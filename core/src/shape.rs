//! Shapes as types: `()` and tuples of [`Dim`]s up to rank 6, with the shape algebra
//! (broadcasting, axis removal) that needs no arithmetic expressed as traits.

use crate::dim::{Dim, Dyn, C};
use crate::error::{Error, Result};
use std::fmt;

/// A tensor shape: `()` for scalars, `(D0,)`, `(D0, D1)`, ... up to rank 6.
pub trait Shape:
    Copy + Clone + fmt::Debug + PartialEq + Eq + std::hash::Hash + Send + Sync + 'static
{
    /// Number of axes.
    const RANK: usize;
    /// Element count when every dim is static, else `None`.
    const STATIC_NUMEL: Option<usize>;
    /// The static size of each axis (`None` for a `Dyn` axis), usable in `const` checks.
    const STATIC_DIMS: &'static [Option<usize>];
    /// The static size of each axis (`None` for a `Dyn` axis), outermost first.
    fn static_dims() -> Vec<Option<usize>>;
    /// The sizes of this shape value, outermost first.
    fn dims(&self) -> Vec<usize>;
    /// Builds the shape from run-time sizes, checking rank and static dims.
    fn from_dims(dims: &[usize]) -> Option<Self>;
    /// Element count.
    fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// Like [`Shape::from_dims`] but returns an error naming `op` and both shapes.
    fn try_from_dims(op: &'static str, dims: &[usize]) -> Result<Self> {
        Self::from_dims(dims).ok_or_else(|| {
            Error::shape(
                op,
                format!(
                    "shape {dims:?} does not fit the type {}",
                    type_shape_string::<Self>()
                ),
            )
        })
    }
}

/// A shape whose dims are all `C<N>`: it has exactly one value, `Self::default()`.
pub trait StaticShape: Shape + Default {}

/// Renders a shape type like `(Dyn, 3)`.
pub fn type_shape_string<S: Shape>() -> String {
    let parts: Vec<String> = S::static_dims()
        .iter()
        .map(|d| d.map_or_else(|| "Dyn".to_string(), |n| n.to_string()))
        .collect();
    format!("({})", parts.join(", "))
}

impl Shape for () {
    const RANK: usize = 0;
    const STATIC_NUMEL: Option<usize> = Some(1);
    const STATIC_DIMS: &'static [Option<usize>] = &[];
    fn static_dims() -> Vec<Option<usize>> {
        Vec::new()
    }
    fn dims(&self) -> Vec<usize> {
        Vec::new()
    }
    fn from_dims(dims: &[usize]) -> Option<Self> {
        dims.is_empty().then_some(())
    }
}
impl StaticShape for () {}

const fn mul_opt(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a * b),
        _ => None,
    }
}

macro_rules! tuple_shape {
    ($rank:expr; $($D:ident $i:tt),+) => {
        impl<$($D: Dim),+> Shape for ($($D,)+) {
            const RANK: usize = $rank;
            const STATIC_NUMEL: Option<usize> = {
                let n = Some(1usize);
                $(let n = mul_opt(n, $D::STATIC);)+
                n
            };
            const STATIC_DIMS: &'static [Option<usize>] = &[$($D::STATIC),+];
            fn static_dims() -> Vec<Option<usize>> {
                vec![$($D::STATIC),+]
            }
            fn dims(&self) -> Vec<usize> {
                vec![$(self.$i.size()),+]
            }
            fn from_dims(dims: &[usize]) -> Option<Self> {
                if dims.len() != $rank {
                    return None;
                }
                Some(($($D::from_size(dims[$i])?,)+))
            }
        }
    };
}
tuple_shape!(1; D0 0);
tuple_shape!(2; D0 0, D1 1);
tuple_shape!(3; D0 0, D1 1, D2 2);
tuple_shape!(4; D0 0, D1 1, D2 2, D3 3);
tuple_shape!(5; D0 0, D1 1, D2 2, D3 3, D4 4);
tuple_shape!(6; D0 0, D1 1, D2 2, D3 3, D4 4, D5 5);

/// Marker for dims that are static (`C<N>`).
pub trait StaticDim: Dim + Default {}
impl<const N: usize> StaticDim for C<N> {}

impl<A: StaticDim> StaticShape for (A,) {}
impl<A: StaticDim, B: StaticDim> StaticShape for (A, B) {}
impl<A: StaticDim, B: StaticDim, C0: StaticDim> StaticShape for (A, B, C0) {}
impl<A: StaticDim, B: StaticDim, C0: StaticDim, D: StaticDim> StaticShape for (A, B, C0, D) {}
impl<A: StaticDim, B: StaticDim, C0: StaticDim, D: StaticDim, E: StaticDim> StaticShape
    for (A, B, C0, D, E)
{
}
impl<A: StaticDim, B: StaticDim, C0: StaticDim, D: StaticDim, E: StaticDim, F: StaticDim>
    StaticShape for (A, B, C0, D, E, F)
{
}

/// Shorthand for shape types: `shape![2, 3]` is `(C<2>, C<3>)`, `shape![Dyn, 3]` is `(Dyn, C<3>)`.
#[macro_export]
macro_rules! shape {
    () => { () };
    ($($d:tt),+ $(,)?) => { ($($crate::__shape_dim!($d),)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __shape_dim {
    (Dyn) => { $crate::Dyn };
    ($n:literal) => { $crate::C<$n> };
    ($t:ty) => { $t };
}

/// Rank-0 shape alias.
pub type Scalar = ();
/// Convenience: a `Dyn` dimension used in shape positions.
pub type D = Dyn;
