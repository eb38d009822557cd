//! Bijections between unconstrained real space and constrained supports, with their log
//! absolute Jacobian determinants. [`biject_to`] picks the one NumPyro picks for each
//! [`Constraint`]; HMC/NUTS run in the unconstrained space and add the log-Jacobian to
//! the log density.
//!
//! Forward maps and log-Jacobians are ferrax ops (traced and differentiated inside the
//! potential). Vector and matrix transforms are unrolled over the (small) event size.
//!
//! ```
//! use ferrax_core::Array;
//! use ferrax_infer::{constraints::Constraint, transforms::biject_to, math::to_f64};
//! # fn main() -> ferrax_infer::Result<()> {
//! let t = biject_to(&Constraint::Simplex)?;
//! let x = Array::from_vec(vec![3], vec![0.0f64; 3]).unwrap();
//! let y = t.forward(&x)?;
//! assert!(to_f64(&y)?.iter().all(|v| (v - 0.25).abs() < 1e-15));
//! # Ok(())
//! # }
//! ```

use crate::constraints::Constraint;
use crate::dist::{assemble, cholesky_host, entry};
use crate::error::{Error, Result};
use crate::math::{index_last, scalar_like, stack_last, ArrayMath};
use ferrax_core::{Array, DType};

/// A bijection (see the module docs).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Transform {
    /// `y = x`.
    Identity,
    /// `y = exp(x)`.
    Exp,
    /// `y = sigmoid(x)`, clipped to `[tiny, 1 - eps]` as NumPyro does.
    Sigmoid,
    /// `y = loc + scale * x`.
    Affine {
        /// Offset.
        loc: Array,
        /// Factor.
        scale: Array,
    },
    /// Stick-breaking from `R^(K-1)` onto the K-simplex.
    StickBreaking,
    /// `y_0 = x_0, y_i = y_(i-1) + exp(x_i)` onto increasing vectors.
    Ordered,
    /// `R^(n(n+1)/2)` onto lower-triangular matrices with positive diagonal: the first
    /// `n(n-1)/2` entries fill the strict lower triangle row by row, the last `n` are the
    /// log of the diagonal.
    LowerCholesky,
    /// `R^(n(n-1)/2)` onto Cholesky factors of correlation matrices (tanh, then signed
    /// stick-breaking per row, as Stan's and NumPyro's `CorrCholeskyTransform`).
    CorrCholesky,
    /// `L -> L L^T` (the inverse of a Cholesky factorization).
    CholeskyToCov,
    /// Transforms applied in order.
    Compose(Vec<Transform>),
    /// A transform whose log-Jacobian is summed over `n` more trailing axes.
    Independent(Box<Transform>, usize),
}

/// The bijection from unconstrained space onto `c` (NumPyro's `biject_to`).
pub fn biject_to(c: &Constraint) -> Result<Transform> {
    Ok(match c {
        Constraint::Real => Transform::Identity,
        Constraint::RealVector => Transform::Independent(Box::new(Transform::Identity), 1),
        Constraint::Positive => Transform::Exp,
        Constraint::GreaterThan(lo) => Transform::Compose(vec![
            Transform::Exp,
            Transform::Affine {
                loc: lo.clone(),
                scale: Array::full(&[], lo.dtype(), 1.0),
            },
        ]),
        Constraint::LessThan(hi) => Transform::Compose(vec![
            Transform::Exp,
            Transform::Affine {
                loc: hi.clone(),
                scale: Array::full(&[], hi.dtype(), -1.0),
            },
        ]),
        Constraint::Interval(lo, hi) => Transform::Compose(vec![
            Transform::Sigmoid,
            Transform::Affine {
                loc: lo.clone(),
                scale: hi.sub(lo)?,
            },
        ]),
        Constraint::UnitInterval => Transform::Sigmoid,
        Constraint::Simplex => Transform::StickBreaking,
        Constraint::OrderedVector => Transform::Ordered,
        Constraint::LowerCholesky => Transform::LowerCholesky,
        Constraint::CorrCholesky => Transform::CorrCholesky,
        Constraint::PositiveDefinite => {
            Transform::Compose(vec![Transform::LowerCholesky, Transform::CholeskyToCov])
        }
        Constraint::Independent(c, n) => Transform::Independent(Box::new(biject_to(c)?), *n),
        other => {
            return Err(Error::unsupported(
                "biject_to",
                format!(
                    "the discrete constraint `{}` has no bijection to real space",
                    other.name()
                ),
            ))
        }
    })
}

