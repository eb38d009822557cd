//! Models and effect handlers. A model is a Rust closure that calls [`sample`],
//! [`param`], [`deterministic`], [`factor`] and [`plate`]; what those calls do is decided
//! by the handlers wrapped around the call ([`seed`], [`trace`], [`substitute`],
//! [`condition`], [`block`], [`replay`], [`scale`], [`mask`]), as in NumPyro. Handlers live
//! on a thread-local stack, so chains running on different threads do not interact.
//!
//! ```
//! use ferrax_core::{random::Key, Array};
//! use ferrax_infer::dist::Normal;
//! use ferrax_infer::handlers::{sample, seed, trace};
//!
//! # fn main() -> ferrax_infer::Result<()> {
//! let model = || -> ferrax_infer::Result<Array> {
//!     let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
//!     sample("y", Normal::new(&mu, 0.5)?, Some(Array::scalar(0.3f64)))
//! };
//! let (_, tr) = trace(|| seed(Key::new(0), model))?;
//! assert!(tr.get("mu").is_some() && tr.get("y").unwrap().is_observed);
//! let lp = tr.log_prob_sum()?;
//! assert!(lp.to_vec::<f64>()?[0].is_finite());
//! # Ok(())
//! # }
//! ```

use crate::dist::{Distribution, DynDist, Expanded};
use crate::error::{Error, Result};
use crate::math::{full_like, where_, ArrayMath};
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// What kind of statement a site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// A random variable (latent, or observed when it has data).
    Sample,
    /// A learnable parameter (SVI).
    Param,
    /// A named function of other sites, recorded for output.
    Deterministic,
    /// An arbitrary term added to the log density.
    Factor,
    /// A request for a fresh random key (plate subsampling).
    PrngKey,
}

/// A plate the site sits in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlateFrame {
    /// Plate name.
    pub name: String,
    /// Full size.
    pub size: usize,
    /// Size of the subsample used in this run.
    pub subsample_size: usize,
    /// Batch axis, counted from the right (-1 is the last).
    pub dim: isize,
}

/// One statement of a model run, as handlers see and record it.
#[derive(Clone, Debug)]
pub struct Site {
    /// Unique name.
    pub name: String,
    /// Kind of statement.
    pub kind: SiteKind,
    /// The distribution (sample sites).
    pub dist: Option<DynDist>,
    /// The value (drawn, observed, substituted, or the deterministic / factor value).
    pub value: Option<Array>,
    /// Whether the value is data.
    pub is_observed: bool,
    /// Product of log-density scale factors (plates' subsampling, `scale`).
    pub scale: f64,
    /// Bool mask of the log density (`mask`), if any.
    pub mask: Option<Array>,
    /// Enclosing plates, outermost first.
    pub plates: Vec<PlateFrame>,
    /// Random key to draw with (set by `seed`).
    pub rng_key: Option<Key>,
    /// Set by `block` to hide the site from outer handlers.
    pub stop: bool,
}

impl Site {
    fn new(name: &str, kind: SiteKind) -> Site {
        Site {
            name: name.to_string(),
            kind,
            dist: None,
            value: None,
            is_observed: false,
            scale: 1.0,
            mask: None,
            plates: Vec::new(),
            rng_key: None,
            stop: false,
        }
    }
    /// The site's scaled, masked log density, summed over every axis (0 for
    /// deterministic and param sites).
    pub fn log_prob_sum(&self) -> Result<Option<Array>> {
        let lp = match (self.kind, &self.dist, &self.value) {
            (SiteKind::Sample, Some(d), Some(v)) => d.log_prob(v)?,
            (SiteKind::Factor, _, Some(v)) => v.clone(),
            _ => return Ok(None),
        };
        let lp = match &self.mask {
            Some(m) => {
                let shape = crate::math::bshape("mask", lp.shape(), m.shape())?;
                let lp = lp.bcast(&shape)?;
                where_(m, &lp, &full_like(&lp, 0.0)?)?
            }
            None => lp,
        };
        let s = lp.sum_all()?;
        Ok(Some(if self.scale != 1.0 {
            s.mulc(self.scale)?
        } else {
            s
        }))
    }
}

/// A handler: sees every site on its way down the stack (`process`, innermost handler
/// first) and again after the default behaviour ran (`postprocess`).
pub trait Messenger {
    /// Called before the site's value is decided.
    fn process(&mut self, _site: &mut Site) -> Result<()> {
        Ok(())
    }
    /// Called after.
    fn postprocess(&mut self, _site: &mut Site) -> Result<()> {
        Ok(())
    }
}

