//! Distributions built from others: [`Independent`] (`to_event`), [`Expanded`]
//! (`expand`), [`Masked`] and [`TransformedDistribution`].

use super::{full_shape, Distribution, DynDist};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{bshape, full_like, where_, ArrayMath};
use crate::transforms::Transform;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};

/// Reinterprets the last `n` batch axes of a distribution as event axes.
#[derive(Clone, Debug)]
pub struct Independent {
    /// The wrapped distribution.
    pub base: DynDist,
    n: usize,
}
impl Independent {
    /// Moves `n` batch axes into the event.
    pub fn new(base: DynDist, n: usize) -> Result<Self> {
        let b = base.batch_shape();
        if n > b.len() {
            return Err(Error::invalid(
                "to_event",
                format!(
                    "cannot move {n} batch axes to the event of a {} with batch shape {b:?}",
                    base.name()
                ),
            ));
        }
        Ok(Independent { base, n })
    }
}
impl Distribution for Independent {
    fn name(&self) -> &'static str {
        "Independent"
    }
    fn batch_shape(&self) -> Vec<usize> {
        let b = self.base.batch_shape();
        b[..b.len() - self.n].to_vec()
    }
    fn event_shape(&self) -> Vec<usize> {
        let b = self.base.batch_shape();
        let mut e = b[b.len() - self.n..].to_vec();
        e.extend(self.base.event_shape());
        e
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn support(&self) -> Constraint {
        Constraint::Independent(Box::new(self.base.support()), self.n)
    }
    fn is_discrete(&self) -> bool {
        self.base.is_discrete()
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        Ok(self.base.log_prob(value)?.sum_last(self.n)?)
    }
    fn as_normal(&self) -> Option<(Array, Array)> {
        self.base.as_normal()
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        self.base.sample(key, s)
    }
    fn mean(&self) -> Result<Array> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Array> {
        self.base.variance()
    }
}

