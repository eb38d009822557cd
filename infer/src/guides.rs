//! Variational guides for [`Svi`](crate::svi::Svi): the [`Guide`] trait, any closure as a
//! hand-written guide, and NumPyro's automatic guides [`AutoNormal`] (mean-field normal in
//! unconstrained space) and [`AutoDelta`] (a point estimate: MAP), and the joint guides
//! over the packed latent vector ([`AutoDiagonalNormal`], [`AutoMultivariateNormal`],
//! [`AutoLowRankMultivariateNormal`], [`AutoLaplaceApproximation`]).
//!
//! A guide is a program like a model: it calls [`sample`] for every latent site of the
//! model (same names) and [`param`] for its learnable parameters. Automatic guides read the
//! model's latent sites from one prototype run ([`Guide::setup`]) and put each in
//! unconstrained space with [`biject_to`] of the site's support, so the optimizer works on
//! unbounded numbers whatever the support.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::{Exponential, Normal};
//! use ferrax_infer::guides::{AutoNormal, Guide};
//! use ferrax_infer::handlers::{sample, seed, trace};
//!
//! # fn main() -> ferrax_infer::Result<()> {
//! let model = || -> ferrax_infer::Result<()> {
//!     let s = sample("s", Exponential::new(1.0)?, None)?;
//!     sample("y", Normal::new(0.0, &s)?, Some(Array::scalar(0.5f64)))?;
//!     Ok(())
//! };
//! let (_, proto) = trace(|| seed(Key::new(0), model))?;
//! let mut guide = AutoNormal::new();
//! guide.setup(&proto, &Key::new(1))?;
//! // The guide draws `s` on its support (positive), with learnable loc and scale params.
//! let (_, tr) = trace(|| seed(Key::new(2), || guide.call()))?;
//! assert!(tr.value("s").unwrap().to_vec::<f64>()?[0] > 0.0);
//! assert!(tr.get("auto_s_loc").is_some() && tr.get("auto_s_scale").is_some());
//! # Ok(())
//! # }
//! ```

use crate::constraints::Constraint;
use crate::dist::{
    Delta, DistExt, Distribution, DynDist, Normal, TransformedDistribution, Uniform,
};
use crate::error::{Error, Result};
use crate::handlers::{param, sample, SiteKind, Trace};
use crate::math::ArrayMath;
use crate::transforms::{biject_to, Transform};
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::guides_joint::{
    AutoDiagonalNormal, AutoLaplaceApproximation, AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
};

/// A variational distribution over a model's latent sites.
pub trait Guide {
    /// Called once before inference with a trace of one run of the model (under `seed`),
    /// so automatic guides can learn the latent sites; `key` draws initial values.
    fn setup(&mut self, _model_trace: &Trace, _key: &Key) -> Result<()> {
        Ok(())
    }
    /// Runs the guide: `sample` for each latent site of the model, `param` for each
    /// learnable parameter.
    fn call(&self) -> Result<()>;
    /// For parameters that live on a constrained set: the bijection from the unconstrained
    /// value the optimizer updates onto the set. Parameters not named are unconstrained.
    fn param_transforms(&self) -> HashMap<String, Transform> {
        HashMap::new()
    }
}

/// Any closure is a (hand-written) guide with unconstrained parameters.
impl<F, R> Guide for F
where
    F: Fn() -> Result<R>,
{
    fn call(&self) -> Result<()> {
        self().map(|_| ())
    }
}

/// One latent site as an automatic guide sees it.
#[derive(Clone, Debug)]
pub struct AutoSite {
    /// Site name.
    pub name: String,
    /// Shape of the unconstrained value.
    pub unconstrained_shape: Vec<usize>,
    /// Number of trailing axes of the constrained value forming one event (the support's
    /// event dimension), so the guide's log density sums them.
    pub event_dim: usize,
    /// Unconstrained space to the support.
    pub transform: Transform,
    /// Float dtype of the value.
    pub dtype: DType,
    /// Initial unconstrained location.
    pub init_loc: Array,
}

