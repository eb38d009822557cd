//! Prior and posterior predictive sampling (NumPyro's `Predictive`).
//!
//! - [`Predictive::prior`]: runs the model `num_samples` times under `seed`.
//! - [`Predictive::from_samples`] / [`Predictive::from_mcmc`]: for each posterior draw,
//!   substitutes the draw into the latent sites and samples the rest.
//! - [`Predictive::from_guide`]: draws the latent sites from a fitted SVI guide, then runs
//!   the model.
//!
//! Observed sites are sampled, not returned as the data: a Rust model captures its data,
//! so there is no `y=None` argument to pass as in NumPyro, and predicting the observed
//! variables is what a predictive distribution is for. The result maps each returned site
//! to an array with a leading axis of draws. By default that is every sample site not
//! given by the posterior samples (with a guide: every sample site, the guide's draws
//! included), plus every deterministic site.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::Normal;
//! use ferrax_infer::handlers::sample;
//! use ferrax_infer::predictive::Predictive;
//!
//! # fn main() -> ferrax_infer::Result<()> {
//! let model = || -> ferrax_infer::Result<()> {
//!     let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
//!     sample("y", Normal::new(&mu, 0.1)?, Some(Array::scalar(3.0f64)))?;
//!     Ok(())
//! };
//! // Posterior draws of `mu` (leading axis: draws).
//! let mu = Array::from_vec(vec![3], vec![-1.0f64, 0.0, 10.0]).unwrap();
//! let post = Predictive::from_samples([("mu".to_string(), mu)].into_iter().collect())?;
//! let out = post.run(&Key::new(0), &model)?;
//! let y = out["y"].to_vec::<f64>()?;
//! assert_eq!(out["y"].shape(), &[3]);
//! assert!((y[2] - 10.0).abs() < 1.0); // y ~ Normal(mu, 0.1) for the third draw
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use crate::guides::Guide;
use crate::handlers::{seed, substitute, trace, with_handler, Messenger, Site, SiteKind};
use crate::math::{to_f64, ArrayMath};
use crate::mcmc::McmcResult;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Drops the data of observed sample sites so they are drawn (innermost handler, so the
/// handlers outside see an ordinary latent site and `seed` gives it a key).
struct UnobserveH;
impl Messenger for UnobserveH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        if s.kind == SiteKind::Sample && s.is_observed {
            s.is_observed = false;
            s.value = None;
        }
        Ok(())
    }
}

enum Source<'g> {
    Prior(usize),
    Samples(Vec<(String, Array)>, usize),
    Guide(&'g dyn Guide, HashMap<String, Array>, usize),
}

/// Predictive sampling from a model (see the [module docs](self)).
pub struct Predictive<'g> {
    source: Source<'g>,
    return_sites: Option<Vec<String>>,
}

impl std::fmt::Debug for Predictive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::Prior(n) => format!("prior, {n} draws"),
            Source::Samples(s, n) => format!("posterior samples of {} sites, {n} draws", s.len()),
            Source::Guide(_, _, n) => format!("guide, {n} draws"),
        };
        f.debug_struct("Predictive")
            .field("source", &kind)
            .field("return_sites", &self.return_sites)
            .finish()
    }
}