type Handler = Rc<RefCell<dyn Messenger>>;

thread_local! {
    static STACK: RefCell<Vec<Handler>> = const { RefCell::new(Vec::new()) };
}

/// Pops the handler it pushed when dropped (also on an early `?` or a panic).
struct Guard {
    depth: usize,
}
impl Drop for Guard {
    fn drop(&mut self) {
        STACK.with(|s| s.borrow_mut().truncate(self.depth));
    }
}

/// Runs `f` with `h` pushed on this thread's handler stack.
pub fn with_handler<R>(h: Handler, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let depth = STACK.with(|s| {
        let mut s = s.borrow_mut();
        let d = s.len();
        s.push(h);
        d
    });
    let _g = Guard { depth };
    f()
}

fn apply_stack(mut site: Site) -> Result<Site> {
    let stack: Vec<Handler> = STACK.with(|s| s.borrow().clone());
    let mut lowest = 0;
    for (i, h) in stack.iter().enumerate().rev() {
        lowest = i;
        h.borrow_mut().process(&mut site)?;
        if site.stop {
            break;
        }
    }
    default_process(&mut site)?;
    for h in &stack[lowest.min(stack.len())..] {
        h.borrow_mut().postprocess(&mut site)?;
    }
    Ok(site)
}

fn default_process(site: &mut Site) -> Result<()> {
    match site.kind {
        SiteKind::Sample if site.value.is_none() => {
            let key = site.rng_key.clone().ok_or_else(|| {
                Error::site(
                    &site.name,
                    "no random key to draw a value: run the model inside `seed(key, ...)`, or give the site a value (substitute / condition)",
                )
            })?;
            let d = site
                .dist
                .as_ref()
                .expect("sample sites carry a distribution");
            site.value = Some(d.sample(&key, &[])?);
        }
        SiteKind::PrngKey if site.rng_key.is_none() => {
            return Err(Error::site(
                &site.name,
                "plate subsampling needs a random key: run the model inside `seed(key, ...)`",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// A random variable named `name` with distribution `dist`; `obs` makes it observed.
/// Returns its value (drawn under `seed`, or given by a handler or `obs`).
pub fn sample(name: &str, dist: impl Distribution + 'static, obs: Option<Array>) -> Result<Array> {
    let mut site = Site::new(name, SiteKind::Sample);
    site.dist = Some(Arc::new(dist));
    site.is_observed = obs.is_some();
    site.value = obs;
    let site = apply_stack(site)?;
    site.value
        .ok_or_else(|| Error::site(name, "no value was produced"))
}

/// A parameter with initial value `init` (substitute/SVI replace it).
pub fn param(name: &str, init: Array) -> Result<Array> {
    let mut site = Site::new(name, SiteKind::Param);
    site.value = Some(init);
    let site = apply_stack(site)?;
    site.value
        .ok_or_else(|| Error::site(name, "no value was produced"))
}

/// Records `value` under `name` (returned unchanged unless a handler substitutes it).
pub fn deterministic(name: &str, value: Array) -> Result<Array> {
    let mut site = Site::new(name, SiteKind::Deterministic);
    site.value = Some(value);
    let site = apply_stack(site)?;
    site.value
        .ok_or_else(|| Error::site(name, "no value was produced"))
}

/// Adds `log_factor` (summed) to the model's log density.
pub fn factor(name: &str, log_factor: Array) -> Result<()> {
    let mut site = Site::new(name, SiteKind::Factor);
    site.is_observed = true;
    site.value = Some(log_factor);
    apply_stack(site)?;
    Ok(())
}

fn prng_key(name: &str) -> Result<Key> {
    let site = apply_stack(Site::new(name, SiteKind::PrngKey))?;
    site.rng_key
        .ok_or_else(|| Error::site(name, "no random key"))
}

// ---------------------------------------------------------------------------------------
// Handlers.

struct SeedH {
    key: Key,
}
impl Messenger for SeedH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        let wants = match s.kind {
            SiteKind::Sample => s.value.is_none() && s.rng_key.is_none(),
            SiteKind::PrngKey => s.rng_key.is_none(),
            _ => false,
        };
        if wants {
            let (k, sub) = self.key.split2()?;
            self.key = k;
            s.rng_key = Some(sub);
        }
        Ok(())
    }
}

/// Runs `f` drawing unobserved sample sites from `key` (split once per site, in program
/// order, as NumPyro's `seed`).
pub fn seed<R>(key: Key, f: impl FnOnce() -> Result<R>) -> Result<R> {
    with_handler(Rc::new(RefCell::new(SeedH { key })), f)
}

/// The sites of one model run, in execution order.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    sites: Vec<Site>,
    index: HashMap<String, usize>,
}

impl Trace {
    /// The site called `name`.
    pub fn get(&self, name: &str) -> Option<&Site> {
        self.index.get(name).map(|&i| &self.sites[i])
    }
    /// Sites in execution order.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }
    /// Site names in execution order.
    pub fn names(&self) -> Vec<&str> {
        self.sites.iter().map(|s| s.name.as_str()).collect()
    }
    /// The value of site `name`.
    pub fn value(&self, name: &str) -> Option<&Array> {
        self.get(name).and_then(|s| s.value.as_ref())
    }
    /// Sum of every sample and factor site's scaled, masked log density (the joint log
    /// density of the run).
    pub fn log_prob_sum(&self) -> Result<Array> {
        let mut acc: Option<Array> = None;
        for s in &self.sites {
            if let Some(lp) = s.log_prob_sum()? {
                acc = Some(match acc {
                    None => lp,
                    Some(a) => a.add(&lp.cast(a.dtype())?)?,
                });
            }
        }
        Ok(acc.unwrap_or_else(|| Array::scalar(0.0f64)))
    }
    fn push(&mut self, s: Site) -> Result<()> {
        if self.index.contains_key(&s.name) {
            return Err(Error::DuplicateSite(s.name));
        }
        self.index.insert(s.name.clone(), self.sites.len());
        self.sites.push(s);
        Ok(())
    }
}

struct TraceH {
    tr: Trace,
}
impl Messenger for TraceH {
    fn postprocess(&mut self, s: &mut Site) -> Result<()> {
        if s.kind == SiteKind::PrngKey {
            return Ok(());
        }
        self.tr.push(s.clone())
    }
}

/// Runs `f` and records every site it reaches. Two sites with one name are an error.
pub fn trace<R>(f: impl FnOnce() -> Result<R>) -> Result<(R, Trace)> {
    let h = Rc::new(RefCell::new(TraceH {
        tr: Trace::default(),
    }));
    let r = with_handler(h.clone(), f)?;
    let tr = std::mem::take(&mut h.borrow_mut().tr);
    Ok((r, tr))
}

struct SubstituteH {
    values: HashMap<String, Array>,
    observe: bool,
}
impl Messenger for SubstituteH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        let applies = match s.kind {
            SiteKind::Sample => !(self.observe && s.is_observed),
            SiteKind::Param => !self.observe,
            _ => false,
        };
        if applies {
            if let Some(v) = self.values.get(&s.name) {
                s.value = Some(v.clone());
                if self.observe {
                    s.is_observed = true;
                }
            }
        }
        Ok(())
    }
}

