//! Elementwise fusion: partitions a program into fused regions and single steps, and runs a
//! region as one pass over its operands in L1-sized chunks. Each member applies its
//! primitive's [`Elementwise`](crate::prim::Elementwise) slice form to the chunk; broadcast
//! operands are read through index maps, never materialized. Large regions split into
//! fixed-size tasks across rayon (elementwise work, so results do not depend on threads).
//!
//! A reduction over trailing axes of a region's value (a full sum, row sums) joins the
//! region as an epilogue: each chunk is folded as soon as it is computed, so the reduced
//! value never reaches memory. The chunk grid is then aligned to rows and to the reduction
//! leaves, and the fold uses the leaves and tree of `prim::reduce`, so the result has the
//! same bits as the eager reduction whatever the thread count.
//!
//! Comparisons and `select` join float regions too: inside a region a bool value is a
//! mask chunk of the region's float type (1 for true, 0 for false), which is what their
//! [`Elementwise`](crate::prim::Elementwise) forms read and write. Bool operands from
//! outside are converted chunk by chunk, and bool results needed outside are written back
//! as bool arrays, so no float mask ever reaches memory.

use crate::array::{Array, Repr};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::codegen;
use crate::exec::kernels::{classify, Fast};
use crate::ir::{Program, Var};
use crate::prim::compare::Compare;
use crate::prim::reduce::{fold_contig, with_monoid, Load, Monoid, Reduce, ReduceOp, LEAF};
use crate::prim::select::Select;
use crate::storage::Storage;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Elements per chunk: 1024 f32 = 4 KiB per live value, so a region's working set stays
/// in L1 (measured faster than 4096 on B2).
const CHUNK: usize = 1024;
/// Chunks per parallel task (a fixed split, independent of the thread count).
const TASK_CHUNKS: usize = 128;
/// Outputs of at least this many elements are written with non-temporal stores (well
/// beyond the last-level cache, where the output is not read again soon).
const STREAM_MIN: usize = 1 << 22;
/// Regions smaller than this run on the calling thread.
const PAR_THRESHOLD: usize = 1 << 17;

pub(crate) enum Group {
    Single(usize),
    Region(Region),
}

#[derive(Debug, Clone)]
enum Operand {
    /// A region input read chunk by chunk (same shape as the region).
    Input(usize),
    /// The chunk computed by an earlier member.
    Member(usize),
    /// A bool region input (index into `Region::mask_inputs`), read as a float mask.
    Mask(usize),
}

#[derive(Debug, Clone)]
enum Access {
    /// One element repeated.
    Splat,
    /// `in[i % n]`: the operand fills the trailing axes.
    Modulo(usize),
    /// `in[i / d]`: the operand fills the leading axes.
    Divide(usize),
    /// General index map: per output axis, (size, operand stride).
    General(Vec<(usize, usize)>),
}

#[derive(Debug, Clone)]
enum MemberKind {
    Ew {
        eqn: usize,
        args: Vec<Operand>,
        fast: Option<Fast>,
    },
    Bcast {
        input: usize,
        access: Access,
    },
}

#[derive(Debug, Clone)]
struct Member {
    kind: MemberKind,
    out: Var,
}

/// A reduction run as the region's epilogue: folds member `member` over rows of the
/// region's `row_len` trailing elements.
#[derive(Debug, Clone)]
struct Reduction {
    member: usize,
    op: ReduceOp,
    out: Var,
}

/// A fused elementwise region: runs as one pass over chunks of its shape.
#[derive(Debug, Clone)]
pub struct Region {
    dtype: DType,
    numel: usize,
    inputs: Vec<(Var, bool)>,
    /// Bool inputs (full size), converted to mask chunks.
    mask_inputs: Vec<Var>,
    members: Vec<Member>,
    outputs: Vec<(usize, Var)>,
    /// Members with a bool result needed outside the region: (member, var).
    mask_outputs: Vec<(usize, Var)>,
    reductions: Vec<Reduction>,
    /// Elements per reduced row (the product of the reduced trailing axes); 0 without
    /// reductions.
    row_len: usize,
    /// The region as generated machine code, where it is in the generated subset.
    codegen: Option<Arc<Generated>>,
}

/// A region's generated kernel and how its table maps onto the region.
#[derive(Debug)]
struct Generated {
    kernel: codegen::Kernel,
    /// Region input behind each kernel input.
    inputs: Vec<usize>,
    /// Region input (a one-element splat source) behind each kernel scalar.
    scalars: Vec<usize>,
}

