//! Tracing: the thread-local context that records equations when a primitive is applied to
//! a tracer. (The staging engine of [E2] fills this in; until then no tracer can exist.)

use crate::array::{AVal, Array};
use crate::error::{Error, Result};
use crate::prim::Primitive;
use std::sync::Arc;

/// Records `prim(ins)` into the active trace and returns tracers for its outputs.
pub(crate) fn record(
    prim: Arc<dyn Primitive>,
    ins: &[&Array],
    outs: Vec<AVal>,
) -> Result<Vec<Array>> {
    let _ = (ins, outs);
    Err(Error::unsupported(
        prim.name(),
        "tracing is not available in this build",
    ))
}

/// Hook run after every eager op (profiling and NaN checks hang off it).
#[inline]
pub(crate) fn after_eager(_prim: &dyn Primitive, _outs: &[Array]) -> Result<()> {
    Ok(())
}
