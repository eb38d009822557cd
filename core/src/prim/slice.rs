//! The `slice` primitive: a static, optionally strided window `start..limit` per axis, as
//! `lax.slice`.

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::strided_gather_offset;
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `slice[start, limit, strides](x)`: along axis `i` takes `start[i], start[i] + strides[i],
/// ...` below `limit[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index per axis.
    pub start: Vec<usize>,
    /// One past the last index per axis (`start <= limit <= dim`).
    pub limit: Vec<usize>,
    /// Step per axis (at least 1).
    pub strides: Vec<usize>,
}

impl Slice {
    /// The output size of one axis.
    fn out_dim(&self, i: usize) -> usize {
        (self.limit[i] - self.start[i]).div_ceil(self.strides[i])
    }
}

impl Primitive for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn params(&self) -> String {
        format!(
            "start={:?} limit={:?} strides={:?}",
            self.start, self.limit, self.strides
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        let r = x.rank();
        if self.start.len() != r || self.limit.len() != r || self.strides.len() != r {
            return Err(Error::shape(
                "slice",
                format!(
                    "operand of shape {:?} needs {r} starts, limits and strides; got {:?}, {:?}, {:?}",
                    x.shape, self.start, self.limit, self.strides
                ),
            ));
        }
        for i in 0..r {
            if self.start[i] > self.limit[i] || self.limit[i] > x.shape[i] || self.strides[i] == 0 {
                return Err(Error::shape(
                    "slice",
                    format!(
                        "axis {i}: window {}..{} step {} does not fit shape {:?} (need start <= limit <= {} and step >= 1)",
                        self.start[i], self.limit[i], self.strides[i], x.shape, x.shape[i]
                    ),
                ));
            }
        }
        let shape: Vec<usize> = (0..r).map(|i| self.out_dim(i)).collect();
        Ok(vec![AVal::new(shape, x.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        let xs = strides(x.shape);
        let offset: usize = self.start.iter().zip(&xs).map(|(s, st)| s * st).sum();
        let in_strides: Vec<usize> = xs.iter().zip(&self.strides).map(|(a, b)| a * b).collect();
        let out = with_storage!(x.data, v, T => {
            <T as crate::dtype::Elem>::into_storage(strided_gather_offset(v, offset, &outs[0].shape, &in_strides))
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
            return Ok(vec![None]);
        };
        let x = &primals[0];
        if !x.dtype().is_float() {
            return Ok(vec![None]);
        }
        // The transpose of a strided window is a zero pad: `start` zeros before, `stride - 1`
        // between the taken elements, and whatever is left of the axis after the last one.
        let config: Vec<(i64, i64, usize)> = (0..x.rank())
            .map(|i| {
                let n = ct.shape()[i];
                let core = if n == 0 {
                    0
                } else {
                    (n - 1) * self.strides[i] + 1
                };
                let hi = x.shape()[i] - self.start[i] - core;
                (self.start[i] as i64, hi as i64, self.strides[i] - 1)
            })
            .collect();
        let zero = Array::full(&[], ct.dtype(), 0.0);
        Ok(vec![Some(crate::prim::pad::pad(ct, &zero, &config)?)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let (x, bd) = crate::prim::reduce::unary_batch_operand(self.name(), args, dims)?;
        let Some(b) = bd else {
            return Ok((vec![bind1(self.clone(), &[x])?], vec![None]));
        };
        // The batch axis stays in place and is taken whole.
        let mut prim = self.clone();
        prim.start.insert(b, 0);
        prim.limit.insert(b, x.shape()[b]);
        prim.strides.insert(b, 1);
        Ok((vec![bind1(prim, &[x])?], vec![Some(b)]))
    }
}

/// `slice` on arrays; `strides = None` means step 1 everywhere. Returns `x` itself for the
/// full window.
pub fn slice(
    x: &Array,
    start: &[usize],
    limit: &[usize],
    strides: Option<&[usize]>,
) -> Result<Array> {
    let strides = strides.map_or_else(|| vec![1; start.len()], <[usize]>::to_vec);
    if start.iter().all(|&s| s == 0) && limit == x.shape() && strides.iter().all(|&s| s == 1) {
        return Ok(x.clone());
    }
    bind1(
        Slice {
            start: start.to_vec(),
            limit: limit.to_vec(),
            strides,
        },
        &[x],
    )
}

/// Slices one axis (`lax.slice_in_dim`), keeping the others whole.
pub fn slice_in_dim(
    x: &Array,
    axis: usize,
    start: usize,
    limit: usize,
    stride: usize,
) -> Result<Array> {
    crate::prim::check_axis("slice_in_dim", axis, x.rank())?;
    let mut s = vec![0; x.rank()];
    let mut l = x.shape().to_vec();
    let mut st = vec![1; x.rank()];
    s[axis] = start;
    l[axis] = limit;
    st[axis] = stride;
    slice(x, &s, &l, Some(&st))
}
