//! Batching as a program transformation: a program written for one example is re-emitted
//! over arrays carrying a batch axis, primitive by primitive through their `batch` rules.
//! A primitive without a rule falls back to running once per example and stacking, which
//! is always correct (and slow), so every primitive batches.

use crate::array::{AVal, Array};
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use crate::prim::concatenate::stack;
use crate::prim::reshape::reshape;
use crate::prim::slice::slice_in_dim;
use crate::prim::transpose::transpose;
use crate::trace::trace_fn;
use std::collections::HashMap;

/// Moves axis `from` of `x` to position `to`.
pub fn move_axis(x: &Array, from: usize, to: usize) -> Result<Array> {
    if from == to {
        return Ok(x.clone());
    }
    let mut perm: Vec<usize> = (0..x.rank()).filter(|&a| a != from).collect();
    perm.insert(to, from);
    transpose(x, &perm)
}

/// Example `i` of `x` along `axis` (the axis removed).
pub fn index_axis(x: &Array, axis: usize, i: usize) -> Result<Array> {
    let s = slice_in_dim(x, axis, i, i + 1, 1)?;
    let mut shape = x.shape().to_vec();
    shape.remove(axis);
    reshape(&s, &shape)
}

fn batch_size(args: &[Array], dims: &[Option<usize>]) -> Result<usize> {
    let mut size = None;
    for (a, d) in args.iter().zip(dims) {
        if let Some(d) = d {
            let n = *a.shape().get(*d).ok_or_else(|| {
                Error::invalid(
                    "vmap",
                    format!("batch axis {d} out of range for shape {:?}", a.shape()),
                )
            })?;
            match size {
                None => size = Some(n),
                Some(m) if m != n => {
                    return Err(Error::shape(
                        "vmap",
                        format!("batched operands disagree on the batch size: {m} vs {n}"),
                    ))
                }
                _ => {}
            }
        }
    }
    size.ok_or_else(|| Error::invalid("vmap", "no operand is batched"))
}

/// The per-example fallback: run the primitive on each example and stack along axis 0.
fn batch_by_loop(
    prim: &std::sync::Arc<dyn crate::prim::Primitive>,
    args: &[Array],
    dims: &[Option<usize>],
) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
    let n = batch_size(args, dims)?;
    let mut per_out: Vec<Vec<Array>> = Vec::new();
    for i in 0..n {
        let ex: Vec<Array> = args
            .iter()
            .zip(dims)
            .map(|(a, d)| match d {
                Some(d) => index_axis(a, *d, i),
                None => Ok(a.clone()),
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Array> = ex.iter().collect();
        let outs = crate::array::bind(prim.clone(), &refs)?;
        if per_out.is_empty() {
            per_out = vec![Vec::with_capacity(n); outs.len()];
        }
        for (k, o) in outs.into_iter().enumerate() {
            per_out[k].push(o);
        }
    }
    let outs = per_out
        .iter()
        .map(|xs| {
            let refs: Vec<&Array> = xs.iter().collect();
            stack(&refs, 0)
        })
        .collect::<Result<Vec<_>>>()?;
    let dims = vec![Some(0); outs.len()];
    Ok((outs, dims))
}

/// Emits `p` over batched arguments (`in_dims[i]` = the batch axis of argument `i`, or
/// `None` if it is shared by all examples). Returns the outputs with their batch axes.
pub fn batch_emit(
    p: &Program,
    args: &[Array],
    in_dims: &[Option<usize>],
) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
    let mut env: HashMap<Var, (Array, Option<usize>)> = HashMap::with_capacity(p.avals.len());
    for ((v, a), d) in p.inputs.iter().zip(args).zip(in_dims) {
        env.insert(*v, (a.clone(), *d));
    }
    for (v, a) in &p.consts {
        env.insert(*v, (a.clone(), None));
    }
    for e in &p.eqns {
        let ins: Vec<Array> = e.ins.iter().map(|v| env[v].0.clone()).collect();
        let dims: Vec<Option<usize>> = e.ins.iter().map(|v| env[v].1).collect();
        let (outs, out_dims) = if dims.iter().all(|d| d.is_none()) {
            let refs: Vec<&Array> = ins.iter().collect();
            let outs = crate::array::bind(e.prim.clone(), &refs)?;
            let n = outs.len();
            (outs, vec![None; n])
        } else {
            match e.prim.batch(&ins, &dims) {
                Ok(r) => r,
                Err(Error::Unsupported { .. }) => batch_by_loop(&e.prim, &ins, &dims)?,
                Err(err) => return Err(err),
            }
        };
        for ((o, a), d) in e.outs.iter().zip(outs).zip(out_dims) {
            env.insert(*o, (a, d));
        }
    }
    Ok(p.outputs.iter().map(|v| env[v].clone()).unzip())
}

/// Places an output's batch axis at `out_axis`, broadcasting outputs that do not depend on
/// the batch (as `jax.vmap` does); `None` requires an unbatched output.
pub fn finish_output(
    x: Array,
    dim: Option<usize>,
    out_axis: Option<usize>,
    size: usize,
) -> Result<Array> {
    match (dim, out_axis) {
        (Some(d), Some(o)) => move_axis(&x, d, o),
        (None, Some(o)) => {
            let mut shape = x.shape().to_vec();
            shape.insert(o, size);
            let dims: Vec<usize> = (0..x.rank()).map(|i| if i < o { i } else { i + 1 }).collect();
            crate::prim::broadcast_in_dim::broadcast_in_dim(&x, &shape, &dims)
        }
        (None, None) => Ok(x),
        (Some(_), None) => Err(Error::invalid(
            "vmap",
            "an output with out_axes=None depends on the mapped axis; it must be the same for every example",
        )),
    }
}

/// `jax.vmap` on array functions: maps `f` over axis `in_axes[i]` of each argument (`None`
/// = broadcast to every example) and stacks results along `out_axes[j]`. `f` is traced once
/// on one example's shapes; works eagerly and inside staged functions.
pub fn vmap(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    args: &[Array],
    in_axes: &[Option<usize>],
    out_axes: &[Option<usize>],
) -> Result<Vec<Array>> {
    if in_axes.len() != args.len() {
        return Err(Error::invalid(
            "vmap",
            format!("{} arguments but {} in_axes", args.len(), in_axes.len()),
        ));
    }
    let size = batch_size(args, in_axes)?;
    let avals: Vec<AVal> = args
        .iter()
        .zip(in_axes)
        .map(|(a, d)| {
            let mut s = a.shape().to_vec();
            if let Some(d) = d {
                s.remove(*d);
            }
            AVal::new(s, a.dtype())
        })
        .collect();
    let (prog, captured) = trace_fn(&avals, f)?;
    let mut all_args = args.to_vec();
    let mut dims = in_axes.to_vec();
    for c in captured {
        all_args.push(c);
        dims.push(None);
    }
    let (outs, out_dims) = batch_emit(&prog, &all_args, &dims)?;
    if out_axes.len() != outs.len() && out_axes.len() != 1 {
        return Err(Error::invalid(
            "vmap",
            format!("{} outputs but {} out_axes", outs.len(), out_axes.len()),
        ));
    }
    outs.into_iter()
        .zip(out_dims)
        .enumerate()
        .map(|(i, (o, d))| {
            finish_output(
                o,
                d,
                out_axes[if out_axes.len() == 1 { 0 } else { i }],
                size,
            )
        })
        .collect()
}
