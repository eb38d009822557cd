//! Primitives: the small set of operations everything else is composed of. One file each
//! (the elementwise family shares one file and one registry). A primitive owns its shape
//! rule and its host kernel here; the transformation rules (jvp, transpose, batching) and
//! the fusion form join it in the same file as the engine grows. Interpreters and
//! transformations never name a specific primitive: they go through this trait.

use crate::array::{AVal, HostView};
use crate::error::Result;
use crate::storage::Storage;
use std::fmt;

pub mod argreduce;
pub mod binary;
pub mod broadcast_in_dim;
pub mod compare;
pub mod concatenate;
pub mod conv;
pub mod convert;
pub mod cumulative;
pub mod dot_general;
pub mod dynamic_slice;
pub mod dynamic_update_slice;
pub mod gather;
pub mod iota;
pub mod pad;
pub mod reduce;
pub mod reshape;
pub mod rev;
pub mod scatter_add;
pub mod select;
pub mod slice;
pub mod sort;
pub mod transpose;
pub mod unary;

/// An operation of the IR. Implementations are small structs whose fields are the
/// primitive's static parameters (axes, shapes, dtypes).
pub trait Primitive: fmt::Debug + Send + Sync + 'static {
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
