//! [`Dropout`]: zeroes each element with probability `rate` in training mode and scales the
//! rest by `1 / (1 - rate)`; the identity in evaluation mode.

use crate::rngs::Rngs;
use ferrax_core::prim::select::select_bcast;
use ferrax_core::random::{bernoulli, Key};
use ferrax_core::{Array, Error, Float, Result, Shape, Tensor};
use ferrax_macros::Module;

/// Dropout with rate `rate` (Flax's `nnx.Dropout`). The mask is
/// `bernoulli(key, 1 - rate, x.shape)`, as in Flax, so a key gives JAX's mask.
///
/// ```
/// use ferrax_nn::{Dropout, Module, Rngs};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let mut d = Dropout::new(0.5)?;
/// let x = Tensor::<(C<1000>,)>::ones();
/// let y = d.forward(&x, &mut Rngs::new(0))?.to_vec()?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// d.eval();
/// assert_eq!(d.forward(&x, &mut Rngs::new(0))?.to_vec()?, x.to_vec()?);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Dropout {
    /// Probability of dropping an element.
    #[module(static)]
    pub rate: f64,
    /// Training mode (set by `train()` / `eval()`).
    #[module(training)]
    pub training: bool,
}

impl Dropout {
    /// Dropout with `rate` in `[0, 1]`, in training mode.
    pub fn new(rate: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::invalid(
                "Dropout",
                format!("rate must be in [0, 1], got {rate}"),
            ));
        }
        Ok(Dropout {
            rate,
            training: true,
        })
    }
    /// Applies dropout with a key from `rngs.dropout()` (drawn only in training mode with a
    /// positive rate).
    pub fn forward<S: Shape, E: Float>(
        &self,
        x: &Tensor<S, E>,
        rngs: &mut Rngs,
    ) -> Result<Tensor<S, E>> {
        if !self.training || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let key = rngs.dropout()?;
        self.forward_with_key(x, &key)
    }
    /// Applies dropout with a given key (for keys drawn outside a differentiated closure).
    pub fn forward_with_key<S: Shape, E: Float>(
        &self,
        x: &Tensor<S, E>,
        key: &Key,
    ) -> Result<Tensor<S, E>> {
        if !self.training || self.rate == 0.0 {
            return Ok(x.clone());
        }
        if self.rate >= 1.0 {
            return Ok(Tensor::zeros_shape(x.shape()));
        }
        let keep = bernoulli(key, 1.0 - self.rate, x.shape())?;
        let kept = ferrax_core::prim::binary::binary_scalar(
            ferrax_core::prim::binary::BinaryOp::Div,
            x.array(),
            1.0 - self.rate,
        )?;
        let zero = Array::zeros(&[], E::DTYPE);
        Tensor::from_array(select_bcast(keep.array(), &kept, &zero)?)
    }
}
