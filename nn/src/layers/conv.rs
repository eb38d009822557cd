//! Convolutions in channels-last layout ([`Conv1d`] NWC, [`Conv2d`] NHWC, [`ConvTranspose2d`];
//! kernels `(K.., CI / groups, CO)`) and 2-D pooling ([`max_pool2d`], [`avg_pool2d`]).

use crate::init::{self, Initializer};
use crate::rngs::Rngs;
use crate::util::{add, along_last};
use ferrax_core::ops::linalg::Conv2dOpts;
use ferrax_core::prim::binary::{binary_bcast, binary_scalar, BinaryOp};
use ferrax_core::prim::conv::{conv, conv_general_dilated, Padding};
use ferrax_core::prim::pad::pad;
use ferrax_core::prim::slice::slice;
use ferrax_core::{Array, Dim, Error, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// A 2-D convolution from `CI` to `CO` channels with a `KH x KW` window (Flax's `nnx.Conv`
/// with NHWC layout): kernel `(KH, KW, CI, CO)` initialized `lecun_normal`, bias zeros.
/// Stride, padding (`SAME`, `VALID`, explicit) and dilation are run-time options; the
/// output's spatial dims are named by the caller and checked. Feature groups
/// (`feature_group_count`) come from the last parameter `CIG`, the kernel's input channels
/// (default `CI`: a dense convolution): the group count is `CI / CIG`, checked at compile
/// time (`Conv2d::<8, 8, 3, 3, f32, 1>` is depthwise).
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
    const CIG: usize = CI,
> {
    /// `(KH, KW, CIG, CO)` weights (`CIG = CI / groups`).
    pub kernel: Tensor<(C<KH>, C<KW>, C<CIG>, C<CO>), E>,
    /// `(CO,)` bias, if any.
    pub bias: Option<Tensor<(C<CO>,), E>>,
    /// Stride, padding, dilation.
    #[module(static)]
    pub opts: Conv2dOpts,
}

impl<
        const CI: usize,
        const CO: usize,
        const KH: usize,
        const KW: usize,
        E: Float,
        const CIG: usize,
    > Conv2d<CI, CO, KH, KW, E, CIG>
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
        let (kernel, bias) = crate::util::kernel_and_bias(rngs, kernel_init, bias_init)?;
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

/// Run-time options of [`Conv1d`]: stride, padding rule, kernel dilation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv1dOpts {
    /// Window stride.
    pub stride: usize,
    /// The padding rule (`Explicit` takes one `(low, high)` pair).
    pub padding: Padding,
    /// Kernel dilation (1 = none).
    pub dilation: usize,
}

impl Default for Conv1dOpts {
    fn default() -> Self {
        Conv1dOpts {
            stride: 1,
            padding: Padding::Valid,
            dilation: 1,
        }
    }
}

// A staged function taking a `Conv1d` keys its cache on the options (a static field), so
// changing them recompiles instead of running a program traced with the old ones.
ferrax_core::impl_static_arg_via_hash!(Conv1dOpts);

impl Conv1dOpts {
    /// Stride 1, `SAME` padding, no dilation.
    pub fn same() -> Self {
        Conv1dOpts {
            padding: Padding::Same,
            ..Self::default()
        }
    }
    /// Stride 1, no padding, no dilation.
    pub fn valid() -> Self {
        Self::default()
    }
    /// Sets the stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// Sets the kernel dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    /// Sets the padding rule.
    pub fn padding(mut self, p: Padding) -> Self {
        self.padding = p;
        self
    }
}

/// Feature groups implied by the channel counts, checked at compile time.
const fn groups_of(ci: usize, cig: usize, co: usize) -> usize {
    assert!(
        cig > 0 && ci.is_multiple_of(cig) && co.is_multiple_of(ci / cig),
        "conv: the kernel's input channels CIG must divide CI, and the group count CI / CIG must divide CO"
    );
    ci / cig
}

/// A 1-D convolution over `(batch, length, CI)` inputs (NWC) with a `K`-tap kernel
/// `(K, CIG, CO)` (Flax's `nnx.Conv` with one spatial dim): kernel `lecun_normal`, bias
/// zeros. Groups as in [`Conv2d`]: `CI / CIG`.
///
/// ```
/// use ferrax_nn::{layers::conv::Conv1dOpts, Conv1d, Rngs};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let conv = Conv1d::<2, 4, 3>::new(&mut Rngs::new(0), Conv1dOpts::valid())?;
/// let y: Tensor<(C<1>, C<8>, C<4>)> = conv.forward(&Tensor::<(C<1>, C<10>, C<2>)>::ones())?;
/// assert_eq!(y.dims(), &[1, 8, 4]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Conv1d<
    const CI: usize,
    const CO: usize,
    const K: usize,
    E: Float = f32,
    const CIG: usize = CI,
> {
    /// `(K, CIG, CO)` weights.
    pub kernel: Tensor<(C<K>, C<CIG>, C<CO>), E>,
    /// `(CO,)` bias, if any.
    pub bias: Option<Tensor<(C<CO>,), E>>,
    /// Stride, padding, dilation.
    #[module(static)]
    pub opts: Conv1dOpts,
}

