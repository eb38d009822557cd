//! [`Layer`] (a module applied to an input) and [`Sequential`], which chains layers whose
//! input and output types line up: a tuple of up to 8 layers, checked by rustc.
//!
//! ```
//! use ferrax_nn::{Layer, Linear, Module, Relu, Rngs, Sequential};
//! use ferrax_core::{Tensor, C};
//! # fn main() -> ferrax_core::Result<()> {
//! let mut rngs = Rngs::new(0);
//! let mlp = Sequential::new((Linear::<4, 16>::new(&mut rngs)?, Relu, Linear::<16, 3>::new(&mut rngs)?));
//! let y: Tensor<(C<2>, C<3>)> = mlp.apply(&Tensor::<(C<2>, C<4>)>::ones())?;
//! assert_eq!(y.dims(), &[2, 3]);
//! assert_eq!(mlp.vars()[0].path.to_string(), "layers.0.kernel");
//! # Ok(())
//! # }
//! ```

use crate::layers::linear::Linear;
use crate::layers::norm::{GroupNorm, LayerNorm, RMSNorm};
use crate::util::LastDim;
use ferrax_core::{Float, Result, Tensor, C};
use ferrax_macros::Module;

/// A module applied to an input of type `X`.
pub trait Layer<X> {
    /// The result type.
    type Output;
    /// Applies the layer.
    fn apply(&self, x: &X) -> Result<Self::Output>;
}

/// Layers applied in order (`nnx.Sequential`); `layers` is a tuple.
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Sequential<L> {
    /// The layers, a tuple.
    pub layers: L,
}

impl<L> Sequential<L> {
    /// Chains the tuple of layers `layers`.
    pub fn new(layers: L) -> Self {
        Sequential { layers }
    }
}

// Chains are spelled out per length: each layer's input is the previous one's output.
impl<X, A: Layer<X>> Layer<X> for Sequential<(A,)> {
    type Output = A::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        self.layers.0.apply(x)
    }
}
impl<X, A: Layer<X>, B: Layer<A::Output>> Layer<X> for Sequential<(A, B)> {
    type Output = B::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        self.layers.1.apply(&self.layers.0.apply(x)?)
    }
}
impl<X, A: Layer<X>, B: Layer<A::Output>, C3: Layer<B::Output>> Layer<X>
    for Sequential<(A, B, C3)>
{
    type Output = C3::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        let y = self.layers.1.apply(&self.layers.0.apply(x)?)?;
        self.layers.2.apply(&y)
    }
}
impl<X, A: Layer<X>, B: Layer<A::Output>, C3: Layer<B::Output>, D: Layer<C3::Output>> Layer<X>
    for Sequential<(A, B, C3, D)>
{
    type Output = D::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        let y = self.layers.1.apply(&self.layers.0.apply(x)?)?;
        self.layers.3.apply(&self.layers.2.apply(&y)?)
    }
}
impl<
        X,
        A: Layer<X>,
        B: Layer<A::Output>,
        C3: Layer<B::Output>,
        D: Layer<C3::Output>,
        E5: Layer<D::Output>,
    > Layer<X> for Sequential<(A, B, C3, D, E5)>
{
    type Output = E5::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        let y = self.layers.1.apply(&self.layers.0.apply(x)?)?;
        let y = self.layers.3.apply(&self.layers.2.apply(&y)?)?;
        self.layers.4.apply(&y)
    }
}
impl<
        X,
        A: Layer<X>,
        B: Layer<A::Output>,
        C3: Layer<B::Output>,
        D: Layer<C3::Output>,
        E5: Layer<D::Output>,
        F: Layer<E5::Output>,
    > Layer<X> for Sequential<(A, B, C3, D, E5, F)>
{
    type Output = F::Output;
    fn apply(&self, x: &X) -> Result<Self::Output> {
        let y = self.layers.1.apply(&self.layers.0.apply(x)?)?;
        let y = self.layers.3.apply(&self.layers.2.apply(&y)?)?;
        self.layers.5.apply(&self.layers.4.apply(&y)?)
    }
}

impl<S, const I: usize, const O: usize, E: Float> Layer<Tensor<S, E>> for Linear<I, O, E>
where
    S: LastDim<Last = C<I>>,
{
    type Output = Tensor<S::WithLast<C<O>>, E>;
    fn apply(&self, x: &Tensor<S, E>) -> Result<Self::Output> {
        Ok(self.forward(x))
    }
}

impl<S: LastDim<Last = C<D>>, const D: usize, E: Float> Layer<Tensor<S, E>> for LayerNorm<D, E> {
    type Output = Tensor<S, E>;
    fn apply(&self, x: &Tensor<S, E>) -> Result<Self::Output> {
        Ok(self.forward(x))
    }
}

impl<S: LastDim<Last = C<D>>, const D: usize, E: Float> Layer<Tensor<S, E>> for RMSNorm<D, E> {
    type Output = Tensor<S, E>;
    fn apply(&self, x: &Tensor<S, E>) -> Result<Self::Output> {
        Ok(self.forward(x))
    }
}

impl<S: LastDim<Last = C<D>>, const D: usize, const G: usize, E: Float> Layer<Tensor<S, E>>
    for GroupNorm<D, G, E>
{
    type Output = Tensor<S, E>;
    fn apply(&self, x: &Tensor<S, E>) -> Result<Self::Output> {
        Ok(self.forward(x))
    }
}
