//! The `remat` primitive (`jax.checkpoint`): runs a traced function, and in reverse mode
//! recomputes its intermediates from the inputs instead of keeping them alive, trading
//! compute for memory. A policy chooses what is saved anyway: nothing but the inputs
//! (`SaveNothing`, the default) or also every matmul output (`SaveDots`, JAX's
//! `checkpoint_dots`): matmuls are the expensive part to recompute, elementwise work is not.
//!
//! The saved values are extra outputs of the forward `remat` equation; the reverse rule
//! emits the whole backward of the body as one more `remat` equation (policy nothing) that
//! reads only the inputs, the saved values and the cotangents. So partial evaluation of a
//! gradient program sees exactly those as residuals, and grad of grad recomputes again.

use crate::ad::{interpret, vjp_emit_known};
use crate::array::{bind, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::collections::HashMap;
use std::sync::Arc;

/// What a remat region keeps from its forward pass for the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RematPolicy {
    /// Save only the inputs; recompute everything (`jax.checkpoint_policies.nothing_saveable`).
    #[default]
    SaveNothing,
    /// Save the outputs of `dot_general` equations; recompute the rest
    /// (`jax.checkpoint_policies.checkpoint_dots`).
    SaveDots,
}

/// `remat[body](args...)`: the body's outputs are the function's `n_out` outputs followed
/// by the values the policy saves.
#[derive(Debug, Clone)]
pub struct Remat {
    /// The function, traced (outputs ++ saved values).
    pub body: Arc<Program>,
    /// Number of the function's own outputs (the rest are saved residuals).
    pub n_out: usize,
}

impl Primitive for Remat {
    fn name(&self) -> &'static str {
        "remat"
    }
    fn params(&self) -> String {
        format!("body@{:p} n_out={}", Arc::as_ptr(&self.body), self.n_out)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let want = self.body.input_avals();
        if ins != want.as_slice() {
            return Err(Error::shape(
                "remat",
                format!("operands {ins:?} do not match the traced {want:?}"),
            ));
        }
        Ok(self.body.output_avals())
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let args: Vec<Array> = ins
            .iter()
            .map(|v| Array::from_storage(v.shape.to_vec(), v.data.clone()))
            .collect::<Result<_>>()?;
        let outs = interpret(&self.body, &args)?;
        outs.iter()
            .map(|a| Ok(a.storage("remat")?.clone()))
            .collect()
    }
    fn sub_programs(&self) -> Vec<&Program> {
        vec![&self.body]
    }
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let saved = &outs[self.n_out..];
        let wrt: Vec<bool> = primals.iter().map(|p| p.dtype().is_float()).collect();
        let ct_idx: Vec<usize> = (0..cts.len()).filter(|&i| cts[i].is_some()).collect();
        let mut avals: Vec<AVal> = primals.iter().map(|a| a.aval().clone()).collect();
        avals.extend(saved.iter().map(|a| a.aval().clone()));
        avals.extend(ct_idx.iter().map(|&i| outs[i].aval().clone()));
        let (np, ns) = (primals.len(), saved.len());
        let body = &self.body;
        let n_out = self.n_out;
        // The backward of the body as a program of (inputs, saved, cotangents): the forward
        // is re-emitted from the inputs except where a saved value stands in.
        let (bwd, captured) = trace_fn(&avals, |xs| {
            let (ps, rest) = xs.split_at(np);
            let (sv, cs) = rest.split_at(ns);
            let known: HashMap<Var, Array> = body.outputs[n_out..]
                .iter()
                .zip(sv)
                .map(|(v, a)| (*v, a.clone()))
                .collect();
            let mut full: Vec<Option<Array>> = vec![None; body.outputs.len()];
            for (k, &i) in ct_idx.iter().enumerate() {
                full[i] = Some(cs[k].clone());
            }
            let (_, grads) = vjp_emit_known(body, ps, &wrt, &full, &known)?;
            Ok(grads
                .into_iter()
                .zip(&wrt)
                .filter(|(_, w)| **w)
                .map(|(g, _)| g)
                .collect())
        })?;
        if !captured.is_empty() {
            return Err(Error::invalid(
                "remat",
                "the backward pass captured an outer traced value",
            ));
        }
        let n_bwd = bwd.outputs.len();
        let mut operands: Vec<&Array> = primals.iter().chain(saved).collect();
        operands.extend(ct_idx.iter().map(|&i| cts[i].as_ref().expect("some")));
        let grads = bind(
            Arc::new(Remat {
                body: Arc::new(bwd),
                n_out: n_bwd,
            }),
            &operands,
        )?;
        let mut grads = grads.into_iter();
        Ok(wrt
            .iter()
            .map(|w| if *w { grads.next() } else { None })
            .collect())
    }
}

/// Runs `f` on `args` so that reverse mode recomputes its intermediates rather than
/// storing them (`jax.checkpoint` with the "save nothing" policy).
pub fn remat(f: impl FnOnce(&[Array]) -> Result<Vec<Array>>, args: &[Array]) -> Result<Vec<Array>> {
    remat_with_policy(f, args, RematPolicy::SaveNothing)
}

/// [`remat`] with a policy choosing which intermediates are saved instead of recomputed.
pub fn remat_with_policy(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    args: &[Array],
    policy: RematPolicy,
) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = args.iter().map(|a| a.aval().clone()).collect();
    let (mut body, captured) = trace_fn(&avals, f)?;
    let n_out = body.outputs.len();
    if policy == RematPolicy::SaveDots {
        let dots: Vec<Var> = body
            .eqns
            .iter()
            .filter(|e| e.prim.name() == "dot_general")
            .flat_map(|e| e.outs.iter().copied())
            .collect();
        body.outputs.extend(dots);
    }
    let mut all: Vec<Array> = args.to_vec();
    all.extend(captured);
    let refs: Vec<&Array> = all.iter().collect();
    let mut outs = bind(
        Arc::new(Remat {
            body: Arc::new(body),
            n_out,
        }),
        &refs,
    )?;
    outs.truncate(n_out);
    Ok(outs)
}
