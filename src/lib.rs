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

/// With the `cuda` feature the CUDA backend registers itself before `main` (an ELF
/// `.init_array` entry, what the `ctor` crate does), so `FERRAX_DEVICE=cuda:0` and
/// `Device::cuda(0)` work with no set-up call. Elsewhere call `ferrax::cuda::register()`.
#[cfg(all(feature = "cuda", target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static REGISTER_CUDA: extern "C" fn() = {
    extern "C" fn register_cuda() {
        ferrax_cuda::register()
    }
    register_cuda
};
pub use ferrax_infer as infer;
pub use ferrax_macros::{grad, jit, vmap};
pub mod compose;
pub use compose as fx;
pub use ferrax_nn as nn;
pub use ferrax_optim as optim;

/// Everything a typical program needs: `use ferrax::prelude::*;`.
pub mod prelude {
    pub use crate::fx;
    pub use ferrax_core::debug_print;
    pub use ferrax_core::vmap::Stacked;
    pub use ferrax_core::{
        custom_jvp, custom_vjp, linearize, remat, remat_with_policy, Linearized, RematPolicy,
    };
    pub use ferrax_core::{
        shape, Array, DType, Device, Dim, Dyn, Elem, Error, Float, Int, Shape, StaticShape, Tensor,
        Tree, C,
    };
    pub use ferrax_macros::{grad, jit, vmap};
}
