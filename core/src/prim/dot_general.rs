//! The `dot_general` primitive (XLA's DotGeneral): contracts chosen axes of two operands,
//! with shared batch axes. Output axes are the batch axes, then the lhs free axes, then the
//! rhs free axes. Plain, transposed and batched matrix products are all strided views of
//! it and go to [`ferrax_cpu::gemm_batched`] without copying; other layouts are first
//! copied into `(batch, M, K)` / `(batch, K, N)` order. numpy's `matmul` is built on it.
//! Its reverse-mode rule is two more `dot_general`s (one per operand), each with its
//! operands in the order that yields the cotangent's axis order directly (a transpose only
//! for layouts neither order gives); its
//! batching rule makes the vmapped axis a batch axis or a free axis, with no copy.

use crate::array::{bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::{broadcast_to, strided_gather};
use crate::prim::{strides, Primitive};
use crate::storage::Storage;
use ferrax_cpu::{BatchRef, MatRef};
use half::{bf16, f16};

/// `dot_general[lhs_contract, rhs_contract, lhs_batch, rhs_batch](lhs, rhs)`:
/// `lhs_contract[i]` pairs with `rhs_contract[i]`, `lhs_batch[i]` with `rhs_batch[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DotGeneral {
    /// Contracted axes of the lhs.
    pub lhs_contract: Vec<usize>,
    /// Contracted axes of the rhs, paired with `lhs_contract`.
    pub rhs_contract: Vec<usize>,
    /// Batch axes of the lhs (they lead the output, in this order).
    pub lhs_batch: Vec<usize>,
    /// Batch axes of the rhs, paired with `lhs_batch`.
    pub rhs_batch: Vec<usize>,
}

/// The axes of an operand split into groups: batch, free (ascending), contract.
struct Groups {
    batch: Vec<usize>,
    free: Vec<usize>,
    contract: Vec<usize>,
}

impl DotGeneral {
    fn groups(&self, rank: usize, lhs: bool) -> Groups {
        let (batch, contract) = if lhs {
            (&self.lhs_batch, &self.lhs_contract)
        } else {
            (&self.rhs_batch, &self.rhs_contract)
        };
        let free = (0..rank)
            .filter(|a| !batch.contains(a) && !contract.contains(a))
            .collect();
        Groups {
            batch: batch.clone(),
            free,
            contract: contract.clone(),
        }
    }
}

fn check_axes(
    op: &'static str,
    side: &str,
    shape: &[usize],
    batch: &[usize],
    contract: &[usize],
) -> Result<()> {
    let mut seen = vec![false; shape.len()];
    for &a in batch.iter().chain(contract) {
        if a >= shape.len() {
            return Err(Error::shape(
                op,
                format!(
                    "{side} axis {a} is out of range for {side} shape {shape:?} (batch {batch:?}, contract {contract:?})"
                ),
            ));
        }
        if seen[a] {
            return Err(Error::shape(
                op,
                format!(
                    "{side} axis {a} appears twice among batch {batch:?} and contract {contract:?} axes of shape {shape:?}"
                ),
            ));
        }
        seen[a] = true;
    }
    Ok(())
}

