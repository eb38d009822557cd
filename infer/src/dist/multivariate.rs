//! Distributions with a vector event: Dirichlet, MultivariateNormal; and Delta (a point
//! mass with any event rank). Small-event linear algebra (the triangular solve of the
//! multivariate normal) is unrolled over the event size into elementwise ops, which is
//! what these models need (event sizes of a few to a few dozen) and differentiates with
//! the elementwise rules alone.

use super::continuous::common;
use super::{at, full_shape, promote, std_draw, Distribution, IntoArray};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{bshape, full_like, index_last, stack_last, to_f64, where_, ArrayMath};
use ferrax_core::prim::random::Dist as R;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};

/// Dirichlet(concentration) over the simplex; `concentration` has shape `batch ++ [K]`.
#[derive(Clone, Debug)]
pub struct Dirichlet {
    /// Concentrations, shape `batch ++ [K]`.
    pub concentration: Array,
    batch: Vec<usize>,
    dt: DType,
}
impl Dirichlet {
    /// Builds it.
    pub fn new(concentration: impl IntoArray) -> Result<Self> {
        let (mut ps, shape, dt) = promote("Dirichlet", vec![concentration.into_array()])?;
        if shape.is_empty() {
            return Err(Error::invalid(
                "Dirichlet",
                "concentration needs a category axis (shape [..., K])",
            ));
        }
        Ok(Dirichlet {
            concentration: ps.remove(0),
            batch: shape[..shape.len() - 1].to_vec(),
            dt,
        })
    }
}
impl Distribution for Dirichlet {
    common!("Dirichlet");
    fn event_shape(&self) -> Vec<usize> {
        vec![*self.concentration.shape().last().expect("checked")]
    }
    fn support(&self) -> Constraint {
        Constraint::Simplex
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.concentration], self.dt)?;
        let a = &p[0];
        let norm = a.lgamma()?.sum_last(1)?.sub(&a.sum_last(1)?.lgamma()?)?;
        Ok(a.addc(-1.0)?.xlogy(&x)?.sum_last(1)?.sub(&norm)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &self.event_shape());
        let a = self.concentration.bcast(&shape)?;
        std_draw(key, R::Dirichlet, &shape, self.dt, &[&a])
    }
    fn mean(&self) -> Result<Array> {
        let a = &self.concentration;
        Ok(a.div(&a.sum_last(1)?.expand_last()?)?)
    }
    fn variance(&self) -> Result<Array> {
        let a = &self.concentration;
        let a0 = a.sum_last(1)?.expand_last()?;
        Ok(a.mul(&a0.sub(a)?)?
            .div(&a0.square()?.mul(&a0.addc(1.0)?)?)?)
    }
}

/// Adds a trailing axis of size 1 (`x[..., None]`).
trait ExpandLast {
    fn expand_last(&self) -> Result<Array>;
}
impl ExpandLast for Array {
    fn expand_last(&self) -> Result<Array> {
        Ok(ferrax_core::prim::reshape::expand_dims(self, self.rank())?)
    }
}

/// `m[..., i, j]` of a matrix-valued array.
pub(crate) fn entry(m: &Array, i: usize, j: usize) -> Result<Array> {
    Ok(index_last(&index_last(m, j)?, i)?)
}

/// Builds `[..., n, n]` from entries `e[i][j]` (each of the batch shape; `None` = 0).
pub(crate) fn assemble(e: &[Vec<Option<Array>>], like: &Array) -> Result<Array> {
    let n = e.len();
    let mut batch: Vec<usize> = Vec::new();
    for row in e {
        for x in row.iter().flatten() {
            batch = bshape("assemble", &batch, x.shape())?;
        }
    }
    let zero = full_like(like, 0.0)?.sum_all()?.bcast(&batch)?;
    let mut cols = Vec::with_capacity(n);
    for j in 0..n {
        let col: Vec<Array> = (0..n)
            .map(|i| match &e[i][j] {
                Some(x) => Ok(x.bcast(&batch)?),
                None => Ok(zero.clone()),
            })
            .collect::<Result<_>>()?;
        cols.push(stack_last(&col)?);
    }
    Ok(stack_last(&cols)?)
}

