//! Discrete distributions. Draws are `i32` arrays; `log_prob` accepts integer or float
//! values (converted to the parameters' float dtype). Poisson draws (and those of
//! distributions built on it) use an inversion sampler on the host: they need concrete
//! parameters and are not bit-compatible with `jax.random.poisson`.

use super::continuous::{common, params_struct};
use super::{at, full_shape, on_support, promote, std_draw, Distribution, IntoArray};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{and, full_like, to_f64, where_, ArrayMath};
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::prim::random::Dist as R;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};

fn to_i32(x: &Array) -> Result<Array> {
    Ok(x.cast(DType::I32)?)
}

/// Whether a probability-type parameter is given as probabilities or as logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Probabilities in [0, 1].
    Probs,
    /// Log-odds (log of unnormalized probabilities for Categorical).
    Logits,
}

/// Bernoulli over {0, 1}, by probability or logit of 1.
#[derive(Clone, Debug)]
pub struct Bernoulli {
    /// The parameter, as `kind` says.
    pub param: Array,
    /// Probabilities or logits.
    pub kind: Param,
    batch: Vec<usize>,
    dt: DType,
}
impl Bernoulli {
    /// Bernoulli with `P(1) = probs`.
    pub fn probs(probs: impl IntoArray) -> Result<Self> {
        let (mut ps, batch, dt) = promote("Bernoulli", vec![probs.into_array()])?;
        Ok(Bernoulli {
            param: ps.remove(0),
            kind: Param::Probs,
            batch,
            dt,
        })
    }
    /// Bernoulli with `P(1) = sigmoid(logits)`.
    pub fn logits(logits: impl IntoArray) -> Result<Self> {
        let (mut ps, batch, dt) = promote("Bernoulli", vec![logits.into_array()])?;
        Ok(Bernoulli {
            param: ps.remove(0),
            kind: Param::Logits,
            batch,
            dt,
        })
    }
    /// `P(1)`.
    pub fn probs_array(&self) -> Result<Array> {
        Ok(match self.kind {
            Param::Probs => self.param.clone(),
            Param::Logits => self.param.sigmoid()?,
        })
    }
}
impl Distribution for Bernoulli {
    common!("Bernoulli");
    fn support(&self) -> Constraint {
        Constraint::Boolean
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.param], self.dt)?;
        Ok(match self.kind {
            // x l - softplus(l): minus binary cross-entropy with logits, written as NumPyro
            // writes it (clip(l, 0) + log1p(exp(-|l|))) so that the subgradient at l = 0
            // is the one JAX reports.
            Param::Logits => {
                let l = &p[0];
                let relu = where_(&l.gtc(0.0)?, l, &full_like(l, 0.0)?)?;
                x.mul(l)?
                    .sub(&relu.add(&l.abs()?.neg()?.exp()?.log1p()?)?)?
            }
            Param::Probs => x.xlogy(&p[0])?.add(&x.rsubc(1.0)?.xlog1py(&p[0].neg()?)?)?,
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        let p = self.probs_array()?.bcast(&shape)?;
        let u = std_draw(key, R::Uniform { min: 0.0, max: 1.0 }, &shape, self.dt, &[])?;
        to_i32(&u.lt(&p)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.probs_array()?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let p = self.probs_array()?;
        Ok(p.mul(&p.rsubc(1.0)?)?.bcast(&self.batch)?)
    }
}

/// Binomial(total_count, probs or logits).
#[derive(Clone, Debug)]
pub struct Binomial {
    /// Number of trials (float array of whole numbers).
    pub total_count: Array,
    /// Success probability or logit.
    pub param: Array,
    /// Probabilities or logits.
    pub kind: Param,
    batch: Vec<usize>,
    dt: DType,
}
impl Binomial {
    fn build(n: Array, p: Array, kind: Param) -> Result<Self> {
        let (mut ps, batch, dt) = promote("Binomial", vec![n, p])?;
        let param = ps.pop().expect("two");
        let total_count = ps.pop().expect("two");
        Ok(Binomial {
            total_count,
            param,
            kind,
            batch,
            dt,
        })
    }
    /// Binomial with success probability `probs`.
    pub fn probs(total_count: impl IntoArray, probs: impl IntoArray) -> Result<Self> {
        Self::build(total_count.into_array(), probs.into_array(), Param::Probs)
    }
    /// Binomial with success logit `logits`.
    pub fn logits(total_count: impl IntoArray, logits: impl IntoArray) -> Result<Self> {
        Self::build(total_count.into_array(), logits.into_array(), Param::Logits)
    }
    fn probs_array(&self) -> Result<Array> {
        Ok(match self.kind {
            Param::Probs => self.param.clone(),
            Param::Logits => self.param.sigmoid()?,
        })
    }
}
impl Distribution for Binomial {
    common!("Binomial");
    fn support(&self) -> Constraint {
        Constraint::IntegerInterval(Array::full(&[], self.dt, 0.0), self.total_count.clone())
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (k, p) = at(value, &[&self.total_count, &self.param], self.dt)?;
        let (n, q) = (&p[0], &p[1]);
        let inside = and(&k.gec(0.0)?, &k.le(n)?)?;
        on_support(&k, &inside, &full_like(&k, 0.0)?, |k| {
            let nmk = n.sub(k)?;
            let comb = n
                .addc(1.0)?
                .lgamma()?
                .sub(&k.addc(1.0)?.lgamma()?)?
                .sub(&nmk.addc(1.0)?.lgamma()?)?;
            Ok(match self.kind {
                // k l - n softplus(l), written as NumPyro does for stability.
                Param::Logits => comb.add(&k.mul(q)?)?.sub(&n.mul(&q.softplus()?)?)?,
                Param::Probs => comb.add(&k.xlogy(q)?)?.add(&nmk.xlog1py(&q.neg()?)?)?,
            })
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // Sum of Bernoulli trials: draws `shape ++ [max n]` uniforms and counts successes
        // among the first n of each row. Needs a concrete total_count.
        let ns = to_f64(&self.total_count)?;
        let nmax = ns.iter().fold(0.0f64, |a, &b| a.max(b));
        if !(nmax.is_finite() && nmax >= 0.0) {
            return Err(Error::invalid(
                "Binomial",
                format!("total_count must be finite and non-negative, got max {nmax}"),
            ));
        }
        let nmax = nmax as usize;
        let shape = full_shape(s, &self.batch, &[]);
        let mut ext = shape.clone();
        ext.push(nmax.max(1));
        let dims: Vec<usize> = (0..shape.len()).collect();
        let p = broadcast_in_dim(&self.probs_array()?.bcast(&shape)?, &ext, &dims)?;
        let n = broadcast_in_dim(&self.total_count.bcast(&shape)?, &ext, &dims)?;
        let idx = ferrax_core::prim::iota::iota(self.dt, &ext, ext.len() - 1)?;
        let u = std_draw(key, R::Uniform { min: 0.0, max: 1.0 }, &ext, self.dt, &[])?;
        let hit = crate::math::and(&u.lt(&p)?, &idx.lt(&n)?)?;
        Ok(hit.cast(DType::I32)?.sum_last(1)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self
            .total_count
            .mul(&self.probs_array()?)?
            .bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let p = self.probs_array()?;
        Ok(self
            .total_count
            .mul(&p)?
            .mul(&p.rsubc(1.0)?)?
            .bcast(&self.batch)?)
    }
}

/// Categorical over `{0, ..., K-1}`: the last axis of the parameter holds the K categories.
#[derive(Clone, Debug)]
pub struct Categorical {
    /// Normalized log probabilities, shape `batch ++ [K]`.
    pub logits: Array,
    batch: Vec<usize>,
    dt: DType,
}
impl Categorical {
    fn build(logits: Array) -> Result<Self> {
        let (mut ps, shape, dt) = promote("Categorical", vec![logits])?;
        let l = ps.remove(0);
        if shape.is_empty() {
            return Err(Error::invalid(
                "Categorical",
                "the parameter needs a category axis (shape [..., K])",
            ));
        }
        let r = l.rank();
        // Normalized once here, as NumPyro does, so log_prob is a lookup.
        let logits = ferrax_core::ops::composite::log_softmax(&l, &[r - 1])?;
        Ok(Categorical {
            logits,
            batch: shape[..r - 1].to_vec(),
            dt,
        })
    }
    /// From (unnormalized) log probabilities.
    pub fn logits(logits: impl IntoArray) -> Result<Self> {
        Self::build(logits.into_array())
    }
    /// From probabilities (normalized along the last axis).
    pub fn probs(probs: impl IntoArray) -> Result<Self> {
        Self::build(probs.into_array().log()?)
    }
    /// Number of categories.
    pub fn num_categories(&self) -> usize {
        *self.logits.shape().last().expect("checked at construction")
    }
}
impl Distribution for Categorical {
    common!("Categorical");
    fn support(&self) -> Constraint {
        Constraint::IntegerInterval(
            Array::scalar(0.0f64),
            Array::scalar((self.num_categories() as f64) - 1.0),
        )
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.logits], self.dt)?;
        let l = &p[0];
        let k = self.num_categories();
        // One-hot select instead of a gather, so the rule set needed to differentiate is
        // the elementwise one.
        let lead = crate::math::bshape("Categorical", x.shape(), &self.batch)?;
        let mut ext = lead.clone();
        ext.push(k);
        let dims: Vec<usize> = (0..lead.len()).collect();
        let xe = broadcast_in_dim(&x.bcast(&lead)?, &ext, &dims)?;
        let idx = ferrax_core::prim::iota::iota(x.dtype(), &ext, ext.len() - 1)?;
        let hit = xe.eq_(&idx)?;
        Ok(where_(&hit, &l.bcast(&ext)?, &full_like(&xe, 0.0)?)?.sum_last(1)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        std_draw(key, R::Categorical, &shape, DType::I32, &[&self.logits])
    }
    fn mean(&self) -> Result<Array> {
        Err(Error::unsupported(
            "Categorical",
            "the mean of category labels is not defined (NumPyro returns NaN)",
        ))
    }
}

params_struct!(
    /// Poisson(rate).
    Poisson { /** Mean number of events. */ rate }
);
/// Host inversion sampler for Poisson(lam) given a uniform `u`.
fn poisson_inv(lam: f64, u: f64) -> f64 {
    if lam <= 0.0 {
        return 0.0;
    }
    if lam > 1e3 {
        // Normal approximation with continuity correction (documented as approximate).
        let z = std::f64::consts::SQRT_2 * ferrax_core::prim::unary::erf_inv_f64(2.0 * u - 1.0);
        return (lam + lam.sqrt() * z + 0.5).floor().max(0.0);
    }
    let mut k = 0.0;
    let mut p = (-lam).exp();
    let mut c = p;
    while u > c && k < 1e6 {
        k += 1.0;
        p *= lam / k;
        c += p;
        if p == 0.0 && c < u {
            break;
        }
    }
    k
}
pub(crate) fn poisson_sample(key: &Key, rate: &Array, shape: &[usize], dt: DType) -> Result<Array> {
    let lam = to_f64(&rate.bcast(shape)?)?;
    let u = to_f64(&std_draw(
        key,
        R::Uniform { min: 0.0, max: 1.0 },
        shape,
        dt,
        &[],
    )?)?;
    let v: Vec<i32> = lam
        .iter()
        .zip(&u)
        .map(|(&l, &u)| poisson_inv(l, u) as i32)
        .collect();
    Ok(Array::from_vec(shape.to_vec(), v)?)
}
impl Distribution for Poisson {
    common!("Poisson");
    fn support(&self) -> Constraint {
        Constraint::NonNegativeInteger
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (k, p) = at(value, &[&self.rate], self.dt)?;
        on_support(&k, &k.gec(0.0)?, &full_like(&k, 0.0)?, |k| {
            Ok(k.xlogy(&p[0])?.sub(&k.addc(1.0)?.lgamma()?)?.sub(&p[0])?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        poisson_sample(key, &self.rate, &full_shape(s, &self.batch, &[]), self.dt)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.rate.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self.rate.bcast(&self.batch)?)
    }
}

params_struct!(
    /// NegativeBinomial2(mean, concentration): a Gamma-Poisson mixture with the given mean
    /// and `variance = mean + mean^2 / concentration`.
    NegativeBinomial2 { /** Mean. */ mean, /** Concentration (inverse overdispersion). */ concentration }
);
impl Distribution for NegativeBinomial2 {
    common!("NegativeBinomial2");
    fn support(&self) -> Constraint {
        Constraint::NonNegativeInteger
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (k, p) = at(value, &[&self.mean, &self.concentration], self.dt)?;
        let (mu, c) = (&p[0], &p[1]);
        let lt = c.add(mu)?.log()?;
        on_support(&k, &k.gec(0.0)?, &full_like(&k, 0.0)?, |k| {
            Ok(k.add(c)?
                .lgamma()?
                .sub(&c.lgamma()?)?
                .sub(&k.addc(1.0)?.lgamma()?)?
                .add(&c.mul(&c.log()?.sub(&lt)?)?)?
                .add(&k.xlogy(mu)?)?
                .sub(&k.mul(&lt)?)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let (k1, k2) = key.split2()?;
        let shape = full_shape(s, &self.batch, &[]);
        let c = self.concentration.bcast(&shape)?;
        let g = std_draw(&k1, R::Gamma { log_space: false }, &shape, self.dt, &[&c])?;
        let rate = g.mul(&self.mean.div(&self.concentration)?)?;
        poisson_sample(&k2, &rate, &shape, self.dt)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.mean.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .mean
            .add(&self.mean.square()?.div(&self.concentration)?)?
            .bcast(&self.batch)?)
    }
}

/// Geometric: number of failures before the first success.
#[derive(Clone, Debug)]
pub struct Geometric {
    /// Success probability or logit.
    pub param: Array,
    /// Probabilities or logits.
    pub kind: Param,
    batch: Vec<usize>,
    dt: DType,
}
impl Geometric {
    /// With success probability `probs`.
    pub fn probs(probs: impl IntoArray) -> Result<Self> {
        let (mut ps, batch, dt) = promote("Geometric", vec![probs.into_array()])?;
        Ok(Geometric {
            param: ps.remove(0),
            kind: Param::Probs,
            batch,
            dt,
        })
    }
    /// With success logit `logits`.
    pub fn logits(logits: impl IntoArray) -> Result<Self> {
        let (mut ps, batch, dt) = promote("Geometric", vec![logits.into_array()])?;
        Ok(Geometric {
            param: ps.remove(0),
            kind: Param::Logits,
            batch,
            dt,
        })
    }
    fn probs_array(&self) -> Result<Array> {
        Ok(match self.kind {
            Param::Probs => self.param.clone(),
            Param::Logits => self.param.sigmoid()?,
        })
    }
}
impl Distribution for Geometric {
    common!("Geometric");
    fn support(&self) -> Constraint {
        Constraint::NonNegativeInteger
    }
    fn is_discrete(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (k, p) = at(value, &[&self.param], self.dt)?;
        on_support(&k, &k.gec(0.0)?, &full_like(&k, 0.0)?, |k| {
            Ok(match self.kind {
                // log p = -softplus(-l), log(1 - p) = -softplus(l).
                Param::Logits => k
                    .mul(&p[0].softplus()?)?
                    .neg()?
                    .sub(&p[0].neg()?.softplus()?)?,
                Param::Probs => k.mul(&p[0].neg()?.log1p()?)?.add(&p[0].log()?)?,
            })
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        let tiny = if self.dt == DType::F32 {
            f32::MIN_POSITIVE as f64
        } else {
            f64::MIN_POSITIVE
        };
        let u = std_draw(
            key,
            R::Uniform {
                min: tiny,
                max: 1.0,
            },
            &shape,
            self.dt,
            &[],
        )?;
        let p = self.probs_array()?;
        to_i32(&u.log()?.div(&p.neg()?.log1p()?)?.floor()?)
    }
    fn mean(&self) -> Result<Array> {
        let p = self.probs_array()?;
        Ok(p.rsubc(1.0)?.div(&p)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let p = self.probs_array()?;
        Ok(p.rsubc(1.0)?.div(&p.square()?)?.bcast(&self.batch)?)
    }
}
