//! [`MixtureSameFamily`]: a finite mixture whose components are the last batch axis of
//! one distribution (NumPyro's `MixtureSameFamily`).

use super::{full_shape, Categorical, Distribution, DynDist};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{to_f64, ArrayMath};
use ferrax_core::ops::composite::logsumexp;
use ferrax_core::prim::reshape::expand_dims;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};

/// `p(x) = sum_k w_k p_k(x)` with weights from `mixing` and components the last batch
/// axis (of size K) of `component`.
#[derive(Clone, Debug)]
pub struct MixtureSameFamily {
    /// Mixture weights (batch shape `batch`, K categories).
    pub mixing: Categorical,
    /// Components (batch shape `batch ++ [K]`).
    pub component: DynDist,
    batch: Vec<usize>,
}

impl MixtureSameFamily {
    /// Builds the mixture; `component`'s last batch axis must have `mixing`'s K.
    pub fn new(mixing: Categorical, component: impl Distribution + 'static) -> Result<Self> {
        let component: DynDist = std::sync::Arc::new(component);
        let cb = component.batch_shape();
        let k = mixing.num_categories();
        if cb.last() != Some(&k) {
            return Err(Error::invalid(
                "MixtureSameFamily",
                format!(
                    "the component's batch shape {cb:?} must end in the number of mixture components {k}"
                ),
            ));
        }
        let batch = crate::math::bshape(
            "MixtureSameFamily",
            &mixing.batch_shape(),
            &cb[..cb.len() - 1],
        )?;
        Ok(MixtureSameFamily {
            mixing,
            component,
            batch,
        })
    }
    fn k(&self) -> usize {
        self.mixing.num_categories()
    }
}

impl Distribution for MixtureSameFamily {
    fn name(&self) -> &'static str {
        "MixtureSameFamily"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.batch.clone()
    }
    fn event_shape(&self) -> Vec<usize> {
        self.component.event_shape()
    }
    fn dtype(&self) -> DType {
        self.component.dtype()
    }
    fn support(&self) -> Constraint {
        self.component.support()
    }
    fn is_discrete(&self) -> bool {
        self.component.is_discrete()
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let ev = self.component.event_shape().len();
        if value.rank() < ev {
            return Err(Error::invalid(
                "MixtureSameFamily",
                format!(
                    "value of shape {:?} has fewer axes than the event shape {:?}",
                    value.shape(),
                    self.component.event_shape()
                ),
            ));
        }
        // A component axis right before the event axes, against which all K broadcast.
        let x = expand_dims(value, value.rank() - ev)?;
        let lp = self.component.log_prob(&x)?;
        let w = self.mixing.logits.cast(lp.dtype())?;
        let t = lp.add(&w)?;
        Ok(logsumexp(&t, &[t.rank() - 1])?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let (k_comp, k_mix) = key.split2()?;
        let k = self.k();
        let event = self.component.event_shape();
        let e: usize = event.iter().product();
        let outer_shape = full_shape(s, &self.batch, &[]);
        let outer: usize = outer_shape.iter().product();
        let mut cshape = outer_shape.clone();
        cshape.push(k);
        cshape.extend_from_slice(&event);
        let comp = self.component.sample(&k_comp, s)?.bcast(&cshape)?;
        // The mixing batch is a (broadcastable) suffix of the batch: draw the leading
        // axes it lacks as sample axes.
        let mb = self.mixing.batch_shape().len();
        let lead = full_shape(s, &self.batch[..self.batch.len() - mb], &[]);
        let idx = to_f64(&self.mixing.sample(&k_mix, &lead)?.bcast(&outer_shape)?)?;
        let dt = comp.dtype();
        let comp = to_f64(&comp)?;
        let mut out = Vec::with_capacity(outer * e);
        for (o, &j) in idx.iter().enumerate() {
            let j = j as usize;
            let base = (o * k + j) * e;
            out.extend_from_slice(&comp[base..base + e]);
        }
        Ok(Array::from_vec(full_shape(s, &self.batch, &event), out)?.cast(dt)?)
    }
    fn mean(&self) -> Result<Array> {
        let (w, m, _) = self.moments()?;
        let (k, e) = (self.k(), self.event_size());
        let n = w.len() / k;
        let v: Vec<f64> = (0..n * e)
            .map(|i| {
                let (o, t) = (i / e, i % e);
                (0..k).map(|j| w[o * k + j] * m[(o * k + j) * e + t]).sum()
            })
            .collect();
        self.on_batch_event(v)
    }
    fn variance(&self) -> Result<Array> {
        // Law of total variance, per event coordinate: E[Var_k] + Var[E_k].
        let (w, m, var) = self.moments()?;
        let (k, e) = (self.k(), self.event_size());
        let n = w.len() / k;
        let v: Vec<f64> = (0..n * e)
            .map(|i| {
                let (o, t) = (i / e, i % e);
                let at = |j: usize| (o * k + j) * e + t;
                let mu: f64 = (0..k).map(|j| w[o * k + j] * m[at(j)]).sum();
                (0..k)
                    .map(|j| w[o * k + j] * (var[at(j)] + (m[at(j)] - mu) * (m[at(j)] - mu)))
                    .sum()
            })
            .collect();
        self.on_batch_event(v)
    }
}

impl MixtureSameFamily {
    fn event_size(&self) -> usize {
        self.component.event_shape().iter().product()
    }

    fn on_batch_event(&self, v: Vec<f64>) -> Result<Array> {
        let shape = full_shape(&[], &self.batch, &self.component.event_shape());
        Ok(Array::from_vec(shape, v)?.cast(self.dtype())?)
    }

    /// On the host: the weights (`batch ++ [K]`) and the component means and variances
    /// (`batch ++ [K] ++ event`; for multivariate components the variance is the
    /// per-coordinate one, as NumPyro's).
    fn moments(&self) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let mut s = self.batch.clone();
        s.push(self.k());
        let w = to_f64(&self.mixing.logits.exp()?.bcast(&s)?)?;
        s.extend(self.component.event_shape());
        let m = to_f64(&self.component.mean()?.bcast(&s)?)?;
        let v = to_f64(&self.component.variance()?.bcast(&s)?)?;
        Ok((w, m, v))
    }
}
