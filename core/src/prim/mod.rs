//! Primitives: the small set of operations everything else is composed of. One file each
//! (the elementwise family shares one file and one registry). A primitive owns its shape
//! rule and its host kernel here; the transformation rules (jvp, transpose, batching) and
//! the fusion form join it in the same file as the engine grows. Interpreters and
//! transformations never name a specific primitive: they go through this trait.

use crate::array::{AVal, Array, HostView};
use crate::error::Result;
use crate::storage::Storage;
use std::fmt;

pub mod argreduce;
pub mod binary;
pub mod broadcast_in_dim;
pub mod compare;
pub mod concatenate;
pub mod cond;
pub mod conv;
pub mod convert;
pub mod cumulative;
pub mod custom_jvp;
pub mod custom_vjp;
pub mod debug_print;
pub mod dot_general;
pub mod dynamic_slice;
pub mod dynamic_update_slice;
pub mod gather;
pub mod iota;
pub mod pad;
pub mod random;
pub mod reduce;
pub mod remat;
pub mod reshape;
pub mod rev;
pub mod scan;
pub mod scatter_add;
pub mod select;
pub mod slice;
pub mod sort;
pub mod stop_gradient;
pub mod transpose;
pub mod unary;
pub mod while_loop;

/// An operation of the IR. Implementations are small structs whose fields are the
/// primitive's static parameters (axes, shapes, dtypes).
pub trait Primitive: fmt::Debug + Send + Sync + AsAny + 'static {
    /// The name shown in program text (`add`, `reduce_sum`, `dot_general`).
    fn name(&self) -> &'static str;
    /// The static parameters as text, e.g. `axes=[1]`; part of the identity used by CSE.
    fn params(&self) -> String {
        String::new()
    }
    /// Shape rule: checks operand shapes/dtypes and returns the outputs' abstract values.
    /// Errors name the primitive and the offending shapes.
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>>;
    /// Host kernel: computes the outputs (whose abstract values `outs` came from
    /// [`Primitive::abstract_eval`]) from contiguous row-major inputs. Must be deterministic
    /// and independent of the number of threads.
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>>;
    /// Programs nested in this primitive's params (control flow), for passes and the verifier.
    fn sub_programs(&self) -> Vec<&crate::ir::Program> {
        Vec::new()
    }
    /// Whether the primitive does something besides computing its outputs (printing), so
    /// dead-code elimination and CSE must keep it.
    fn has_side_effects(&self) -> bool {
        false
    }
    /// The elementwise form used by fusion, if this primitive is elementwise: a pure function
    /// of same-shaped operands applied position by position.
    fn elementwise(&self) -> Option<&dyn Elementwise> {
        None
    }
    /// For primitives that only replicate their single operand (broadcasts): the output
    /// shape and, for each operand axis, the output axis it maps to. Fusion reads such
    /// operands through an index map instead of materializing them.
    fn broadcast_pattern(&self) -> Option<(&[usize], &[usize])> {
        None
    }
    /// Exact algebraic simplification (`x * 1`, `x + 0`, a transpose undoing a transpose):
    /// whether this equation's single result equals an existing value, given what the
    /// simplifier knows about the operands. Only rewrites that keep every bit belong here.
    fn simplify(&self, ctx: &dyn SimplifyCtx) -> Option<Simplified> {
        let _ = ctx;
        None
    }
    /// Reverse-mode rule: given the primal operands, the primal results and the results'
    /// cotangents (`None` = zero), returns each operand's cotangent (`None` = zero, or not
    /// differentiable: integer operands). Written with lax-level functions on `Array`s, so
    /// the rule is itself traced and can be differentiated again (higher order). Forward
    /// mode is derived from these rules by transposition (see `ad`).
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cotangents: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let _ = (primals, outs, cotangents);
        Err(crate::Error::unsupported(
            self.name(),
            "no reverse-mode (vjp) rule yet",
        ))
    }
    /// Batching rule: operands with their batch axis (`None` = not batched) → results with
    /// theirs. The default runs the primitive once per example and stacks the results,
    /// which is correct for every primitive; rules that move the batch axis into the
    /// primitive's own axes are faster.
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let _ = (args, dims);
        Err(crate::Error::unsupported(
            self.name(),
            "no batching rule yet",
        ))
    }
}

/// The scalar-loop form of an elementwise primitive. Fusion runs a region of these over
/// cache-sized chunks, so intermediates never leave L1. Operands and result share one float
/// dtype (f32 or f64); a kernel returns `false` if it cannot run on that dtype.
pub trait Elementwise: Send + Sync {
    /// Number of operands.
    fn arity(&self) -> usize;
    /// `out[i] = f(ins[0][i], ins[1][i], ...)` over f32 chunks of equal length.
    fn apply_f32(&self, ins: &[&[f32]], out: &mut [f32]) -> bool;
    /// The same over f64 chunks.
    fn apply_f64(&self, ins: &[&[f64]], out: &mut [f64]) -> bool;
    /// The CUDA C form: an expression computing one element from the operands' expressions
    /// `args`, which already have the compute type (`float` for f32, bf16 and f16; `double`
    /// for f64, the `dtype` passed). Helpers named `fx_*` come from the CUDA backend's
    /// prelude. `None` (the default) means no device form: the region is not fused on GPUs.
    fn cuda_expr(&self, args: &[String], dtype: crate::dtype::DType) -> Option<String> {
        let _ = (args, dtype);
        None
    }
}

/// Row-major strides (in elements) of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Checks that `axis < rank`, naming the op.
pub fn check_axis(op: &'static str, axis: usize, rank: usize) -> Result<()> {
    if axis >= rank {
        return Err(crate::Error::invalid(
            op,
            format!("axis {axis} is out of range for a rank-{rank} operand"),
        ));
    }
    Ok(())
}

/// Downcasting for primitives (a blanket impl: implementations need not write it), so a
/// rule may look at a neighbouring equation's parameters.
pub trait AsAny {
    /// `self` as `Any`.
    fn as_any(&self) -> &dyn std::any::Any;
}
impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// What the simplifier knows about an equation's operands.
pub trait SimplifyCtx {
    /// Abstract values of the operands.
    fn in_avals(&self) -> &[AVal];
    /// Abstract value of the (single) result.
    fn out_aval(&self) -> &AVal;
    /// If operand `i` is a constant with every element equal, that value.
    fn splat(&self, i: usize) -> Option<f64>;
    /// The primitive that produced operand `i` and that equation's operands.
    fn producer(&self, i: usize) -> Option<(&dyn Primitive, &[crate::ir::Var])>;
}

/// The result of a successful simplification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simplified {
    /// The result is operand `i`.
    Operand(usize),
    /// The result is this existing variable.
    Var(crate::ir::Var),
}
