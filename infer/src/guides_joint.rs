//! Automatic guides over the joint unconstrained latent vector (NumPyro's
//! `AutoContinuous` family): all latent sites are packed into one flat vector `z`, a
//! single distribution is put on `z`, and each site is `biject_to(support)` of its slice,
//! sampled as a `Delta` whose log density is `-log|det J|` so the guide's density of the
//! constrained values is exact.
//!
//! - [`AutoDiagonalNormal`]: `z ~ Normal(loc, scale)` (params `auto_loc`, `auto_scale`).
//! - [`AutoMultivariateNormal`]: `z ~ MVN(loc, scale_tril)` (`auto_loc`, `auto_scale_tril`).
//! - [`AutoLowRankMultivariateNormal`]: `z ~ MVN(loc, W W^T + diag(d))` (`auto_loc`,
//!   `auto_cov_factor`, `auto_cov_diag`).
//! - [`AutoLaplaceApproximation`]: a point `z = loc` during SVI (MAP of the unconstrained
//!   potential), then `MVN(loc, H^-1)` with `H` the Hessian of the potential at `loc`
//!   ([`AutoLaplaceApproximation::posterior`]).

use crate::constraints::Constraint;
use crate::dist::{Delta, DistExt, MultivariateNormal, Normal};
use crate::error::{Error, Result};
use crate::guides::{auto_sites, AutoSite, Guide};
use crate::handlers::{param, sample, Trace};
use crate::math::{index_last, slice_last, stack_last, to_f64, ArrayMath};
use crate::transforms::{biject_to, Transform};
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::collections::HashMap;

/// The packed latent layout shared by the joint guides.
#[derive(Clone, Debug, Default)]
struct Layout {
    sites: Vec<AutoSite>,
    offsets: Vec<usize>,
    dim: usize,
    dtype: Option<DType>,
}

impl Layout {
    fn new(sites: Vec<AutoSite>) -> Result<Layout> {
        let mut offsets = Vec::with_capacity(sites.len());
        let mut dim = 0;
        let mut dtype = None;
        for s in &sites {
            offsets.push(dim);
            dim += s.unconstrained_shape.iter().product::<usize>();
            dtype = Some(match dtype {
                Some(DType::F64) | None if s.dtype == DType::F64 => DType::F64,
                None => s.dtype,
                Some(d) => d,
            });
        }
        if dim == 0 {
            return Err(Error::invalid(
                "autoguide",
                "the model has no continuous latent sites",
            ));
        }
        Ok(Layout {
            sites,
            offsets,
            dim,
            dtype,
        })
    }
    fn dt(&self) -> DType {
        self.dtype.unwrap_or(DType::F64)
    }
    fn init_loc(&self) -> Result<Array> {
        let mut v = Vec::with_capacity(self.dim);
        for s in &self.sites {
            v.extend(to_f64(&s.init_loc)?);
        }
        Ok(Array::from_vec(vec![self.dim], v)?.cast(self.dt())?)
    }
    /// Samples every site from its slice of `z` (shape `[dim]`).
    fn unpack(&self, z: &Array) -> Result<()> {
        for (s, &off) in self.sites.iter().zip(&self.offsets) {
            let n: usize = s.unconstrained_shape.iter().product();
            let u = slice_last(z, off, off + n)?;
            let u =
                ferrax_core::prim::reshape::reshape(&u, &s.unconstrained_shape)?.cast(s.dtype)?;
            let v = s.transform.forward(&u)?;
            let ed = s.event_dim.min(v.rank());
            let ladj = if matches!(s.transform, Transform::Identity) {
                Array::full(&[], v.dtype(), 0.0)
            } else {
                s.transform.log_abs_det_jacobian(&u, &v)?.neg()?
            };
            sample(&s.name, Delta::with(v, ladj, ed)?, None)?;
        }
        Ok(())
    }
    /// Constrained values of every site at a concrete `z`.
    fn constrain(&self, z: &[f64]) -> Result<HashMap<String, Array>> {
        let mut out = HashMap::new();
        for (s, &off) in self.sites.iter().zip(&self.offsets) {
            let n: usize = s.unconstrained_shape.iter().product();
            let u = Array::from_vec(s.unconstrained_shape.clone(), z[off..off + n].to_vec())?
                .cast(s.dtype)?;
            out.insert(s.name.clone(), s.transform.forward(&u)?);
        }
        Ok(out)
    }
}

fn not_set_up() -> Error {
    Error::invalid(
        "autoguide",
        "the guide has not been set up: call `setup` with a model trace (Svi::init does)",
    )
}

