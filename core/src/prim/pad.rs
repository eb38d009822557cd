//! The `pad` primitive (`lax.pad`): per axis, `lo` values before, `hi` after and `interior`
//! between elements, all filled with a rank-0 padding value. Negative `lo`/`hi` crop.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `pad[config](x, padding_value)`: `config[i] = (lo, hi, interior)` for axis `i`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pad {
    /// `(lo, hi, interior)` per axis; `lo`/`hi` may be negative (crop).
    pub config: Vec<(i64, i64, usize)>,
}

/// The padded size of one axis, or `None` if the crop removes more than there is.
fn padded_dim(d: usize, (lo, hi, interior): (i64, i64, usize)) -> Option<usize> {
    let core = if d == 0 { 0 } else { d + interior * (d - 1) } as i64;
    let n = lo + hi + core;
    (n >= 0).then_some(n as usize)
}

impl Primitive for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn params(&self) -> String {
        format!("config={:?}", self.config)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let (x, p) = (&ins[0], &ins[1]);
        if p.rank() != 0 {
            return Err(Error::shape(
                "pad",
                format!("padding value must be rank 0, got shape {:?}", p.shape),
            ));
        }
        if x.dtype != p.dtype {
            return Err(Error::dtype_mismatch("pad", x.dtype, p.dtype));
        }
        if self.config.len() != x.rank() {
            return Err(Error::shape(
                "pad",
                format!(
                    "operand of shape {:?} needs {} (lo, hi, interior) entries, got {:?}",
                    x.shape,
                    x.rank(),
                    self.config
                ),
            ));
        }
        let shape = x
            .shape
            .iter()
            .zip(&self.config)
            .enumerate()
            .map(|(i, (&d, &c))| {
                padded_dim(d, c).ok_or_else(|| {
                    Error::shape(
                        "pad",
                        format!(
                            "axis {i} of shape {:?} padded by {c:?} would have negative size",
                            x.shape
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let (x, p) = (ins[0], ins[1]);
        let out_shape = &outs[0].shape;
        let os = strides(out_shape);
        // Where each input index lands along each axis (None: cropped away).
        let maps: Vec<Vec<Option<usize>>> = x
            .shape
            .iter()
            .zip(&self.config)
            .zip(out_shape)
            .map(|((&d, &(lo, _, interior)), &od)| {
                (0..d)
                    .map(|j| {
                        let o = lo + (j * (interior + 1)) as i64;
                        (o >= 0 && (o as usize) < od).then_some(o as usize)
                    })
                    .collect()
            })
            .collect();
        let out = with_storage!(x.data, v, T => {
            let fill = <T as crate::dtype::Elem>::slice(p.data).expect("dtype checked")[0];
            let mut out = vec![fill; outs[0].numel()];
            scatter_rows(v, x.shape, &maps, &os, &mut out);
            <T as crate::dtype::Elem>::into_storage(out)
        });
        Ok(vec![out])
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let Some(ct) = &cts[0] else {
            return Ok(vec![None, None]);
        };
        if !primals[0].dtype().is_float() {
            return Ok(vec![None, None]);
        }
        // Operand: undo the edges with the opposite pad (a crop where we padded, zeros where
        // we cropped), which leaves the interior-dilated core, then take every
        // `interior + 1`-th element of it (JAX's rule).
        let zero = Array::full(&[], ct.dtype(), 0.0);
        let unpad: Vec<(i64, i64, usize)> = self
            .config
            .iter()
            .map(|&(lo, hi, _)| (-lo, -hi, 0))
            .collect();
        let core = pad(ct, &zero, &unpad)?;
        let start = vec![0; core.rank()];
        let steps: Vec<usize> = self.config.iter().map(|&(_, _, i)| i + 1).collect();
        let ct_x = crate::prim::slice::slice(&core, &start, core.shape(), Some(&steps))?;
        // Padding value: every output position not holding an operand element holds it, so
        // its cotangent is the total minus the part that went to the operand.
        let all: Vec<usize> = (0..ct.rank()).collect();
        let total = crate::prim::reduce::reduce_sum(ct, &all)?;
        let to_x = crate::prim::reduce::reduce_sum(&ct_x, &all)?;
        let ct_p = crate::prim::binary::sub(&total, &to_x)?;
        Ok(vec![Some(ct_x), Some(ct_p)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let ([x, p], [xd, pd]) = (args, dims) else {
            return Err(Error::invalid(
                "pad",
                format!("takes 2 operands, got {}", args.len()),
            ));
        };
        match (*xd, *pd) {
            (None, None) => Ok((vec![bind1(self.clone(), &[x, p])?], vec![None])),
            // A shared padding value: pad the batched operand with the batch axis (in place)
            // left alone.
            (Some(b), None) => {
                let mut config = self.config.clone();
                config.insert(b, (0, 0, 0));
                Ok((vec![pad(x, p, &config)?], vec![Some(b)]))
            }
            // One padding value per example: pad with any value, then put each example's
            // value at the padded positions with a select against a padded mask. Positions
            // are chosen, not computed, so the result is bit-identical to a per-example pad.
            (_, Some(_)) => {
                let n = crate::prim::broadcast_in_dim::batch_size("pad", args, dims)?;
                let xb = crate::prim::broadcast_in_dim::batch_to_front(x, *xd, n)?;
                let mut config = vec![(0, 0, 0)];
                config.extend_from_slice(&self.config);
                let filler = Array::zeros(&[], x.dtype());
                let padded = pad(&xb, &filler, &config)?;
                let holes = pad(
                    &Array::full(xb.shape(), crate::dtype::DType::Bool, 0.0),
                    &Array::full(&[], crate::dtype::DType::Bool, 1.0),
                    &config,
                )?;
                // A batched rank-0 value has shape [n].
                let pv = crate::prim::broadcast_in_dim::broadcast_in_dim(p, padded.shape(), &[0])?;
                Ok((
                    vec![crate::prim::select::select(&holes, &pv, &padded)?],
                    vec![Some(0)],
                ))
            }
        }
    }
}

/// Writes every element of `src` (row-major, `shape`) to the output position given by the
/// per-axis maps, skipping cropped ones.
fn scatter_rows<T: Copy>(
    src: &[T],
    shape: &[usize],
    maps: &[Vec<Option<usize>>],
    os: &[usize],
    out: &mut [T],
) {
    if src.is_empty() {
        return;
    }
    let r = shape.len();
    if r == 0 {
        out[0] = src[0];
        return;
    }
    let row = shape[r - 1];
    let last = &maps[r - 1];
    let mut idx = vec![0usize; r - 1];
    for chunk in src.chunks(row) {
        let base: Option<usize> =
            (0..r - 1).try_fold(0, |acc, k| maps[k][idx[k]].map(|o| acc + o * os[k]));
        if let Some(base) = base {
            for (j, &val) in chunk.iter().enumerate() {
                if let Some(o) = last[j] {
                    out[base + o * os[r - 1]] = val;
                }
            }
        }
        for k in (0..r - 1).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// `pad` on arrays: `padding_value` is a rank-0 array of `x`'s dtype.
pub fn pad(x: &Array, padding_value: &Array, config: &[(i64, i64, usize)]) -> Result<Array> {
    bind1(
        Pad {
            config: config.to_vec(),
        },
        &[x, padding_value],
    )
}