/// The model's continuous latent sites, each with an initial location drawn uniformly in
/// `(-radius, radius)` of unconstrained space (NumPyro's `init_to_uniform`, radius 2): a
/// prior draw can be far in the tails (a HalfCauchy scale of 1e4) and make the first
/// steps of optimization useless.
pub(crate) fn auto_sites(model_trace: &Trace, key: &Key, radius: f64) -> Result<Vec<AutoSite>> {
    let mut out = Vec::new();
    let latent: Vec<_> = model_trace
        .sites()
        .iter()
        .filter(|s| s.kind == SiteKind::Sample && !s.is_observed)
        .collect();
    let keys = key.split(latent.len().max(1))?;
    for (s, k) in latent.into_iter().zip(keys) {
        let d = s
            .dist
            .as_ref()
            .ok_or_else(|| Error::site(&s.name, "sample site without a distribution"))?;
        if d.is_discrete() {
            return Err(Error::unsupported(
                "autoguide",
                format!(
                    "latent site `{}` is discrete ({}); automatic guides need continuous latent sites",
                    s.name,
                    d.name()
                ),
            ));
        }
        let v = s
            .value
            .as_ref()
            .ok_or_else(|| Error::site(&s.name, "the prototype run left no value"))?;
        let transform = biject_to(&d.support())?;
        let ushape = transform.inverse_shape(v.shape());
        let dtype = if v.dtype().is_float() {
            v.dtype()
        } else {
            DType::F64
        };
        let init_loc = Uniform::new(-radius, radius)?
            .sample(&k, &ushape)?
            .cast(dtype)?;
        out.push(AutoSite {
            name: s.name.clone(),
            unconstrained_shape: ushape,
            event_dim: d.support().event_dim(),
            transform,
            dtype,
            init_loc,
        });
    }
    Ok(out)
}

fn not_set_up() -> Error {
    Error::invalid(
        "autoguide",
        "the guide has not been set up: call `setup` with a model trace (Svi::init does)",
    )
}

/// Mean-field normal guide (NumPyro's `AutoNormal`): each latent site is
/// `biject_to(support)(u)` with `u ~ Normal(loc, scale)` independently per entry. Its
/// parameters are `auto_{site}_loc` (unconstrained) and `auto_{site}_scale` (positive; the
/// optimizer updates its log).
#[derive(Clone, Debug)]
pub struct AutoNormal {
    sites: Option<Vec<AutoSite>>,
    init_scale: f64,
    prefix: String,
}

impl Default for AutoNormal {
    fn default() -> Self {
        AutoNormal::new()
    }
}

impl AutoNormal {
    /// An `AutoNormal` with NumPyro's defaults (initial scale 0.1, prefix `auto`).
    pub fn new() -> AutoNormal {
        AutoNormal {
            sites: None,
            init_scale: 0.1,
            prefix: "auto".to_string(),
        }
    }
    /// Sets the initial scale (positive, finite).
    pub fn init_scale(mut self, s: f64) -> Result<AutoNormal> {
        if !(s > 0.0 && s.is_finite()) {
            return Err(Error::invalid(
                "AutoNormal",
                format!("init_scale must be positive and finite, got {s}"),
            ));
        }
        self.init_scale = s;
        Ok(self)
    }
    /// The latent sites (after [`Guide::setup`]).
    pub fn sites(&self) -> Option<&[AutoSite]> {
        self.sites.as_deref()
    }
    /// Name of the location parameter of `site`.
    pub fn loc_name(&self, site: &str) -> String {
        format!("{}_{site}_loc", self.prefix)
    }
    /// Name of the scale parameter of `site`.
    pub fn scale_name(&self, site: &str) -> String {
        format!("{}_{site}_scale", self.prefix)
    }
    /// Each site's median under the guide (`biject_to(support)(loc)`), from fitted params.
    pub fn median(&self, params: &HashMap<String, Array>) -> Result<HashMap<String, Array>> {
        let sites = self.sites.as_ref().ok_or_else(not_set_up)?;
        constrained_locs(sites, params, |site| self.loc_name(site))
    }
}

