//! The `rev` primitive: reverses the order of elements along the listed axes (`lax.rev`).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;

/// `rev[axes](x)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rev {
    /// Distinct axes to reverse.
    pub axes: Vec<usize>,
}

impl Primitive for Rev {
    fn name(&self) -> &'static str {
        "rev"
    }
    fn params(&self) -> String {
        format!("axes={:?}", self.axes)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let x = &ins[0];
        for (k, &a) in self.axes.iter().enumerate() {
            crate::prim::check_axis("rev", a, x.rank())?;
            if self.axes[..k].contains(&a) {
                return Err(Error::invalid(
                    "rev",
                    format!("axis {a} is listed twice in {:?}", self.axes),
                ));
            }
        }
        Ok(vec![x.clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let x = ins[0];
        // Read with negative strides along reversed axes, starting from their last element.
        let xs = strides(x.shape);
        let mut offset = 0usize;
        let mut st: Vec<isize> = xs.iter().map(|&s| s as isize).collect();
        for &a in &self.axes {
            if x.shape[a] > 0 {
                offset += (x.shape[a] - 1) * xs[a];
            }
            st[a] = -st[a];
        }
        let out = with_storage!(x.data, v, T => {
            <T as crate::dtype::Elem>::into_storage(signed_gather(v, offset, x.shape, &st))
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
        if !primals[0].dtype().is_float() {
            return Ok(vec![None]);
        }
        // A reversal is its own inverse and its own transpose.
        Ok(vec![Some(rev(ct, &self.axes)?)])
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
        // The batch axis stays in place; the reversed axes are renumbered around it.
        let axes: Vec<usize> = self
            .axes
            .iter()
            .map(|&a| crate::prim::reduce::batched_axis(a, b))
            .collect();
        Ok((vec![rev(x, &axes)?], vec![Some(b)]))
    }
}

/// Reads `src` through signed per-axis strides from `offset` into a row-major vector.
fn signed_gather<T: Copy>(src: &[T], offset: usize, shape: &[usize], st: &[isize]) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let r = shape.len();
    if r == 0 {
        out.push(src[offset]);
        return out;
    }
    let (row, rs) = (shape[r - 1], st[r - 1]);
    let mut idx = vec![0usize; r - 1];
    let mut base = offset as isize;
    loop {
        if rs == 1 {
            out.extend_from_slice(&src[base as usize..base as usize + row]);
        } else {
            out.extend((0..row as isize).map(|j| src[(base + j * rs) as usize]));
        }
        let mut k = r - 1;
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            base += st[k];
            if idx[k] < shape[k] {
                break;
            }
            base -= st[k] * shape[k] as isize;
            idx[k] = 0;
        }
    }
}

/// `rev` on arrays; no axes returns `x` itself.
pub fn rev(x: &Array, axes: &[usize]) -> Result<Array> {
    if axes.is_empty() {
        return Ok(x.clone());
    }
    bind1(
        Rev {
            axes: axes.to_vec(),
        },
        &[x],
    )
}
