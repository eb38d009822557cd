//! The `scatter_add` primitive: the transpose of each [`Gather`](crate::prim::gather::Gather)
//! form. Adds `updates` into a copy of the operand at the gathered positions. Duplicate
//! indices accumulate, in row-major order of `updates`, so results are deterministic.
//! bf16/f16 accumulate in f32 and round once; integers wrap on overflow.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::dynamic_slice::index_at;
use crate::prim::gather::{clip_index, gather_shape, GatherMode};
use crate::prim::Primitive;
use crate::storage::Storage;
use half::{bf16, f16};

/// What happens to an index outside `0..dim` (after a negative index is wrapped once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IndexMode {
    /// The update is dropped (JAX's `FILL_OR_DROP`, the default for scatters).
    #[default]
    Drop,
    /// The index is clamped into range: the exact transpose of the clamping `gather`, used by
    /// its gradient.
    Clip,
}

/// `scatter_add[axis, mode, indices](operand, indices, updates)`: `updates` has the shape
/// `gather[axis, mode](operand, indices)` would produce.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScatterAdd {
    /// The axis indices select along.
    pub axis: usize,
    /// Which gather form this transposes.
    pub mode: GatherMode,
    /// Out-of-range index handling.
    pub indices: IndexMode,
}

/// Element types scatter-add can accumulate, with the accumulator they add in.
trait Accumulate: Copy {
    type Acc: Copy;
    fn up(self) -> Self::Acc;
    fn down(a: Self::Acc) -> Self;
    fn add(a: Self::Acc, b: Self::Acc) -> Self::Acc;
}
macro_rules! accumulate {
    ($t:ty, $acc:ty, $up:expr, $down:expr, $add:expr) => {
        impl Accumulate for $t {
            type Acc = $acc;
            #[allow(clippy::redundant_closure_call)]
            fn up(self) -> $acc {
                ($up)(self)
            }
            #[allow(clippy::redundant_closure_call)]
            fn down(a: $acc) -> Self {
                ($down)(a)
            }
            #[allow(clippy::redundant_closure_call)]
            fn add(a: $acc, b: $acc) -> $acc {
                ($add)(a, b)
            }
        }
    };
}
accumulate!(f32, f32, |x| x, |a| a, |a: f32, b: f32| a + b);
accumulate!(f64, f64, |x| x, |a| a, |a: f64, b: f64| a + b);
accumulate!(bf16, f32, bf16::to_f32, bf16::from_f32, |a: f32, b: f32| a
    + b);
accumulate!(f16, f32, f16::to_f32, f16::from_f32, |a: f32, b: f32| a + b);
accumulate!(i32, i32, |x| x, |a| a, i32::wrapping_add);
accumulate!(i64, i64, |x| x, |a| a, i64::wrapping_add);
accumulate!(u32, u32, |x| x, |a| a, u32::wrapping_add);
// Unreachable (the shape rule rejects bool) but keeps the dtype dispatch total.
accumulate!(bool, bool, |x| x, |a| a, |a: bool, b: bool| a | b);

impl Primitive for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn params(&self) -> String {
        format!(
            "axis={} mode={:?} indices={:?}",
            self.axis, self.mode, self.indices
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        const OP: &str = "scatter_add";
        let (x, idx, u) = (&ins[0], &ins[1], &ins[2]);
        if x.dtype != u.dtype {
            return Err(Error::dtype_mismatch(OP, x.dtype, u.dtype));
        }
        if x.dtype == DType::Bool {
            return Err(Error::dtype(OP, "cannot add bool values"));
        }
        let want = gather_shape(OP, self.axis, self.mode, x, idx)?;
        if want != u.shape {
            return Err(Error::shape(
                OP,
                format!(
                    "updates of shape {:?} do not match operand {:?} indexed by {:?} along axis {} (expected {:?})",
                    u.shape, x.shape, idx.shape, self.axis, want
                ),
            ));
        }
        Ok(vec![x.clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let (x, idx, u) = (ins[0], ins[1], ins[2]);
        let d = x.shape[self.axis];
        let pos: Vec<Option<usize>> = (0..idx.data.len())
            .map(|i| {
                let j = index_at("scatter_add", idx.data, i)?;
                Ok(match self.indices {
                    _ if d == 0 => None,
                    IndexMode::Clip => Some(clip_index(j, d)),
                    IndexMode::Drop => {
                        let j = if j < 0 { j + d as i64 } else { j };
                        (0..d as i64).contains(&j).then_some(j as usize)
                    }
                })
            })
            .collect::<Result<_>>()?;
        let out = with_storage!(x.data, v, T => {
            let upd = <T as crate::dtype::Elem>::slice(u.data).expect("dtype checked");
            <T as crate::dtype::Elem>::into_storage(self.accumulate(v, x.shape, upd, idx.shape, &pos))
        });
        Ok(vec![out])
    }
}

impl ScatterAdd {
    fn accumulate<T: Accumulate>(
        &self,
        base: &[T],
        shape: &[usize],
        upd: &[T],
        idx_shape: &[usize],
        pos: &[Option<usize>],
    ) -> Vec<T> {
        let a = self.axis;
        let d = shape[a];
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let mut acc: Vec<T::Acc> = base.iter().map(|&x| x.up()).collect();
        if !upd.is_empty() {
            match self.mode {
                GatherMode::Take => {
                    let m = pos.len();
                    for o in 0..outer {
                        for (j, p) in pos.iter().enumerate() {
                            let Some(p) = *p else { continue };
                            let dst = (o * d + p) * inner;
                            let src = (o * m + j) * inner;
                            for i in 0..inner {
                                acc[dst + i] = T::add(acc[dst + i], upd[src + i].up());
                            }
                        }
                    }
                }
                GatherMode::AlongAxis => {
                    let k = idx_shape[a];
                    for o in 0..outer {
                        for j in 0..k {
                            let row = (o * k + j) * inner;
                            for i in 0..inner {
                                if let Some(p) = pos[row + i] {
                                    let dst = (o * d + p) * inner + i;
                                    acc[dst] = T::add(acc[dst], upd[row + i].up());
                                }
                            }
                        }
                    }
                }
            }
        }
        acc.into_iter().map(T::down).collect()
    }
}

/// `scatter_add` on arrays.
pub fn scatter_add(
    operand: &Array,
    indices: &Array,
    updates: &Array,
    axis: usize,
    mode: GatherMode,
    index_mode: IndexMode,
) -> Result<Array> {
    bind1(
        ScatterAdd {
            axis,
            mode,
            indices: index_mode,
        },
        &[operand, indices, updates],
    )
}