impl<const CI: usize, const CO: usize, const K: usize, E: Float, const CIG: usize>
    Conv1d<CI, CO, K, E, CIG>
{
    /// Kernel `lecun_normal`, zero bias.
    pub fn new(rngs: &mut Rngs, opts: Conv1dOpts) -> Result<Self> {
        Self::with_init(rngs, opts, &init::lecun_normal(), Some(&init::zeros()))
    }
    /// Chosen initializers; `bias_init = None` for no bias.
    pub fn with_init(
        rngs: &mut Rngs,
        opts: Conv1dOpts,
        kernel_init: &Initializer,
        bias_init: Option<&Initializer>,
    ) -> Result<Self> {
        let (kernel, bias) = crate::util::kernel_and_bias(rngs, kernel_init, bias_init)?;
        Ok(Conv1d { kernel, bias, opts })
    }
    /// Convolves `x` (NWC); errors if `OL` is not the output length the options give.
    pub fn forward<B: Dim, const L: usize, const OL: usize>(
        &self,
        x: &Tensor<(B, C<L>, C<CI>), E>,
    ) -> Result<Tensor<(B, C<OL>, C<CO>), E>> {
        let groups = const { groups_of(CI, CIG, CO) };
        let o = &self.opts;
        let y = conv(
            x.array(),
            self.kernel.array(),
            &[o.stride],
            &o.padding,
            &[o.dilation],
            groups,
        )?;
        if y.shape()[1] != OL {
            return Err(Error::shape(
                "Conv1d",
                format!(
                    "input {:?} with kernel {:?} and {o:?} gives output {:?}, but the result type names length {OL}",
                    x.dims(),
                    self.kernel.dims(),
                    y.shape()
                ),
            ));
        }
        with_bias(y, self.bias.as_ref())
    }
}

fn with_bias<S: ferrax_core::Shape, const CO: usize, E: Float>(
    y: Array,
    bias: Option<&Tensor<(C<CO>,), E>>,
) -> Result<Tensor<S, E>> {
    match bias {
        Some(b) => Tensor::from_array(add(&y, &along_last(b.array(), y.shape())?)?),
        None => Tensor::from_array(y),
    }
}

/// JAX's `lax.conv_transpose` padding for one spatial dim: `k` is the dilated kernel size.
fn conv_transpose_pads(k: usize, s: usize, padding: &Padding, d: usize) -> Result<(i64, i64)> {
    let (k, s) = (k as i64, s as i64);
    let (len, lo) = match padding {
        Padding::Same => (k + s - 2, if s > k - 1 { k - 1 } else { (k + s - 1) / 2 }),
        Padding::Valid => (k + s - 2 + (k - s).max(0), k - 1),
        Padding::Explicit(p) => {
            return p.get(d).copied().ok_or_else(|| {
                Error::invalid(
                    "ConvTranspose2d",
                    format!("explicit padding {p:?} needs 2 (low, high) pairs"),
                )
            })
        }
    };
    Ok((lo, len - lo))
}

/// A 2-D transposed convolution (Flax's `nnx.ConvTranspose`, `transpose_kernel=False`):
/// the input is dilated by the strides (`s - 1` zeros between elements), padded as
/// `lax.conv_transpose` pads, and convolved with the `(KH, KW, CI, CO)` kernel, so `SAME`
/// gives `H * s` outputs and `VALID` gives `H * s + max(KH - s, 0)`. It is the primitive's
/// input (lhs) dilation, the same operation a strided convolution's input gradient uses.
///
/// ```
/// use ferrax_nn::{ConvTranspose2d, Rngs};
/// use ferrax_core::{ops::linalg::Conv2dOpts, Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let up = ConvTranspose2d::<4, 2, 3, 3>::new(&mut Rngs::new(0), Conv2dOpts::same().stride(2, 2))?;
/// let y: Tensor<(C<1>, C<8>, C<8>, C<2>)> = up.forward(&Tensor::<(C<1>, C<4>, C<4>, C<4>)>::ones())?;
/// assert_eq!(y.dims(), &[1, 8, 8, 2]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct ConvTranspose2d<
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
    /// Strides (the input dilation), padding rule, kernel dilation.
    #[module(static)]
    pub opts: Conv2dOpts,
}

impl<const CI: usize, const CO: usize, const KH: usize, const KW: usize, E: Float>
    ConvTranspose2d<CI, CO, KH, KW, E>
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
        let (kernel, bias) = crate::util::kernel_and_bias(rngs, kernel_init, bias_init)?;
        Ok(ConvTranspose2d { kernel, bias, opts })
    }
    /// Applies the transposed convolution to `x` (NHWC); errors if `OH, OW` are not the
    /// output size the options give.
    pub fn forward<B: Dim, const H: usize, const W: usize, const OH: usize, const OW: usize>(
        &self,
        x: &Tensor<(B, C<H>, C<W>, C<CI>), E>,
    ) -> Result<Tensor<(B, C<OH>, C<OW>, C<CO>), E>> {
        let o = &self.opts;
        let (s, d) = ([o.stride.0, o.stride.1], [o.dilation.0, o.dilation.1]);
        if s.contains(&0) || d.contains(&0) {
            return Err(Error::invalid(
                "ConvTranspose2d",
                format!("strides {s:?} and dilation {d:?} must be positive"),
            ));
        }
        let pads = [
            conv_transpose_pads(KH.saturating_sub(1) * d[0] + 1, s[0], &o.padding, 0)?,
            conv_transpose_pads(KW.saturating_sub(1) * d[1] + 1, s[1], &o.padding, 1)?,
        ];
        let y = conv_general_dilated(x.array(), self.kernel.array(), &[1, 1], &pads, &s, &d, 1)?;
        if y.shape()[1..3] != [OH, OW] {
            return Err(Error::shape(
                "ConvTranspose2d",
                format!(
                    "input {:?} with kernel {:?} and {o:?} gives output {:?}, but the result type names spatial dims ({OH}, {OW})",
                    x.dims(),
                    self.kernel.dims(),
                    y.shape()
                ),
            ));
        }
        with_bias(y, self.bias.as_ref())
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
