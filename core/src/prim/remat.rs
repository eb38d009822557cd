//! The `remat` primitive (`jax.checkpoint`): runs a traced function, and in reverse mode
//! recomputes its intermediates from the inputs instead of keeping them alive, trading
//! compute for memory. Policy: save nothing but the inputs.

use crate::ad::{interpret, vjp_emit};
use crate::array::{bind, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::ir::Program;
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::Arc;

/// `remat[body](args...)`.
#[derive(Debug, Clone)]
pub struct Remat {
    /// The function, traced.
    pub body: Arc<Program>,
}

impl Primitive for Remat {
    fn name(&self) -> &'static str {
        "remat"
    }
    fn params(&self) -> String {
        format!("body@{:p}", Arc::as_ptr(&self.body))
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
        _outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        // The backward pass re-runs the body's forward from the inputs (nothing else was
        // saved), then its backward.
        let wrt: Vec<bool> = primals.iter().map(|p| p.dtype().is_float()).collect();
        let (_, grads) = vjp_emit(&self.body, primals, &wrt, cts)?;
        Ok(grads
            .into_iter()
            .zip(wrt)
            .map(|(g, w)| w.then_some(g))
            .collect())
    }
}

/// Runs `f` on `args` so that reverse mode recomputes its intermediates rather than
/// storing them (`jax.checkpoint` with the "save nothing" policy).
pub fn remat(f: impl FnOnce(&[Array]) -> Result<Vec<Array>>, args: &[Array]) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = args.iter().map(|a| a.aval().clone()).collect();
    let (body, captured) = trace_fn(&avals, f)?;
    let mut all: Vec<Array> = args.to_vec();
    all.extend(captured);
    let refs: Vec<&Array> = all.iter().collect();
    bind(
        Arc::new(Remat {
            body: Arc::new(body),
        }),
        &refs,
    )
}