const LATENT: &str = "_auto_latent";

macro_rules! joint_common {
    () => {
        /// Number of entries of the packed unconstrained latent vector (after setup).
        pub fn latent_dim(&self) -> Option<usize> {
            self.layout.as_ref().map(|l| l.dim)
        }
        /// The latent sites in packing order (after setup).
        pub fn sites(&self) -> Option<&[AutoSite]> {
            self.layout.as_ref().map(|l| l.sites.as_slice())
        }
        /// Each site's median under the guide: `biject_to(support)` of its slice of
        /// `auto_loc`, from fitted params.
        pub fn median(&self, params: &HashMap<String, Array>) -> Result<HashMap<String, Array>> {
            let l = self.layout.as_ref().ok_or_else(not_set_up)?;
            let loc = params
                .get("auto_loc")
                .ok_or_else(|| Error::site("auto_loc", "missing parameter"))?;
            l.constrain(&to_f64(loc)?)
        }
    };
}

/// Diagonal normal over the packed latent vector (NumPyro's `AutoDiagonalNormal`).
#[derive(Clone, Debug, Default)]
pub struct AutoDiagonalNormal {
    layout: Option<Layout>,
}
impl AutoDiagonalNormal {
    /// A new guide (initial scale 0.1).
    pub fn new() -> Self {
        Self::default()
    }
    joint_common!();
}
impl Guide for AutoDiagonalNormal {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.layout = Some(Layout::new(auto_sites(model_trace, key, 2.0)?)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let loc = param("auto_loc", l.init_loc()?)?;
        let scale = param("auto_scale", Array::full(&[l.dim], l.dt(), 0.1))?;
        let z = sample(LATENT, Normal::new(&loc, &scale)?.to_event(1)?, None)?;
        l.unpack(&z)
    }
    fn param_transforms(&self) -> HashMap<String, Transform> {
        positive_param("auto_scale")
    }
}

/// Full-covariance normal over the packed latent vector (NumPyro's
/// `AutoMultivariateNormal`); `auto_scale_tril` is optimized through the lower-Cholesky
/// bijection.
#[derive(Clone, Debug, Default)]
pub struct AutoMultivariateNormal {
    layout: Option<Layout>,
}
impl AutoMultivariateNormal {
    /// A new guide (initial scale_tril 0.1 I).
    pub fn new() -> Self {
        Self::default()
    }
    joint_common!();
}
impl Guide for AutoMultivariateNormal {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.layout = Some(Layout::new(auto_sites(model_trace, key, 2.0)?)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let loc = param("auto_loc", l.init_loc()?)?;
        let d = l.dim;
        let mut eye = vec![0.0; d * d];
        for i in 0..d {
            eye[i * d + i] = 0.1;
        }
        let tril = param(
            "auto_scale_tril",
            Array::from_vec(vec![d, d], eye)?.cast(l.dt())?,
        )?;
        let z = sample(LATENT, MultivariateNormal::new(&loc, &tril)?, None)?;
        l.unpack(&z)
    }
    fn param_transforms(&self) -> HashMap<String, Transform> {
        let mut m = HashMap::new();
        m.insert("auto_scale_tril".to_string(), Transform::LowerCholesky);
        m
    }
}

/// Cholesky factor of a small symmetric positive definite matrix given as rank-0 array
/// entries, unrolled with ops (so it traces and differentiates).
fn chol_entries(a: &[Vec<Array>]) -> Result<Vec<Vec<Option<Array>>>> {
    let d = a.len();
    let mut l: Vec<Vec<Option<Array>>> = vec![vec![None; d]; d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i][j].clone();
            for k in 0..j {
                let p = l[i][k]
                    .as_ref()
                    .expect("filled")
                    .mul(l[j][k].as_ref().expect("filled"))?;
                s = s.sub(&p)?;
            }
            l[i][j] = Some(if i == j {
                s.sqrt()?
            } else {
                s.div(l[j][j].as_ref().expect("filled"))?
            });
        }
    }
    Ok(l)
}

