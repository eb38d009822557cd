//! The `conv_general_dilated` primitive in channels-last layout: input `[N, S.., C]`,
//! kernel `[K.., C/groups, O]`, output `[N, O.., O]` (JAX's `('NHWC', 'HWIO', 'NHWC')`),
//! for any number of spatial dims, with strides, explicit padding, input (lhs) dilation —
//! what transposed convolutions and gradients need — kernel (rhs) dilation and feature
//! groups. The host kernel is im2col + gemm ([`ferrax_cpu::conv`]). `conv2d` and the
//! [`Padding`] rules (SAME computed like JAX) are composites over it. Its reverse-mode rule
//! is two more convolutions (JAX's transpose rules, with transposes standing in for
//! dimension numbers); its batching rule folds the vmapped axis into N, the output
//! channels, or the feature groups.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::reshape::reshape;
use crate::prim::rev::rev;
use crate::prim::transpose::{swap_axes, transpose};
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::vmap::move_axis;
use ferrax_cpu::{ConvGeom, MatMut, MatRef};
use half::{bf16, f16};

/// `conv_general_dilated[...](lhs, rhs)`; every per-dim list has one entry per spatial dim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConvGeneralDilated {
    /// Window strides.
    pub window_strides: Vec<usize>,
    /// `(low, high)` padding of the (dilated) input; negative values crop.
    pub padding: Vec<(i64, i64)>,
    /// Input dilation (1 = none): `l - 1` zeros between input elements.
    pub lhs_dilation: Vec<usize>,
    /// Kernel dilation (1 = none): `r - 1` holes between kernel taps.
    pub rhs_dilation: Vec<usize>,
    /// Number of feature groups (1 = dense; `C` = depthwise).
    pub feature_group_count: usize,
}

impl ConvGeneralDilated {
    fn geom(&self, x: &[usize], w: &[usize]) -> ConvGeom {
        let d = x.len() - 2;
        ConvGeom {
            batch: x[0],
            in_spatial: x[1..=d].to_vec(),
            in_channels: x[d + 1],
            kernel: w[..d].to_vec(),
            out_channels: w[d + 1],
            strides: self.window_strides.clone(),
            padding: self.padding.clone(),
            lhs_dilation: self.lhs_dilation.clone(),
            rhs_dilation: self.rhs_dilation.clone(),
            groups: self.feature_group_count,
        }
    }
}

