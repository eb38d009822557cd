//! The `custom_vjp` primitive: a function whose reverse-mode rule the user supplies
//! (`jax.custom_vjp`), e.g. a numerically stable logsumexp or gradient clipping. The
//! primal, forward (outputs + residuals) and backward functions are traced into programs
//! once; the backward program runs in place of differentiating the primal.

use crate::ad::interpret;
use crate::array::{bind, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::ir::Program;
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::Arc;

/// `custom_vjp[primal, fwd, bwd](args..., captured...)`.
#[derive(Debug, Clone)]
pub struct CustomVjp {
    /// The function itself: args → outputs.
    pub primal: Arc<Program>,
    /// args → outputs ++ residuals.
    pub fwd: Arc<Program>,
    /// residuals ++ output cotangents → argument cotangents.
    pub bwd: Arc<Program>,
    /// Number of declared arguments (operands after them are captured values).
    pub n_args: usize,
    /// Number of outputs.
    pub n_out: usize,
}

fn host_arrays(ins: &[HostView<'_>]) -> Result<Vec<Array>> {
    ins.iter()
        .map(|v| Array::from_storage(v.shape.to_vec(), v.data.clone()))
        .collect()
}

impl Primitive for CustomVjp {
    fn name(&self) -> &'static str {
        "custom_vjp"
    }
    fn params(&self) -> String {
        format!("primal@{:p}", Arc::as_ptr(&self.primal))
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let want = self.primal.input_avals();
        if ins != want.as_slice() {
            return Err(Error::shape(
                "custom_vjp",
                format!("operands {ins:?} do not match the traced {want:?}"),
            ));
        }
        Ok(self.primal.output_avals())
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let outs = interpret(&self.primal, &host_arrays(ins)?)?;
        outs.iter()
            .map(|a| Ok(a.storage("custom_vjp")?.clone()))
            .collect()
    }
    fn sub_programs(&self) -> Vec<&Program> {
        vec![&self.primal, &self.fwd, &self.bwd]
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // Residuals are recomputed from the primals (the forward program), then the user's
        // backward program maps them and the cotangents to argument cotangents.
        let fwd_outs = interpret(&self.fwd, primals)?;
        let mut bwd_args: Vec<Array> = fwd_outs[self.n_out..].to_vec();
        for (ct, o) in cts.iter().zip(&fwd_outs[..self.n_out]) {
            bwd_args.push(match ct {
                Some(c) => c.clone(),
                None => Array::zeros(o.shape(), o.dtype()),
            });
        }
        let grads = interpret(&self.bwd, &bwd_args)?;
        let mut out: Vec<Option<Array>> = grads.into_iter().map(Some).collect();
        out.resize(primals.len(), None);
        Ok(out)
    }
}

/// Applies `f` to `args` with a user-defined reverse-mode rule: `fwd(args)` returns the
/// outputs and residuals, `bwd(residuals, output_cotangents)` returns one cotangent per
/// argument (same shapes). Values the closures capture are constants to the rule.
pub fn custom_vjp(
    f: impl Fn(&[Array]) -> Result<Vec<Array>>,
    fwd: impl Fn(&[Array]) -> Result<(Vec<Array>, Vec<Array>)>,
    bwd: impl Fn(&[Array], &[Array]) -> Result<Vec<Array>>,
    args: &[Array],
) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = args.iter().map(|a| a.aval().clone()).collect();
    let (primal, cap1) = trace_fn(&avals, &f)?;
    let mut n_res = 0;
    let (fwd_p, cap2) = trace_fn(&avals, |xs| {
        let (o, r) = fwd(xs)?;
        n_res = r.len();
        Ok(o.into_iter().chain(r).collect())
    })?;
    let n_out = primal.outputs.len();
    let mut bwd_avals: Vec<AVal> = fwd_p.output_avals()[n_out..].to_vec();
    bwd_avals.extend(primal.output_avals());
    let (bwd_p, cap3) = trace_fn(&bwd_avals, |xs| {
        let (res, cts) = xs.split_at(n_res);
        let g = bwd(res, cts)?;
        if g.len() != args.len() {
            return Err(Error::invalid(
                "custom_vjp",
                format!(
                    "bwd returned {} cotangents for {} arguments",
                    g.len(),
                    args.len()
                ),
            ));
        }
        for (gi, a) in g.iter().zip(args) {
            if gi.aval() != a.aval() {
                return Err(Error::invalid(
                    "custom_vjp",
                    format!(
                        "bwd returned a cotangent {} for an argument {}",
                        gi.aval(),
                        a.aval()
                    ),
                ));
            }
        }
        Ok(g)
    })?;
    if !(cap1.is_empty() && cap2.is_empty() && cap3.is_empty()) {
        return Err(Error::unsupported(
            "custom_vjp",
            "the functions capture traced values; pass them as arguments instead",
        ));
    }
    let prim = CustomVjp {
        primal: Arc::new(primal),
        fwd: Arc::new(fwd_p),
        bwd: Arc::new(bwd_p),
        n_args: args.len(),
        n_out,
    };
    let refs: Vec<&Array> = args.iter().collect();
    bind(Arc::new(prim), &refs)
}