/// A distribution broadcast to a larger batch shape (independent draws per element).
#[derive(Clone, Debug)]
pub struct Expanded {
    /// The wrapped distribution.
    pub base: DynDist,
    batch: Vec<usize>,
}
impl Expanded {
    /// Expands `base` to `batch_shape` (which its batch shape must broadcast to).
    pub fn new(base: DynDist, batch_shape: &[usize]) -> Result<Self> {
        let b = base.batch_shape();
        let ok = b.len() <= batch_shape.len()
            && b.iter()
                .rev()
                .zip(batch_shape.iter().rev())
                .all(|(&x, &y)| x == y || x == 1);
        if !ok {
            return Err(Error::invalid(
                "expand",
                format!(
                    "the batch shape {b:?} of {} does not broadcast to {batch_shape:?}",
                    base.name()
                ),
            ));
        }
        Ok(Expanded {
            base,
            batch: batch_shape.to_vec(),
        })
    }
}
impl Distribution for Expanded {
    fn name(&self) -> &'static str {
        self.base.name()
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.batch.clone()
    }
    fn event_shape(&self) -> Vec<usize> {
        self.base.event_shape()
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn support(&self) -> Constraint {
        self.base.support()
    }
    fn is_discrete(&self) -> bool {
        self.base.is_discrete()
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let lp = self.base.log_prob(value)?;
        let ed = self.base.event_shape().len();
        let vb = &value.shape()[..value.rank().saturating_sub(ed)];
        let shape = bshape("expand", &self.batch, vb)?;
        let shape = bshape("expand", &shape, lp.shape())?;
        Ok(lp.bcast(&shape)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let b = self.base.batch_shape();
        let extra = self.batch.len() - b.len();
        let tail = &self.batch[extra..];
        if tail == b.as_slice() {
            // New leading axes only: they are extra sample axes of the base.
            let mut ss = s.to_vec();
            ss.extend_from_slice(&self.batch[..extra]);
            return self.base.sample(key, &ss);
        }
        if b.iter().all(|&d| d == 1) {
            // Every base batch axis has size 1: draw the whole batch as sample axes, then
            // drop the base's unit axes.
            let mut ss = s.to_vec();
            ss.extend_from_slice(&self.batch);
            let x = self.base.sample(key, &ss)?;
            let shape = full_shape(s, &self.batch, &self.base.event_shape());
            return Ok(ferrax_core::prim::reshape::reshape(&x, &shape)?);
        }
        Err(Error::unsupported(
            "expand",
            format!("sampling an expansion of batch shape {b:?} to {:?} (mixing unit and non-unit axes)", self.batch),
        ))
    }
    fn mean(&self) -> Result<Array> {
        let m = self.base.mean()?;
        Ok(m.bcast(&full_shape(&[], &self.batch, &self.base.event_shape()))?)
    }
    fn variance(&self) -> Result<Array> {
        let v = self.base.variance()?;
        Ok(v.bcast(&full_shape(&[], &self.batch, &self.base.event_shape()))?)
    }
}

/// A distribution whose log density is zeroed where `mask` is false.
#[derive(Clone, Debug)]
pub struct Masked {
    /// The wrapped distribution.
    pub base: DynDist,
    /// Bool mask broadcasting against the batch shape.
    pub mask: Array,
}
impl Masked {
    /// Masks `base` with a bool array.
    pub fn new(base: DynDist, mask: Array) -> Result<Self> {
        if mask.dtype() != DType::Bool {
            return Err(Error::invalid(
                "mask",
                format!("the mask must be bool, got {}", mask.dtype()),
            ));
        }
        bshape("mask", &base.batch_shape(), mask.shape())?;
        Ok(Masked { base, mask })
    }
}
impl Distribution for Masked {
    fn name(&self) -> &'static str {
        "Masked"
    }
    fn batch_shape(&self) -> Vec<usize> {
        bshape("mask", &self.base.batch_shape(), self.mask.shape())
            .unwrap_or_else(|_| self.base.batch_shape())
    }
    fn event_shape(&self) -> Vec<usize> {
        self.base.event_shape()
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn support(&self) -> Constraint {
        self.base.support()
    }
    fn is_discrete(&self) -> bool {
        self.base.is_discrete()
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let lp = self.base.log_prob(value)?;
        let shape = bshape("mask", lp.shape(), self.mask.shape())?;
        let lp = lp.bcast(&shape)?;
        Ok(where_(&self.mask, &lp, &full_like(&lp, 0.0)?)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        self.base.sample(key, s)
    }
    fn mean(&self) -> Result<Array> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Array> {
        self.base.variance()
    }
}

/// The distribution of `t_n(...t_1(x))` for `x` from `base` (NumPyro's
/// `TransformedDistribution`); its log density subtracts the log-Jacobians.
#[derive(Clone, Debug)]
pub struct TransformedDistribution {
    /// The base distribution.
    pub base: DynDist,
    /// Transforms applied in order.
    pub transforms: Vec<Transform>,
}
impl TransformedDistribution {
    /// Builds it.
    pub fn new(base: DynDist, transforms: Vec<Transform>) -> Self {
        TransformedDistribution { base, transforms }
    }
}
impl Distribution for TransformedDistribution {
    fn name(&self) -> &'static str {
        "TransformedDistribution"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> Vec<usize> {
        let mut s = full_shape(&[], &self.base.batch_shape(), &self.base.event_shape());
        for t in &self.transforms {
            s = t.forward_shape(&s);
        }
        s[self.base.batch_shape().len()..].to_vec()
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn support(&self) -> Constraint {
        self.transforms
            .last()
            .map_or_else(|| self.base.support(), Transform::codomain)
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let ed = self.event_shape().len();
        let mut y = value.clone();
        let mut lp: Option<Array> = None;
        for t in self.transforms.iter().rev() {
            let x = t.inverse(&y)?;
            let l = t.log_abs_det_jacobian(&x, &y)?;
            // The log-Jacobian has the transform's batch rank; sum what belongs to the event.
            let extra = ed.saturating_sub(t.codomain_event_dim());
            let l = l.sum_last(extra.min(l.rank()))?;
            lp = Some(match lp {
                None => l,
                Some(a) => a.add(&l)?,
            });
            y = x;
        }
        let base_ed = self.base.event_shape().len();
        let blp = self.base.log_prob(&y)?;
        let blp = blp.sum_last((ed.saturating_sub(base_ed)).min(blp.rank()))?;
        match lp {
            None => Ok(blp),
            Some(l) => Ok(blp.sub(&l)?),
        }
    }
    fn as_normal(&self) -> Option<(Array, Array)> {
        if self
            .transforms
            .iter()
            .all(|t| matches!(t, Transform::Identity))
        {
            self.base.as_normal()
        } else {
            None
        }
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let mut x = self.base.sample(key, s)?;
        for t in &self.transforms {
            x = t.forward(&x)?;
        }
        Ok(x)
    }
}
