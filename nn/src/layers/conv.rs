//! [`Conv2d`] (NHWC input, HWIO kernel) and 2-D pooling ([`max_pool2d`], [`avg_pool2d`]).

use crate::init::{self, Initializer};
use crate::rngs::Rngs;
use crate::util::{add, along_last};
use ferrax_core::ops::linalg::Conv2dOpts;
use ferrax_core::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax_core::prim::conv::Padding;
use ferrax_core::prim::pad::pad;
use ferrax_core::prim::slice::slice;
use ferrax_core::{Array, Dim, Error, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// A 2-D convolution from `CI` to `CO` channels with a `KH x KW` window (Flax's `nnx.Conv`
/// with NHWC layout): kernel `(KH, KW, CI, CO)` initialized `lecun_normal`, bias zeros.
/// Stride, padding (`SAME`, `VALID`, explicit) and dilation are run-time options; the
/// output's spatial dims are named by the caller and checked.
///
/// ```
/// use ferrax_nn::{Conv2d, Rngs};
/// use ferrax_core::{ops::linalg::Conv2dOpts, Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let conv = Conv2d::<1, 8, 3, 3>::new(&mut Rngs::new(0), Conv2dOpts::same())?;
/// let x = Tensor::<(C<2>, C<8>, C<8>, C<1>)>::ones();
/// let y: Tensor<(C<2>, C<8>, C<8>, C<8>)> = conv.forward(&x)?;
/// assert_eq!(y.dims(), &[2, 8, 8, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Conv2d<
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    E: Float = f32,
> {
    /// `(KH, KW, CI, CO)` weights.
    pub kernel: Tensor<(C<KH>, C<KW>, C<CI>, C<CO>), E>,
    /// `(CO,)` bias, if any.
    pub bias: Option<Tensor<(C<CO>,), E>>,
    /// Stride, padding, dilation.
    #[module(static)]
    pub opts: Conv2dOpts,
}

impl<const CI: usize, const CO: usize, const KH: usize, const KW: usize, E: Float>
    Conv2d<CI, CO, KH, KW, E>
{
    /// Kernel `lecun_normal`, zero bias.
    pub fn new(rngs: &mut Rngs, opts: Conv2dOpts) -> Result<Self> {
        Self::with_init(rngs, opts, &init::lecun_normal(), Some(&init::zeros()))
    }
    /// Chosen initializers; `bias_init = None` for no bias.
    pub fn with_init(
        rngs: &mut Rngs,
        opts: Conv2dOpts,
        kernel_init: &Initializer,
        bias_init: Option<&Initializer>,
    ) -> Result<Self> {
        let kernel = kernel_init.init(&rngs.params()?)?;
        let bias = match bias_init {
            Some(b) => Some(b.init(&rngs.params()?)?),
            None => None,
        };
        Ok(Conv2d { kernel, bias, opts })
    }
    /// Convolves `x` (NHWC); errors if `OH, OW` are not the output size the options give.
    pub fn forward<B: Dim, const H: usize, const W: usize, const OH: usize, const OW: usize>(
        &self,
        x: &Tensor<(B, C<H>, C<W>, C<CI>), E>,
    ) -> Result<Tensor<(B, C<OH>, C<OW>, C<CO>), E>> {
        let y: Tensor<(B, C<OH>, C<OW>, C<CO>), E> = x.conv2d(&self.kernel, &self.opts)?;
        match &self.bias {
            Some(b) => Tensor::from_array(add(y.array(), &along_last(b.array(), y.dims())?)?),
            None => Ok(y),
        }
    }
}

#[derive(Clone, Copy)]
enum Pool {
    Max,
    Avg,
}

fn pool2d(
    x: &Array,
    kind: Pool,
    window: (usize, usize),
    strides: (usize, usize),
    padding: &Padding,
) -> Result<Array> {
    const OP: &str = "pool2d";
    if x.rank() != 4 {
        return Err(Error::shape(
            OP,
            format!("expected an NHWC input, got shape {:?}", x.shape()),
        ));
    }
    if window.0 == 0 || window.1 == 0 || strides.0 == 0 || strides.1 == 0 {
        return Err(Error::invalid(
            OP,
            format!("window {window:?} and strides {strides:?} must be positive"),
        ));
    }
    let pads = padding.pads(
        &x.shape()[1..3],
        &[window.0, window.1],
        &[strides.0, strides.1],
        &[1, 1],
    )?;
    // Max pools pad with -inf (padding never wins); average pools pad with 0 and divide by
    // the full window (Flax's `count_include_pad=True`).
    let fill = match kind {
        Pool::Max => f64::NEG_INFINITY,
        Pool::Avg => 0.0,
    };
    let xp = if pads.iter().any(|&(l, h)| l != 0 || h != 0) {
        let cfg = [
            (0, 0, 0),
            (pads[0].0, pads[0].1, 0),
            (pads[1].0, pads[1].1, 0),
            (0, 0, 0),
        ];
        pad(x, &Array::full(&[], x.dtype(), fill), &cfg)?
    } else {
        x.clone()
    };
    let s = xp.shape().to_vec();
    if s[1] < window.0 || s[2] < window.1 {
        return Err(Error::shape(
            OP,
            format!("window {window:?} does not fit the (padded) input {s:?}"),
        ));
    }
    let oh = (s[1] - window.0) / strides.0 + 1;
    let ow = (s[2] - window.1) / strides.1 + 1;
    // One strided slice per window offset, combined elementwise: no window primitive is
    // needed, and the gradient flows through slice and max/add.
    let mut acc: Option<Array> = None;
    for di in 0..window.0 {
        for dj in 0..window.1 {
            let start = [0, di, dj, 0];
            let limit = [
                s[0],
                di + (oh - 1) * strides.0 + 1,
                dj + (ow - 1) * strides.1 + 1,
                s[3],
            ];
            let v = slice(&xp, &start, &limit, Some(&[1, strides.0, strides.1, 1]))?;
            acc = Some(match (acc, kind) {
                (None, _) => v,
                (Some(a), Pool::Max) => binary_bcast(BinaryOp::Max, &a, &v)?,
                (Some(a), Pool::Avg) => binary_bcast(BinaryOp::Add, &a, &v)?,
            });
        }
    }
    let acc = acc.expect("window has at least one element");
    match kind {
        Pool::Max => Ok(acc),
        Pool::Avg => binary_scalar(BinaryOp::Div, &acc, (window.0 * window.1) as f64),
    }
}

fn pooled<B: Dim, const OH: usize, const OW: usize, const CH: usize, E: Float>(
    op: &'static str,
    y: Array,
) -> Result<Tensor<(B, C<OH>, C<OW>, C<CH>), E>> {
    if y.shape()[1..3] != [OH, OW] {
        return Err(Error::shape(
            op,
            format!(
                "the pooled output is {:?}, but the result type names spatial dims ({OH}, {OW})",
                y.shape()
            ),
        ));
    }
    Tensor::from_array(y)
}

/// Max pooling over `window` with `strides` and a padding rule (`nnx.max_pool`), NHWC.
///
/// ```
/// use ferrax_nn::max_pool2d;
/// use ferrax_core::{prim::conv::Padding, Tensor, C};
/// let x = Tensor::<(C<1>, C<2>, C<2>, C<1>)>::from_vec(vec![1., 5., 3., 2.]).unwrap();
/// let y: Tensor<(C<1>, C<1>, C<1>, C<1>)> = max_pool2d(&x, (2, 2), (2, 2), &Padding::Valid).unwrap();
/// assert_eq!(y.to_vec().unwrap(), vec![5.]);
/// ```
pub fn max_pool2d<
    B: Dim,
    const H: usize,
    const W: usize,
    const CH: usize,
    const OH: usize,
    const OW: usize,
    E: Float,
>(
    x: &Tensor<(B, C<H>, C<W>, C<CH>), E>,
    window: (usize, usize),
    strides: (usize, usize),
    padding: &Padding,
) -> Result<Tensor<(B, C<OH>, C<OW>, C<CH>), E>> {
    pooled(
        "max_pool2d",
        pool2d(x.array(), Pool::Max, window, strides, padding)?,
    )
}

/// Average pooling (`nnx.avg_pool`, padding counted in the window), NHWC.
pub fn avg_pool2d<
    B: Dim,
    const H: usize,
    const W: usize,
    const CH: usize,
    const OH: usize,
    const OW: usize,
    E: Float,
>(
    x: &Tensor<(B, C<H>, C<W>, C<CH>), E>,
    window: (usize, usize),
    strides: (usize, usize),
    padding: &Padding,
) -> Result<Tensor<(B, C<OH>, C<OW>, C<CH>), E>> {
    pooled(
        "avg_pool2d",
        pool2d(x.array(), Pool::Avg, window, strides, padding)?,
    )
}
