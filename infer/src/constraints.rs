//! Constraints: the support of a distribution, and through [`biject_to`](crate::transforms::biject_to)
//! the bijection from unconstrained space that inference works in.

use ferrax_core::Array;

/// A set of values (the support of a distribution). Bounds are arrays so they can vary
/// over a batch (e.g. `Uniform(low, high)` with vector bounds).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Constraint {
    /// All reals.
    Real,
    /// Real vectors (event rank 1).
    RealVector,
    /// `x > 0`.
    Positive,
    /// `x > lower`.
    GreaterThan(Array),
    /// Reals below the bound.
    LessThan(Array),
    /// `lower < x < upper`.
    Interval(Array, Array),
    /// `0 < x < 1`.
    UnitInterval,
    /// {0, 1}.
    Boolean,
    /// {0, 1, 2, ...}.
    NonNegativeInteger,
    /// Integers in `[lower, upper]`.
    IntegerInterval(Array, Array),
    /// Vectors of non-negative entries summing to 1.
    Simplex,
    /// Strictly increasing vectors.
    OrderedVector,
    /// Lower-triangular matrices with a positive diagonal.
    LowerCholesky,
    /// Lower Cholesky factors of correlation matrices.
    CorrCholesky,
    /// Symmetric positive-definite matrices.
    PositiveDefinite,
    /// A constraint with `n` more event axes (from `to_event`).
    Independent(Box<Constraint>, usize),
}

impl Constraint {
    /// Number of trailing axes one constrained value spans.
    pub fn event_dim(&self) -> usize {
        match self {
            Constraint::RealVector | Constraint::Simplex | Constraint::OrderedVector => 1,
            Constraint::LowerCholesky | Constraint::CorrCholesky | Constraint::PositiveDefinite => {
                2
            }
            Constraint::Independent(c, n) => c.event_dim() + n,
            _ => 0,
        }
    }
    /// Whether the set is discrete (no bijection to the reals: such sites cannot be
    /// sampled by HMC/NUTS).
    pub fn is_discrete(&self) -> bool {
        match self {
            Constraint::Boolean
            | Constraint::NonNegativeInteger
            | Constraint::IntegerInterval(..) => true,
            Constraint::Independent(c, _) => c.is_discrete(),
            _ => false,
        }
    }
    /// A short name, as NumPyro prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Constraint::Real => "real",
            Constraint::RealVector => "real_vector",
            Constraint::Positive => "positive",
            Constraint::GreaterThan(_) => "greater_than",
            Constraint::LessThan(_) => "less_than",
            Constraint::Interval(..) => "interval",
            Constraint::UnitInterval => "unit_interval",
            Constraint::Boolean => "boolean",
            Constraint::NonNegativeInteger => "nonnegative_integer",
            Constraint::IntegerInterval(..) => "integer_interval",
            Constraint::Simplex => "simplex",
            Constraint::OrderedVector => "ordered_vector",
            Constraint::LowerCholesky => "lower_cholesky",
            Constraint::CorrCholesky => "corr_cholesky",
            Constraint::PositiveDefinite => "positive_definite",
            Constraint::Independent(c, _) => c.name(),
        }
    }
}