/// Runs `f` with the values of the named sample / param sites replaced (they stay latent:
/// this is how a log density is evaluated at a point).
pub fn substitute<R>(values: HashMap<String, Array>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    with_handler(
        Rc::new(RefCell::new(SubstituteH {
            values,
            observe: false,
        })),
        f,
    )
}

/// Runs `f` with the named sample sites observed at the given values.
pub fn condition<R>(data: HashMap<String, Array>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    with_handler(
        Rc::new(RefCell::new(SubstituteH {
            values: data,
            observe: true,
        })),
        f,
    )
}

struct BlockH<F: Fn(&Site) -> bool> {
    hide: F,
}
impl<F: Fn(&Site) -> bool> Messenger for BlockH<F> {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        if (self.hide)(s) {
            s.stop = true;
        }
        Ok(())
    }
}

/// Runs `f` with the sites `hide` selects invisible to handlers outside this one.
pub fn block<R>(
    hide: impl Fn(&Site) -> bool + 'static,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    with_handler(Rc::new(RefCell::new(BlockH { hide })), f)
}

struct ReplayH {
    values: HashMap<String, Array>,
}
impl Messenger for ReplayH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        if s.kind == SiteKind::Sample && !s.is_observed {
            if let Some(v) = self.values.get(&s.name) {
                s.value = Some(v.clone());
            }
        }
        Ok(())
    }
}

/// Runs `f` reusing the values of the latent sample sites recorded in `tr`.
pub fn replay<R>(tr: &Trace, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let values = tr
        .sites
        .iter()
        .filter(|s| s.kind == SiteKind::Sample)
        .filter_map(|s| s.value.clone().map(|v| (s.name.clone(), v)))
        .collect();
    with_handler(Rc::new(RefCell::new(ReplayH { values })), f)
}