impl Primitive for ConvGeneralDilated {
    fn name(&self) -> &'static str {
        "conv_general_dilated"
    }
    fn params(&self) -> String {
        format!(
            "window_strides={:?} padding={:?} lhs_dilation={:?} rhs_dilation={:?} feature_group_count={}",
            self.window_strides, self.padding, self.lhs_dilation, self.rhs_dilation, self.feature_group_count
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        const OP: &str = "conv_general_dilated";
        let (x, w) = (&ins[0], &ins[1]);
        if x.dtype != w.dtype {
            return Err(Error::dtype_mismatch(OP, x.dtype, w.dtype));
        }
        let d = self.window_strides.len();
        let shapes = || format!("input {:?} (NHWC) and kernel {:?} (HWIO)", x.shape, w.shape);
        if d == 0 || x.rank() != d + 2 || w.rank() != d + 2 {
            return Err(Error::shape(
                OP,
                format!(
                    "{}: {d} spatial dims need rank-{} operands",
                    shapes(),
                    d + 2
                ),
            ));
        }
        if self.padding.len() != d || self.lhs_dilation.len() != d || self.rhs_dilation.len() != d {
            return Err(Error::invalid(
                OP,
                format!(
                    "padding {:?}, lhs_dilation {:?} and rhs_dilation {:?} need {d} entries each",
                    self.padding, self.lhs_dilation, self.rhs_dilation
                ),
            ));
        }
        let zero = |v: &[usize]| v.contains(&0);
        if zero(&self.window_strides) || zero(&self.lhs_dilation) || zero(&self.rhs_dilation) {
            return Err(Error::invalid(
                OP,
                format!(
                    "strides {:?} and dilations {:?}/{:?} must be positive",
                    self.window_strides, self.lhs_dilation, self.rhs_dilation
                ),
            ));
        }
        let g = self.feature_group_count;
        let (c, ci, o) = (x.shape[d + 1], w.shape[d], w.shape[d + 1]);
        if g == 0 || c % g != 0 || o % g != 0 {
            return Err(Error::shape(
                OP,
                format!(
                    "{}: feature_group_count {g} must divide input channels {c} and output channels {o}",
                    shapes()
                ),
            ));
        }
        if ci != c / g {
            return Err(Error::shape(
                OP,
                format!(
                    "{}: kernel input channels {ci} must equal input channels {c} / groups {g}",
                    shapes()
                ),
            ));
        }
        let out_sp = self
            .geom(&x.shape, &w.shape)
            .out_spatial()
            .expect("checked positive");
        let mut shape = vec![x.shape[0]];
        shape.extend(out_sp);
        shape.push(o);
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let (x, w) = (ins[0], ins[1]);
        let g = self.geom(x.shape, w.shape);
        let n = outs[0].numel();
        let out = match (x.data, w.data) {
            (Storage::F32(a), Storage::F32(b)) => Storage::F32(conv_float(a, b, &g, n)),
            (Storage::F64(a), Storage::F64(b)) => Storage::F64(conv_float(a, b, &g, n)),
            (Storage::BF16(a), Storage::BF16(b)) => {
                let c = conv_float(&widen(a), &widen(b), &g, n);
                Storage::BF16(c.into_iter().map(bf16::from_f32).collect())
            }
            (Storage::F16(a), Storage::F16(b)) => {
                let c = conv_float(&widen(a), &widen(b), &g, n);
                Storage::F16(c.into_iter().map(f16::from_f32).collect())
            }
            (Storage::I32(a), Storage::I32(b)) => Storage::I32(conv_naive(a, b, &g, n)),
            (Storage::I64(a), Storage::I64(b)) => Storage::I64(conv_naive(a, b, &g, n)),
            (Storage::U32(a), Storage::U32(b)) => Storage::U32(conv_naive(a, b, &g, n)),
            (Storage::Bool(a), Storage::Bool(b)) => Storage::Bool(conv_naive(a, b, &g, n)),
            _ => {
                return Err(Error::dtype_mismatch(
                    "conv_general_dilated",
                    x.data.dtype(),
                    w.data.dtype(),
                ))
            }
        };
        Ok(vec![out])
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(g) = &cts[0] else {
            return Ok(vec![None, None]);
        };
        let (x, w) = (&primals[0], &primals[1]);
        // Integer (and bool) convolutions are not differentiable; both operands share a dtype.
        if !x.dtype().is_float() {
            return Ok(vec![None, None]);
        }
        // An empty operand or output has no contributions to carry back (and the transposed
        // convolutions below would need windows of size 0), so the cotangents are zero.
        if g.numel() == 0 || x.numel() == 0 || w.numel() == 0 {
            return Ok(vec![
                Some(Array::zeros(x.shape(), x.dtype())),
                Some(Array::zeros(w.shape(), w.dtype())),
            ]);
        }
        Ok(vec![
            Some(self.transpose_lhs(g, x, w)?),
            Some(self.transpose_rhs(g, x, w)?),
        ])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        const OP: &str = "conv_general_dilated";
        let ([x, w], [xd, wd]) = (args, dims) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "batching takes two operands and two batch dims, got {} and {}",
                    args.len(),
                    dims.len()
                ),
            ));
        };
        if xd.is_none() && wd.is_none() {
            return Ok((vec![bind1(self.clone(), &[x, w])?], vec![None]));
        }
        // Checks the batch axes are in range and the batch sizes agree.
        let b = crate::prim::broadcast_in_dim::batch_size(OP, args, dims)?;
        let d = self.window_strides.len();
        let g = self.feature_group_count;
        let conv = |x: &Array, w: &Array, groups: usize| {
            conv_general_dilated(
                x,
                w,
                &self.window_strides,
                &self.padding,
                &self.lhs_dilation,
                &self.rhs_dilation,
                groups,
            )
        };
        match (*xd, *wd) {
            // Only the input is batched: the vmapped axis folds into N (examples are
            // independent rows of the im2col matrix), then unfolds from the output's N.
            (Some(bx), None) => {
                let xb = move_axis(x, bx, 0)?;
                let n = xb.shape()[1];
                let mut shape = xb.shape()[1..].to_vec();
                shape[0] *= b;
                let y = conv(&reshape(&xb, &shape)?, w, g)?;
                let mut out = vec![b, n];
                out.extend_from_slice(&y.shape()[1..]);
                Ok((vec![reshape(&y, &out)?], vec![Some(0)]))
            }
            // Only the kernel is batched: the examples' kernels become more output
            // channels. With groups, output channels are group-major, so the vmapped axis
            // goes inside each group's block: O' = (G, B, O/G), undone on the output.
            (None, Some(bw)) => {
                let wb = move_axis(w, bw, d + 1)?; // [K.., I, B, O]
                let (ci, o) = (wb.shape()[d], wb.shape()[d + 2]);
                // Swaps the axes of sizes B and G of a reshape to `split` (a no-op, skipped,
                // when there is one group).
                let swap_bg = |t: &Array, split: &[usize]| -> Result<Array> {
                    if g == 1 {
                        Ok(t.clone())
                    } else {
                        swap_axes(&reshape(t, split)?, d + 1, d + 2)
                    }
                };
                let mut ks = wb.shape()[..d].to_vec();
                ks.extend([ci, b, g, o / g]);
                let wg = swap_bg(&wb, &ks)?; // [K.., I, G, B, O/G]
                ks.truncate(d + 1);
                ks.push(b * o);
                let y = conv(x, &reshape(&wg, &ks)?, g)?;
                let mut os = y.shape()[..=d].to_vec();
                os.extend([g, b, o / g]);
                let y = swap_bg(&y, &os)?; // [N, O.., B, G, O/G]
                os.truncate(d + 1);
                os.extend([b, o]);
                Ok((vec![reshape(&y, &os)?], vec![Some(d + 1)]))
            }
            // Both batched: each example is its own set of feature groups. The vmapped axis
            // goes in front of the channels of both operands (example-major), which is
            // exactly the group-major channel order of a convolution with B·G groups.
            (Some(bx), Some(bw)) => {
                let xb = move_axis(x, bx, d + 1)?; // [N, S.., B, C]
                let mut xs = xb.shape()[..=d].to_vec();
                xs.push(b * xb.shape()[d + 2]);
                let wb = move_axis(w, bw, d + 1)?; // [K.., I, B, O]
                let o = wb.shape()[d + 2];
                let mut ws = wb.shape()[..=d].to_vec();
                ws.push(b * o);
                let y = conv(&reshape(&xb, &xs)?, &reshape(&wb, &ws)?, b * g)?;
                let mut os = y.shape()[..=d].to_vec();
                os.extend([b, o]);
                Ok((vec![reshape(&y, &os)?], vec![Some(d + 1)]))
            }
            (None, None) => Ok((vec![bind1(self.clone(), &[x, w])?], vec![None])),
        }
    }
}