/// The region in the code generator's form, if every member is in its subset: f32, no
/// masks or reductions, members with a [`Fast`] kernel, broadcasts only of one element.
fn plan_of(r: &Region) -> Option<Generated> {
    if r.dtype != DType::F32
        || !r.mask_inputs.is_empty()
        || !r.mask_outputs.is_empty()
        || !r.reductions.is_empty()
        || r.outputs.is_empty()
    {
        return None;
    }
    let mut inputs: Vec<usize> = Vec::new();
    let mut scalars: Vec<usize> = Vec::new();
    // Per member: its op index, or its scalar slot (a splat).
    let mut src_of: Vec<codegen::Src> = Vec::with_capacity(r.members.len());
    let mut ops = Vec::new();
    for m in &r.members {
        match &m.kind {
            MemberKind::Bcast {
                input,
                access: Access::Splat,
            } => {
                scalars.push(*input);
                src_of.push(codegen::Src::Scalar(scalars.len() - 1));
            }
            MemberKind::Bcast { .. } => return None,
            MemberKind::Ew { args, fast, .. } => {
                let args = args
                    .iter()
                    .map(|a| match a {
                        Operand::Input(k) => {
                            let slot = inputs.iter().position(|i| i == k).unwrap_or_else(|| {
                                inputs.push(*k);
                                inputs.len() - 1
                            });
                            Some(codegen::Src::Input(slot))
                        }
                        Operand::Member(j) => Some(src_of[*j]),
                        Operand::Mask(_) => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                ops.push(codegen::PlanOp {
                    fast: (*fast)?,
                    args,
                });
                src_of.push(codegen::Src::Val(ops.len() - 1));
            }
        }
    }
    let outputs = r
        .outputs
        .iter()
        .map(|(mi, _)| match src_of[*mi] {
            codegen::Src::Val(v) => Some(v),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let plan = codegen::Plan {
        n_inputs: inputs.len(),
        n_scalars: scalars.len(),
        ops,
        outputs,
    };
    Some(Generated {
        kernel: codegen::compile(&plan)?,
        inputs,
        scalars,
    })
}

/// The float type of the region equation `eqn` can join: every operand and the result
/// have it, except the bool result of a comparison and the bool predicate of `select`
/// (mask chunks in the region; see the module docs).
fn region_dtype(p: &Program, eqn: usize) -> Option<DType> {
    let e = &p.eqns[eqn];
    if e.outs.len() != 1 {
        return None;
    }
    let any = e.prim.as_any();
    let (dt, floats): (DType, &[Var]) = if any.is::<Compare>() {
        let [a, _] = e.ins.as_slice() else {
            return None;
        };
        if p.aval(e.outs[0]).dtype != DType::Bool {
            return None;
        }
        (p.aval(*a).dtype, &e.ins)
    } else if any.is::<Select>() {
        let [pred, rest @ ..] = e.ins.as_slice() else {
            return None;
        };
        if p.aval(*pred).dtype != DType::Bool {
            return None;
        }
        (p.aval(e.outs[0]).dtype, rest)
    } else {
        (p.aval(e.outs[0]).dtype, &e.ins)
    };
    if !matches!(dt, DType::F32 | DType::F64) {
        return None;
    }
    floats.iter().all(|v| p.aval(*v).dtype == dt).then_some(dt)
}

fn is_elementwise(p: &Program, i: usize) -> bool {
    let e = &p.eqns[i];
    e.prim
        .elementwise()
        .is_some_and(|k| k.arity() == e.ins.len())
        && region_dtype(p, i).is_some()
        && e.ins
            .iter()
            .all(|v| p.aval(*v).shape == p.aval(e.outs[0]).shape)
}

fn is_broadcast(p: &Program, i: usize) -> bool {
    let e = &p.eqns[i];
    e.prim.broadcast_pattern().is_some() && e.ins.len() == 1 && region_dtype(p, i).is_some()
}

/// If equation `i` reduces trailing axes of a float operand (`axes` = the last k axes, k >= 1)
/// into rows of more than one element, its monoid and row length: a reduction that can run
/// as a region epilogue.
fn trailing_reduction(p: &Program, i: usize) -> Option<(ReduceOp, usize)> {
    let e = &p.eqns[i];
    let r = e.prim.as_any().downcast_ref::<Reduce>()?;
    if e.ins.len() != 1 || e.outs.len() != 1 {
        return None;
    }
    let x = p.aval(e.ins[0]);
    if !matches!(x.dtype, DType::F32 | DType::F64) || p.aval(e.outs[0]).dtype != x.dtype {
        return None;
    }
    let rank = x.shape.len();
    let k = r.axes.len();
    if k == 0 || k > rank || r.axes.iter().enumerate().any(|(j, &a)| a != rank - k + j) {
        return None;
    }
    let row_len: usize = x.shape[rank - k..].iter().product();
    // A row of one element is an exact copy in the eager kernel, not a fold.
    (row_len > 1 && x.numel() > 0).then_some((r.op, row_len))
}

/// Every equation as its own step (fusion off).
pub(crate) fn no_fusion(p: &Program) -> Vec<Group> {
    (0..p.eqns.len()).map(Group::Single).collect()
}

/// Greedy partition in program order. Several regions may be open at once, one per
/// (shape, dtype); a region runs where it is flushed, so it is flushed before any step (or
/// other region) that reads one of its values. Scalar side computations (an optimizer's
/// bias corrections) thus no longer split the big elementwise region around them.
pub(crate) fn partition(p: &Program) -> Vec<Group> {
    struct Open {
        key: (Vec<usize>, DType),
        eqns: Vec<usize>,
        defs: HashSet<Var>,
        row_len: Option<usize>,
    }
    let mut groups = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let flush_users =
        |uses: &[Var], skip: Option<usize>, open: &mut Vec<Open>, groups: &mut Vec<Group>| {
            // Flush (in creation order) every open region, other than `skip`, that defines a used
            // value; flushing one can make another's values needed earlier, so repeat.
            let mut k = 0;
            while k < open.len() {
                if Some(k) != skip && uses.iter().any(|v| open[k].defs.contains(v)) {
                    let r = open.remove(k);
                    groups.push(build_region(p, r.eqns));
                    return true;
                }
                k += 1;
            }
            false
        };
    for (i, e) in p.eqns.iter().enumerate() {
        if let Some((_, row_len)) = trailing_reduction(p, i) {
            // Joins the open region that computes its operand (same rows for every
            // reduction of a region), as an epilogue of that region's pass.
            let src = e.ins[0];
            let key = (p.aval(src).shape.clone(), p.aval(src).dtype);
            if let Some(o) = open.iter_mut().find(|o| {
                o.key == key && o.defs.contains(&src) && o.row_len.is_none_or(|r| r == row_len)
            }) {
                o.eqns.push(i);
                o.defs.insert(e.outs[0]);
                o.row_len = Some(row_len);
                continue;
            }
        }
        let elementwise = is_elementwise(p, i);
        let bcast = is_broadcast(p, i);
        if let (true, Some(dt)) = (elementwise || bcast, region_dtype(p, i)) {
            let key = (p.aval(e.outs[0]).shape.clone(), dt);
            loop {
                let mine = open.iter().position(|o| o.key == key);
                // A broadcast reads its operand whole, so it cannot take it from its own region.
                let skip = if bcast { None } else { mine };
                if !flush_users(&e.ins, skip, &mut open, &mut groups) {
                    break;
                }
            }
            match open.iter_mut().find(|o| o.key == key) {
                Some(o) => {
                    o.eqns.push(i);
                    o.defs.extend(e.outs.iter().copied());
                }
                None => open.push(Open {
                    key,
                    eqns: vec![i],
                    defs: e.outs.iter().copied().collect(),
                    row_len: None,
                }),
            }
        } else {
            while flush_users(&e.ins, None, &mut open, &mut groups) {}
            groups.push(Group::Single(i));
        }
    }
    for o in open {
        groups.push(build_region(p, o.eqns));
    }
    // A region of one plain equation gains nothing from the chunked loop; run it directly.
    groups
        .into_iter()
        .map(|g| match g {
            Group::Region(r) if r.members.len() == 1 && r.reductions.is_empty() => {
                match &r.members[0].kind {
                    MemberKind::Ew { eqn, .. } => Group::Single(*eqn),
                    MemberKind::Bcast { .. } => Group::Single(r.bcast_eqn(p)),
                }
            }
            g => g,
        })
        .collect()
}

fn access_for(in_shape: &[usize], out_shape: &[usize], dims: &[usize]) -> Access {
    let in_n: usize = in_shape.iter().product();
    let out_n: usize = out_shape.iter().product();
    if in_n == 1 {
        return Access::Splat;
    }
    // Effective operand axes (size > 1) and where they land.
    let eff: Vec<(usize, usize)> = in_shape
        .iter()
        .zip(dims)
        .filter(|(s, _)| **s > 1)
        .map(|(s, d)| (*s, *d))
        .collect();
    let r = out_shape.len();
    let k = eff.len();
    let trailing = eff
        .iter()
        .enumerate()
        .all(|(j, (s, d))| *d == r - k + j && out_shape[*d] == *s)
        && out_shape[..r - k].iter().product::<usize>() * in_n == out_n;
    if trailing {
        return Access::Modulo(in_n);
    }
    let leading = eff
        .iter()
        .enumerate()
        .all(|(j, (s, d))| *d == j && out_shape[*d] == *s);
    if leading {
        return Access::Divide(out_n / in_n);
    }
    let mut in_strides = vec![0usize; r];
    let st = crate::prim::strides(in_shape);
    for (i, &d) in dims.iter().enumerate() {
        if in_shape[i] != 1 {
            in_strides[d] = st[i];
        }
    }
    Access::General(out_shape.iter().copied().zip(in_strides).collect())
}

fn build_region(p: &Program, eqns: Vec<usize>) -> Group {
    let first = &p.eqns[eqns[0]];
    let out_aval = p.aval(first.outs[0]).clone();
    let dtype = region_dtype(p, eqns[0]).expect("region members have a float type");
    let mut member_of: HashMap<Var, usize> = HashMap::new();
    let mut mask_inputs: Vec<Var> = Vec::new();
    let mut inputs: Vec<(Var, bool)> = Vec::new();
    let mut input_of: HashMap<(Var, bool), usize> = HashMap::new();
    let mut members = Vec::new();
    let mut reductions = Vec::new();
    let mut row_len = 0;
    let mut input_idx = |v: Var, full: bool, inputs: &mut Vec<(Var, bool)>| -> usize {
        *input_of.entry((v, full)).or_insert_with(|| {
            inputs.push((v, full));
            inputs.len() - 1
        })
    };
    for &i in &eqns {
        let e = &p.eqns[i];
        if let Some((op, len)) = trailing_reduction(p, i) {
            if let Some(&member) = member_of.get(&e.ins[0]) {
                reductions.push(Reduction {
                    member,
                    op,
                    out: e.outs[0],
                });
                row_len = len;
                continue;
            }
        }
        let kind = if let Some((shape, dims)) = e.prim.broadcast_pattern() {
            let src = e.ins[0];
            let access = access_for(&p.aval(src).shape, shape, dims);
            MemberKind::Bcast {
                input: input_idx(src, false, &mut inputs),
                access,
            }
        } else {
            let args = e
                .ins
                .iter()
                .map(|v| match member_of.get(v) {
                    Some(&m) => Operand::Member(m),
                    None if p.aval(*v).dtype == DType::Bool => {
                        Operand::Mask(match mask_inputs.iter().position(|m| m == v) {
                            Some(k) => k,
                            None => {
                                mask_inputs.push(*v);
                                mask_inputs.len() - 1
                            }
                        })
                    }
                    None => Operand::Input(input_idx(*v, true, &mut inputs)),
                })
                .collect();
            MemberKind::Ew {
                eqn: i,
                args,
                fast: classify(e.prim.as_ref()),
            }
        };
        member_of.insert(e.outs[0], members.len());
        members.push(Member {
            kind,
            out: e.outs[0],
        });
    }
    let in_region: HashSet<usize> = eqns.iter().copied().collect();
    let mut used_outside: HashSet<Var> = p.outputs.iter().copied().collect();
    for (i, e) in p.eqns.iter().enumerate() {
        if !in_region.contains(&i) {
            used_outside.extend(e.ins.iter().copied());
        }
    }
    let (mask_outputs, outputs): (Vec<(usize, Var)>, Vec<(usize, Var)>) = members
        .iter()
        .enumerate()
        .filter(|(_, m)| used_outside.contains(&m.out))
        .map(|(k, m)| (k, m.out))
        .partition(|(_, v)| p.aval(*v).dtype == DType::Bool);
    let mut region = Region {
        dtype,
        numel: out_aval.numel(),
        inputs,
        mask_inputs,
        members,
        outputs,
        mask_outputs,
        reductions,
        row_len,
        codegen: None,
    };
    // A region of one member runs as a single step (see `partition`): no code for it.
    if region.members.len() > 1 {
        region.codegen = plan_of(&region).map(Arc::new);
    }
    Group::Region(region)
}

/// Float types a region can run on: an [`Elem`](crate::dtype::Elem) (storage access) plus
/// the matching slice form of the elementwise kernels.
trait FuseFloat: crate::dtype::Elem + Default + Load<A = Self> + crate::prim::reduce::Acc {
    fn apply(k: &dyn crate::prim::Elementwise, ins: &[&[Self]], out: &mut [Self]) -> bool;
    /// The multiversioned kernel of `op`, where this type has one.
    fn apply_fast(op: Fast, ins: &[&[Self]], out: &mut [Self]) -> bool;
    fn vec_of(s: Storage) -> Option<Vec<Self>>;
}
impl FuseFloat for f32 {
    fn apply(k: &dyn crate::prim::Elementwise, ins: &[&[f32]], out: &mut [f32]) -> bool {
        k.apply_f32(ins, out)
    }
    fn apply_fast(op: Fast, ins: &[&[f32]], out: &mut [f32]) -> bool {
        crate::exec::kernels::apply_f32(op, ins, out);
        true
    }
    fn vec_of(s: Storage) -> Option<Vec<f32>> {
        match s {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }
}
impl FuseFloat for f64 {
    fn apply(k: &dyn crate::prim::Elementwise, ins: &[&[f64]], out: &mut [f64]) -> bool {
        k.apply_f64(ins, out)
    }
    fn apply_fast(_: Fast, _: &[&[f64]], _: &mut [f64]) -> bool {
        false
    }
    fn vec_of(s: Storage) -> Option<Vec<f64>> {
        match s {
            Storage::F64(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: tasks write disjoint index ranges of the output buffers (see `run_typed`).
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; the pointer is only used to form disjoint slices.
unsafe impl<T: Send> Sync for SendPtr<T> {}

const _: () = assert!(
    CHUNK.is_multiple_of(LEAF),
    "chunks must hold whole reduction leaves"
);

/// How a region's pass is cut into chunks. The boundaries depend only on the region's
/// sizes (never on the thread count), and with reductions they follow rows and reduction
/// leaves, so every fold sees the same sequences as the eager kernel.
#[derive(Clone, Copy, Debug)]
enum Grid {
    /// Chunks of `CHUNK` elements.
    Flat,
    /// Rows of `len >= CHUNK` elements, each cut into `segs` chunks of at most `CHUNK`.
    LongRows { len: usize, segs: usize },
    /// Rows of `len < CHUNK` elements, `per` whole rows per chunk.
    ShortRows { len: usize, per: usize },
}

impl Grid {
    fn new(row_len: usize) -> Grid {
        if row_len == 0 {
            Grid::Flat
        } else if row_len >= CHUNK {
            Grid::LongRows {
                len: row_len,
                segs: row_len.div_ceil(CHUNK),
            }
        } else {
            Grid::ShortRows {
                len: row_len,
                per: CHUNK / row_len,
            }
        }
    }

    fn count(self, n: usize) -> usize {
        match self {
            Grid::Flat => n.div_ceil(CHUNK),
            Grid::LongRows { len, segs } => n / len * segs,
            Grid::ShortRows { len, per } => (n / len).div_ceil(per),
        }
    }

    /// Start and length of chunk `k`.
    fn chunk(self, n: usize, k: usize) -> (usize, usize) {
        match self {
            Grid::Flat => (k * CHUNK, CHUNK.min(n - k * CHUNK)),
            Grid::LongRows { len, segs } => {
                let (r, s) = (k / segs, k % segs);
                (r * len + s * CHUNK, CHUNK.min(len - s * CHUNK))
            }
            Grid::ShortRows { len, per } => {
                let start = k * per * len;
                (start, (per * len).min(n - start))
            }
        }
    }
}

/// Combines per-leaf partials with the tree of [`fold_contig`] (left half: the first
/// `ceil(leaves / 2)` leaves), so a row folded leaf by leaf has the eager bits.
fn fold_leaves<T: FuseFloat, M: Monoid<T>>(v: &[T]) -> T {
    if v.len() == 1 {
        return v[0];
    }
    let m = v.len().div_ceil(2);
    M::comb(fold_leaves::<T, M>(&v[..m]), fold_leaves::<T, M>(&v[m..]))
}

impl Region {
    /// Whether the region runs as generated code.
    pub(crate) fn is_generated(&self) -> bool {
        self.codegen.is_some()
    }

    /// Runs the region on the chunked interpreter from now on.
    pub(crate) fn drop_codegen(&mut self) {
        self.codegen = None;
    }

    pub(crate) fn output_vars(&self) -> Vec<Var> {
        self.outputs
            .iter()
            .chain(&self.mask_outputs)
            .map(|(_, v)| *v)
            .chain(self.reductions.iter().map(|r| r.out))
            .collect()
    }

    pub(crate) fn input_vars(&self) -> Vec<Var> {
        self.inputs
            .iter()
            .map(|(v, _)| *v)
            .chain(self.mask_inputs.iter().copied())
            .collect()
    }

    fn bcast_eqn(&self, p: &Program) -> usize {
        let out = self.members[0].out;
        p.eqns
            .iter()
            .position(|e| e.outs.contains(&out))
            .expect("member eqn")
    }

    pub(crate) fn describe(&self, p: &Program) -> String {
        let names: Vec<&str> = self
            .members
            .iter()
            .map(|m| match &m.kind {
                MemberKind::Ew { eqn, .. } => p.eqns[*eqn].prim.name(),
                MemberKind::Bcast { .. } => "broadcast",
            })
            .chain(self.reductions.iter().map(|r| match r.op {
                ReduceOp::Sum => "reduce_sum",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Min => "reduce_min",
                ReduceOp::Prod => "reduce_prod",
            }))
            .collect();
        format!("fused[{}]", names.join(","))
    }

    pub(crate) fn run(&self, p: &Program, env: &mut [Option<Array>], frees: &[Var]) -> Result<()> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(p, env, frees),
            DType::F64 => self.run_typed::<f64>(p, env, frees),
            dt => Err(Error::unsupported("fused", format!("regions of {dt}"))),
        }
    }

    fn run_typed<T: FuseFloat>(
        &self,
        p: &Program,
        env: &mut [Option<Array>],
        frees: &[Var],
    ) -> Result<()> {
        let n = self.numel;
        // Raw pointers to every input. Moving a Vec does not move its heap buffer, so these
        // stay valid when a dying input's buffer is taken over as an output below.
        let mut in_send: Vec<(SendPtr<T>, usize)> = Vec::with_capacity(self.inputs.len());
        for (v, _) in &self.inputs {
            let a = env[v.index()]
                .as_ref()
                .ok_or_else(|| Error::invalid("fused", "missing operand"))?;
            let sl = T::slice(a.storage("fused")?)
                .ok_or_else(|| Error::dtype("fused", "operand dtype"))?;
            in_send.push((SendPtr(sl.as_ptr() as *mut T), sl.len()));
        }
        let mut mask_in: Vec<SendPtr<bool>> = Vec::with_capacity(self.mask_inputs.len());
        for v in &self.mask_inputs {
            let a = env[v.index()]
                .as_ref()
                .ok_or_else(|| Error::invalid("fused", "missing operand"))?;
            let Storage::Bool(b) = a.storage("fused")? else {
                return Err(Error::dtype("fused", "a mask operand must be bool"));
            };
            if b.len() != n {
                return Err(Error::shape(
                    "fused",
                    format!("a mask operand has {} elements, the region {n}", b.len()),
                ));
            }
            mask_in.push(SendPtr(b.as_ptr() as *mut bool));
        }
        let mut mask_bufs: Vec<Vec<bool>> = self
            .mask_outputs
            .iter()
            .map(|_| {
                crate::exec::note_alloc(n);
                vec![false; n]
            })
            .collect();
        let mask_out: Vec<SendPtr<bool>> = mask_bufs
            .iter_mut()
            .map(|b| SendPtr(b.as_mut_ptr()))
            .collect();
        // Output buffers: take over a full-size input that dies here and is not shared, and
        // is read only position by position (chunk c of it is consumed before chunk c of the
        // output is written); else reuse a pooled buffer; else allocate.
        let raw_inputs: HashSet<Var> = self
            .inputs
            .iter()
            .filter(|(_, f)| !f)
            .map(|(v, _)| *v)
            .collect();
        let mut taken: HashSet<Var> = HashSet::new();
        let mut out_bufs: Vec<Vec<T>> = Vec::with_capacity(self.outputs.len());
        // For each output, the input whose buffer it took over.
        let mut took_from: Vec<Option<usize>> = Vec::with_capacity(self.outputs.len());
        for _ in &self.outputs {
            let mut buf = None;
            let mut from = None;
            for (ii, (v, full)) in self.inputs.iter().enumerate() {
                if !*full || !frees.contains(v) || taken.contains(v) || raw_inputs.contains(v) {
                    continue;
                }
                let unique = matches!(env[v.index()].as_ref().map(|a| &a.repr),
                    Some(Repr::Host(s)) if Arc::strong_count(s) == 1 && s.len() == n);
                if unique {
                    let a = env[v.index()].take().expect("present");
                    let Repr::Host(s) = a.repr else {
                        unreachable!("host")
                    };
                    let st = Arc::try_unwrap(s).expect("unique");
                    buf = Some(T::vec_of(st).expect("dtype checked"));
                    taken.insert(*v);
                    from = Some(ii);
                    break;
                }
            }
            let buf = buf
                .or_else(|| super::pool::take(T::DTYPE, n).and_then(T::vec_of))
                .unwrap_or_else(|| {
                    crate::exec::note_alloc(n * std::mem::size_of::<T>());
                    // Zeroed pages come from the OS untouched, so their first touch (and
                    // page fault) happens in the parallel tasks below, not here.
                    vec![T::default(); n]
                });
            out_bufs.push(buf);
            took_from.push(from);
        }
        // A member that is an output computes straight into the output buffer, unless that
        // buffer is an input some member at or after it still reads in the same chunk.
        let reads_input_from = |k: usize, from: usize| {
            self.members[from..].iter().any(|m| match &m.kind {
                MemberKind::Ew { args, .. } => args
                    .iter()
                    .any(|a| matches!(a, Operand::Input(i) if *i == k)),
                MemberKind::Bcast { input, .. } => *input == k,
            })
        };
        // Large outputs are streamed from the chunk instead (see `stream_copy`).
        let stream = n >= STREAM_MIN;
        let mut direct: Vec<Option<usize>> = vec![None; self.members.len()];
        for (oi, (mi, _)) in self.outputs.iter().enumerate() {
            if !stream && took_from[oi].is_none_or(|k| !reads_input_from(k, *mi)) {
                direct[*mi] = Some(oi);
            }
        }
        let out_ptrs: Vec<SendPtr<T>> = out_bufs
            .iter_mut()
            .map(|b| SendPtr(b.as_mut_ptr()))
            .collect();
        // Reduction targets: one value per row, or (long rows) one partial per leaf.
        let grid = Grid::new(self.row_len);
        let rows = n.checked_div(self.row_len).unwrap_or(0);
        let leaves_per_row = self.row_len.div_ceil(LEAF);
        let red_len = match grid {
            Grid::LongRows { .. } => rows * leaves_per_row,
            _ => rows,
        };
        let mut red_bufs: Vec<Vec<T>> = self
            .reductions
            .iter()
            .map(|_| {
                crate::exec::note_alloc(red_len * std::mem::size_of::<T>());
                vec![T::default(); red_len]
            })
            .collect();
        let red_ptrs: Vec<SendPtr<T>> = red_bufs
            .iter_mut()
            .map(|b| SendPtr(b.as_mut_ptr()))
            .collect();
        let nchunks = grid.count(n);
        let chunk_cap = CHUNK.min(n);
        // Splat members hold one value: filled once per scratch, not once per chunk. Mask
        // inputs' chunks follow the members' (index `members.len() + k`).
        let nm = self.members.len();
        let new_scratch = || -> Vec<Vec<T>> {
            self.members
                .iter()
                .map(|m| match &m.kind {
                    MemberKind::Bcast {
                        input,
                        access: Access::Splat,
                    } => {
                        // SAFETY: a splat source has at least one element.
                        let x = unsafe { *(in_send[*input].0 .0 as *const T) };
                        vec![x; chunk_cap]
                    }
                    _ => vec![T::default(); chunk_cap],
                })
                .chain(
                    self.mask_inputs
                        .iter()
                        .map(|_| vec![T::default(); chunk_cap]),
                )
                .collect()
        };
        let run_chunk = |scratch: &mut [Vec<T>], k: usize| -> Result<()> {
            let (c, len) = grid.chunk(n, k);
            // SAFETY (both closures): a direct member's range [c, c+len) of its output is
            // written by this chunk only, and read only by later members of this chunk.
            let direct_out =
                |oi: usize| unsafe { std::slice::from_raw_parts_mut(out_ptrs[oi].0.add(c), len) };
            let direct_in = |oi: usize| unsafe {
                std::slice::from_raw_parts(out_ptrs[oi].0.add(c) as *const T, len)
            };
            for (k, src) in mask_in.iter().enumerate() {
                // SAFETY: mask inputs have `n` elements (checked above) and are only read.
                let src = unsafe { std::slice::from_raw_parts(src.0.add(c) as *const bool, len) };
                for (o, &b) in scratch[nm + k][..len].iter_mut().zip(src) {
                    *o = if b {
                        <T as crate::prim::reduce::Acc>::ONE
                    } else {
                        T::default()
                    };
                }
            }
            for mi in 0..nm {
                let (before, rest) = scratch.split_at_mut(mi);
                let (cur, after) = rest.split_at_mut(1);
                let masks = &after[nm - mi - 1..];
                let out = match direct[mi] {
                    Some(oi) => direct_out(oi),
                    None => &mut cur[0][..len],
                };
                match &self.members[mi].kind {
                    MemberKind::Bcast {
                        access: Access::Splat,
                        ..
                    } if direct[mi].is_none() => {}
                    MemberKind::Bcast { input, access } => {
                        let (ptr, ilen) = in_send[*input];
                        // SAFETY: ptr/len describe a live input buffer only read here.
                        let src = unsafe { std::slice::from_raw_parts(ptr.0 as *const T, ilen) };
                        fill_broadcast(src, access, c, out);
                    }
                    MemberKind::Ew { eqn, args, fast } => {
                        let mut ins: [&[T]; 4] = [&[]; 4];
                        if args.len() > ins.len() {
                            return Err(Error::unsupported(
                                p.eqns[*eqn].prim.name(),
                                "fused members take at most 4 operands",
                            ));
                        }
                        for (slot, a) in ins.iter_mut().zip(args) {
                            *slot = match a {
                                Operand::Member(j) => match direct[*j] {
                                    Some(oi) => direct_in(oi),
                                    None => &before[*j][..len],
                                },
                                Operand::Mask(k) => &masks[*k][..len],
                                Operand::Input(k) => {
                                    let (ptr, _) = in_send[*k];
                                    // SAFETY: full inputs have `n` elements; [c, c+len) is in
                                    // bounds, and the chunk is written back only after
                                    // every member has read it.
                                    unsafe {
                                        std::slice::from_raw_parts((ptr.0 as *const T).add(c), len)
                                    }
                                }
                            };
                        }
                        let ins = &ins[..args.len()];
                        if fast.is_some_and(|f| T::apply_fast(f, ins, out)) {
                            continue;
                        }
                        let kern = p.eqns[*eqn].prim.elementwise().expect("elementwise member");
                        if !T::apply(kern, ins, out) {
                            return Err(Error::unsupported(
                                p.eqns[*eqn].prim.name(),
                                "no fused form for this dtype",
                            ));
                        }
                    }
                }
            }
            for (oi, (mi, _)) in self.outputs.iter().enumerate() {
                if direct[*mi].is_some() {
                    continue;
                }
                // SAFETY: each chunk is written by exactly one task, and no slice of that
                // range is alive at this point.
                unsafe {
                    let (src, dst) = (scratch[*mi].as_ptr(), out_ptrs[oi].0.add(c));
                    if stream {
                        crate::exec::kernels::stream_copy(src, dst, len);
                    } else {
                        std::ptr::copy_nonoverlapping(src, dst, len);
                    }
                }
            }
            for (oi, (mi, _)) in self.mask_outputs.iter().enumerate() {
                // SAFETY: as for the outputs above; mask buffers have `n` elements.
                let dst = unsafe { std::slice::from_raw_parts_mut(mask_out[oi].0.add(c), len) };
                for (o, x) in dst.iter_mut().zip(&scratch[*mi][..len]) {
                    *o = *x != T::default();
                }
            }
            for (j, red) in self.reductions.iter().enumerate() {
                let vals = match direct[red.member] {
                    Some(oi) => direct_in(oi),
                    None => &scratch[red.member][..len],
                };
                let dst = red_ptrs[j].0;
                with_monoid!(red.op, M => match grid {
                    Grid::ShortRows { len: row, .. } => {
                        for (q, xs) in vals.chunks(row).enumerate() {
                            // SAFETY: row `c / row + q` lies in this chunk only.
                            unsafe { *dst.add(c / row + q) = fold_contig::<T, M>(xs) };
                        }
                    }
                    Grid::LongRows { segs, .. } => {
                        let base = (k / segs) * leaves_per_row + (k % segs) * (CHUNK / LEAF);
                        for (b, xs) in vals.chunks(LEAF).enumerate() {
                            // SAFETY: these leaves lie in this chunk only.
                            unsafe { *dst.add(base + b) = fold_contig::<T, M>(xs) };
                        }
                    }
                    Grid::Flat => unreachable!("reductions imply a row grid"),
                });
            }
            Ok(())
        };
        // The generated kernel's table: region inputs and outputs as f32 pointers (`T` is
        // f32 wherever a region has code), and the splat scalars' values.
        let generated = self.codegen.as_deref().filter(|_| T::DTYPE == DType::F32);
        let gen_table = generated.map(|g| {
            let ins: Vec<*const f32> = g
                .inputs
                .iter()
                .map(|&k| in_send[k].0 .0 as *const f32)
                .collect();
            let outs: Vec<*mut f32> = out_ptrs.iter().map(|p| p.0 as *mut f32).collect();
            // SAFETY: a splat source has at least one element (checked when it was built).
            let scalars: Vec<f32> = g
                .scalars
                .iter()
                .map(|&k| unsafe { *(in_send[k].0 .0 as *const f32) })
                .collect();
            (g, g.kernel.table(&scalars, &ins, &outs))
        });
        // Chunks [k0, k1): through the generated kernel where there is one (a last chunk
        // whose length is not a whole number of vectors goes to the interpreter).
        let run_chunks = |scratch: &mut Vec<Vec<T>>, k0: usize, k1: usize| -> Result<()> {
            let Some((g, (_consts, table))) = &gen_table else {
                return (k0..k1).try_for_each(|k| run_chunk(scratch, k));
            };
            let (start, _) = grid.chunk(n, k0);
            let (last, last_len) = grid.chunk(n, k1 - 1);
            let (end, tail) = if last_len % codegen::LANES == 0 {
                (last + last_len, None)
            } else {
                (last, Some(k1 - 1))
            };
            // SAFETY: the table's constants live in `gen_table`; inputs and outputs hold
            // `n` elements, chunks [k0, k1) are this task's alone, and an output that took
            // over an input reads it position for position (the kernel loads a vector's
            // inputs before storing its outputs).
            unsafe { g.kernel.run(table, start, end) };
            tail.map_or(Ok(()), |k| run_chunk(scratch, k))
        };
        if n >= PAR_THRESHOLD {
            let ntasks = nchunks.div_ceil(TASK_CHUNKS);
            (0..ntasks)
                .into_par_iter()
                .try_for_each_init(new_scratch, |scratch, t| {
                    let r = run_chunks(
                        scratch,
                        t * TASK_CHUNKS,
                        ((t + 1) * TASK_CHUNKS).min(nchunks),
                    );
                    crate::exec::kernels::store_fence();
                    r
                })?;
        } else if nchunks > 0 {
            let mut scratch = new_scratch();
            run_chunks(&mut scratch, 0, nchunks)?;
            crate::exec::kernels::store_fence();
        }
        for ((_, v), buf) in self.outputs.iter().zip(out_bufs) {
            let aval = p.aval(*v).clone();
            env[v.index()] = Some(Array {
                aval,
                repr: Repr::Host(Arc::new(T::into_storage(buf))),
            });
        }
        for ((_, v), buf) in self.mask_outputs.iter().zip(mask_bufs) {
            env[v.index()] = Some(Array {
                aval: p.aval(*v).clone(),
                repr: Repr::Host(Arc::new(Storage::Bool(buf))),
            });
        }
        for (red, buf) in self.reductions.iter().zip(red_bufs) {
            let vals = match grid {
                Grid::LongRows { .. } => {
                    crate::exec::note_alloc(rows * std::mem::size_of::<T>());
                    with_monoid!(red.op, M => buf
                        .chunks(leaves_per_row)
                        .map(fold_leaves::<T, M>)
                        .collect::<Vec<T>>())
                }
                _ => buf,
            };
            env[red.out.index()] = Some(Array {
                aval: p.aval(red.out).clone(),
                repr: Repr::Host(Arc::new(T::into_storage(vals))),
            });
        }
        Ok(())
    }
}

fn fill_broadcast<T: Copy>(src: &[T], access: &Access, start: usize, out: &mut [T]) {
    match access {
        Access::Splat => out.fill(src[0]),
        Access::Modulo(m) => {
            let mut j = start % m;
            for o in out.iter_mut() {
                *o = src[j];
                j += 1;
                if j == *m {
                    j = 0;
                }
            }
        }
        Access::Divide(d) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = src[(start + i) / d];
            }
        }
        Access::General(axes) => {
            for (i, o) in out.iter_mut().enumerate() {
                let mut flat = start + i;
                let mut off = 0;
                for (size, stride) in axes.iter().rev() {
                    off += (flat % size) * stride;
                    flat /= size;
                }
                *o = src[off];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::array::{AVal, Array};
    use crate::dtype::DType;
    use crate::exec::{CompileOptions, Executable};
    use crate::prim::binary::mul;
    use crate::prim::compare::{eq, gt, ne};
    use crate::prim::convert::convert;
    use crate::prim::select::select;
    use crate::prim::unary::neg;

    // Above the parallel threshold and not a multiple of the chunk size.
    const N: usize = (1 << 17) + 37;

    /// Sign-mixed data with ties between `x` and `y` (every 7th) and NaNs in `x` (every
    /// 101st), so each comparison sees equal, unordered and ordered pairs.
    fn inputs() -> (Vec<f32>, Vec<f32>, Vec<bool>) {
        let y: Vec<f32> = (0..N).map(|i| ((i as f32) * 0.37).sin()).collect();
        let x: Vec<f32> = (0..N)
            .map(|i| match i {
                _ if i % 101 == 0 => f32::NAN,
                _ if i % 7 == 0 => y[i],
                _ => ((i as f32) * 0.11).cos(),
            })
            .collect();
        let p: Vec<bool> = (0..N).map(|i| i % 3 != 0).collect();
        (x, y, p)
    }

    /// `m = x > y; a = m ? x : 2y; b = p ? a : -x; c = (a == x); d = c ? a : y;`
    /// `e = (f64 a != f64 y) ? f64 b : f64 a` — a float-mask region with a bool input (`p`),
    /// a bool output (`c`), and an f64 region fed by the f32 region's bool result.
    fn program() -> crate::ir::Program {
        let avals = [
            AVal::new(vec![N], DType::F32),
            AVal::new(vec![N], DType::F32),
            AVal::new(vec![N], DType::Bool),
        ];
        let (prog, captured) = crate::trace::trace_fn(&avals, |v| {
            let (x, y, p) = (&v[0], &v[1], &v[2]);
            let two = crate::prim::unary::full_like(y, 2.0)?;
            let m = gt(x, y)?;
            let a = select(&m, x, &mul(y, &two)?)?;
            let b = select(p, &a, &neg(x)?)?;
            let c = eq(&a, x)?;
            let d = select(&c, &a, y)?;
            let (a64, y64, b64) = (
                convert(&a, DType::F64)?,
                convert(y, DType::F64)?,
                convert(&b, DType::F64)?,
            );
            let e = select(&ne(&a64, &y64)?, &b64, &a64)?;
            Ok(vec![b, c, d, e])
        })
        .unwrap();
        assert!(captured.is_empty());
        prog
    }

    fn run(exe: &Executable, threads: usize) -> Vec<Array> {
        let (x, y, p) = inputs();
        let args = vec![
            Array::from_vec(vec![N], x).unwrap(),
            Array::from_vec(vec![N], y).unwrap(),
            Array::from_vec(vec![N], p).unwrap(),
        ];
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| exe.run(&args).unwrap())
    }

    #[test]
    fn compare_and_select_fuse_with_bool_masks() {
        let prog = program();
        let exe = Executable::compile(&prog).unwrap();
        let desc = exe.describe();
        // gt, select and eq run inside a region (not as single steps).
        assert!(
            desc.iter()
                .any(|d| d.starts_with("fused[") && d.contains("gt") && d.contains("select")),
            "{desc:?}"
        );
        assert!(!desc.iter().any(|d| d == "select" || d == "gt"), "{desc:?}");
        // Oracle: the scalar definitions, element by element.
        let (x, y, p) = inputs();
        let mut want = (vec![0f32; N], vec![false; N], vec![0f32; N], vec![0f64; N]);
        for i in 0..N {
            let a = if x[i] > y[i] { x[i] } else { y[i] * 2.0 };
            let b = if p[i] { a } else { -x[i] };
            let c = a == x[i];
            want.0[i] = b;
            want.1[i] = c;
            want.2[i] = if c { a } else { y[i] };
            want.3[i] = if a as f64 != y[i] as f64 {
                b as f64
            } else {
                a as f64
            };
        }
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let unfused = Executable::compile_with(
            &prog,
            CompileOptions {
                fuse: false,
                ..Default::default()
            },
        )
        .unwrap();
        for (exe, threads) in [(&exe, 1), (&exe, 2), (&unfused, 1)] {
            let out = run(exe, threads);
            assert_eq!(bits32(&out[0].to_vec::<f32>().unwrap()), bits32(&want.0));
            assert_eq!(out[1].to_vec::<bool>().unwrap(), want.1);
            assert_eq!(bits32(&out[2].to_vec::<f32>().unwrap()), bits32(&want.2));
            assert_eq!(bits64(&out[3].to_vec::<f64>().unwrap()), bits64(&want.3));
        }
    }
}