/// Multivariate normal with mean `loc` (`[..., k]`) and lower-triangular Cholesky factor
/// `scale_tril` (`[..., k, k]`) of the covariance.
#[derive(Clone, Debug)]
pub struct MultivariateNormal {
    /// Mean, shape `[..., k]`.
    pub loc: Array,
    /// Lower Cholesky factor of the covariance, shape `[..., k, k]`.
    pub scale_tril: Array,
    batch: Vec<usize>,
    k: usize,
    dt: DType,
}
impl MultivariateNormal {
    /// From the mean and the lower Cholesky factor of the covariance.
    pub fn new(loc: impl IntoArray, scale_tril: impl IntoArray) -> Result<Self> {
        let (loc, l) = (loc.into_array(), scale_tril.into_array());
        let dt = if loc.dtype() == DType::F64 || l.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let loc = loc.cast(dt)?;
        let l = l.cast(dt)?;
        if loc.rank() < 1 || l.rank() < 2 {
            return Err(Error::invalid(
                "MultivariateNormal",
                format!(
                    "loc must be [..., k] and scale_tril [..., k, k], got {:?} and {:?}",
                    loc.shape(),
                    l.shape()
                ),
            ));
        }
        let k = loc.shape()[loc.rank() - 1];
        let ls = l.shape();
        if ls[ls.len() - 1] != k || ls[ls.len() - 2] != k {
            return Err(Error::invalid(
                "MultivariateNormal",
                format!(
                    "scale_tril must be [..., {k}, {k}] to match loc {:?}, got {:?}",
                    loc.shape(),
                    ls
                ),
            ));
        }
        let batch = bshape(
            "MultivariateNormal",
            &loc.shape()[..loc.rank() - 1],
            &ls[..ls.len() - 2],
        )?;
        Ok(MultivariateNormal {
            loc,
            scale_tril: l,
            batch,
            k,
            dt,
        })
    }
    /// From the mean and a covariance matrix. A concrete covariance is factored on the
    /// host; a traced one (inside a potential or a staged ELBO) by an unrolled Cholesky
    /// built from ops, so it differentiates (O(k^3) ops: meant for small k).
    pub fn from_covariance(loc: impl IntoArray, covariance: impl IntoArray) -> Result<Self> {
        let cov = covariance.into_array();
        let l = if cov.is_tracer() {
            cholesky_traced(&cov)?
        } else {
            cholesky_host(&cov)?
        };
        Self::new(loc, l)
    }
    fn l_entries(&self, l: &Array) -> Result<Vec<Vec<Option<Array>>>> {
        let k = self.k;
        let mut e = vec![vec![None; k]; k];
        for (i, row) in e.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate().take(i + 1) {
                *v = Some(entry(l, i, j)?);
            }
        }
        Ok(e)
    }
}
impl Distribution for MultivariateNormal {
    common!("MultivariateNormal");
    fn event_shape(&self) -> Vec<usize> {
        vec![self.k]
    }
    fn support(&self) -> Constraint {
        Constraint::RealVector
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale_tril], self.dt)?;
        let d = x.sub(&p[0])?;
        let le = self.l_entries(&p[1])?;
        // Forward substitution y = L^-1 d, unrolled: y_i = (d_i - sum_{j<i} L_ij y_j) / L_ii.
        let mut ys: Vec<Array> = Vec::with_capacity(self.k);
        let mut maha: Option<Array> = None;
        let mut logdet: Option<Array> = None;
        for i in 0..self.k {
            let mut r = index_last(&d, i)?;
            for j in 0..i {
                r = r.sub(&le[i][j].as_ref().expect("lower").mul(&ys[j])?)?;
            }
            let lii = le[i][i].as_ref().expect("diagonal");
            let y = r.div(lii)?;
            let y2 = y.square()?;
            maha = Some(match maha {
                None => y2,
                Some(m) => m.add(&y2)?,
            });
            let ld = lii.log()?;
            logdet = Some(match logdet {
                None => ld,
                Some(s) => s.add(&ld)?,
            });
            ys.push(y);
        }
        let maha = maha.ok_or_else(|| Error::invalid("MultivariateNormal", "event size 0"))?;
        let logdet = logdet.expect("k > 0");
        let c = -0.5 * self.k as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok(maha.mulc(-0.5)?.sub(&logdet)?.addc(c)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[self.k]);
        let eps = std_draw(key, R::Normal, &shape, self.dt, &[])?;
        let le = self.l_entries(&self.scale_tril)?;
        let es: Vec<Array> = (0..self.k)
            .map(|j| index_last(&eps, j))
            .collect::<ferrax_core::Result<_>>()?;
        let mut xs = Vec::with_capacity(self.k);
        for i in 0..self.k {
            let mut acc =
                index_last(&self.loc, i)?.add(&le[i][0].as_ref().expect("lower").mul(&es[0])?)?;
            for j in 1..=i {
                acc = acc.add(&le[i][j].as_ref().expect("lower").mul(&es[j])?)?;
            }
            xs.push(acc);
        }
        Ok(stack_last(&xs)?)
    }
    fn mean(&self) -> Result<Array> {
        let mut s = self.batch.clone();
        s.push(self.k);
        Ok(self.loc.bcast(&s)?)
    }
    fn variance(&self) -> Result<Array> {
        let le = self.l_entries(&self.scale_tril)?;
        let mut vs = Vec::with_capacity(self.k);
        for row in le.iter() {
            let mut acc: Option<Array> = None;
            for x in row.iter().flatten() {
                let sq = x.square()?;
                acc = Some(match acc {
                    None => sq,
                    Some(a) => a.add(&sq)?,
                });
            }
            vs.push(acc.expect("diagonal present"));
        }
        let v = stack_last(&vs)?;
        let mut s = self.batch.clone();
        s.push(self.k);
        Ok(v.bcast(&s)?)
    }
}

