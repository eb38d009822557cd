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