impl Guide for AutoNormal {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.sites = Some(auto_sites(model_trace, key, 2.0)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let sites = self.sites.as_ref().ok_or_else(not_set_up)?;
        for s in sites {
            let loc = param(&self.loc_name(&s.name), s.init_loc.clone())?;
            let scale0 = Array::full(&s.unconstrained_shape, s.dtype, self.init_scale);
            let scale = param(&self.scale_name(&s.name), scale0)?;
            // Every unconstrained axis is part of one event: the model's plates broadcast
            // its batch axes, and the guide's log density is summed over all of them anyway.
            let base: DynDist = match s.unconstrained_shape.len() {
                0 => Arc::new(Normal::new(&loc, &scale)?),
                r => Arc::new(Normal::new(&loc, &scale)?.to_event(r)?),
            };
            let d = TransformedDistribution::new(base, vec![s.transform.clone()]);
            sample(&s.name, d, None)?;
        }
        Ok(())
    }
    fn param_transforms(&self) -> HashMap<String, Transform> {
        // Scales are optimized through their log (NumPyro uses softplus; both map R onto
        // (0, inf), and `biject_to(positive)` is the transform this crate has).
        let mut m = HashMap::new();
        if let (Some(sites), Ok(t)) = (&self.sites, biject_to(&Constraint::Positive)) {
            for s in sites {
                m.insert(self.scale_name(&s.name), t.clone());
            }
        }
        m
    }
}

/// Point-estimate guide (NumPyro's `AutoDelta`): each latent site is a point mass at
/// `biject_to(support)(auto_{site}_loc)`. Its log density is zero, so maximizing the ELBO
/// maximizes the model's log joint density in constrained space: the MAP estimate.
#[derive(Clone, Debug)]
pub struct AutoDelta {
    sites: Option<Vec<AutoSite>>,
    prefix: String,
}

impl Default for AutoDelta {
    fn default() -> Self {
        AutoDelta::new()
    }
}

impl AutoDelta {
    /// An `AutoDelta` with prefix `auto`.
    pub fn new() -> AutoDelta {
        AutoDelta {
            sites: None,
            prefix: "auto".to_string(),
        }
    }
    /// The latent sites (after [`Guide::setup`]).
    pub fn sites(&self) -> Option<&[AutoSite]> {
        self.sites.as_deref()
    }
    /// Name of the (unconstrained) location parameter of `site`.
    pub fn loc_name(&self, site: &str) -> String {
        format!("{}_{site}_loc", self.prefix)
    }
    /// The point estimate of each site (constrained), from fitted params.
    pub fn median(&self, params: &HashMap<String, Array>) -> Result<HashMap<String, Array>> {
        let sites = self.sites.as_ref().ok_or_else(not_set_up)?;
        constrained_locs(sites, params, |site| self.loc_name(site))
    }
}

impl Guide for AutoDelta {
    fn setup(&mut self, model_trace: &Trace, key: &Key) -> Result<()> {
        self.sites = Some(auto_sites(model_trace, key, 2.0)?);
        Ok(())
    }
    fn call(&self) -> Result<()> {
        let sites = self.sites.as_ref().ok_or_else(not_set_up)?;
        for s in sites {
            let loc = param(&self.loc_name(&s.name), s.init_loc.clone())?;
            let v = s.transform.forward(&loc)?;
            let ed = s.event_dim.min(v.rank());
            sample(&s.name, Delta::with(v, 0.0, ed)?, None)?;
        }
        Ok(())
    }
}

/// Each site's location parameter mapped to its support (`biject_to(support)(loc)`): the
/// median of AutoNormal and the point of AutoDelta.
fn constrained_locs(
    sites: &[AutoSite],
    params: &HashMap<String, Array>,
    loc_name: impl Fn(&str) -> String,
) -> Result<HashMap<String, Array>> {
    let mut out = HashMap::new();
    for s in sites {
        let name = loc_name(&s.name);
        let loc = params
            .get(&name)
            .ok_or_else(|| Error::site(name.clone(), "missing parameter"))?;
        out.insert(s.name.clone(), s.transform.forward(loc)?);
    }
    Ok(out)
}
