//! Composable transformations as expressions (`ferrax::fx`, in the prelude): `fx::grad!`,
//! `fx::value_and_grad!`, `fx::jvp!`, `fx::vmap!`, `fx::jit!`. Each takes a function and
//! evaluates to a closure, so every JAX composition of jit/grad/vmap/jvp is one expression,
//! type-checked by rustc at the call site:
//!
//! ```
//! use ferrax::prelude::*;
//!
//! fn loss(w: &Tensor<(C<3>,)>, x: &Tensor<(C<3>,)>, y: &Tensor<()>) -> Tensor<()> {
//!     let d = w.dot(x) - y;
//!     &d * &d
//! }
//!
//! let w = Tensor::<(C<3>,)>::from_vec(vec![0.5, -1.0, 2.0]).unwrap();
//! let xs = Tensor::<(C<4>, C<3>)>::from_vec((0..12).map(|i| i as f32 / 4.0).collect()).unwrap();
//! let ys = Tensor::<(C<4>,)>::from_vec(vec![1.0, 0.0, -1.0, 2.0]).unwrap();
//!
//! // Per-example gradients (jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))): the batch dim
//! // C<4> is inferred from `xs` and `ys`, the result type is computed by rustc.
//! let per_example = fx::vmap!(fx::grad!(loss(w, x, y), wrt = w), in_axes = (None, 0, 0));
//! let g: Tensor<(C<4>, C<3>)> = per_example(&w, &xs, &ys);
//!
//! // The same, staged and cached (jax.jit(jax.vmap(jax.grad(...)))).
//! let staged = fx::jit!(fx::vmap!(fx::grad!(loss(w, x, y), wrt = w), in_axes = (None, 0, 0)));
//! assert_eq!(staged(&w, &xs, &ys).to_vec().unwrap(), g.to_vec().unwrap());
//! ```
//!
//! The function argument is one of:
//! - a closure with typed parameters: `|w: &Params, x: &Tensor<(C<3>,)>| -> Tensor<()> { .. }`
//!   (`&_` leaves a type to inference);
//! - a call pattern `path(a, b)`: the function `path` with parameters named `a`, `b`, each
//!   passed by reference (the names are what `wrt` and `in_axes` refer to);
//! - another `fx` macro.
//!
//! Options: `grad!`/`value_and_grad!`/`jvp!` take `wrt = w` or `wrt = (a, b)` (default: the
//! first parameter; the gradient has the parameter's type, a tuple for several); `jvp!`'s
//! closure takes one tangent per `wrt` parameter after the parameters and returns
//! `(value, tangent)`; `vmap!` takes `in_axes` (one entry per parameter, `None` broadcasts,
//! an entry applies to every leaf of a tree parameter; a single entry applies to all) and
//! `out_axes` (`0`, `None`, or a tuple for a tuple output). A mapped tensor `&Tensor<S>`
//! becomes `&Tensor<S + B at the axis>`, a mapped or output struct `Stacked<T, B>`. `jit!`
//! gives the closure its own executable cache (like the object `jax.jit(f)` returns):
//! build it once, call it many times.
//!
//! The compositions: `vmap!(grad!(..))` (per-example gradients), `grad!` of a closure that
//! calls `vmap!(..)` and sums (grad of vmap-then-sum), `jit!(vmap!(..))`,
//! `vmap!(vmap!(..))`, `jvp!(grad!(..))` (Hessian-vector products), `grad!(|..| grad!(..)(..).sum())`
//! (grad of grad). They are macros named like JAX's functions but live in this module
//! because `#[grad]`, `#[jit]` and `#[vmap]` already use those names as attributes.
//!
//! Errors while running (a `Dyn` batch size that disagrees, a non-scalar loss with `Dyn`
//! shapes) panic with the message of the underlying `ferrax::Error`, as `#[grad]` and
//! `#[jit]` companions do.

#[doc(inline)]
pub use ferrax_macros::fx_grad as grad;
#[doc(inline)]
pub use ferrax_macros::fx_jit as jit;
#[doc(inline)]
pub use ferrax_macros::fx_jvp as jvp;
#[doc(inline)]
pub use ferrax_macros::fx_value_and_grad as value_and_grad;
#[doc(inline)]
pub use ferrax_macros::fx_vmap as vmap;