impl Primitive for DotGeneral {
    fn name(&self) -> &'static str {
        "dot_general"
    }
    fn params(&self) -> String {
        format!(
            "contract=({:?},{:?}) batch=({:?},{:?})",
            self.lhs_contract, self.rhs_contract, self.lhs_batch, self.rhs_batch
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        const OP: &str = "dot_general";
        let (l, r) = (&ins[0], &ins[1]);
        if l.dtype != r.dtype {
            return Err(Error::dtype_mismatch(OP, l.dtype, r.dtype));
        }
        if self.lhs_contract.len() != self.rhs_contract.len()
            || self.lhs_batch.len() != self.rhs_batch.len()
        {
            return Err(Error::shape(
                OP,
                format!(
                    "lhs {:?} and rhs {:?}: contract axes {:?} vs {:?} and batch axes {:?} vs {:?} must pair up one to one",
                    l.shape, r.shape, self.lhs_contract, self.rhs_contract, self.lhs_batch, self.rhs_batch
                ),
            ));
        }
        check_axes(OP, "lhs", &l.shape, &self.lhs_batch, &self.lhs_contract)?;
        check_axes(OP, "rhs", &r.shape, &self.rhs_batch, &self.rhs_contract)?;
        for (what, la, ra) in [
            ("contracting", &self.lhs_contract, &self.rhs_contract),
            ("batch", &self.lhs_batch, &self.rhs_batch),
        ] {
            for (&a, &b) in la.iter().zip(ra.iter()) {
                if l.shape[a] != r.shape[b] {
                    return Err(Error::shape(
                        OP,
                        format!(
                            "{what} dims differ: lhs {:?} axis {a} has size {}, rhs {:?} axis {b} has size {}",
                            l.shape, l.shape[a], r.shape, r.shape[b]
                        ),
                    ));
                }
            }
        }
        let lg = self.groups(l.rank(), true);
        let rg = self.groups(r.rank(), false);
        let shape: Vec<usize> = lg
            .batch
            .iter()
            .chain(&lg.free)
            .map(|&a| l.shape[a])
            .chain(rg.free.iter().map(|&a| r.shape[a]))
            .collect();
        Ok(vec![AVal::new(shape, l.dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let (l, r) = (ins[0], ins[1]);
        let lg = self.groups(l.shape.len(), true);
        let rg = self.groups(r.shape.len(), false);
        let out = match (l.data, r.data) {
            // A recycled buffer when the pool has one: gemm overwrites every element.
            (Storage::F32(a), Storage::F32(b)) => {
                Storage::F32(dot_float(a, l.shape, &lg, b, r.shape, &rg, |n| {
                    match crate::exec::take_pooled(DType::F32, n) {
                        Some(Storage::F32(v)) => v,
                        _ => vec![0.0; n],
                    }
                }))
            }
            (Storage::F64(a), Storage::F64(b)) => {
                Storage::F64(dot_float(a, l.shape, &lg, b, r.shape, &rg, |n| {
                    match crate::exec::take_pooled(DType::F64, n) {
                        Some(Storage::F64(v)) => v,
                        _ => vec![0.0; n],
                    }
                }))
            }
            (Storage::BF16(a), Storage::BF16(b)) => {
                let c = dot_float(&widen(a), l.shape, &lg, &widen(b), r.shape, &rg, zeros);
                Storage::BF16(c.into_iter().map(bf16::from_f32).collect())
            }
            (Storage::F16(a), Storage::F16(b)) => {
                let c = dot_float(&widen(a), l.shape, &lg, &widen(b), r.shape, &rg, zeros);
                Storage::F16(c.into_iter().map(f16::from_f32).collect())
            }
            (Storage::I32(a), Storage::I32(b)) => {
                Storage::I32(dot_naive(a, l.shape, &lg, b, r.shape, &rg))
            }
            (Storage::I64(a), Storage::I64(b)) => {
                Storage::I64(dot_naive(a, l.shape, &lg, b, r.shape, &rg))
            }
            (Storage::U32(a), Storage::U32(b)) => {
                Storage::U32(dot_naive(a, l.shape, &lg, b, r.shape, &rg))
            }
            (Storage::Bool(a), Storage::Bool(b)) => {
                Storage::Bool(dot_naive(a, l.shape, &lg, b, r.shape, &rg))
            }
            _ => {
                return Err(Error::dtype_mismatch(
                    "dot_general",
                    l.data.dtype(),
                    r.data.dtype(),
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
        let (l, r) = (&primals[0], &primals[1]);
        // Integer (and bool) products are not differentiable; both operands share a dtype.
        if !l.dtype().is_float() {
            return Ok(vec![None, None]);
        }
        let lg = self.groups(l.rank(), true);
        let rg = self.groups(r.rank(), false);
        let ct_l = transpose_operand(g, r, &lg, &rg, true)?;
        let ct_r = transpose_operand(g, l, &rg, &lg, false)?;
        Ok(vec![Some(ct_l), Some(ct_r)])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        const OP: &str = "dot_general";
        let ([l, r], [ld, rd]) = (args, dims) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "batching takes two operands and two batch dims, got {} and {}",
                    args.len(),
                    dims.len()
                ),
            ));
        };
        if ld.is_some() || rd.is_some() {
            // Checks the batch axes are in range and the batch sizes agree (so a batched
            // operand's `rank - 1` below cannot underflow).
            crate::prim::broadcast_in_dim::batch_size(OP, args, dims)?;
        }
        // An example's axis `a` lives at `a + 1` in the batched operand when `a >= b`.
        let shift = |axes: &[usize], b: Option<usize>| -> Vec<usize> {
            match b {
                Some(b) => axes
                    .iter()
                    .map(|&a| crate::prim::reduce::batched_axis(a, b))
                    .collect(),
                None => axes.to_vec(),
            }
        };
        let mut p = DotGeneral {
            lhs_contract: shift(&self.lhs_contract, *ld),
            rhs_contract: shift(&self.rhs_contract, *rd),
            lhs_batch: shift(&self.lhs_batch, *ld),
            rhs_batch: shift(&self.rhs_batch, *rd),
        };
        // No operand is transposed: the kernel reads the batch axis through its stride
        // wherever it sits (copying only when the layout cannot be merged).
        let nb = self.lhs_batch.len();
        let out_dim = match (*ld, *rd) {
            // Both batched: the vmapped axis becomes the leading dot batch axis, so it
            // leads the output.
            (Some(lb), Some(rb)) => {
                p.lhs_batch.insert(0, lb);
                p.rhs_batch.insert(0, rb);
                0
            }
            // One batched: the vmapped axis is one more free axis of that operand. Free
            // axes keep their ascending order in the output, after the batch axes (and,
            // for the rhs, after the lhs free axes).
            (Some(lb), None) => {
                let lfree = self.groups(l.rank() - 1, true).free;
                nb + lfree.iter().filter(|&&a| a < lb).count()
            }
            (None, Some(rb)) => {
                let nlf = self.groups(l.rank(), true).free.len();
                let rfree = self.groups(r.rank() - 1, false).free;
                nb + nlf + rfree.iter().filter(|&&a| a < rb).count()
            }
            (None, None) => return Ok((vec![bind1(self.clone(), &[l, r])?], vec![None])),
        };
        Ok((vec![bind1(p, &[l, r])?], vec![Some(out_dim)]))
    }
}

/// The cotangent of operand `x` of a `dot_general` whose other operand is `y`, given the
/// output cotangent `g` (JAX's `_dot_general_transpose_lhs`; the rhs case swaps the roles).
/// `g`'s axes are `[batch, lhs free, rhs free]`; contracting its `y`-free axes with `y`'s
/// free axes (batch axes stay batch axes) leaves `[batch, x free, y contract]`, and `y`'s
/// remaining contracted axes pair with `x`'s contracted axes. A transpose puts that back
/// in `x`'s axis order. Written with `dot_general` itself, so it is differentiable again.
fn transpose_operand(
    g: &Array,
    y: &Array,
    xg: &Groups,
    yg: &Groups,
    x_is_lhs: bool,
) -> Result<Array> {
    let nb = xg.batch.len();
    let (nxf, nyf) = (xg.free.len(), yg.free.len());
    let y_free_in_g: Vec<usize> = if x_is_lhs {
        (nb + nxf..nb + nxf + nyf).collect()
    } else {
        (nb..nb + nyf).collect()
    };
    let g_batch: Vec<usize> = (0..nb).collect();
    // The x axis each of y's contracted axes pairs with, in ascending y order (the order
    // they come out of a dot_general).
    let mut pairs: Vec<(usize, usize)> = yg
        .contract
        .iter()
        .copied()
        .zip(xg.contract.iter().copied())
        .collect();
    pairs.sort_unstable();
    let paired = pairs.iter().map(|&(_, xa)| xa);
    // `g · y` leaves `[batch, x free, y contract]`; `y · g` leaves `[batch, y contract,
    // x free]`. Both are the same sums; take the one already in x's axis order, so no
    // transpose is materialized (for `x @ w` the lhs cotangent is `g · y` and the rhs one
    // `y · g`). Otherwise `g · y` and a transpose.
    let order_gy: Vec<usize> = xg
        .batch
        .iter()
        .chain(&xg.free)
        .copied()
        .chain(paired.clone())
        .collect();
    let order_yg: Vec<usize> = xg
        .batch
        .iter()
        .copied()
        .chain(paired)
        .chain(xg.free.iter().copied())
        .collect();
    let is_identity = |o: &[usize]| o.iter().enumerate().all(|(i, &a)| i == a);
    if !is_identity(&order_gy) && is_identity(&order_yg) {
        return dot_general(y, g, &yg.free, &y_free_in_g, &yg.batch, &g_batch);
    }
    let r = dot_general(g, y, &y_free_in_g, &yg.free, &g_batch, &yg.batch)?;
    // `order_gy[i]` is the x axis at result position i; the transpose wants the inverse.
    crate::prim::transpose::transpose(&r, &crate::prim::transpose::inverse_perm(&order_gy))
}

/// `dot_general(transpose[perm](x), y)` (on either side) as `dot_general(x, y)` with the
/// transposed operand's axes renamed through `perm`: the kernel reads any layout through
/// strides, so the transpose need not be materialized. Applies when the renamed free axes
/// stay ascending (free axes enter the output in ascending order, so its layout is
/// unchanged); contracted and batch axes keep their pairing, so every sum has the same
/// terms in the same order. `producer` finds the equation defining a variable.
pub(crate) fn absorb_transposes<'a>(
    e: &crate::ir::Eqn,
    producer: impl Fn(crate::ir::Var) -> Option<&'a crate::ir::Eqn>,
) -> Option<crate::ir::Eqn> {
    let d = e.prim.as_any().downcast_ref::<DotGeneral>()?;
    let [l, r] = e.ins.as_slice() else {
        return None;
    };
    let mut p = d.clone();
    let mut ins = vec![*l, *r];
    let mut changed = false;
    for (side, v) in [*l, *r].into_iter().enumerate() {
        let Some(t) = producer(v) else { continue };
        let Some(tr) = t
            .prim
            .as_any()
            .downcast_ref::<crate::prim::transpose::Transpose>()
        else {
            continue;
        };
        let (Some(&src), rank) = (t.ins.first(), tr.perm.len()) else {
            continue;
        };
        let (batch, contract) = if side == 0 {
            (&mut p.lhs_batch, &mut p.lhs_contract)
        } else {
            (&mut p.rhs_batch, &mut p.rhs_contract)
        };
        if batch.iter().chain(contract.iter()).any(|&a| a >= rank) {
            continue;
        }
        let free: Vec<usize> = (0..rank)
            .filter(|a| !batch.contains(a) && !contract.contains(a))
            .map(|a| tr.perm[a])
            .collect();
        if free.windows(2).any(|w| w[0] > w[1]) {
            continue;
        }
        for a in batch.iter_mut().chain(contract.iter_mut()) {
            *a = tr.perm[*a];
        }
        ins[side] = src;
        changed = true;
    }
    changed.then(|| crate::ir::Eqn {
        prim: std::sync::Arc::new(p),
        ins,
        outs: e.outs.clone(),
    })
}

fn widen<T: Copy + Into<f32>>(v: &[T]) -> Vec<f32> {
    v.iter().map(|&x| x.into()).collect()
}

/// Size and single stride of a group of axes of a row-major operand, if the group (in its
/// order) is laid out like one axis: each axis's stride equals the next one's stride times
/// its size. Size-1 axes never break this. An empty group is one axis of size 1.
fn merged(shape: &[usize], st: &[usize], axes: &[usize]) -> Option<(usize, usize)> {
    let real: Vec<usize> = axes.iter().copied().filter(|&a| shape[a] != 1).collect();
    let size = axes.iter().map(|&a| shape[a]).product();
    match real.last() {
        None => Some((size, 0)),
        Some(&last) => {
            for w in real.windows(2) {
                if st[w[0]] != st[w[1]] * shape[w[1]] {
                    return None;
                }
            }
            Some((size, st[last]))
        }
    }
}

/// An operand as `[batch, rows, cols]` strided matrices, copying it into that axis order
/// only when the layout requires.
struct Operand<'a, T: Clone> {
    data: std::borrow::Cow<'a, [T]>,
    sizes: [usize; 3],
    strides: [usize; 3],
}

fn as_batched<'a, T: Copy>(
    data: &'a [T],
    shape: &[usize],
    groups: [&[usize]; 3],
) -> Operand<'a, T> {
    let st = strides(shape);
    let m = [
        merged(shape, &st, groups[0]),
        merged(shape, &st, groups[1]),
        merged(shape, &st, groups[2]),
    ];
    if let [Some(b), Some(r), Some(c)] = m {
        return Operand {
            data: std::borrow::Cow::Borrowed(data),
            sizes: [b.0, r.0, c.0],
            strides: [b.1, r.1, c.1],
        };
    }
    // Copy into [batch.., rows.., cols..] order, which merges trivially.
    let order: Vec<usize> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let new_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
    let in_strides: Vec<usize> = order.iter().map(|&a| st[a]).collect();
    let v = strided_gather(data, &new_shape, &in_strides);
    let sz = |g: &[usize]| g.iter().map(|&a| shape[a]).product::<usize>();
    let (b, r, c) = (sz(groups[0]), sz(groups[1]), sz(groups[2]));
    Operand {
        data: std::borrow::Cow::Owned(v),
        sizes: [b, r, c],
        strides: [r * c, c, 1],
    }
}

