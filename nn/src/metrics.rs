//! Metrics accumulated over batches on the host (Flax's `nnx.metrics`): [`Average`],
//! [`Accuracy`], and [`MultiMetric`] holding named ones; all resettable.
//!
//! ```
//! use ferrax_nn::metrics::{Accuracy, Average, Metric};
//! use ferrax_core::{Tensor, C};
//! # fn main() -> ferrax_core::Result<()> {
//! let mut acc = Accuracy::default();
//! let logits = Tensor::<(C<2>, C<3>)>::from_vec(vec![0., 1., 0., 5., 0., 0.])?;
//! acc.update(&logits, &Tensor::<(C<2>,), i32>::from_vec(vec![1, 2])?)?;
//! assert_eq!(acc.compute(), 0.5);
//! let mut loss = Average::default();
//! loss.update(&Tensor::<(C<2>,)>::from_vec(vec![1., 3.])?)?;
//! assert_eq!(loss.compute(), 2.0);
//! # Ok(())
//! # }
//! ```

use crate::util::LastDim;
use ferrax_core::{Error, Float, Int, Result, Shape, Tensor};

/// A value accumulated over updates.
pub trait Metric: std::fmt::Debug {
    /// The current value (NaN before any update).
    fn compute(&self) -> f64;
    /// Forgets every update.
    fn reset(&mut self);
}

/// The mean of every element passed to [`Average::update`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Average {
    total: f64,
    count: usize,
}

impl Average {
    /// Adds the elements of `values` (a scalar loss or per-example values).
    pub fn update<S: Shape, E: Float>(&mut self, values: &Tensor<S, E>) -> Result<()> {
        let v = values.to_vec()?;
        self.total += v.iter().map(|x| x.to_f64()).sum::<f64>();
        self.count += v.len();
        Ok(())
    }
    /// Adds one value.
    pub fn update_value(&mut self, v: f64) {
        self.total += v;
        self.count += 1;
    }
}

impl Metric for Average {
    fn compute(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.total / self.count as f64
        }
    }
    fn reset(&mut self) {
        *self = Average::default();
    }
}

/// The fraction of rows whose largest logit (first on ties) is at the label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accuracy {
    correct: usize,
    count: usize,
}

impl Accuracy {
    /// Adds a batch of logits `(.., K)` and integer labels `(..)`.
    pub fn update<S: LastDim, E: Float, I: Int>(
        &mut self,
        logits: &Tensor<S, E>,
        labels: &Tensor<S::Init, I>,
    ) -> Result<()> {
        let k = logits.dims()[logits.dims().len() - 1];
        let l = logits.to_vec()?;
        let y = labels.to_vec()?;
        if k == 0 || l.len() != y.len() * k {
            return Err(Error::shape(
                "Accuracy::update",
                format!(
                    "logits {:?} do not match labels {:?}",
                    logits.dims(),
                    labels.dims()
                ),
            ));
        }
        for (row, label) in l.chunks(k).zip(&y) {
            let mut best = 0;
            for j in 1..k {
                if row[j].to_f64() > row[best].to_f64() {
                    best = j;
                }
            }
            self.correct += (best as f64 == label.to_f64()) as usize;
        }
        self.count += y.len();
        Ok(())
    }
}

impl Metric for Accuracy {
    fn compute(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.count as f64
        }
    }
    fn reset(&mut self) {
        *self = Accuracy::default();
    }
}

/// Named metrics updated and reset together (`nnx.MultiMetric`).
#[derive(Debug, Default)]
pub struct MultiMetric {
    /// The metrics with their names, in insertion order.
    pub metrics: Vec<(String, Box<dyn Metric>)>,
}

impl MultiMetric {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a metric under `name`.
    pub fn with(mut self, name: &str, m: impl Metric + 'static) -> Self {
        self.metrics.push((name.to_string(), Box::new(m)));
        self
    }
    /// Every metric's value, by name.
    pub fn compute(&self) -> Vec<(String, f64)> {
        self.metrics
            .iter()
            .map(|(n, m)| (n.clone(), m.compute()))
            .collect()
    }
    /// Resets every metric.
    pub fn reset(&mut self) {
        self.metrics.iter_mut().for_each(|(_, m)| m.reset())
    }
    /// The metric named `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Box<dyn Metric>> {
        self.metrics
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
    }
}
