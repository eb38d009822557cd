//! Elementwise fusion: partitions a program into fused regions and single steps, and runs a
//! region as one pass over its operands in L1-sized chunks. Each member applies its
//! primitive's [`Elementwise`](crate::prim::Elementwise) slice form to the chunk; broadcast
//! operands are read through index maps, never materialized. Large regions split into
//! fixed-size tasks across rayon (elementwise work, so results do not depend on threads).

use crate::array::{Array, Repr};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use crate::storage::Storage;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Elements per chunk: 4096 f32 = 16 KiB per live value, so a region's working set stays
/// in L1/L2.
const CHUNK: usize = 4096;
/// Elements per parallel task (a fixed split, independent of the thread count).
const TASK: usize = 1 << 16;
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
    Ew { eqn: usize, args: Vec<Operand> },
    Bcast { input: usize, access: Access },
}

#[derive(Debug, Clone)]
struct Member {
    kind: MemberKind,
    out: Var,
}

/// A fused elementwise region: runs as one pass over chunks of its shape.
#[derive(Debug, Clone)]
pub struct Region {
    dtype: DType,
    numel: usize,
    inputs: Vec<(Var, bool)>,
    members: Vec<Member>,
    outputs: Vec<(usize, Var)>,
}

fn region_dtype(p: &Program, eqn: usize) -> Option<DType> {
    let e = &p.eqns[eqn];
    let dt = p.aval(e.outs[0]).dtype;
    if !matches!(dt, DType::F32 | DType::F64) || e.outs.len() != 1 {
        return None;
    }
    e.ins.iter().all(|v| p.aval(*v).dtype == dt).then_some(dt)
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
        let elementwise = is_elementwise(p, i);
        let bcast = is_broadcast(p, i);
        if elementwise || bcast {
            let key = (p.aval(e.outs[0]).shape.clone(), p.aval(e.outs[0]).dtype);
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
            Group::Region(r) if r.members.len() == 1 => match &r.members[0].kind {
                MemberKind::Ew { eqn, .. } => Group::Single(*eqn),
                MemberKind::Bcast { .. } => Group::Single(r.bcast_eqn(p)),
            },
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
    let mut member_of: HashMap<Var, usize> = HashMap::new();
    let mut inputs: Vec<(Var, bool)> = Vec::new();
    let mut input_of: HashMap<(Var, bool), usize> = HashMap::new();
    let mut members = Vec::new();
    let mut input_idx = |v: Var, full: bool, inputs: &mut Vec<(Var, bool)>| -> usize {
        *input_of.entry((v, full)).or_insert_with(|| {
            inputs.push((v, full));
            inputs.len() - 1
        })
    };
    for &i in &eqns {
        let e = &p.eqns[i];
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
                    None => Operand::Input(input_idx(*v, true, &mut inputs)),
                })
                .collect();
            MemberKind::Ew { eqn: i, args }
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
    let outputs = members
        .iter()
        .enumerate()
        .filter(|(_, m)| used_outside.contains(&m.out))
        .map(|(k, m)| (k, m.out))
        .collect();
    Group::Region(Region {
        dtype: out_aval.dtype,
        numel: out_aval.numel(),
        inputs,
        members,
        outputs,
    })
}

