//! Dense layers: [`Linear`] (`y = x W + b` over the last axis) and [`Embed`] (a lookup table,
//! with [`Embed::attend`] for output layers tied to the embedding).

use crate::init::{self, Initializer};
use crate::rngs::Rngs;
use crate::util::{along_last, typed, LastDim};
use ferrax_core::ops::linalg::AppendDim;
use ferrax_core::prim::dot_general::dot_general;
use ferrax_core::prim::gather::take;
use ferrax_core::{Array, Float, Int, Result, Tensor, C};
use ferrax_macros::Module;

/// A dense layer from `I` to `O` features: `y = x · kernel + bias` over the last axis of
/// `x` (any leading axes). Flax's `nnx.Linear`: kernel `lecun_normal`, bias zeros.
///
/// ```
/// use ferrax_nn::{Linear, Rngs};
/// use ferrax_core::{Dyn, Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let l = Linear::<3, 2>::new(&mut Rngs::new(0))?;
/// let x = Tensor::<(Dyn, C<3>)>::ones_shape((Dyn(5), C));
/// let y: Tensor<(Dyn, C<2>)> = l.forward(&x);
/// assert_eq!(y.dims(), &[5, 2]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Linear<const I: usize, const O: usize, E: Float = f32> {
    /// `(I, O)` weights.
    pub kernel: Tensor<(C<I>, C<O>), E>,
    /// `(O,)` bias, if the layer has one.
    pub bias: Option<Tensor<(C<O>,), E>>,
}

impl<const I: usize, const O: usize, E: Float> Linear<I, O, E> {
    /// Kernel `lecun_normal` from `rngs.params()`, zero bias.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        Self::with_init(rngs, &init::lecun_normal(), Some(&init::zeros()))
    }
    /// No bias.
    pub fn no_bias(rngs: &mut Rngs) -> Result<Self> {
        Self::with_init(rngs, &init::lecun_normal(), None)
    }
    /// Chosen initializers; `bias_init = None` makes a layer without bias.
    pub fn with_init(
        rngs: &mut Rngs,
        kernel_init: &Initializer,
        bias_init: Option<&Initializer>,
    ) -> Result<Self> {
        let (kernel, bias) = crate::util::kernel_and_bias(rngs, kernel_init, bias_init)?;
        Ok(Linear { kernel, bias })
    }
    /// `x · kernel + bias` over the last axis.
    pub fn forward<S>(&self, x: &Tensor<S, E>) -> Tensor<S::WithLast<C<O>>, E>
    where
        S: LastDim<Last = C<I>>,
    {
        typed(
            "Linear",
            linear(
                x.array(),
                self.kernel.array(),
                self.bias.as_ref().map(|b| b.array()),
            ),
        )
    }
}

/// `x · w + b` contracting the last axis of `x` with the first of `w`.
pub(crate) fn linear(x: &Array, w: &Array, b: Option<&Array>) -> Result<Array> {
    let y = dot_general(x, w, &[x.rank() - 1], &[0], &[], &[])?;
    match b {
        Some(b) => crate::util::add(&y, &along_last(b, y.shape())?),
        None => Ok(y),
    }
}

/// An embedding table of `V` entries of `D` features (Flax's `nnx.Embed`; initialized
/// `variance_scaling(1, fan_in, normal, out_axis=0)`, i.e. normal with variance `1 / D`).
///
/// ```
/// use ferrax_nn::{Embed, Rngs};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let e = Embed::<10, 4>::new(&mut Rngs::new(0))?;
/// let ids = Tensor::<(C<2>, C<3>), i32>::from_vec(vec![1, 2, 3, 4, 5, 6])?;
/// let h: Tensor<(C<2>, C<3>, C<4>)> = e.forward(&ids);
/// let logits: Tensor<(C<2>, C<3>, C<10>)> = e.attend(&h);
/// assert_eq!(logits.dims(), &[2, 3, 10]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Embed<const V: usize, const D: usize, E: Float = f32> {
    /// `(V, D)` table.
    pub embedding: Tensor<(C<V>, C<D>), E>,
}

impl<const V: usize, const D: usize, E: Float> Embed<V, D, E> {
    /// The Flax default initializer.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        let i = Initializer::VarianceScaling {
            scale: 1.0,
            mode: init::FanMode::FanIn,
            distribution: init::Distribution::Normal,
            in_axis: -1,
            out_axis: 0,
        };
        Self::with_init(rngs, &i)
    }
    /// A chosen initializer.
    pub fn with_init(rngs: &mut Rngs, i: &Initializer) -> Result<Self> {
        Ok(Embed {
            embedding: i.init(&rngs.params()?)?,
        })
    }
    /// The rows of the table at `ids` (any shape): `ids.shape ++ [D]`. Out-of-range ids
    /// are clamped, as `jnp.take` does.
    pub fn forward<S, I: Int>(&self, ids: &Tensor<S, I>) -> Tensor<<S as AppendDim<C<D>>>::Out, E>
    where
        S: AppendDim<C<D>>,
    {
        typed("Embed", take(self.embedding.array(), ids.array(), 0))
    }
    /// `x · tableᵀ`: logits over the `V` entries for features `x` (a tied output layer).
    pub fn attend<S>(&self, x: &Tensor<S, E>) -> Tensor<S::WithLast<C<V>>, E>
    where
        S: LastDim<Last = C<D>>,
    {
        typed(
            "Embed::attend",
            dot_general(
                x.array(),
                self.embedding.array(),
                &[x.array().rank() - 1],
                &[1],
                &[],
                &[],
            ),
        )
    }
}