impl<'g> Predictive<'g> {
    /// `num_samples` draws from the prior (predictive) distribution.
    pub fn prior(num_samples: usize) -> Predictive<'static> {
        Predictive {
            source: Source::Prior(num_samples),
            return_sites: None,
        }
    }

    /// One run per posterior draw: `samples` maps latent site names to arrays whose
    /// leading axis indexes draws (the same number for every site).
    pub fn from_samples(samples: HashMap<String, Array>) -> Result<Predictive<'static>> {
        let mut v: Vec<(String, Array)> = samples.into_iter().collect();
        // Sorted so that runs do not depend on the hash map's iteration order.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut n = None;
        for (name, a) in &v {
            let d = *a.shape().first().ok_or_else(|| {
                Error::site(name, "posterior samples need a leading axis of draws")
            })?;
            match n {
                None => n = Some(d),
                Some(m) if m != d => {
                    return Err(Error::site(
                        name,
                        format!("{d} draws, but another site has {m}"),
                    ))
                }
                _ => {}
            }
        }
        Ok(Predictive {
            source: Source::Samples(v, n.unwrap_or(0)),
            return_sites: None,
        })
    }

    /// One run per draw of an MCMC result (chains concatenated, chain-major), substituting
    /// its latent sites.
    pub fn from_mcmc(run: &McmcResult) -> Result<Predictive<'static>> {
        let mut m = HashMap::new();
        for (name, d) in &run.sites {
            let mut shape = vec![d.num_chains * d.num_draws];
            shape.extend_from_slice(&d.shape);
            m.insert(name.clone(), Array::from_vec(shape, d.data.clone())?);
        }
        Predictive::from_samples(m)
    }

    /// `num_samples` runs with the latent sites drawn from `guide` at the fitted
    /// (constrained) `params`, e.g. [`SviRunResult::params`](crate::svi::SviRunResult).
    /// The guide must be set up (as [`Svi`](crate::svi::Svi) leaves it).
    pub fn from_guide(
        guide: &'g dyn Guide,
        params: HashMap<String, Array>,
        num_samples: usize,
    ) -> Predictive<'g> {
        Predictive {
            source: Source::Guide(guide, params, num_samples),
            return_sites: None,
        }
    }

    /// Returns exactly these sites (any sample, deterministic or param site).
    pub fn return_sites<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.return_sites = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Number of draws.
    pub fn num_samples(&self) -> usize {
        match &self.source {
            Source::Prior(n) | Source::Samples(_, n) | Source::Guide(_, _, n) => *n,
        }
    }

    /// Runs `model` once per draw (keys split from `key`); returns each returned site's
    /// values stacked along a new leading axis, in the site's dtype.
    pub fn run<R>(
        &self,
        key: &Key,
        model: &(impl Fn() -> Result<R> + ?Sized),
    ) -> Result<BTreeMap<String, Array>> {
        let n = self.num_samples();
        if n == 0 {
            return Err(Error::invalid("Predictive", "num_samples must be positive"));
        }
        let keys = key.split(n)?;
        let mut given: Vec<String> = Vec::new();
        let mut cols: Vec<(String, Vec<usize>, DType, Vec<f64>)> = Vec::new();
        for (i, k) in keys.into_iter().enumerate() {
            let (k_guide, k_model) = k.split2()?;
            let values: HashMap<String, Array> = match &self.source {
                Source::Prior(_) => HashMap::new(),
                Source::Samples(s, _) => s
                    .iter()
                    .map(|(name, a)| Ok((name.clone(), draw(a, i)?)))
                    .collect::<Result<_>>()?,
                Source::Guide(g, params, _) => {
                    let (_, gtr) =
                        trace(|| seed(k_guide, || substitute(params.clone(), || g.call())))?;
                    gtr.sites()
                        .iter()
                        .filter(|s| s.kind == SiteKind::Sample && !s.is_observed)
                        .filter_map(|s| s.value.clone().map(|v| (s.name.clone(), v)))
                        .collect()
                }
            };
            // Posterior samples are known to the caller, so they are not returned again;
            // a guide's draws are new, and returned (as NumPyro does).
            if i == 0 && !matches!(self.source, Source::Guide(..)) {
                given = values.keys().cloned().collect();
            }
            let (_, tr) = trace(|| {
                seed(k_model, || {
                    substitute(values, || {
                        with_handler(Rc::new(RefCell::new(UnobserveH)), model)
                    })
                })
            })?;
            if i == 0 {
                let names: Vec<String> = match &self.return_sites {
                    Some(r) => r.clone(),
                    None => tr
                        .sites()
                        .iter()
                        .filter(|s| match s.kind {
                            SiteKind::Sample => !given.contains(&s.name),
                            SiteKind::Deterministic => true,
                            _ => false,
                        })
                        .map(|s| s.name.clone())
                        .collect(),
                };
                for name in names {
                    let v = tr
                        .value(&name)
                        .ok_or_else(|| Error::site(&name, "no such site in the model"))?;
                    cols.push((name, v.shape().to_vec(), v.dtype(), Vec::new()));
                }
            }
            for (name, shape, _, data) in cols.iter_mut() {
                let v = tr.value(name).ok_or_else(|| {
                    Error::site(name.as_str(), "site missing in a later run of the model")
                })?;
                if v.shape() != shape.as_slice() {
                    return Err(Error::site(
                        name.as_str(),
                        format!(
                            "shape {:?} in draw {i}, but {:?} in the first draw",
                            v.shape(),
                            shape
                        ),
                    ));
                }
                data.extend(to_f64(v)?);
            }
        }
        cols.into_iter()
            .map(|(name, shape, dt, data)| {
                let mut s = vec![n];
                s.extend(shape);
                // Values were gathered as f64 (exact for every float dtype and for integers
                // below 2^53); cast back to the site's dtype.
                let a = Array::from_vec(s, data)?.cast(dt)?;
                Ok((name, a))
            })
            .collect()
    }
}

/// Draw `i` of `a` (leading axis), without that axis.
fn draw(a: &Array, i: usize) -> Result<Array> {
    let s = ferrax_core::prim::slice::slice_in_dim(a, 0, i, i + 1, 1)?;
    Ok(ferrax_core::prim::reshape::reshape(&s, &a.shape()[1..])?)
}