/// A size after dilation by `k` (`k - 1` holes between elements); 0 stays 0.
fn dilate(n: usize, k: usize) -> i64 {
    if n == 0 {
        0
    } else {
        ((n - 1) * k + 1) as i64
    }
}

impl ConvGeneralDilated {
    /// The input's cotangent (JAX's `_conv_general_dilated_transpose_lhs`): the output
    /// cotangent, dilated by the strides, convolved with the spatially reversed kernel
    /// whose input and output channels are swapped. Strides and input dilation trade
    /// places; the padding makes every input position see exactly the windows that read it.
    fn transpose_lhs(&self, g: &Array, x: &Array, w: &Array) -> Result<Array> {
        let d = self.window_strides.len();
        let groups = self.feature_group_count;
        let (ci, o) = (w.shape()[d], w.shape()[d + 1]);
        // The transposed kernel maps the O channels of `g` back to the C channels of `x`,
        // group by group: [K.., I, O] = [K.., I, G, O/G] → [K.., O/G, G, I] → [K.., O/G, G·I]
        // (group-major output channels, as the forward kernel's are).
        let wt = if groups == 1 {
            swap_axes(w, d, d + 1)?
        } else {
            let mut s = w.shape()[..d].to_vec();
            s.extend([ci, groups, o / groups]);
            let mut perm: Vec<usize> = (0..d).collect();
            perm.extend([d + 2, d + 1, d]);
            let t = transpose(&reshape(w, &s)?, &perm)?;
            s.truncate(d);
            s.extend([o / groups, groups * ci]);
            reshape(&t, &s)?
        };
        let spatial: Vec<usize> = (0..d).collect();
        let wt = rev(&wt, &spatial)?;
        let pads: Vec<(i64, i64)> = (0..d)
            .map(|i| {
                let in_d = dilate(x.shape()[1 + i], self.lhs_dilation[i]);
                let k_d = dilate(w.shape()[i], self.rhs_dilation[i]);
                let out_d = dilate(g.shape()[1 + i], self.window_strides[i]);
                let before = k_d - self.padding[i].0 - 1;
                (before, in_d + k_d - 1 - out_d - before)
            })
            .collect();
        conv_general_dilated(
            g,
            &wt,
            &self.lhs_dilation,
            &pads,
            &self.window_strides,
            &self.rhs_dilation,
            groups,
        )
    }