fn tiny_eps(dt: DType) -> (f64, f64) {
    if dt == DType::F32 {
        (f32::MIN_POSITIVE as f64, f32::EPSILON as f64)
    } else {
        (f64::MIN_POSITIVE, f64::EPSILON)
    }
}

fn last(x: &Array, what: &'static str) -> Result<usize> {
    x.shape()
        .last()
        .copied()
        .ok_or_else(|| Error::invalid(what, "expected a vector event (rank >= 1), got a scalar"))
}

/// `n` with `n (n + 1) / 2 == m` (or `n (n - 1) / 2 == m` when `strict`).
fn tri_side(m: usize, strict: bool, what: &'static str) -> Result<usize> {
    for n in 0..=m + 1 {
        let t = if strict {
            n * n.saturating_sub(1) / 2
        } else {
            n * (n + 1) / 2
        };
        if t == m {
            return Ok(n);
        }
        if t > m {
            break;
        }
    }
    Err(Error::invalid(
        what,
        format!("a vector of length {m} is not a triangular number of entries"),
    ))
}

fn sum_list(xs: Vec<Array>, like: &Array) -> Result<Array> {
    let mut it = xs.into_iter();
    match it.next() {
        None => Ok(scalar_like(like, 0.0)?),
        Some(first) => it.try_fold(first, |a, b| Ok(a.add(&b)?)),
    }
}

impl Transform {
    /// Event rank of the input.
    pub fn domain_event_dim(&self) -> usize {
        match self {
            Transform::StickBreaking
            | Transform::Ordered
            | Transform::LowerCholesky
            | Transform::CorrCholesky => 1,
            Transform::CholeskyToCov => 2,
            Transform::Compose(ts) => ts.first().map_or(0, Transform::domain_event_dim),
            Transform::Independent(t, n) => t.domain_event_dim() + n,
            _ => 0,
        }
    }
    /// Event rank of the output.
    pub fn codomain_event_dim(&self) -> usize {
        match self {
            Transform::StickBreaking | Transform::Ordered => 1,
            Transform::LowerCholesky | Transform::CorrCholesky | Transform::CholeskyToCov => 2,
            Transform::Compose(ts) => ts.last().map_or(0, Transform::codomain_event_dim),
            Transform::Independent(t, n) => t.codomain_event_dim() + n,
            _ => 0,
        }
    }
    /// The constraint of the outputs.
    pub fn codomain(&self) -> Constraint {
        match self {
            Transform::Exp => Constraint::Positive,
            Transform::Sigmoid => Constraint::UnitInterval,
            Transform::StickBreaking => Constraint::Simplex,
            Transform::Ordered => Constraint::OrderedVector,
            Transform::LowerCholesky => Constraint::LowerCholesky,
            Transform::CorrCholesky => Constraint::CorrCholesky,
            Transform::CholeskyToCov => Constraint::PositiveDefinite,
            Transform::Compose(ts) => ts.last().map_or(Constraint::Real, Transform::codomain),
            Transform::Independent(t, n) => Constraint::Independent(Box::new(t.codomain()), *n),
            _ => Constraint::Real,
        }
    }
    /// Output shape for an input shape.
    pub fn forward_shape(&self, s: &[usize]) -> Vec<usize> {
        let mut v = s.to_vec();
        match self {
            Transform::StickBreaking => {
                if let Some(l) = v.last_mut() {
                    *l += 1;
                }
            }
            Transform::LowerCholesky | Transform::CorrCholesky => {
                if let Some(m) = v.pop() {
                    let strict = matches!(self, Transform::CorrCholesky);
                    let n = tri_side(m, strict, "forward_shape").unwrap_or(0);
                    v.push(n);
                    v.push(n);
                }
            }
            Transform::Compose(ts) => {
                for t in ts {
                    v = t.forward_shape(&v);
                }
            }
            Transform::Independent(t, _) => v = t.forward_shape(&v),
            _ => {}
        }
        v
    }
    /// Input shape for an output shape.
    pub fn inverse_shape(&self, s: &[usize]) -> Vec<usize> {
        let mut v = s.to_vec();
        match self {
            Transform::StickBreaking => {
                if let Some(l) = v.last_mut() {
                    *l = l.saturating_sub(1);
                }
            }
            Transform::LowerCholesky | Transform::CorrCholesky if v.len() >= 2 => {
                let n = v.pop().unwrap_or(0);
                v.pop();
                v.push(if matches!(self, Transform::CorrCholesky) {
                    n * n.saturating_sub(1) / 2
                } else {
                    n * (n + 1) / 2
                });
            }
            Transform::Compose(ts) => {
                for t in ts.iter().rev() {
                    v = t.inverse_shape(&v);
                }
            }
            Transform::Independent(t, _) => v = t.inverse_shape(&v),
            _ => {}
        }
        v
    }

