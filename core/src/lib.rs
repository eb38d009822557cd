//! ferrax-core: dims and shapes as types, element types, the typed [`Tensor`] over the
//! untyped [`Array`], primitives with their rules, tracing, PRNG and trees.

#[macro_use]
mod storage;

pub mod ad;
pub mod array;
pub mod broadcast;
pub mod control;
pub mod debug;
pub mod device;
pub mod dim;
pub mod dtype;
pub mod error;
pub mod exec;
mod format;
pub mod ir;
pub mod jit;
pub mod ops;
pub mod prim;
pub mod profiler;
pub mod random;
pub mod shape;
pub mod shape_axes;
pub mod tensor;
pub mod testing;
pub mod trace;
pub mod tree;
pub mod vmap;

pub use ad::{linearize, Linearized};
pub use array::{bind, bind1, AVal, Array, Device, HostView};
pub use broadcast::{BroadcastWith, DimBroadcast};
pub use dim::{Dim, Dyn, C};
pub use dtype::{DType, Elem, Float, Int};
pub use error::{Error, Result};
pub use ferrax_macros::Tree;
pub use half::{bf16, f16};
pub use jit::StaticArg;
pub use prim::custom_jvp::custom_jvp;
pub use prim::custom_vjp::custom_vjp;
pub use prim::remat::{remat, remat_with_policy, RematPolicy};
pub use shape::{Shape, StaticShape};
pub use storage::Storage;
pub use tensor::Tensor;
pub use tree::{Path, PathElem, Tree};

/// Items named by code the ferrax macros generate (`::ferrax::__rt::...`). Not a public API.
#[doc(hidden)]
pub mod __rt {
    pub use crate::ad::{
        assert_scalar_loss, hessian_tree, jvp, tree_clone, value_and_grad, vjp, Pullback,
    };
    pub use crate::array::Array;
    pub use crate::control::{
        cond_value, for_, for_no_carry, for_no_escape, for_no_place, if_, if_no_escape, if_no_init,
        if_no_place, while_, while_no_carry, while_no_escape, while_no_place,
    };
    pub use crate::dim::Dim;
    pub use crate::error::{Error, Result};
    pub use crate::ir::Program;
    pub use crate::jit::{
        write_back, FpFallback, FpViaStatic, FpWrap, JitArgs, JitCache, JitStats, StaticArg,
        Tracing,
    };
    pub use crate::shape_axes::Ax;
    pub use crate::tree::{Path, PathElem, Tree};
    pub use crate::vmap::{
        batch_dim_of, stacked_from_iter, BatchAt, Examples, NoAx, OutSpec, Stacked, UnbatchAt,
        VmapCall,
    };
}
