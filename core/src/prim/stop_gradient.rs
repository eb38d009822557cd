//! The `stop_gradient` primitive: the identity in the forward pass, a zero derivative for
//! every transformation (`jax.lax.stop_gradient`). Elementwise, so it fuses (as a copy).

use crate::array::{bind1, AVal, Array, HostView};
use crate::error::Result;
use crate::prim::{Elementwise, Primitive};
use crate::storage::Storage;

/// `stop_gradient(x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StopGradient;

impl Primitive for StopGradient {
    fn name(&self) -> &'static str {
        "stop_gradient"
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        Ok(vec![ins[0].clone()])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        Ok(vec![ins[0].data.clone()])
    }
    fn vjp(&self, _p: &[Array], _o: &[Array], _ct: &[Option<Array>]) -> Result<Vec<Option<Array>>> {
        Ok(vec![None])
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        Ok((vec![stop_gradient(&args[0])?], vec![dims[0]]))
    }
    fn elementwise(&self) -> Option<&dyn Elementwise> {
        Some(self)
    }
}

impl Elementwise for StopGradient {
    fn arity(&self) -> usize {
        1
    }
    fn apply_f32(&self, ins: &[&[f32]], out: &mut [f32]) -> bool {
        out.copy_from_slice(ins[0]);
        true
    }
    fn apply_f64(&self, ins: &[&[f64]], out: &mut [f64]) -> bool {
        out.copy_from_slice(ins[0]);
        true
    }
    fn cuda_expr(&self, args: &[String], _dtype: crate::dtype::DType) -> Option<String> {
        Some(args[0].clone())
    }
}

/// Blocks gradients through `x` (its value passes unchanged).
pub fn stop_gradient(x: &Array) -> Result<Array> {
    bind1(StopGradient, &[x])
}

impl<S: crate::Shape, E: crate::Elem> crate::Tensor<S, E> {
    /// The same values with no derivative (`jax.lax.stop_gradient`).
    pub fn stop_gradient(&self) -> Self {
        Self::from_array_unchecked(stop_gradient(self.array()).expect("stop_gradient cannot fail"))
    }
}
