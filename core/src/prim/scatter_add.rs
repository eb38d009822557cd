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
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        use crate::prim::gather::gather;
        let Some(ct) = &cts[0] else {
            return Ok(vec![None, None, None]);
        };
        let (x, idx) = (&primals[0], &primals[1]);
        if !x.dtype().is_float() {
            return Ok(vec![None, None, None]);
        }
        // The operand passes through unchanged; each update reads the cotangent at the
        // position it was added to (a gather, which clips exactly as `Clip` does).
        let g = gather(ct, idx, self.axis, self.mode)?;
        let g = match self.indices {
            IndexMode::Clip => g,
            // Dropped updates never reached the result: their cotangent is zero, not the
            // clipped position's.
            IndexMode::Drop => {
                let d = x.shape()[self.axis];
                let kept = in_range(idx, d)?;
                let kept = match self.mode {
                    GatherMode::Take => {
                        let dims: Vec<usize> = (self.axis..self.axis + idx.rank()).collect();
                        crate::prim::broadcast_in_dim::broadcast_in_dim(&kept, g.shape(), &dims)?
                    }
                    GatherMode::AlongAxis => kept,
                };
                let zero = crate::prim::unary::full_like(&g, 0.0)?;
                crate::prim::select::select(&kept, &g, &zero)?
            }
        };
        Ok(vec![Some(ct.clone()), None, Some(g)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        use crate::prim::broadcast_in_dim::{batch_size, batch_to_front};
        let ([x, idx, u], [xd, id, ud]) = (args, dims) else {
            return Err(Error::invalid(
                "scatter_add",
                format!("batching takes 3 operands, got {}", args.len()),
            ));
        };
        if xd.is_none() && id.is_none() && ud.is_none() {
            return Ok((vec![bind1(self.clone(), &[x, idx, u])?], vec![None]));
        }
        // Everything batched (or broadcast) at the front; the scatter axis moves up by one.
        let n = batch_size("scatter_add", args, dims)?;
        let x0 = batch_to_front(x, *xd, n)?;
        let u0 = batch_to_front(u, *ud, n)?;
        let a = self.axis;
        let y = match (*id, self.mode) {
            // Shared Take indices select whole slices of every example alike.
            (None, GatherMode::Take) => {
                scatter_add(&x0, idx, &u0, a + 1, GatherMode::Take, self.indices)?
            }
            (_, GatherMode::AlongAxis) => {
                let i0 = batch_to_front(idx, *id, n)?;
                scatter_add(&x0, &i0, &u0, a + 1, GatherMode::AlongAxis, self.indices)?
            }
            // Per-example Take indices: the AlongAxis form over [n, P, d, Q] (see
            // `take_as_along_axis`), with the updates flattened to [n, P, M, Q]. Each
            // destination still receives its updates in the same order as in a per-example
            // loop, so sums are bit-identical.
            (Some(c), GatherMode::Take) => {
                let i0 = crate::vmap::move_axis(idx, c, 0)?;
                let (flat_x, idx_b) = crate::prim::gather::take_as_along_axis(&x0, &i0, a)?;
                let flat_u = crate::prim::reshape::reshape(&u0, idx_b.shape())?;
                let y = scatter_add(
                    &flat_x,
                    &idx_b,
                    &flat_u,
                    2,
                    GatherMode::AlongAxis,
                    self.indices,
                )?;
                crate::prim::reshape::reshape(&y, x0.shape())?
            }
        };
        Ok((vec![y], vec![Some(0)]))
    }
}

/// Whether each index addresses an element of an axis of size `d` after a negative index is
/// wrapped once (`-d <= i < d`): the updates `IndexMode::Drop` keeps.
fn in_range(idx: &Array, d: usize) -> Result<Array> {
    use crate::prim::compare::{compare_bcast, CompareOp};
    let below = compare_bcast(CompareOp::Lt, idx, &Array::full(&[], idx.dtype(), d as f64))?;
    if idx.dtype() == DType::U32 {
        // Unsigned indices are never negative.
        return Ok(below);
    }
    let above = compare_bcast(
        CompareOp::Ge,
        idx,
        &Array::full(&[], idx.dtype(), -(d as f64)),
    )?;
    crate::prim::binary::binary(crate::prim::binary::BinaryOp::And, &below, &above)
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
