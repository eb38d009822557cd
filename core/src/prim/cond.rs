//! The `cond` primitive (`lax.switch` / `lax.cond`): runs one of several nested programs,
//! chosen by an integer index at run time. The branches are programs held in the params
//! (reached by passes through [`Primitive::sub_programs`]); all take the same operands and
//! must produce identical output abstract values, so the result's type does not depend on
//! the branch taken. Also home of the helpers the other control-flow primitives share
//! (running a compiled sub-program from host views, tracing a closure with its captures as
//! leading inputs).

use crate::array::{AVal, Array, HostView, Repr};
use crate::error::{Error, Result};
use crate::exec::Executable;
use crate::ir::Program;
use crate::prim::broadcast_in_dim::{batch_size, batch_to_front, broadcast_in_dim};
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::{Arc, OnceLock};

/// `cond[branches](index, operands...)`: the outputs of `branches[clamp(index)]` applied to
/// the operands. `index` is an i32 scalar, clamped into range as `lax.switch` does.
#[derive(Debug)]
pub struct Cond {
    /// One program per branch; inputs = the operands, identical output avals.
    pub branches: Vec<Arc<Program>>,
    /// Each branch compiled on first use by the host kernel (compiling costs more than a
    /// small branch runs, and only taken branches need it).
    exes: Vec<OnceLock<Executable>>,
}

impl Cond {
    /// A `cond` over these branch programs.
    pub fn new(branches: Vec<Arc<Program>>) -> Cond {
        let exes = branches.iter().map(|_| OnceLock::new()).collect();
        Cond { branches, exes }
    }
}

/// The compiled form of `p`, compiling it into `slot` on first use.
pub(crate) fn compiled<'a>(slot: &'a OnceLock<Executable>, p: &Program) -> Result<&'a Executable> {
    if let Some(e) = slot.get() {
        return Ok(e);
    }
    let e = Executable::compile(p)?;
    // Another thread may have won the race; either executable is equally good.
    let _ = slot.set(e);
    slot.get()
        .ok_or_else(|| Error::invalid("control flow", "compiled program vanished"))
}