/// Cholesky factor of concrete symmetric positive-definite matrices `[..., n, n]`.
pub fn cholesky_host(a: &Array) -> Result<Array> {
    let s = a.shape().to_vec();
    if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
        return Err(Error::invalid(
            "cholesky",
            format!("expected square matrices [..., n, n], got {s:?}"),
        ));
    }
    let n = s[s.len() - 1];
    let v = to_f64(a)?;
    let mut out = vec![0.0; v.len()];
    for (m, o) in v.chunks(n * n.max(1)).zip(out.chunks_mut(n * n.max(1))) {
        for i in 0..n {
            for j in 0..=i {
                let mut sum = m[i * n + j];
                for k in 0..j {
                    sum -= o[i * n + k] * o[j * n + k];
                }
                if i == j {
                    if sum <= 0.0 || !sum.is_finite() {
                        return Err(Error::invalid(
                            "cholesky",
                            "the matrix is not positive definite",
                        ));
                    }
                    o[i * n + i] = sum.sqrt();
                } else {
                    o[i * n + j] = sum / o[j * n + j];
                }
            }
        }
    }
    Ok(Array::from_vec(s, out)?.cast(if a.dtype() == DType::F32 {
        DType::F32
    } else {
        DType::F64
    })?)
}

/// Cholesky factor of `[..., n, n]` symmetric positive definite matrices from ops
/// (unrolled over entries, so it traces and differentiates; not positive definite gives
/// NaN entries, as `jnp.linalg.cholesky`).
pub fn cholesky_traced(a: &Array) -> Result<Array> {
    let s = a.shape().to_vec();
    if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
        return Err(Error::invalid(
            "cholesky",
            format!("expected square matrices [..., n, n], got {s:?}"),
        ));
    }
    let n = s[s.len() - 1];
    let mut l: Vec<Vec<Option<Array>>> = vec![vec![None; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let mut acc = entry(a, i, j)?;
            for k in 0..j {
                let p = l[i][k]
                    .as_ref()
                    .expect("computed")
                    .mul(l[j][k].as_ref().expect("computed"))?;
                acc = acc.sub(&p)?;
            }
            l[i][j] = Some(if i == j {
                acc.sqrt()?
            } else {
                acc.div(l[j][j].as_ref().expect("computed"))?
            });
        }
    }
    assemble(&l, a)
}

/// A point mass at `v` (with `event_dim` trailing axes forming one event) carrying an
/// optional log density, as NumPyro's `Delta`.
#[derive(Clone, Debug)]
pub struct Delta {
    /// The point.
    pub v: Array,
    /// Log density at the point.
    pub log_density: Array,
    event_dim: usize,
    dt: DType,
}
impl Delta {
    /// A point mass at `v` with log density 0 and scalar events.
    pub fn new(v: impl IntoArray) -> Result<Self> {
        Self::with(v, 0.0, 0)
    }
    /// A point mass with a log density and `event_dim` event axes.
    pub fn with(v: impl IntoArray, log_density: impl IntoArray, event_dim: usize) -> Result<Self> {
        let v = v.into_array();
        if event_dim > v.rank() {
            return Err(Error::invalid(
                "Delta",
                format!(
                    "event_dim {event_dim} exceeds the rank of v {:?}",
                    v.shape()
                ),
            ));
        }
        let dt = if v.dtype().is_float() {
            v.dtype()
        } else {
            DType::F32
        };
        let log_density = log_density.into_array().cast(dt)?;
        Ok(Delta {
            v,
            log_density,
            event_dim,
            dt,
        })
    }
}
impl Distribution for Delta {
    fn name(&self) -> &'static str {
        "Delta"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.v.shape()[..self.v.rank() - self.event_dim].to_vec()
    }
    fn event_shape(&self) -> Vec<usize> {
        self.v.shape()[self.v.rank() - self.event_dim..].to_vec()
    }
    fn dtype(&self) -> DType {
        self.dt
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn is_discrete(&self) -> bool {
        !self.v.dtype().is_float()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.v, &self.log_density], self.dt)?;
        let hit = x.eq_(&p[0])?.cast(self.dt)?.sum_last(self.event_dim)?;
        let need = self.event_shape().iter().product::<usize>() as f64;
        let all = hit.gec(need)?;
        let lp = p[1].bcast(all.shape())?;
        Ok(where_(&all, &lp, &full_like(&lp, f64::NEG_INFINITY)?)?)
    }
    fn sample(&self, _key: &Key, s: &[usize]) -> Result<Array> {
        Ok(self
            .v
            .bcast(&full_shape(s, &self.batch_shape(), &self.event_shape()))?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.v.clone())
    }
    fn variance(&self) -> Result<Array> {
        Ok(full_like(&self.v.cast(self.dt)?, 0.0)?)
    }
}
