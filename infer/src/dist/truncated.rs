//! [`Truncated`]: a univariate continuous distribution restricted to `[low, high]` and
//! renormalized (NumPyro's `TruncatedDistribution`), through the base's `cdf` / `icdf`;
//! mean and variance in closed form for a Normal base (NumPyro's `TruncatedNormal`).

use super::{full_shape, Distribution, DynDist, IntoArray};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{and, bshape, full_like, where_, ArrayMath};
use ferrax_core::prim::random::Dist as R;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};

/// `base` conditioned on `low <= x <= high` (either bound may be absent).
#[derive(Clone, Debug)]
pub struct Truncated {
    /// The untruncated distribution.
    pub base: DynDist,
    /// Lower bound, if any.
    pub low: Option<Array>,
    /// Upper bound, if any.
    pub high: Option<Array>,
    batch: Vec<usize>,
}

impl Truncated {
    /// Truncates `base` (univariate, continuous, with `cdf` and `icdf`) to `[low, high]`.
    pub fn new(
        base: impl Distribution + 'static,
        low: impl IntoArray,
        high: impl IntoArray,
    ) -> Result<Self> {
        Self::build(
            std::sync::Arc::new(base),
            Some(low.into_array()),
            Some(high.into_array()),
        )
    }
    /// Truncates `base` to `[low, inf)`.
    pub fn lower(base: impl Distribution + 'static, low: impl IntoArray) -> Result<Self> {
        Self::build(std::sync::Arc::new(base), Some(low.into_array()), None)
    }
    /// Truncates `base` to `(-inf, high]`.
    pub fn upper(base: impl Distribution + 'static, high: impl IntoArray) -> Result<Self> {
        Self::build(std::sync::Arc::new(base), None, Some(high.into_array()))
    }
    /// Truncates a type-erased base; `None` leaves that side open.
    pub fn build(base: DynDist, low: Option<Array>, high: Option<Array>) -> Result<Self> {
        if !base.event_shape().is_empty() || base.is_discrete() {
            return Err(Error::invalid(
                "Truncated",
                format!(
                    "the base must be univariate and continuous, got {} with event shape {:?}",
                    base.name(),
                    base.event_shape()
                ),
            ));
        }
        let dt = base.dtype();
        let low = low.map(|l| l.cast(dt)).transpose()?;
        let high = high.map(|h| h.cast(dt)).transpose()?;
        if low.is_none() && high.is_none() {
            return Err(Error::invalid(
                "Truncated",
                "give at least one of low, high",
            ));
        }
        let mut batch = base.batch_shape();
        for b in low.iter().chain(high.iter()) {
            batch = bshape("Truncated", &batch, b.shape())?;
        }
        // Fail early when the base cannot be truncated.
        let probe = Array::full(&[], dt, 0.0);
        base.cdf(&probe)?;
        base.icdf(&Array::full(&[], dt, 0.5))?;
        Ok(Truncated {
            base,
            low,
            high,
            batch,
        })
    }

    /// `(cdf(low), cdf(high))`, with 0 and 1 for absent bounds.
    fn cdf_bounds(&self, like: &Array) -> Result<(Array, Array)> {
        let lo = match &self.low {
            Some(l) => self.base.cdf(&l.cast(like.dtype())?)?,
            None => full_like(like, 0.0)?,
        };
        let hi = match &self.high {
            Some(h) => self.base.cdf(&h.cast(like.dtype())?)?,
            None => full_like(like, 1.0)?,
        };
        Ok((lo, hi))
    }

    /// The base's mass on `[low, high]`, from upper-tail probabilities where `low` is
    /// above the median: `cdf(high) - cdf(low)` would cancel there (a Normal truncated
    /// to `[4, inf)` keeps only 3 of float32's 7 digits), NumPyro reflects the same way.
    fn mass(&self, like: &Array) -> Result<Array> {
        let (clo, chi) = self.cdf_bounds(like)?;
        let direct = chi.sub(&clo)?;
        let Some(l) = &self.low else {
            return Ok(direct);
        };
        let slo = self.base.sf(&l.cast(like.dtype())?)?;
        let upper = match &self.high {
            Some(h) => slo.sub(&self.base.sf(&h.cast(like.dtype())?)?)?,
            None => slo,
        };
        let shape = bshape("Truncated", direct.shape(), upper.shape())?;
        let shape = bshape("Truncated", &shape, clo.shape())?;
        Ok(where_(
            &clo.gtc(0.5)?.bcast(&shape)?,
            &upper.bcast(&shape)?,
            &direct.bcast(&shape)?,
        )?)
    }
}