/// Normal with covariance `W W^T + diag(d)` over the packed latent vector (NumPyro's
/// `AutoLowRankMultivariateNormal`); sampled through the Cholesky factor of that
/// covariance, computed with ops (the latent dimension of these models is small).
#[derive(Clone, Debug)]
pub struct AutoLowRankMultivariateNormal {
    layout: Option<Layout>,
    rank: Option<usize>,
}
impl Default for AutoLowRankMultivariateNormal {
    fn default() -> Self {
        Self::new()
    }
}
impl AutoLowRankMultivariateNormal {
    /// A new guide with NumPyro's default rank `round(sqrt(latent_dim))`.
    pub fn new() -> Self {
        AutoLowRankMultivariateNormal {
            layout: None,
            rank: None,
        }
    }
    /// A guide with the given rank (at least 1).
    pub fn with_rank(rank: usize) -> Result<Self> {
        if rank == 0 {
            return Err(Error::invalid(
                "AutoLowRankMultivariateNormal",
                "rank must be at least 1",
            ));
        }
        Ok(AutoLowRankMultivariateNormal {
            layout: None,
            rank: Some(rank),
        })
    }
    /// The rank in use (after setup).
    pub fn rank(&self) -> Option<usize> {
        let d = self.layout.as_ref()?.dim;
        Some(
            self.rank
                .unwrap_or(((d as f64).sqrt().round() as usize).max(1)),
        )
    }
    joint_common!();
}
impl Guide for AutoLowRankMultivariateNormal {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.layout = Some(Layout::new(auto_sites(model_trace, key, 2.0)?)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let d = l.dim;
        let r = self.rank().ok_or_else(not_set_up)?;
        let loc = param("auto_loc", l.init_loc()?)?;
        // A small fixed nonzero factor: at W = 0 the entropy's gradient in W vanishes.
        let w0: Vec<f64> = (0..d * r)
            .map(|i| 0.01 * (((i * 7) % 5) as f64 - 2.0))
            .collect();
        let w = param(
            "auto_cov_factor",
            Array::from_vec(vec![d, r], w0)?.cast(l.dt())?,
        )?;
        let cd = param("auto_cov_diag", Array::full(&[d], l.dt(), 0.01))?;
        // we[i][k] = W[i, k] as a rank-0 array.
        let cols: Vec<Array> = (0..r)
            .map(|k| index_last(&w, k))
            .collect::<ferrax_core::Result<_>>()?;
        let we: Vec<Vec<Array>> = (0..d)
            .map(|i| cols.iter().map(|c| index_last(c, i)).collect())
            .collect::<ferrax_core::Result<_>>()?;
        let de: Vec<Array> = (0..d)
            .map(|i| index_last(&cd, i))
            .collect::<ferrax_core::Result<_>>()?;
        let mut cov: Vec<Vec<Array>> = Vec::with_capacity(d);
        for i in 0..d {
            let mut row = Vec::with_capacity(d);
            for j in 0..d {
                let mut s = we[i][0].mul(&we[j][0])?;
                for k in 1..r {
                    s = s.add(&we[i][k].mul(&we[j][k])?)?;
                }
                if i == j {
                    s = s.add(&de[i])?;
                }
                row.push(s);
            }
            cov.push(row);
        }
        let le = chol_entries(&cov)?;
        let zero = Array::full(&[], l.dt(), 0.0);
        let rows: Vec<Array> = le
            .iter()
            .map(|row| {
                let es: Vec<Array> = row
                    .iter()
                    .map(|e| e.clone().unwrap_or_else(|| zero.clone()))
                    .collect();
                stack_last(&es)
            })
            .collect::<ferrax_core::Result<_>>()?;
        // stack_last of rows gives [d (col), d (row)]; transpose back to row-major [row, col].
        let tril = ferrax_core::prim::transpose::transpose(&stack_last(&rows)?, &[1, 0])?;
        let z = sample(LATENT, MultivariateNormal::new(&loc, &tril)?, None)?;
        l.unpack(&z)
    }
    fn param_transforms(&self) -> HashMap<String, Transform> {
        positive_param("auto_cov_diag")
    }
}

/// Laplace approximation (NumPyro's `AutoLaplaceApproximation`): SVI fits the mode of the
/// unconstrained potential (a point guide with the Jacobian terms); [`Self::posterior`]
/// then gives `MVN(loc, H^-1)` from the Hessian `H` of the potential at the mode.
#[derive(Clone, Debug, Default)]
pub struct AutoLaplaceApproximation {
    layout: Option<Layout>,
}
impl AutoLaplaceApproximation {
    /// A new guide.
    pub fn new() -> Self {
        Self::default()
    }
    joint_common!();