/// Host views as arrays (copying: kernels only borrow their inputs, executables own theirs).
pub(crate) fn views_to_arrays(ins: &[HostView<'_>]) -> Result<Vec<Array>> {
    ins.iter()
        .map(|v| Array::from_storage(v.shape.to_vec(), v.data.clone()))
        .collect()
}

/// The storage of a concrete array (without a copy when the buffer is not shared).
pub(crate) fn into_storage(a: Array) -> Result<Storage> {
    match a.repr {
        Repr::Host(s) => Ok(Arc::try_unwrap(s).unwrap_or_else(|s| (*s).clone())),
        Repr::Device(d) => Ok((**d.host("control flow", &a.aval)?).clone()),
        Repr::Tracer(_) => Err(Error::invalid(
            "control flow",
            "a nested program returned a traced value",
        )),
    }
}

/// Traces `f` over inputs of `avals`; values it captures (outer tracers) become leading
/// inputs of the program, returned second, so they can be passed as the primitive's consts.
pub(crate) fn trace_closure(
    avals: &[AVal],
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
) -> Result<(Program, Vec<Array>)> {
    let (mut p, captured) = trace_fn(avals, f)?;
    let caps = p.inputs.split_off(avals.len());
    p.inputs = caps.into_iter().chain(p.inputs).collect();
    Ok((p, captured))
}

/// Checks that nested-program avals equal the expected ones, naming both on mismatch.
pub(crate) fn check_avals(op: &'static str, what: &str, got: &[AVal], want: &[AVal]) -> Result<()> {
    if got.len() != want.len() {
        return Err(Error::shape(
            op,
            format!("{what}: {} values vs {} expected", got.len(), want.len()),
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return Err(Error::shape(
                op,
                format!("{what}: value {i} is {g} but {w} was expected"),
            ));
        }
    }
    Ok(())
}

/// A zero cotangent for `None` (materialized: it becomes an operand of a nested program).
pub(crate) fn ct_or_zeros(ct: &Option<Array>, aval: &AVal) -> Array {
    ct.clone()
        .unwrap_or_else(|| Array::zeros(&aval.shape, aval.dtype))
}

impl Primitive for Cond {
    fn name(&self) -> &'static str {
        "cond"
    }
    fn params(&self) -> String {
        format!("branches={}", self.branches.len())
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let Some((idx, ops)) = ins.split_first() else {
            return Err(Error::invalid("cond", "needs an index operand"));
        };
        if idx.dtype != crate::dtype::DType::I32 || idx.rank() != 0 {
            return Err(Error::dtype(
                "cond",
                format!("the index must be an i32 scalar, got {idx}"),
            ));
        }
        let Some(first) = self.branches.first() else {
            return Err(Error::invalid("cond", "needs at least one branch"));
        };
        let out = first.output_avals();
        for (k, b) in self.branches.iter().enumerate() {
            check_avals(
                "cond",
                &format!("branch {k} inputs vs operands"),
                ops,
                &b.input_avals(),
            )?;
            check_avals(
                "cond",
                &format!("branch {k} outputs vs branch 0 outputs"),
                &b.output_avals(),
                &out,
            )?;
        }
        Ok(out)
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let idx = ins[0].data.get_f64(0) as i64;
        let k = idx.clamp(0, self.branches.len() as i64 - 1) as usize;
        let exe = compiled(&self.exes[k], &self.branches[k])?;
        let outs = exe.run_owned(views_to_arrays(&ins[1..])?)?;
        outs.into_iter().map(into_storage).collect()
    }
    fn sub_programs(&self) -> Vec<&Program> {
        self.branches.iter().map(|b| b.as_ref()).collect()
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // A cond over the branches' backward programs, selected by the same index. Each
        // backward program re-runs its branch's forward pass from the primal operands
        // (the residuals), then its backward pass.
        let (idx, ops) = (&primals[0], &primals[1..]);
        let wrt: Vec<bool> = ops.iter().map(|a| a.dtype().is_float()).collect();
        let out_avals = self.branches[0].output_avals();
        let mut in_avals: Vec<AVal> = ops.iter().map(|a| a.aval().clone()).collect();
        in_avals.extend(out_avals.iter().cloned());
        let n = ops.len();
        let mut bwd = Vec::with_capacity(self.branches.len());
        for b in &self.branches {
            let (p, caps) = trace_fn(&in_avals, |a| {
                let (xs, cs) = a.split_at(n);
                let cs: Vec<Option<Array>> = cs.iter().cloned().map(Some).collect();
                let (_, grads) = crate::ad::vjp_emit(b, xs, &wrt, &cs)?;
                Ok(grads
                    .into_iter()
                    .zip(&wrt)
                    .filter(|(_, w)| **w)
                    .map(|(g, _)| g)
                    .collect())
            })?;
            if !caps.is_empty() {
                return Err(Error::invalid(
                    "cond",
                    "a backward branch captured an outer value",
                ));
            }
            bwd.push(Arc::new(p));
        }
        let mut args: Vec<Array> = vec![idx.clone()];
        args.extend(ops.iter().cloned());
        args.extend(cts.iter().zip(&out_avals).map(|(c, a)| ct_or_zeros(c, a)));
        let refs: Vec<&Array> = args.iter().collect();
        let mut grads = crate::array::bind(Arc::new(Cond::new(bwd)), &refs)?.into_iter();
        let mut res = vec![None];
        for w in wrt {
            res.push(if w { grads.next() } else { None });
        }
        Ok(res)
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let n = batch_size("cond", args, dims)?;
        let (ops, op_dims) = (&args[1..], &dims[1..]);
        if let Some(d) = dims[0] {
            // Per-example branch choice: compute every branch on the whole batch, then pick
            // each example's result with `select` (what JAX does; no data-dependent
            // control flow survives batching).
            let idx = batch_to_front(&args[0], Some(d), n)?;
            let last = Array::scalar(self.branches.len() as i32 - 1);
            let idx = crate::prim::binary::binary_bcast(
                crate::prim::binary::BinaryOp::Max,
                &idx,
                &Array::scalar(0i32),
            )?;
            let idx =
                crate::prim::binary::binary_bcast(crate::prim::binary::BinaryOp::Min, &idx, &last)?;
            let mut acc: Option<Vec<Array>> = None;
            for (k, b) in self.branches.iter().enumerate() {
                let (outs, ods) = crate::vmap::batch_emit(b, ops, op_dims)?;
                let outs: Vec<Array> = outs
                    .iter()
                    .zip(ods)
                    .map(|(o, d)| batch_to_front(o, d, n))
                    .collect::<Result<_>>()?;
                acc = Some(match acc {
                    None => outs,
                    Some(prev) => {
                        let is_k = crate::prim::compare::compare_bcast(
                            crate::prim::compare::CompareOp::Eq,
                            &idx,
                            &Array::scalar(k as i32),
                        )?;
                        prev.iter()
                            .zip(&outs)
                            .map(|(p, o)| {
                                let pred = broadcast_in_dim(&is_k, o.shape(), &[0])?;
                                crate::prim::select::select(&pred, o, p)
                            })
                            .collect::<Result<_>>()?
                    }
                });
            }
            let outs = acc.unwrap_or_default();
            let nd = vec![Some(0); outs.len()];
            return Ok((outs, nd));
        }
        // A shared index: one cond over batched branches, whose outputs all carry the batch
        // axis first (so every branch agrees on the output avals).
        let avals: Vec<AVal> = ops.iter().map(|a| a.aval().clone()).collect();
        let mut branches = Vec::with_capacity(self.branches.len());
        for b in &self.branches {
            let (p, caps) = trace_fn(&avals, |a| {
                let (outs, ods) = crate::vmap::batch_emit(b, a, op_dims)?;
                outs.iter()
                    .zip(ods)
                    .map(|(o, d)| batch_to_front(o, d, n))
                    .collect()
            })?;
            if !caps.is_empty() {
                return Err(Error::invalid(
                    "cond",
                    "a batched branch captured an outer value",
                ));
            }
            branches.push(Arc::new(p));
        }
        let refs: Vec<&Array> = args.iter().collect();
        let outs = crate::array::bind(Arc::new(Cond::new(branches)), &refs)?;
        let nd = vec![Some(0); outs.len()];
        Ok((outs, nd))
    }
}

/// A branch function of [`switch`]: operands in, results out.
pub type Branch<'a> = &'a dyn Fn(&[Array]) -> Result<Vec<Array>>;

/// `lax.switch(index, branches, *operands)`: applies `branches[clamp(index, 0, n-1)]` to
/// `operands`. Every branch is traced (so all must type-check and agree on their results'
/// shapes and dtypes); values the branches capture are passed along as extra operands.
/// `index` is an integer (or bool) scalar.
pub fn switch(index: &Array, branches: &[Branch<'_>], operands: &[Array]) -> Result<Vec<Array>> {
    if branches.is_empty() {
        return Err(Error::invalid("switch", "needs at least one branch"));
    }
    if index.rank() != 0 {
        return Err(Error::shape(
            "switch",
            format!("the index must be a scalar, got {}", index.aval()),
        ));
    }
    let index = match index.dtype() {
        crate::dtype::DType::I32 => index.clone(),
        d if d.is_float() => {
            return Err(Error::dtype(
                "switch",
                format!("the index must be an integer or bool, got {d:?}"),
            ))
        }
        _ => crate::prim::convert::convert(index, crate::dtype::DType::I32)?,
    };
    let avals: Vec<AVal> = operands.iter().map(|a| a.aval().clone()).collect();
    let n = operands.len();
    let mut traced = Vec::with_capacity(branches.len());
    for f in branches {
        let (p, caps) = trace_fn(&avals, |a| f(a))?;
        traced.push((p, caps));
    }
    // Every branch takes the operands followed by all branches' captures (each branch
    // ignores the others'), so all branches have the same inputs.
    let all_caps: Vec<Array> = traced.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
    let mut progs = Vec::with_capacity(traced.len());
    let mut offset = 0;
    for (mut p, caps) in traced {
        let own = p.inputs.split_off(n);
        let mut inputs = p.inputs.clone();
        for (j, c) in all_caps.iter().enumerate() {
            if j >= offset && j < offset + caps.len() {
                inputs.push(own[j - offset]);
            } else {
                inputs.push(p.new_var(c.aval().clone()));
            }
        }
        offset += caps.len();
        p.inputs = inputs;
        progs.push(Arc::new(p));
    }
    let mut args: Vec<&Array> = vec![&index];
    args.extend(operands.iter());
    args.extend(all_caps.iter());
    crate::array::bind(Arc::new(Cond::new(progs)), &args)
}

/// `lax.cond(pred, true_fn, false_fn, *operands)`: [`switch`] with the bool predicate as
/// the index of `[false_fn, true_fn]`.
pub fn cond(
    pred: &Array,
    true_fn: Branch<'_>,
    false_fn: Branch<'_>,
    operands: &[Array],
) -> Result<Vec<Array>> {
    if pred.dtype() != crate::dtype::DType::Bool || pred.rank() != 0 {
        return Err(Error::dtype(
            "cond",
            format!("the predicate must be a bool scalar, got {}", pred.aval()),
        ));
    }
    switch(pred, &[false_fn, true_fn], operands)
}