    /// The kernel's cotangent (JAX's `_conv_general_dilated_transpose_rhs`): a convolution
    /// of the input with the output cotangent in which the batch axis N is the contracted
    /// feature axis and the input channels play the batch. This primitive has fixed
    /// layouts, so transposes put the axes there: input `[C, S.., N]`, kernel `g` as
    /// `[O.., N, O]`, result `[C, K.., O]` transposed back to `[K.., C, O]`. Kernel
    /// dilation and strides trade places. Feature groups become JAX's batch groups, which
    /// are feature groups again once each group's C/G channels of the input move into its
    /// feature axis: `[C/G, S.., G·N]`.
    fn transpose_rhs(&self, g: &Array, x: &Array, w: &Array) -> Result<Array> {
        let d = self.window_strides.len();
        let groups = self.feature_group_count;
        let (n, c) = (x.shape()[0], x.shape()[d + 1]);
        let xt = if groups == 1 {
            let mut perm = vec![d + 1];
            perm.extend(1..=d);
            perm.push(0);
            transpose(x, &perm)?
        } else {
            let mut s = x.shape()[..=d].to_vec();
            s.extend([groups, c / groups]); // [N, S.., G, C/G]
            let mut perm = vec![d + 2];
            perm.extend(1..=d);
            perm.extend([d + 1, 0]); // [C/G, S.., G, N]
            let t = transpose(&reshape(x, &s)?, &perm)?;
            let mut s2 = vec![c / groups];
            s2.extend_from_slice(&x.shape()[1..=d]);
            s2.push(groups * n);
            reshape(&t, &s2)?
        };
        // [N, O.., O] → [O.., N, O]: N is the kernel's input-feature axis.
        let mut perm: Vec<usize> = (1..=d).collect();
        perm.extend([0, d + 1]);
        let gt = transpose(g, &perm)?;
        let pads: Vec<(i64, i64)> = (0..d)
            .map(|i| {
                let in_d = dilate(x.shape()[1 + i], self.lhs_dilation[i]);
                let k_d = dilate(w.shape()[i], self.rhs_dilation[i]);
                let out_d = dilate(g.shape()[1 + i], self.window_strides[i]);
                let lo = self.padding[i].0;
                (lo, (out_d - in_d) + (k_d - lo - 1))
            })
            .collect();
        let y = conv_general_dilated(
            &xt,
            &gt,
            &self.rhs_dilation,
            &pads,
            &self.lhs_dilation,
            &self.window_strides,
            groups,
        )?;
        // [C/G, K.., O] → [K.., C/G, O].
        let mut perm: Vec<usize> = (1..=d).collect();
        perm.extend([0, d + 1]);
        transpose(&y, &perm)
    }
}

fn widen<T: Copy + Into<f32>>(v: &[T]) -> Vec<f32> {
    v.iter().map(|&x| x.into()).collect()
}

fn conv_float<T: ferrax_cpu::GemmElem>(x: &[T], w: &[T], g: &ConvGeom, n: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; n];
    ferrax_cpu::conv(x, w, g, &mut out);
    out
}

fn conv_naive<T: ferrax_cpu::NaiveElem>(x: &[T], w: &[T], g: &ConvGeom, n: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; n];
    let mm =
        |m: usize, k: usize, n: usize, a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>| {
            ferrax_cpu::gemm_naive(m, k, n, a, b, c)
        };
    ferrax_cpu::conv_with(x, w, g, T::ZERO, &mut out, &mm);
    out
}