impl<T: Clone> Operand<'_, T> {
    fn batch_ref(&self) -> BatchRef<'_, T> {
        BatchRef {
            mat: MatRef::new(&self.data, 0, self.strides[1], self.strides[2]),
            bs: self.strides[0],
        }
    }
}

type Prepared<'a, 'b, T> = (Operand<'a, T>, Operand<'b, T>, [usize; 4]);

fn prepare<'a, 'b, T: Copy>(
    a: &'a [T],
    ashape: &[usize],
    lg: &Groups,
    b: &'b [T],
    bshape: &[usize],
    rg: &Groups,
) -> Prepared<'a, 'b, T> {
    let lo = as_batched(a, ashape, [&lg.batch, &lg.free, &lg.contract]);
    let ro = as_batched(b, bshape, [&rg.batch, &rg.contract, &rg.free]);
    let dims = [lo.sizes[0], lo.sizes[1], lo.sizes[2], ro.sizes[2]];
    (lo, ro, dims)
}

fn zeros(n: usize) -> Vec<f32> {
    vec![0.0; n]
}

/// The float product into a buffer of `batch * m * n` elements from `out` (any contents:
/// the gemm runs with β = 0, which writes every element without reading it).
fn dot_float<T: ferrax_cpu::GemmElem>(
    a: &[T],
    ashape: &[usize],
    lg: &Groups,
    b: &[T],
    bshape: &[usize],
    rg: &Groups,
    out: impl FnOnce(usize) -> Vec<T>,
) -> Vec<T> {
    let (lo, ro, [batch, m, k, n]) = prepare(a, ashape, lg, b, bshape, rg);
    let mut c = out(batch * m * n);
    ferrax_cpu::gemm_batched(batch, m, k, n, lo.batch_ref(), ro.batch_ref(), &mut c);
    c
}

