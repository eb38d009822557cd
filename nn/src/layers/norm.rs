//! Normalization layers over the feature (last) axis: [`LayerNorm`], [`RMSNorm`],
//! [`GroupNorm`], and [`BatchNorm`] with running statistics (state, updated in training
//! mode).

use crate::util::{add, add_scalar, along_last, expand, mul, scale, sub, typed, LastDim};
use ferrax_core::ops::composite::{mean, var};
use ferrax_core::prim::reshape::reshape;
use ferrax_core::prim::unary::rsqrt;
use ferrax_core::{Array, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// Layer normalization over the last axis: `(x - mean) / sqrt(var + eps) * scale + bias`
/// (Flax's `nnx.LayerNorm`: eps 1e-6, scale ones, bias zeros).
///
/// ```
/// use ferrax_nn::LayerNorm;
/// use ferrax_core::{Tensor, C};
/// let ln = LayerNorm::<4>::new();
/// let x = Tensor::<(C<1>, C<4>)>::from_vec(vec![1., 2., 3., 4.]).unwrap();
/// let y = ln.forward(&x).to_vec().unwrap();
/// assert!((y.iter().sum::<f32>()).abs() < 1e-5);
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct LayerNorm<const D: usize, E: Float = f32> {
    /// Multiplier per feature.
    pub scale: Tensor<(C<D>,), E>,
    /// Offset per feature.
    pub bias: Tensor<(C<D>,), E>,
    /// Added to the variance.
    #[module(static)]
    pub epsilon: f64,
}

impl<const D: usize, E: Float> Default for LayerNorm<D, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, E: Float> LayerNorm<D, E> {
    /// Scale ones, bias zeros, eps 1e-6.
    pub fn new() -> Self {
        LayerNorm {
            scale: Tensor::ones(),
            bias: Tensor::zeros(),
            epsilon: 1e-6,
        }
    }
    /// Sets epsilon.
    pub fn with_epsilon(mut self, eps: f64) -> Self {
        self.epsilon = eps;
        self
    }
    /// Normalizes over the last axis.
    pub fn forward<S: LastDim<Last = C<D>>>(&self, x: &Tensor<S, E>) -> Tensor<S, E> {
        typed("LayerNorm", self.apply_array(x.array()))
    }
    fn apply_array(&self, x: &Array) -> Result<Array> {
        let ax = [x.rank() - 1];
        let m = expand(&mean(x, &ax)?, x.shape(), &ax)?;
        let v = expand(&var(x, &ax, 0)?, x.shape(), &ax)?;
        let n = mul(&sub(x, &m)?, &rsqrt(&add_scalar(&v, self.epsilon)?)?)?;
        let n = mul(&n, &along_last(self.scale.array(), x.shape())?)?;
        add(&n, &along_last(self.bias.array(), x.shape())?)
    }
}

/// Root-mean-square normalization over the last axis: `x / sqrt(mean(x²) + eps) * scale`
/// (Flax's `nnx.RMSNorm`: eps 1e-6, scale ones).
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct RMSNorm<const D: usize, E: Float = f32> {
    /// Multiplier per feature.
    pub scale: Tensor<(C<D>,), E>,
    /// Added to the mean square.
    #[module(static)]
    pub epsilon: f64,
}

impl<const D: usize, E: Float> Default for RMSNorm<D, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, E: Float> RMSNorm<D, E> {
    /// Scale ones, eps 1e-6.
    pub fn new() -> Self {
        RMSNorm {
            scale: Tensor::ones(),
            epsilon: 1e-6,
        }
    }
    /// Normalizes over the last axis.
    pub fn forward<S: LastDim<Last = C<D>>>(&self, x: &Tensor<S, E>) -> Tensor<S, E> {
        let f = || -> Result<Array> {
            let x = x.array();
            let ax = [x.rank() - 1];
            let ms = expand(&mean(&mul(x, x)?, &ax)?, x.shape(), &ax)?;
            let n = mul(x, &rsqrt(&add_scalar(&ms, self.epsilon)?)?)?;
            mul(&n, &along_last(self.scale.array(), x.shape())?)
        };
        typed("RMSNorm", f())
    }
}

/// Group normalization (Flax's `nnx.GroupNorm`: eps 1e-6, scale ones, bias zeros): the `D`
/// features are split into `G` groups of `D / G` consecutive channels, and each example
/// (axis 0) is normalized per group over all its other axes and the group's channels, then
/// scaled and shifted per feature. `G` must divide `D` (checked at compile time).
///
/// ```
/// use ferrax_nn::GroupNorm;
/// use ferrax_core::{Tensor, C};
/// let gn = GroupNorm::<4, 2>::new();
/// let x = Tensor::<(C<1>, C<4>)>::from_vec(vec![1., 3., 10., 20.]).unwrap();
/// let y = gn.forward(&x).to_vec().unwrap(); // groups [1, 3] and [10, 20]
/// assert!((y[0] + 1.0).abs() < 1e-5 && (y[3] - 1.0).abs() < 1e-5);
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct GroupNorm<const D: usize, const G: usize, E: Float = f32> {
    /// Multiplier per feature.
    pub scale: Tensor<(C<D>,), E>,
    /// Offset per feature.
    pub bias: Tensor<(C<D>,), E>,
    /// Added to the variance.
    #[module(static)]
    pub epsilon: f64,
}

impl<const D: usize, const G: usize, E: Float> Default for GroupNorm<D, G, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, const G: usize, E: Float> GroupNorm<D, G, E> {
    const GROUP_SIZE: usize = {
        assert!(
            G > 0 && D.is_multiple_of(G),
            "GroupNorm: the group count G must divide the features D"
        );
        D / G
    };
    /// Scale ones, bias zeros, eps 1e-6.
    pub fn new() -> Self {
        GroupNorm {
            scale: Tensor::ones(),
            bias: Tensor::zeros(),
            epsilon: 1e-6,
        }
    }
    /// Sets epsilon.
    pub fn with_epsilon(mut self, eps: f64) -> Self {
        self.epsilon = eps;
        self
    }
    /// Normalizes each example per group of channels.
    pub fn forward<S: LastDim<Last = C<D>>>(&self, x: &Tensor<S, E>) -> Tensor<S, E> {
        typed("GroupNorm", self.apply_array(x.array()))
    }
    fn apply_array(&self, x: &Array) -> Result<Array> {
        let shape = x.shape().to_vec();
        let mut gs = shape[..shape.len() - 1].to_vec();
        gs.extend([G, Self::GROUP_SIZE]);
        let xg = reshape(x, &gs)?;
        // Every axis but the example axis 0 and the group axis.
        let r = gs.len();
        let ax: Vec<usize> = (1..r).filter(|&a| a != r - 2).collect();
        let m = expand(&mean(&xg, &ax)?, &gs, &ax)?;
        let v = expand(&var(&xg, &ax, 0)?, &gs, &ax)?;
        let n = mul(&sub(&xg, &m)?, &rsqrt(&add_scalar(&v, self.epsilon)?)?)?;
        let n = reshape(&n, &shape)?;
        let n = mul(&n, &along_last(self.scale.array(), &shape)?)?;
        add(&n, &along_last(self.bias.array(), &shape)?)
    }
}

/// Batch normalization over every axis but the last (Flax's `nnx.BatchNorm`: momentum
/// 0.99, eps 1e-5). In training mode it normalizes with the batch statistics and updates
/// the running ones (`ra = momentum ra + (1 - momentum) batch`); in evaluation mode it
/// uses the running statistics. `mean` and `var` are state, not parameters.
///
/// ```
/// use ferrax_nn::{BatchNorm, Module};
/// use ferrax_core::{Tensor, C};
/// let mut bn = BatchNorm::<2>::new();
/// let x = Tensor::<(C<2>, C<2>)>::from_vec(vec![1., 10., 3., 30.]).unwrap();
/// let _ = bn.forward(&x);                        // training: batch statistics
/// assert!((bn.mean.to_vec().unwrap()[0] - 0.02).abs() < 1e-6);
/// bn.eval();
/// let y = bn.forward(&x);                        // evaluation: running statistics
/// assert_eq!(y.dims(), &[2, 2]);
/// assert_eq!(bn.num_params(), 4);                // scale and bias; mean/var are state
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct BatchNorm<const D: usize, E: Float = f32> {
    /// Multiplier per feature.
    pub scale: Tensor<(C<D>,), E>,
    /// Offset per feature.
    pub bias: Tensor<(C<D>,), E>,
    /// Running mean (state).
    #[module(state)]
    pub mean: Tensor<(C<D>,), E>,
    /// Running (biased) variance (state).
    #[module(state)]
    pub var: Tensor<(C<D>,), E>,
    /// Weight of the old running statistics.
    #[module(static)]
    pub momentum: f64,
    /// Added to the variance.
    #[module(static)]
    pub epsilon: f64,
    /// Training mode (set by `train()` / `eval()`).
    #[module(training)]
    pub training: bool,
}

impl<const D: usize, E: Float> Default for BatchNorm<D, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const D: usize, E: Float> BatchNorm<D, E> {
    /// Scale ones, bias zeros, running mean 0 and variance 1, training mode.
    pub fn new() -> Self {
        BatchNorm {
            scale: Tensor::ones(),
            bias: Tensor::zeros(),
            mean: Tensor::zeros(),
            var: Tensor::ones(),
            momentum: 0.99,
            epsilon: 1e-5,
            training: true,
        }
    }
    /// Sets the momentum.
    pub fn with_momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Sets epsilon.
    pub fn with_epsilon(mut self, eps: f64) -> Self {
        self.epsilon = eps;
        self
    }
    /// Normalizes; in training mode also updates the running statistics.
    pub fn forward<S: LastDim<Last = C<D>>>(&mut self, x: &Tensor<S, E>) -> Tensor<S, E> {
        let r = self.forward_array(x.array());
        typed("BatchNorm", r)
    }
    fn forward_array(&mut self, x: &Array) -> Result<Array> {
        let shape = x.shape().to_vec();
        let (m, v) = if self.training {
            let axes: Vec<usize> = (0..x.rank() - 1).collect();
            let bm = mean(x, &axes)?;
            let bv = var(x, &axes, 0)?;
            let mo = self.momentum;
            let new_mean = add(&scale(self.mean.array(), mo)?, &scale(&bm, 1.0 - mo)?)?;
            let new_var = add(&scale(self.var.array(), mo)?, &scale(&bv, 1.0 - mo)?)?;
            self.mean = Tensor::from_array(new_mean)?;
            self.var = Tensor::from_array(new_var)?;
            (bm, bv)
        } else {
            (self.mean.array().clone(), self.var.array().clone())
        };
        let m = along_last(&m, &shape)?;
        let inv = along_last(&rsqrt(&add_scalar(&v, self.epsilon)?)?, &shape)?;
        let n = mul(&sub(x, &m)?, &inv)?;
        let n = mul(&n, &along_last(self.scale.array(), &shape)?)?;
        add(&n, &along_last(self.bias.array(), &shape)?)
    }
}
