//! Convolution as im2col + gemm for channels-last layouts: input `[N, S1..Sd, C]`, kernel
//! `[K1..Kd, C/groups, O]`, output `[N, O1..Od, O]` (JAX's `NHWC`/`HWIO`/`NHWC` in any
//! number of spatial dims), with strides, low/high padding (negative crops), input
//! ("lhs", used by transposed convolutions) and kernel ("rhs") dilation, and groups.

use crate::gemm::{gemm, GemmElem, MatMut, MatRef};
use std::ops::Range;

/// The static geometry of a convolution, all spatial lists of the same length `d`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Batch size `N`.
    pub batch: usize,
    /// Input spatial sizes.
    pub in_spatial: Vec<usize>,
    /// Input channels (all groups).
    pub in_channels: usize,
    /// Kernel window sizes.
    pub kernel: Vec<usize>,
    /// Output channels (all groups).
    pub out_channels: usize,
    /// Window strides.
    pub strides: Vec<usize>,
    /// Padding added before and after each spatial dim (of the dilated input); negative
    /// values crop.
    pub padding: Vec<(i64, i64)>,
    /// Input dilation: `l - 1` holes between input elements.
    pub lhs_dilation: Vec<usize>,
    /// Kernel dilation: `r - 1` holes between kernel taps.
    pub rhs_dilation: Vec<usize>,
    /// Feature groups: input and output channels split into this many independent groups.
    pub groups: usize,
}

impl ConvGeom {
    /// Output spatial sizes: `floor((padded - window) / stride) + 1`, or 0 when the
    /// dilated window does not fit the padded, dilated input. `None` if a stride or a
    /// dilation is 0.
    pub fn out_spatial(&self) -> Option<Vec<usize>> {
        let d = self.in_spatial.len();
        let mut out = Vec::with_capacity(d);
        for i in 0..d {
            let (s, ld, rd) = (self.strides[i], self.lhs_dilation[i], self.rhs_dilation[i]);
            if s == 0 || ld == 0 || rd == 0 {
                return None;
            }
            let dil_in = if self.in_spatial[i] == 0 {
                0
            } else {
                (self.in_spatial[i] - 1) * ld + 1
            };
            let padded = dil_in as i64 + self.padding[i].0 + self.padding[i].1;
            let win = if self.kernel[i] == 0 {
                0
            } else {
                (self.kernel[i] - 1) * rd + 1
            } as i64;
            out.push(if padded < win {
                0
            } else {
                ((padded - win) as usize) / s + 1
            });
        }
        Some(out)
    }
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
    fn is_pointwise(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1)
            && self.strides.iter().all(|&s| s == 1)
            && self.padding.iter().all(|&p| p == (0, 0))
            && self.lhs_dilation.iter().all(|&l| l == 1)
    }
}

/// Writes the patches of output rows `rows` (row = flattened `(n, o1..od)`) for the
/// input channels `c0..c0+cg` into `out`, row-major `[rows.len(), taps * cg]`, the columns
/// ordered `(k1..kd, c)` like a flattened `[K1..Kd, cg]` kernel. Taps falling into padding
/// or dilation holes read `zero`.
pub fn im2col<T: Copy>(
    x: &[T],
    g: &ConvGeom,
    out_spatial: &[usize],
    c0: usize,
    cg: usize,
    rows: Range<usize>,
    zero: T,
    out: &mut [T],
) {
    let d = g.in_spatial.len();
    let taps = g.taps();
    let width = taps * cg;
    assert_eq!(out.len(), rows.len() * width, "im2col: output size");
    let opos: usize = out_spatial.iter().product();
    let in_img: usize = g.in_spatial.iter().product::<usize>() * g.in_channels;
    let mut o = vec![0usize; d];
    let mut kk = vec![0usize; d];
    for (ri, r) in rows.enumerate() {
        let n = r / opos;
        let mut rem = r % opos;
        for i in (0..d).rev() {
            o[i] = rem % out_spatial[i];
            rem /= out_spatial[i];
        }
        let row = &mut out[ri * width..(ri + 1) * width];
        kk.iter_mut().for_each(|v| *v = 0);
        for t in 0..taps {
            // Position in the padded, dilated input; valid when it lands on a real element.
            let mut off = 0usize;
            let mut valid = true;
            for i in 0..d {
                let p = (o[i] * g.strides[i] + kk[i] * g.rhs_dilation[i]) as i64 - g.padding[i].0;
                let ld = g.lhs_dilation[i] as i64;
                if p < 0 || p % ld != 0 || (p / ld) as usize >= g.in_spatial[i] {
                    valid = false;
                    break;
                }
                off = off * g.in_spatial[i] + (p / ld) as usize;
            }
            let dst = &mut row[t * cg..(t + 1) * cg];
            if valid {
                let src = n * in_img + off * g.in_channels + c0;
                dst.copy_from_slice(&x[src..src + cg]);
            } else {
                dst.fill(zero);
            }
            for i in (0..d).rev() {
                kk[i] += 1;
                if kk[i] < g.kernel[i] {
                    break;
                }
                kk[i] = 0;
            }
        }
    }
}