    /// The Gaussian approximation over the packed unconstrained latent vector: its mean
    /// (`auto_loc`) and covariance (row-major `d x d`), the inverse of the Hessian of the
    /// model's potential at the mode. The Hessian is central differences (step 1e-5
    /// relative) of the compiled potential gradient, symmetrized.
    pub fn posterior<R>(
        &self,
        model: &(impl Fn() -> crate::Result<R> + ?Sized),
        params: &HashMap<String, Array>,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let loc = to_f64(
            params
                .get("auto_loc")
                .ok_or_else(|| Error::site("auto_loc", "missing parameter"))?,
        )?;
        let pot = crate::potential::Potential::new(model, &Key::new(0))?;
        if pot.dim() != l.dim {
            return Err(Error::invalid(
                "AutoLaplaceApproximation",
                format!(
                    "the model has {} unconstrained latent entries, the guide {}",
                    pot.dim(),
                    l.dim
                ),
            ));
        }
        let d = l.dim;
        let mut h = vec![0.0; d * d];
        for i in 0..d {
            let step = 1e-5 * loc[i].abs().max(1.0);
            let mut zp = loc.clone();
            zp[i] += step;
            let mut zm = loc.clone();
            zm[i] -= step;
            let gp = pot.value_and_grad(&zp)?.1;
            let gm = pot.value_and_grad(&zm)?.1;
            for j in 0..d {
                h[i * d + j] = (gp[j] - gm[j]) / (2.0 * step);
            }
        }
        for i in 0..d {
            for j in 0..i {
                let m = 0.5 * (h[i * d + j] + h[j * d + i]);
                h[i * d + j] = m;
                h[j * d + i] = m;
            }
        }
        let lh = crate::mcmc::nuts::cholesky(&h, d).ok_or_else(|| {
            Error::invalid(
                "AutoLaplaceApproximation",
                "the Hessian of the potential at auto_loc is not positive definite (not at a mode?)",
            )
        })?;
        // H^-1 column by column from the Cholesky factor.
        let mut cov = vec![0.0; d * d];
        for c in 0..d {
            let mut y = vec![0.0; d];
            for i in 0..d {
                let mut s = if i == c { 1.0 } else { 0.0 };
                for k in 0..i {
                    s -= lh[i * d + k] * y[k];
                }
                y[i] = s / lh[i * d + i];
            }
            let mut x = vec![0.0; d];
            for i in (0..d).rev() {
                let mut s = y[i];
                for k in i + 1..d {
                    s -= lh[k * d + i] * x[k];
                }
                x[i] = s / lh[i * d + i];
            }
            for i in 0..d {
                cov[i * d + c] = x[i];
            }
        }
        Ok((loc, cov))
    }

    /// `n` draws of every site from the Laplace approximation (constrained), each with a
    /// leading axis of size `n`.
    pub fn sample_posterior<R>(
        &self,
        key: &Key,
        model: &(impl Fn() -> crate::Result<R> + ?Sized),
        params: &HashMap<String, Array>,
        n: usize,
    ) -> Result<HashMap<String, Array>> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let (loc, cov) = self.posterior(model, params)?;
        let d = l.dim;
        let lc = crate::mcmc::nuts::cholesky(&cov, d).ok_or_else(|| {
            Error::invalid(
                "AutoLaplaceApproximation",
                "covariance not positive definite",
            )
        })?;
        let mvn = MultivariateNormal::new(
            Array::from_vec(vec![d], loc)?,
            Array::from_vec(vec![d, d], lc)?,
        )?;
        let z = to_f64(&crate::dist::Distribution::sample(&mvn, key, &[n])?)?;
        let mut per: HashMap<String, (Vec<usize>, Vec<f64>)> = HashMap::new();
        for row in z.chunks(d) {
            for (name, v) in l.constrain(row)? {
                let e = per
                    .entry(name)
                    .or_insert_with(|| (v.shape().to_vec(), Vec::new()));
                e.1.extend(to_f64(&v)?);
            }
        }
        per.into_iter()
            .map(|(name, (shape, data))| {
                let mut s = vec![n];
                s.extend(shape);
                Ok((name, Array::from_vec(s, data)?))
            })
            .collect()
    }
}
impl Guide for AutoLaplaceApproximation {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.layout = Some(Layout::new(auto_sites(model_trace, key, 2.0)?)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let l = self.layout.as_ref().ok_or_else(not_set_up)?;
        let loc = param("auto_loc", l.init_loc()?)?;
        let z = sample(LATENT, Delta::with(&loc, 0.0, 1)?, None)?;
        l.unpack(&z)
    }
}

/// The transform map of a guide whose one constrained parameter is positive.
fn positive_param(name: &str) -> HashMap<String, Transform> {
    biject_to(&Constraint::Positive)
        .map(|t| HashMap::from([(name.to_string(), t)]))
        .unwrap_or_default()
}