/// Float types a region can run on: an [`Elem`](crate::dtype::Elem) (storage access) plus
/// the matching slice form of the elementwise kernels.
trait FuseFloat: crate::dtype::Elem + Default {
    fn apply(k: &dyn crate::prim::Elementwise, ins: &[&[Self]], out: &mut [Self]) -> bool;
    fn vec_of(s: Storage) -> Option<Vec<Self>>;
}
impl FuseFloat for f32 {
    fn apply(k: &dyn crate::prim::Elementwise, ins: &[&[f32]], out: &mut [f32]) -> bool {
        k.apply_f32(ins, out)
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

impl Region {
    pub(crate) fn output_vars(&self) -> Vec<Var> {
        self.outputs.iter().map(|(_, v)| *v).collect()
    }

    pub(crate) fn input_vars(&self) -> Vec<Var> {
        self.inputs.iter().map(|(v, _)| *v).collect()
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
        // Output buffers: take over a full-size input that dies here and is not shared, and
        // is read only position by position (chunk c of it is consumed before chunk c of the
        // output is written).
        let raw_inputs: HashSet<Var> = self
            .inputs
            .iter()
            .filter(|(_, f)| !f)
            .map(|(v, _)| *v)
            .collect();
        let mut taken: HashSet<Var> = HashSet::new();
        let mut out_bufs: Vec<Vec<T>> = Vec::with_capacity(self.outputs.len());
        for _ in &self.outputs {
            let mut buf = None;
            for (v, full) in &self.inputs {
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
                    break;
                }
            }
            out_bufs.push(buf.unwrap_or_else(|| {
                crate::exec::note_alloc(n * std::mem::size_of::<T>());
                vec![T::default(); n]
            }));
        }
        let out_ptrs: Vec<SendPtr<T>> = out_bufs
            .iter_mut()
            .map(|b| SendPtr(b.as_mut_ptr()))
            .collect();
        let task = |lo: usize, hi: usize| -> Result<()> {
            let mut scratch: Vec<Vec<T>> =
                vec![vec![T::default(); CHUNK.min(hi - lo)]; self.members.len()];
            let mut c = lo;
            while c < hi {
                let len = CHUNK.min(hi - c);
                for mi in 0..self.members.len() {
                    let (before, rest) = scratch.split_at_mut(mi);
                    let out = &mut rest[0][..len];
                    match &self.members[mi].kind {
                        MemberKind::Bcast { input, access } => {
                            let (ptr, ilen) = in_send[*input];
                            // SAFETY: ptr/len describe a live input buffer only read here.
                            let src =
                                unsafe { std::slice::from_raw_parts(ptr.0 as *const T, ilen) };
                            fill_broadcast(src, access, c, out);
                        }
                        MemberKind::Ew { eqn, args } => {
                            let mut ins: Vec<&[T]> = Vec::with_capacity(args.len());
                            for a in args {
                                match a {
                                    Operand::Member(j) => ins.push(&before[*j][..len]),
                                    Operand::Input(k) => {
                                        let (ptr, _) = in_send[*k];
                                        // SAFETY: full inputs have `n` elements; [c, c+len) is in
                                        // bounds, and the chunk is written back only after
                                        // every member has read it.
                                        ins.push(unsafe {
                                            std::slice::from_raw_parts(
                                                (ptr.0 as *const T).add(c),
                                                len,
                                            )
                                        });
                                    }
                                }
                            }
                            let k = p.eqns[*eqn].prim.elementwise().expect("elementwise member");
                            if !T::apply(k, &ins, out) {
                                return Err(Error::unsupported(
                                    p.eqns[*eqn].prim.name(),
                                    "no fused form for this dtype",
                                ));
                            }
                        }
                    }
                }
                for (oi, (mi, _)) in self.outputs.iter().enumerate() {
                    // SAFETY: each task writes only [lo, hi) of each output, disjoint across
                    // tasks; no slice of that range is alive at this point.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            scratch[*mi].as_ptr(),
                            out_ptrs[oi].0.add(c),
                            len,
                        );
                    }
                }
                c += len;
            }
            Ok(())
        };
        if n >= PAR_THRESHOLD {
            let ntasks = n.div_ceil(TASK);
            (0..ntasks)
                .into_par_iter()
                .try_for_each(|t| task(t * TASK, ((t + 1) * TASK).min(n)))?;
        } else {
            task(0, n)?;
        }
        for ((_, v), buf) in self.outputs.iter().zip(out_bufs) {
            let aval = p.aval(*v).clone();
            env[v.index()] = Some(Array {
                aval,
                repr: Repr::Host(Arc::new(T::into_storage(buf))),
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