    /// `y = t(x)`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(match self {
            Transform::Identity => x.clone(),
            Transform::Exp => x.exp()?,
            Transform::Sigmoid => {
                let (tiny, eps) = tiny_eps(x.dtype());
                x.sigmoid()?
                    .maximum(&scalar_like(x, tiny)?)?
                    .minimum(&scalar_like(x, 1.0 - eps)?)?
            }
            Transform::Affine { loc, scale } => {
                let (loc, scale) = (loc.cast(x.dtype())?, scale.cast(x.dtype())?);
                loc.add(&scale.mul(x)?)?
            }
            Transform::StickBreaking => {
                let m = last(x, "StickBreaking")?;
                let (tiny, eps) = tiny_eps(x.dtype());
                let mut rem: Option<Array> = None;
                let mut ys = Vec::with_capacity(m + 1);
                for i in 0..m {
                    // Shifted so that x = 0 maps to the uniform point of the simplex.
                    let xi = index_last(x, i)?.addc(-((m - i) as f64).ln())?;
                    let z = xi
                        .sigmoid()?
                        .maximum(&scalar_like(x, tiny)?)?
                        .minimum(&scalar_like(x, 1.0 - eps)?)?;
                    let (y, r) = match &rem {
                        None => (z.clone(), z.rsubc(1.0)?),
                        Some(r) => (z.mul(r)?, r.mul(&z.rsubc(1.0)?)?),
                    };
                    ys.push(y);
                    rem = Some(r);
                }
                match rem {
                    Some(r) => ys.push(r),
                    None => ys.push(full_batch(x, 1.0)?),
                }
                stack_last(&ys)?
            }
            Transform::Ordered => {
                let n = last(x, "Ordered")?;
                let mut acc: Option<Array> = None;
                let mut ys = Vec::with_capacity(n);
                for i in 0..n {
                    let xi = index_last(x, i)?;
                    let y = match acc {
                        None => xi,
                        Some(a) => a.add(&xi.exp()?)?,
                    };
                    acc = Some(y.clone());
                    ys.push(y);
                }
                stack_last(&ys)?
            }
            Transform::LowerCholesky => {
                let m = last(x, "LowerCholesky")?;
                let n = tri_side(m, false, "LowerCholesky")?;
                let mut e = vec![vec![None; n]; n];
                let mut t = 0;
                for i in 0..n {
                    for j in 0..i {
                        e[i][j] = Some(index_last(x, t)?);
                        t += 1;
                    }
                }
                for (i, row) in e.iter_mut().enumerate() {
                    row[i] = Some(index_last(x, t + i)?.exp()?);
                }
                assemble(&e, x)?
            }
            Transform::CorrCholesky => {
                let m = last(x, "CorrCholesky")?;
                let n = tri_side(m, true, "CorrCholesky")?;
                let (_, eps) = tiny_eps(x.dtype());
                let mut e = vec![vec![None; n]; n];
                let mut t = 0;
                for i in 0..n {
                    // Remaining stick length of row i: prod_{k<j} sqrt(1 - r_ik^2).
                    let mut rem: Option<Array> = None;
                    for j in 0..i {
                        let r = index_last(x, t)?
                            .tanh()?
                            .maximum(&scalar_like(x, -1.0 + eps)?)?
                            .minimum(&scalar_like(x, 1.0 - eps)?)?;
                        t += 1;
                        let s = r.square()?.rsubc(1.0)?.sqrt()?;
                        let (y, nr) = match &rem {
                            None => (r, s),
                            Some(q) => (r.mul(q)?, q.mul(&s)?),
                        };
                        e[i][j] = Some(y);
                        rem = Some(nr);
                    }
                    e[i][i] = Some(match rem {
                        Some(q) => q,
                        None => full_batch(x, 1.0)?,
                    });
                }
                assemble(&e, x)?
            }
            Transform::CholeskyToCov => {
                let n = last(x, "CholeskyToCov")?;
                let l: Vec<Vec<Array>> = (0..n)
                    .map(|i| (0..n).map(|j| entry(x, i, j)).collect::<Result<Vec<_>>>())
                    .collect::<Result<_>>()?;
                let mut e = vec![vec![None; n]; n];
                for i in 0..n {
                    for j in 0..n {
                        let terms: Vec<Array> = (0..=i.min(j))
                            .map(|k| l[i][k].mul(&l[j][k]))
                            .collect::<ferrax_core::Result<_>>()?;
                        e[i][j] = Some(sum_list(terms, x)?);
                    }
                }
                assemble(&e, x)?
            }
            Transform::Compose(ts) => {
                let mut y = x.clone();
                for t in ts {
                    y = t.forward(&y)?;
                }
                y
            }
            Transform::Independent(t, _) => t.forward(x)?,
        })
    }

    /// `x = t^-1(y)`.
    pub fn inverse(&self, y: &Array) -> Result<Array> {
        Ok(match self {
            Transform::Identity => y.clone(),
            Transform::Exp => y.log()?,
            Transform::Sigmoid => y.log()?.sub(&y.neg()?.log1p()?)?,
            Transform::Affine { loc, scale } => {
                y.sub(&loc.cast(y.dtype())?)?.div(&scale.cast(y.dtype())?)?
            }
            Transform::StickBreaking => {
                let k = last(y, "StickBreaking")?;
                let (tiny, _) = tiny_eps(y.dtype());
                let mut cum: Option<Array> = None;
                let mut xs = Vec::with_capacity(k.saturating_sub(1));
                for i in 0..k.saturating_sub(1) {
                    let yi = index_last(y, i)?;
                    let c = match cum {
                        None => yi.clone(),
                        Some(c) => c.add(&yi)?,
                    };
                    let z1m = c.rsubc(1.0)?.maximum(&scalar_like(y, tiny)?)?;
                    xs.push(yi.div(&z1m)?.log()?.addc(((k - 1 - i) as f64).ln())?);
                    cum = Some(c);
                }
                stack_last(&xs)?
            }
            Transform::Ordered => {
                let n = last(y, "Ordered")?;
                let mut xs = Vec::with_capacity(n);
                for i in 0..n {
                    let yi = index_last(y, i)?;
                    xs.push(if i == 0 {
                        yi
                    } else {
                        yi.sub(&index_last(y, i - 1)?)?.log()?
                    });
                }
                stack_last(&xs)?
            }
            Transform::LowerCholesky => {
                let n = last(y, "LowerCholesky")?;
                let mut xs = Vec::new();
                for i in 0..n {
                    for j in 0..i {
                        xs.push(entry(y, i, j)?);
                    }
                }
                for i in 0..n {
                    xs.push(entry(y, i, i)?.log()?);
                }
                stack_last(&xs)?
            }
            Transform::CorrCholesky => {
                let n = last(y, "CorrCholesky")?;
                let mut xs = Vec::new();
                for i in 0..n {
                    let mut cum: Option<Array> = None;
                    for j in 0..i {
                        let yij = entry(y, i, j)?;
                        let rem = match &cum {
                            None => full_batch(&yij, 1.0)?,
                            Some(c) => c.rsubc(1.0)?,
                        };
                        let r = yij.div(&rem.sqrt()?)?;
                        xs.push(ferrax_core::prim::unary::atanh(&r)?);
                        let sq = yij.square()?;
                        cum = Some(match cum {
                            None => sq,
                            Some(c) => c.add(&sq)?,
                        });
                    }
                }
                if xs.is_empty() {
                    return Err(Error::invalid(
                        "CorrCholesky",
                        "a 1x1 correlation factor has no free entries",
                    ));
                }
                stack_last(&xs)?
            }
            Transform::CholeskyToCov => cholesky_host(y)?,
            Transform::Compose(ts) => {
                let mut x = y.clone();
                for t in ts.iter().rev() {
                    x = t.inverse(&x)?;
                }
                x
            }
            Transform::Independent(t, _) => t.inverse(y)?,
        })
    }

    /// `log |det dy/dx|` for `y = t(x)`, summed over the domain's event axes (so its shape
    /// is `x`'s shape without `domain_event_dim` trailing axes).
    pub fn log_abs_det_jacobian(&self, x: &Array, y: &Array) -> Result<Array> {
        Ok(match self {
            Transform::Identity => crate::math::full_like(x, 0.0)?,
            Transform::Exp => x.clone(),
            Transform::Sigmoid => x.softplus()?.neg()?.sub(&x.neg()?.softplus()?)?,
            Transform::Affine { scale, .. } => {
                scale.cast(x.dtype())?.abs()?.log()?.bcast(x.shape())?
            }
            Transform::StickBreaking => {
                let m = last(x, "StickBreaking")?;
                let mut terms = Vec::with_capacity(m);
                for i in 0..m {
                    let xi = index_last(x, i)?.addc(-((m - i) as f64).ln())?;
                    let yi = index_last(y, i)?;
                    terms.push(yi.log()?.add(&xi.log_sigmoid()?)?.sub(&xi)?);
                }
                sum_list(terms, &index_last(x, 0)?)?
            }
            Transform::Ordered => {
                let n = last(x, "Ordered")?;
                let terms: Vec<Array> = (1..n)
                    .map(|i| index_last(x, i))
                    .collect::<ferrax_core::Result<_>>()?;
                sum_list(terms, &batch_zero(x)?)?
            }
            Transform::LowerCholesky => {
                let m = last(x, "LowerCholesky")?;
                let n = tri_side(m, false, "LowerCholesky")?;
                let terms: Vec<Array> = (m - n..m)
                    .map(|i| index_last(x, i))
                    .collect::<ferrax_core::Result<_>>()?;
                sum_list(terms, &batch_zero(x)?)?
            }
            Transform::CorrCholesky => {
                let m = last(x, "CorrCholesky")?;
                let n = tri_side(m, true, "CorrCholesky")?;
                // Stick-breaking part: 0.5 sum over j <= i-2 of log(1 - sum_{k<=j} y_ik^2).
                let mut terms = Vec::new();
                for i in 0..n {
                    let mut cum: Option<Array> = None;
                    for j in 0..i.saturating_sub(1) {
                        let sq = entry(y, i, j)?.square()?;
                        let c = match cum {
                            None => sq,
                            Some(c) => c.add(&sq)?,
                        };
                        terms.push(c.rsubc(1.0)?.log()?.mulc(0.5)?);
                        cum = Some(c);
                    }
                }
                // tanh part: log(1 - tanh(x)^2) = -2 (x + softplus(-2x) - log 2).
                for t in 0..m {
                    let xt = index_last(x, t)?;
                    terms.push(
                        xt.add(&xt.mulc(-2.0)?.softplus()?)?
                            .addc(-std::f64::consts::LN_2)?
                            .mulc(-2.0)?,
                    );
                }
                sum_list(terms, &batch_zero(x)?)?
            }
            Transform::CholeskyToCov => {
                // log|det| of L -> L L^T on lower-triangular L: n log 2 + sum_i (n - i) log L_ii.
                let n = last(x, "CholeskyToCov")?;
                let mut terms = Vec::with_capacity(n);
                for i in 0..n {
                    terms.push(entry(x, i, i)?.log()?.mulc((n - i) as f64)?);
                }
                sum_list(terms, &batch_zero(&index_last(x, 0)?)?)?
                    .addc(n as f64 * std::f64::consts::LN_2)?
            }
            Transform::Compose(ts) => {
                let target = x.rank().saturating_sub(self.domain_event_dim());
                let mut cur = x.clone();
                let mut total: Option<Array> = None;
                for (k, t) in ts.iter().enumerate() {
                    let next = if k + 1 == ts.len() {
                        y.clone()
                    } else {
                        t.forward(&cur)?
                    };
                    let l = t.log_abs_det_jacobian(&cur, &next)?;
                    let l = l.sum_last(l.rank().saturating_sub(target))?;
                    total = Some(match total {
                        None => l,
                        Some(a) => a.add(&l)?,
                    });
                    cur = next;
                }
                match total {
                    Some(t) => t,
                    None => crate::math::full_like(x, 0.0)?,
                }
            }
            Transform::Independent(t, n) => {
                let l = t.log_abs_det_jacobian(x, y)?;
                l.sum_last((*n).min(l.rank()))?
            }
        })
    }
}

/// Zeros of `x`'s batch shape (its shape without the last axis).
fn batch_zero(x: &Array) -> Result<Array> {
    full_batch(x, 0.0)
}

/// An array of `x`'s batch shape (without the last axis) filled with `c`.
fn full_batch(x: &Array, c: f64) -> Result<Array> {
    let mut s = x.shape().to_vec();
    s.pop();
    Ok(scalar_like(x, c)?.bcast(&s)?)
}
