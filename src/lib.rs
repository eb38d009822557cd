//! ferrax: JAX's power with Rust's guarantees. Typed, statically shaped tensors; staged
//! functions with derived adjoints and fused kernels; nn, optim, infer and checkpoint on top.
//!
//! ```
//! use ferrax::prelude::*;
//! let x = Tensor::<(C<2>, C<2>)>::from_vec(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
//! assert_eq!(x.to_vec().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
//! ```

pub use ferrax_checkpoint as checkpoint;
pub use ferrax_core::*;
/// The CUDA device backend (feature `cuda`).
#[cfg(feature = "cuda")]
pub use ferrax_cuda as cuda;
pub use ferrax_infer as infer;
pub use ferrax_macros::{grad, jit};
pub use ferrax_nn as nn;
pub use ferrax_optim as optim;

/// Everything a typical program needs: `use ferrax::prelude::*;`.
pub mod prelude {
    pub use ferrax_core::debug_print;
    pub use ferrax_core::{
        shape, Array, DType, Device, Dim, Dyn, Elem, Error, Float, Int, Shape, StaticShape, Tensor,
        Tree, C,
    };
    pub use ferrax_macros::{grad, jit};
}