fn dot_naive<T: ferrax_cpu::NaiveElem>(
    a: &[T],
    ashape: &[usize],
    lg: &Groups,
    b: &[T],
    bshape: &[usize],
    rg: &Groups,
) -> Vec<T> {
    let (lo, ro, [batch, m, k, n]) = prepare(a, ashape, lg, b, bshape, rg);
    let mut c = vec![T::ZERO; batch * m * n];
    ferrax_cpu::gemm_naive_batched(batch, m, k, n, lo.batch_ref(), ro.batch_ref(), &mut c);
    c
}

/// `dot_general` on arrays: contracts `lhs_contract` with `rhs_contract` and matches
/// `lhs_batch` with `rhs_batch`. Output: batch dims, lhs free dims, rhs free dims.
///
/// ```
/// use ferrax_core::{Array, prim::dot_general::dot_general};
/// let a = Array::from_vec(vec![2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
/// let b = Array::from_vec(vec![2, 3], vec![1f32, 0., 1., 0., 1., 0.]).unwrap();
/// // a · bᵀ: contract axis 1 of both.
/// let c = dot_general(&a, &b, &[1], &[1], &[], &[]).unwrap();
/// assert_eq!(c.shape(), &[2, 2]);
/// assert_eq!(c.to_vec::<f32>().unwrap(), vec![4., 2., 10., 5.]);
/// ```
pub fn dot_general(
    lhs: &Array,
    rhs: &Array,
    lhs_contract: &[usize],
    rhs_contract: &[usize],
    lhs_batch: &[usize],
    rhs_batch: &[usize],
) -> Result<Array> {
    bind1(
        DotGeneral {
            lhs_contract: lhs_contract.to_vec(),
            rhs_contract: rhs_contract.to_vec(),
            lhs_batch: lhs_batch.to_vec(),
            rhs_batch: rhs_batch.to_vec(),
        },
        &[lhs, rhs],
    )
}