/// Rows of patches built at a time: bounds the scratch buffer (~1 MiB of f32) while each
/// gemm call stays large enough to use both cores.
const PATCH_ELEMS: usize = 1 << 18;

/// The matrix product [`conv_with`] calls for each block: `C ← A·B` (C not read).
pub type MatmulFn<'f, T> =
    dyn Fn(usize, usize, usize, MatRef<'_, T>, MatRef<'_, T>, MatMut<'_, T>) + 'f;

/// Convolution with a caller-chosen matrix product (the vectorized [`gemm`] for floats, a
/// naive loop for integers). `x` is `[N, S.., C]`, `w` is `[K.., C/groups, O]`, `out`
/// (`[N, O.., O]`) is fully overwritten. Each output element is one dot product of fixed
/// order, so results do not depend on the number of threads.
pub fn conv_with<T: Copy>(
    x: &[T],
    w: &[T],
    g: &ConvGeom,
    zero: T,
    out: &mut [T],
    mm: &MatmulFn<'_, T>,
) {
    let out_spatial = g
        .out_spatial()
        .expect("conv: strides and dilations are positive");
    let rows = g.batch * out_spatial.iter().product::<usize>();
    let (cin, cout, groups) = (g.in_channels, g.out_channels, g.groups);
    assert!(
        groups > 0 && cin % groups == 0 && cout % groups == 0,
        "conv: bad group split"
    );
    let (cg, og) = (cin / groups, cout / groups);
    let taps = g.taps();
    let kdim = taps * cg;
    assert_eq!(
        x.len(),
        g.batch * g.in_spatial.iter().product::<usize>() * cin,
        "conv: input size"
    );
    assert_eq!(w.len(), kdim * cout, "conv: kernel size");
    assert_eq!(out.len(), rows * cout, "conv: output size");
    if out.is_empty() {
        return;
    }
    if kdim == 0 {
        out.fill(zero);
        return;
    }
    let pointwise = g.is_pointwise();
    let block = (PATCH_ELEMS / kdim).clamp(1, rows);
    let mut scratch = if pointwise {
        Vec::new()
    } else {
        vec![zero; block * kdim]
    };
    for gi in 0..groups {
        let wg = MatRef::new(w, gi * og, cout, 1);
        let mut r0 = 0;
        while r0 < rows {
            let nr = block.min(rows - r0);
            let c = MatMut {
                data: &mut out[r0 * cout + gi * og..],
                rs: cout,
                cs: 1,
            };
            if pointwise {
                // A 1x1 window at stride 1 reads the input rows as they are.
                mm(
                    nr,
                    kdim,
                    og,
                    MatRef::new(x, r0 * cin + gi * cg, cin, 1),
                    wg,
                    c,
                );
            } else {
                let a = &mut scratch[..nr * kdim];
                im2col(x, g, &out_spatial, gi * cg, cg, r0..r0 + nr, zero, a);
                mm(nr, kdim, og, MatRef::row_major(a, kdim), wg, c);
            }
            r0 += nr;
        }
    }
}

/// [`conv_with`] using the vectorized [`gemm`].
pub fn conv<T: GemmElem>(x: &[T], w: &[T], g: &ConvGeom, out: &mut [T]) {
    conv_with(x, w, g, T::ZERO, out, &|m, k, n, a, b, c| {
        gemm(m, k, n, T::ONE, a, b, T::ZERO, c)
    });
}