struct ScaleH {
    factor: f64,
}
impl Messenger for ScaleH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        s.scale *= self.factor;
        Ok(())
    }
}

/// Runs `f` with every log density multiplied by `factor` (> 0).
pub fn scale<R>(factor: f64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    if !(factor > 0.0 && factor.is_finite()) {
        return Err(Error::invalid(
            "scale",
            format!("the factor must be positive and finite, got {factor}"),
        ));
    }
    with_handler(Rc::new(RefCell::new(ScaleH { factor })), f)
}

struct MaskH {
    mask: Array,
}
impl Messenger for MaskH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        s.mask = Some(match &s.mask {
            None => self.mask.clone(),
            Some(m) => crate::math::and(m, &self.mask)?,
        });
        Ok(())
    }
}

/// Runs `f` with log densities zeroed where `mask` (bool) is false.
pub fn mask<R>(mask: Array, f: impl FnOnce() -> Result<R>) -> Result<R> {
    if mask.dtype() != DType::Bool {
        return Err(Error::invalid(
            "mask",
            format!("the mask must be bool, got {}", mask.dtype()),
        ));
    }
    with_handler(Rc::new(RefCell::new(MaskH { mask })), f)
}

struct PlateH {
    frame: PlateFrame,
}
impl Messenger for PlateH {
    fn process(&mut self, s: &mut Site) -> Result<()> {
        if !matches!(
            s.kind,
            SiteKind::Sample | SiteKind::Factor | SiteKind::Deterministic
        ) {
            return Ok(());
        }
        s.plates.insert(0, self.frame.clone());
        if s.kind != SiteKind::Sample {
            return Ok(());
        }
        s.scale *= self.frame.size as f64 / self.frame.subsample_size as f64;
        // Broadcast the distribution's batch shape to cover this plate's axis.
        let d = s.dist.clone().expect("sample sites carry a distribution");
        let mut b = d.batch_shape();
        let need = (-self.frame.dim) as usize;
        while b.len() < need {
            b.insert(0, 1);
        }
        let ax = b.len() - need;
        let n = self.frame.subsample_size;
        if b[ax] != n {
            if b[ax] != 1 {
                return Err(Error::site(
                    &s.name,
                    format!(
                        "batch shape {:?} has size {} at plate `{}`'s axis {} (the plate has size {n})",
                        d.batch_shape(),
                        b[ax],
                        self.frame.name,
                        self.frame.dim
                    ),
                ));
            }
            b[ax] = n;
        }
        if b != d.batch_shape() {
            s.dist = Some(Arc::new(Expanded::new(d, &b)?));
        }
        Ok(())
    }
}

thread_local! {
    static PLATE_DEPTH: RefCell<usize> = const { RefCell::new(0) };
}

/// A plate of conditionally independent variables of size `size` (NumPyro's
/// `numpyro.plate`): sample sites inside are broadcast along batch axis `-(depth)`
/// (-1 for the outermost plate... counted from the right in nesting order) and, with
/// `subsample_size`, `f` receives a random subset of indices and log densities are scaled
/// by `size / subsample_size`. `f` gets the (i32) indices of this run.
pub fn plate<R>(
    name: &str,
    size: usize,
    subsample_size: Option<usize>,
    f: impl FnOnce(&Array) -> Result<R>,
) -> Result<R> {
    let sub = subsample_size.unwrap_or(size);
    if sub == 0 || sub > size {
        return Err(Error::invalid(
            "plate",
            format!("`{name}`: subsample_size {sub} must be in 1..={size}"),
        ));
    }
    let idx = if sub < size {
        let key = prng_key(name)?;
        let perm = ferrax_core::random::permutation(&key, ferrax_core::Dyn(size))?;
        let perm = perm.into_array();
        ferrax_core::prim::slice::slice_in_dim(&perm, 0, 0, sub, 1)?
    } else {
        ferrax_core::prim::iota::arange(DType::I32, size)?
    };
    let depth = PLATE_DEPTH.with(|d| *d.borrow());
    let frame = PlateFrame {
        name: name.to_string(),
        size,
        subsample_size: sub,
        dim: -(depth as isize) - 1,
    };
    struct DepthGuard(usize);
    impl Drop for DepthGuard {
        fn drop(&mut self) {
            PLATE_DEPTH.with(|d| *d.borrow_mut() = self.0);
        }
    }
    PLATE_DEPTH.with(|d| *d.borrow_mut() = depth + 1);
    let _g = DepthGuard(depth);
    with_handler(Rc::new(RefCell::new(PlateH { frame })), || f(&idx))
}
