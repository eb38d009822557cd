//! The `iota` primitive (`lax.broadcasted_iota`): a tensor whose value at each position is
//! its index along one axis. It has no operands, so it is a constant under tracing.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::Primitive;
use crate::storage::Storage;

/// `iota[shape, dtype, dimension]()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iota {
    /// Output shape.
    pub shape: Vec<usize>,
    /// Output dtype (any numeric dtype; not bool).
    pub dtype: DType,
    /// The axis whose index is the value.
    pub dimension: usize,
}

impl Primitive for Iota {
    fn name(&self) -> &'static str {
        "iota"
    }
    fn params(&self) -> String {
        format!(
            "shape={:?} dtype={} dimension={}",
            self.shape, self.dtype, self.dimension
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        if !ins.is_empty() {
            return Err(Error::invalid(
                "iota",
                format!("takes no operands, got {}", ins.len()),
            ));
        }
        if self.dtype == DType::Bool {
            return Err(Error::dtype(
                "iota",
                "bool has no iota; use a numeric dtype",
            ));
        }
        crate::prim::check_axis("iota", self.dimension, self.shape.len())?;
        Ok(vec![AVal::new(self.shape.clone(), self.dtype)])
    }
    fn eval(&self, _ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let d = self.dimension;
        let len = self.shape[d];
        let inner: usize = self.shape[d + 1..].iter().product();
        let outer: usize = self.shape[..d].iter().product();
        let out = with_dtype!(self.dtype, T => {
            let vals: Vec<T> = (0..len).map(|i| <T as crate::dtype::Elem>::from_f64(i as f64)).collect();
            let mut out: Vec<T> = Vec::with_capacity(outs[0].numel());
            for _ in 0..outer {
                for &v in &vals {
                    out.extend(std::iter::repeat_n(v, inner));
                }
            }
            <T as crate::dtype::Elem>::into_storage(out)
        });
        Ok(vec![out])
    }
    fn vjp(
        &self,
        _primals: &[Array],
        _outs: &[Array],
        _cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // No operands, so nothing to send a cotangent to.
        Ok(Vec::new())
    }
    fn batch(
        &self,
        args: &[Array],
        _dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        // Nothing can be batched: the result is the same for every example.
        let refs: Vec<&Array> = args.iter().collect();
        Ok((vec![bind1(self.clone(), &refs)?], vec![None]))
    }
}

/// `iota` on arrays: the index along `dimension` at every position of `shape`.
pub fn iota(dtype: DType, shape: &[usize], dimension: usize) -> Result<Array> {
    bind1(
        Iota {
            shape: shape.to_vec(),
            dtype,
            dimension,
        },
        &[],
    )
}

/// `[0, 1, ..., n - 1]` of `dtype`.
pub fn arange(dtype: DType, n: usize) -> Result<Array> {
    iota(dtype, &[n], 0)
}