/// How a convolution pads its input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Output size `ceil(in / stride)`, padding split as evenly as possible with the extra
    /// element at the end (JAX's and TensorFlow's `SAME`).
    Same,
    /// No padding: only windows that fit.
    Valid,
    /// `(low, high)` per spatial dim; negative values crop.
    Explicit(Vec<(i64, i64)>),
}

impl Padding {
    /// The explicit `(low, high)` pairs for inputs `in_spatial`, windows `kernel`,
    /// `strides` and kernel `dilation` (JAX's `padtype_to_pads` on the dilated window).
    pub fn pads(
        &self,
        in_spatial: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilation: &[usize],
    ) -> Result<Vec<(i64, i64)>> {
        let d = in_spatial.len();
        match self {
            Padding::Valid => Ok(vec![(0, 0); d]),
            Padding::Explicit(p) => {
                if p.len() != d {
                    return Err(Error::invalid(
                        "conv",
                        format!("explicit padding {p:?} needs {d} (low, high) pairs"),
                    ));
                }
                Ok(p.clone())
            }
            Padding::Same => {
                if strides.contains(&0) || dilation.contains(&0) {
                    return Err(Error::invalid(
                        "conv",
                        format!("strides {strides:?} and dilation {dilation:?} must be positive"),
                    ));
                }
                Ok((0..d)
                    .map(|i| {
                        let (n, s) = (in_spatial[i] as i64, strides[i] as i64);
                        let win = ((kernel[i] as i64 - 1) * dilation[i] as i64 + 1).max(0);
                        let out = (n + s - 1) / s;
                        let total = ((out - 1) * s + win - n).max(0);
                        (total / 2, total - total / 2)
                    })
                    .collect())
            }
        }
    }
}

/// `conv_general_dilated` on arrays (`[N, S.., C]` input, `[K.., C/groups, O]` kernel).
pub fn conv_general_dilated(
    x: &Array,
    w: &Array,
    window_strides: &[usize],
    padding: &[(i64, i64)],
    lhs_dilation: &[usize],
    rhs_dilation: &[usize],
    feature_group_count: usize,
) -> Result<Array> {
    bind1(
        ConvGeneralDilated {
            window_strides: window_strides.to_vec(),
            padding: padding.to_vec(),
            lhs_dilation: lhs_dilation.to_vec(),
            rhs_dilation: rhs_dilation.to_vec(),
            feature_group_count,
        },
        &[x, w],
    )
}

/// A convolution over any number of spatial dims with a [`Padding`] rule: `x` is
/// `[N, S.., C]`, `w` is `[K.., C/groups, O]`.
pub fn conv(
    x: &Array,
    w: &Array,
    strides: &[usize],
    padding: &Padding,
    dilation: &[usize],
    groups: usize,
) -> Result<Array> {
    let d = strides.len();
    if x.rank() != d + 2 || w.rank() != d + 2 || dilation.len() != d {
        return Err(Error::shape(
            "conv",
            format!(
                "input {:?} and kernel {:?} must have rank {} for strides {strides:?} and dilation {dilation:?}",
                x.shape(),
                w.shape(),
                d + 2
            ),
        ));
    }
    let pads = padding.pads(&x.shape()[1..=d], &w.shape()[..d], strides, dilation)?;
    conv_general_dilated(x, w, strides, &pads, &vec![1; d], dilation, groups)
}

/// A 2-D convolution, NHWC input `[N, H, W, C]` and HWIO kernel `[KH, KW, C/groups, O]`.
///
/// ```
/// use ferrax_core::{Array, prim::conv::{conv2d, Padding}};
/// let x = Array::from_vec(vec![1, 3, 3, 1], (1..=9).map(|v| v as f32).collect()).unwrap();
/// let w = Array::from_vec(vec![2, 2, 1, 1], vec![1f32; 4]).unwrap();
/// let y = conv2d(&x, &w, (1, 1), &Padding::Valid, (1, 1), 1).unwrap();
/// assert_eq!(y.shape(), &[1, 2, 2, 1]);
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![12., 16., 24., 28.]);
/// ```
pub fn conv2d(
    x: &Array,
    w: &Array,
    stride: (usize, usize),
    padding: &Padding,
    dilation: (usize, usize),
    groups: usize,
) -> Result<Array> {
    conv(
        x,
        w,
        &[stride.0, stride.1],
        padding,
        &[dilation.0, dilation.1],
        groups,
    )
}
