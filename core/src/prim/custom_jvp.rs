//! The `custom_jvp` primitive: a function whose forward-mode rule the user supplies
//! (`jax.custom_jvp`), e.g. a `safe_log` or a clip whose derivative is defined by the rule.
//!
//! ferrax derives forward mode from reverse rules, so the rule is used through its
//! transpose: the user's `jvp(primals, tangents) -> (outputs, output tangents)` is traced
//! once into a program; its tangent outputs are linear in the tangents (the rule's
//! contract), so the reverse rule of the primitive is the vjp of that program with respect
//! to the tangents at zero tangents — `Jᵀ·ct` for the rule's `J`. Forward mode transposes
//! that back to `J·t`, the rule itself; second order differentiates the rule's dependence
//! on the primals, as JAX does.

use crate::ad::{interpret, vjp_emit};
use crate::array::{bind, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::ir::Program;
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::Arc;

/// `custom_jvp[primal, jvp](args...)`.
#[derive(Debug, Clone)]
pub struct CustomJvp {
    /// The function itself: args → outputs.
    pub primal: Arc<Program>,
    /// args ++ tangents → outputs ++ output tangents (linear in the tangents).
    pub jvp: Arc<Program>,
    /// Number of arguments.
    pub n_args: usize,
    /// Number of outputs.
    pub n_out: usize,
}

impl Primitive for CustomJvp {
    fn name(&self) -> &'static str {
        "custom_jvp"
    }
    fn params(&self) -> String {
        format!("primal@{:p}", Arc::as_ptr(&self.primal))
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let want = self.primal.input_avals();
        if ins != want.as_slice() {
            return Err(Error::shape(
                "custom_jvp",
                format!("operands {ins:?} do not match the traced {want:?}"),
            ));
        }
        Ok(self.primal.output_avals())
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let args: Vec<Array> = ins
            .iter()
            .map(|v| Array::from_storage(v.shape.to_vec(), v.data.clone()))
            .collect::<Result<_>>()?;
        let outs = interpret(&self.primal, &args)?;
        outs.iter()
            .map(|a| Ok(a.storage("custom_jvp")?.clone()))
            .collect()
    }
    fn sub_programs(&self) -> Vec<&Program> {
        vec![&self.primal, &self.jvp]
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let n = self.n_args;
        let mut args: Vec<Array> = primals.to_vec();
        args.extend(primals.iter().map(|p| Array::zeros(p.shape(), p.dtype())));
        let mut wrt = vec![false; n];
        wrt.extend(primals.iter().map(|p| p.dtype().is_float()));
        let mut seeds: Vec<Option<Array>> = vec![None; self.n_out];
        seeds.extend(cts.iter().cloned());
        let (_, grads) = vjp_emit(&self.jvp, &args, &wrt, &seeds)?;
        Ok(grads
            .into_iter()
            .skip(n)
            .zip(primals)
            .map(|(g, p)| p.dtype().is_float().then_some(g))
            .collect())
    }
}

/// Applies `f` to `args` with a user-defined forward-mode rule: `jvp(primals, tangents)`
/// returns the outputs and their tangents (one tangent per argument, same shapes; the
/// output tangents must be linear in the tangents). Forward and reverse mode both use the
/// rule (reverse mode through its transpose). Values the closures capture are constants to
/// the rule; traced values must be passed as arguments.
pub fn custom_jvp(
    f: impl Fn(&[Array]) -> Result<Vec<Array>>,
    jvp: impl Fn(&[Array], &[Array]) -> Result<(Vec<Array>, Vec<Array>)>,
    args: &[Array],
) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = args.iter().map(|a| a.aval().clone()).collect();
    let (primal, cap1) = trace_fn(&avals, &f)?;
    let n = args.len();
    let out_avals = primal.output_avals();
    let mut jvp_avals = avals.clone();
    jvp_avals.extend(avals.iter().cloned());
    let (jvp_p, cap2) = trace_fn(&jvp_avals, |xs| {
        let (ps, ts) = xs.split_at(n);
        let (o, t) = jvp(ps, ts)?;
        if o.len() != out_avals.len() || t.len() != out_avals.len() {
            return Err(Error::invalid(
                "custom_jvp",
                format!(
                    "the rule returned {} outputs and {} tangents; the function has {} outputs",
                    o.len(),
                    t.len(),
                    out_avals.len()
                ),
            ));
        }
        for (k, (oi, ti)) in o.iter().zip(&t).enumerate() {
            if oi.aval() != &out_avals[k] || ti.aval() != &out_avals[k] {
                return Err(Error::invalid(
                    "custom_jvp",
                    format!(
                        "output {k}: the rule returned {} with tangent {}, the function returns {}",
                        oi.aval(),
                        ti.aval(),
                        out_avals[k]
                    ),
                ));
            }
        }
        Ok(o.into_iter().chain(t).collect())
    })?;
    if !(cap1.is_empty() && cap2.is_empty()) {
        return Err(Error::unsupported(
            "custom_jvp",
            "the functions capture traced values; pass them as arguments instead",
        ));
    }
    let n_out = primal.outputs.len();
    let prim = CustomJvp {
        primal: Arc::new(primal),
        jvp: Arc::new(jvp_p),
        n_args: n,
        n_out,
    };
    let refs: Vec<&Array> = args.iter().collect();
    bind(Arc::new(prim), &refs)
}