impl Truncated {
    /// Mean and variance of a truncated Normal in closed form: with `a`, `b` the
    /// standardized bounds, `Z = Phi(b) - Phi(a)` and `phi` the standard density,
    /// mean `mu + s (phi(a) - phi(b)) / Z` and variance
    /// `s^2 [1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2]`.
    fn normal_moments(&self) -> Result<(Array, Array)> {
        let (mu, sd) = self.base.as_normal().ok_or_else(|| {
            Error::unsupported(
                "TruncatedDistribution",
                format!(
                    "mean and variance are implemented for a Normal base, not {}",
                    self.base.name()
                ),
            )
        })?;
        let dt = self.dtype();
        let (mu, sd) = (
            mu.cast(dt)?.bcast(&self.batch)?,
            sd.cast(dt)?.bcast(&self.batch)?,
        );
        let pdf = |t: &Array| -> Result<Array> {
            Ok(t.square()?
                .mulc(-0.5)?
                .exp()?
                .mulc(1.0 / (2.0 * std::f64::consts::PI).sqrt())?)
        };
        // (phi(t), t phi(t)) at a bound; both vanish at an absent (infinite) bound.
        let side = |b: &Option<Array>| -> Result<(Array, Array)> {
            match b {
                Some(b) => {
                    let t = b.cast(dt)?.sub(&mu)?.div(&sd)?;
                    let p = pdf(&t)?;
                    Ok((p.clone(), t.mul(&p)?))
                }
                None => Ok((full_like(&mu, 0.0)?, full_like(&mu, 0.0)?)),
            }
        };
        let (pa, tpa) = side(&self.low)?;
        let (pb, tpb) = side(&self.high)?;
        let z = self.mass(&mu)?;
        let r = pa.sub(&pb)?.div(&z)?;
        let mean = mu.add(&sd.mul(&r)?)?;
        let var = sd
            .square()?
            .mul(&tpa.sub(&tpb)?.div(&z)?.addc(1.0)?.sub(&r.square()?)?)?;
        Ok((mean, var))
    }
}

impl Distribution for Truncated {
    fn name(&self) -> &'static str {
        "TruncatedDistribution"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.batch.clone()
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn support(&self) -> Constraint {
        match (&self.low, &self.high) {
            (Some(l), Some(h)) => Constraint::Interval(l.clone(), h.clone()),
            (Some(l), None) => Constraint::GreaterThan(l.clone()),
            (None, Some(h)) => Constraint::LessThan(h.clone()),
            (None, None) => Constraint::Real,
        }
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let x = if value.dtype().is_float() {
            value.clone()
        } else {
            value.cast(self.dtype())?
        };
        let lp = self.base.log_prob(&x)?;
        let lp = lp.sub(&self.mass(&x)?.log()?)?;
        let mut inside = x.eq_(&x)?;
        if let Some(l) = &self.low {
            inside = and(&inside, &x.ge(&l.cast(x.dtype())?)?)?;
        }
        if let Some(h) = &self.high {
            inside = and(&inside, &x.le(&h.cast(x.dtype())?)?)?;
        }
        let shape = bshape("Truncated", inside.shape(), lp.shape())?;
        let lp = lp.bcast(&shape)?;
        where_(
            &inside.bcast(&shape)?,
            &lp,
            &full_like(&lp, f64::NEG_INFINITY)?,
        )
        .map_err(Into::into)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // Inverse CDF on the truncated range of the base's CDF.
        let shape = full_shape(s, &self.batch, &[]);
        let u = super::std_draw(
            key,
            R::Uniform { min: 0.0, max: 1.0 },
            &shape,
            self.dtype(),
            &[],
        )?;
        let (clo, chi) = self.cdf_bounds(&u)?;
        let q = clo.add(&u.mul(&chi.sub(&clo)?)?)?;
        let mut x = self.base.icdf(&q)?.bcast(&shape)?;
        // Round-off in the tails can land just outside the bounds.
        if let Some(l) = &self.low {
            x = x.maximum(l)?;
        }
        if let Some(h) = &self.high {
            x = x.minimum(h)?;
        }
        Ok(x)
    }
    fn mean(&self) -> Result<Array> {
        let (m, _) = self.normal_moments()?;
        Ok(m)
    }
    fn variance(&self) -> Result<Array> {
        let (_, v) = self.normal_moments()?;
        Ok(v)
    }
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (clo, chi) = self.cdf_bounds(value)?;
        let c = self.base.cdf(value)?.sub(&clo)?.div(&chi.sub(&clo)?)?;
        Ok(c.maximum(&full_like(&c, 0.0)?)?
            .minimum(&full_like(&c, 1.0)?)?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (clo, chi) = self.cdf_bounds(q)?;
        self.base.icdf(&clo.add(&q.mul(&chi.sub(&clo)?)?)?)
    }
}