/// numpy's `matmul`: 1-D operands are vectors (the contracted axis is dropped from the
/// result), 2-D are matrices, and leading axes of higher-rank operands are batch axes that
/// broadcast against each other. Errors name both shapes.
///
/// ```
/// use ferrax_core::{Array, prim::dot_general::matmul};
/// // Batch dims [2, 1] and [3] broadcast to [2, 3]; each product is (1x2)·(2x1).
/// let a = Array::from_vec(vec![2, 1, 1, 2], vec![1f64, 2., 3., 4.]).unwrap();
/// let b = Array::from_vec(vec![3, 2, 1], vec![1f64, 1., 0., 1., 1., 0.]).unwrap();
/// let c = matmul(&a, &b).unwrap();
/// assert_eq!(c.shape(), &[2, 3, 1, 1]);
/// assert_eq!(c.to_vec::<f64>().unwrap(), vec![3., 2., 1., 7., 4., 3.]);
/// ```
pub fn matmul(a: &Array, b: &Array) -> Result<Array> {
    const OP: &str = "matmul";
    let (ra, rb) = (a.rank(), b.rank());
    if ra == 0 || rb == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "operands must have at least one axis, got shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let ka = a.shape()[ra - 1];
    let kb = if rb == 1 {
        b.shape()[0]
    } else {
        b.shape()[rb - 2]
    };
    if ka != kb {
        return Err(Error::shape(
            OP,
            format!(
                "inner dims differ: {:?} · {:?} contracts {ka} with {kb}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::dtype_mismatch(OP, a.dtype(), b.dtype()));
    }
    // Vectors and a shared rank-2 operand need no batch axes: free axes carry them, and
    // nothing is broadcast (copied).
    if rb <= 2 {
        return dot_general(a, b, &[ra - 1], &[0], &[], &[]);
    }
    if ra == 1 {
        return dot_general(a, b, &[0], &[rb - 2], &[], &[]);
    }
    let bs_a = &a.shape()[..ra - 2];
    let bs_b = &b.shape()[..rb - 2];
    let batch = crate::prim::broadcast_in_dim::broadcast_shapes(OP, bs_a, bs_b).map_err(|_| {
        Error::shape(
            OP,
            format!(
                "batch dims of {:?} and {:?} do not broadcast",
                a.shape(),
                b.shape()
            ),
        )
    })?;
    let full = |x: &Array, r: usize| -> Result<Array> {
        let mut s = batch.clone();
        s.extend_from_slice(&x.shape()[r - 2..]);
        broadcast_to(x, &s)
    };
    let (a2, b2) = (full(a, ra)?, full(b, rb)?);
    let nb = batch.len();
    let bd: Vec<usize> = (0..nb).collect();
    dot_general(&a2, &b2, &[nb + 1], &[nb], &bd, &bd)
}

#[cfg(test)]
mod tests {
    use super::dot_general;
    use crate::array::{AVal, Array};
    use crate::dtype::DType;
    use crate::exec::Executable;
    use crate::prim::transpose::transpose;

    fn data(n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * a).sin() + 0.25).collect()
    }

    /// Compiles `f` over the given shapes, runs it on deterministic data, and returns the
    /// result, the eager result, the operands and how many transposes survived `optimize`.
    fn staged(
        shapes: [&[usize]; 2],
        f: impl Fn(&Array, &Array) -> crate::Result<Array>,
    ) -> (Vec<f32>, Vec<f32>, usize) {
        let avals: Vec<AVal> = shapes
            .iter()
            .map(|s| AVal::new(s.to_vec(), DType::F32))
            .collect();
        let (prog, _) = crate::trace::trace_fn(&avals, |v| Ok(vec![f(&v[0], &v[1])?])).unwrap();
        let exe = Executable::compile(&prog).unwrap();
        let transposes = exe
            .program()
            .eqns
            .iter()
            .filter(|e| e.prim.name() == "transpose")
            .count();
        let args: Vec<Array> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let n = s.iter().product();
                Array::from_vec(s.to_vec(), data(n, 0.37 + k as f32 * 0.21)).unwrap()
            })
            .collect();
        let got = exe.run(&args).unwrap()[0].to_vec::<f32>().unwrap();
        let eager = f(&args[0], &args[1]).unwrap().to_vec::<f32>().unwrap();
        (got, eager, transposes)
    }

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "element {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn transposed_operands_are_absorbed_as_strides() {
        // xᵀ · y with x [3, 4], y [3, 5]: the transpose disappears, the bits stay eager.
        let (got, eager, t) = staged([&[3, 4], &[3, 5]], |x, y| {
            dot_general(&transpose(x, &[1, 0])?, y, &[1], &[0], &[], &[])
        });
        assert_eq!(t, 0);
        assert_eq!(got, eager);
        let (x, y) = (data(12, 0.37), data(15, 0.58));
        let want: Vec<f64> = (0..4)
            .flat_map(|i| {
                let (x, y) = (&x, &y);
                (0..5).map(move |j| {
                    (0..3)
                        .map(|k| x[k * 4 + i] as f64 * y[k * 5 + j] as f64)
                        .sum()
                })
            })
            .collect();
        close(&got, &want);

        // Batched, transpose on the rhs: x [2, 3, 4] · swap(y [2, 5, 4]) over batch 0.
        let (got, eager, t) = staged([&[2, 3, 4], &[2, 5, 4]], |x, y| {
            dot_general(x, &transpose(y, &[0, 2, 1])?, &[2], &[1], &[0], &[0])
        });
        assert_eq!(t, 0);
        assert_eq!(got, eager);
        let (x, y) = (data(24, 0.37), data(40, 0.58));
        let mut want = Vec::new();
        for b in 0..2 {
            for i in 0..3 {
                for j in 0..5 {
                    want.push(
                        (0..4)
                            .map(|k| x[b * 12 + i * 4 + k] as f64 * y[b * 20 + j * 4 + k] as f64)
                            .sum(),
                    );
                }
            }
        }
        close(&got, &want);
    }

    #[test]
    fn a_transpose_that_reorders_free_axes_stays() {
        // Free axes [0, 1] of the transposed lhs are x's axes [1, 0]: absorbing it would
        // change the output layout, so the transpose is kept.
        let (got, eager, t) = staged([&[4, 6, 3], &[3, 5]], |x, y| {
            dot_general(&transpose(x, &[1, 0, 2])?, y, &[2], &[0], &[], &[])
        });
        assert_eq!(t, 1);
        assert_eq!(got, eager);
        let (x, y) = (data(72, 0.37), data(15, 0.58));
        let mut want = Vec::new();
        for a in 0..6 {
            for b in 0..4 {
                for j in 0..5 {
                    want.push(
                        (0..3)
                            .map(|k| x[b * 18 + a * 3 + k] as f64 * y[k * 5 + j] as f64)
                            .sum(),
                    );
                }
            }
        }
        close(&got, &want);
    }

    #[test]
    fn vjp_of_a_matmul_needs_no_transpose() {
        // d/dw sum(x · w) for x [3, 4], w [4, 2] is xᵀ · 1: the rule emits it as
        // dot_general(x, g) contracting the batch axis, never a materialized transpose.
        let x = Array::from_vec(vec![3, 4], data(12, 0.37)).unwrap();
        let w = Array::from_vec(vec![4, 2], data(8, 0.58)).unwrap();
        let avals = [x.aval().clone(), w.aval().clone()];
        let (prog, _) = crate::trace::trace_fn(&avals, |v| {
            let y = dot_general(&v[0], &v[1], &[1], &[0], &[], &[])?;
            let g = crate::prim::unary::full_like(&y, 1.0)?;
            let ct = DotGeneral {
                lhs_contract: vec![1],
                rhs_contract: vec![0],
                lhs_batch: vec![],
                rhs_batch: vec![],
            }
            .vjp(&[v[0].clone(), v[1].clone()], &[y], &[Some(g)])?;
            Ok(ct
                .into_iter()
                .map(|c| c.expect("float cotangent"))
                .collect())
        })
        .unwrap();
        assert!(
            !prog.eqns.iter().any(|e| e.prim.name() == "transpose"),
            "{prog}"
        );
        let out = Executable::compile(&prog)
            .unwrap()
            .run(&[x.clone(), w.clone()])
            .unwrap();
        let (xv, wv) = (x.to_vec::<f32>().unwrap(), w.to_vec::<f32>().unwrap());
        // ct_x[i, k] = sum_j w[k, j]; ct_w[k, j] = sum_i x[i, k].
        let want_x: Vec<f64> = (0..12)
            .map(|ik| (wv[(ik % 4) * 2] + wv[(ik % 4) * 2 + 1]) as f64)
            .collect();
        let want_w: Vec<f64> = (0..8)
            .map(|kj| (0..3).map(|i| xv[i * 4 + kj / 2] as f64).sum())
            .collect();
        close(&out[0].to_vec::<f32>().unwrap(), &want_x);
        close(&out[1].to_vec::<f32>().unwrap(), &want_w);
    }

    use super::DotGeneral;
    use crate::prim::Primitive;
}
