//! ferrax-optim: Optax-style gradient transformations, optimizers, schedules and losses.
//!
//! A [`Transform`] has `init(params) -> OptState` and `update(grads, &mut state, params)
//! -> updates` over any [`Tree`](ferrax_core::Tree); [`apply_updates`] adds the updates.
//! Named optimizers are [`chain`]s of elementary transformations, exactly as in Optax
//! (`adam = chain(scale_by_adam, scale_by_learning_rate)`). [`Optimizer`] owns a state and
//! updates a model in place, like `nnx.Optimizer`. The state is one dynamic tree
//! ([`OptState`]); typed views such as [`ScaleByAdamState<T>`](ScaleByAdamState) read a
//! piece back with its moments in the parameters' own type (`opt.find_typed(&model)`).
//!
//! Every update is computed with ferrax-core ops (through `bind`), never by reading host
//! buffers, and the state is a tree of arrays (step counters are rank-0 `i32` arrays), so
//! the same update runs eagerly or traced inside a `#[jit]` train step, where it compiles
//! into fused loops. Hyperparameters given as numbers are constants of the compiled
//! program (as Python floats are in a jitted Optax step); to change one between calls
//! without recompiling, inject it ([`inject_hyperparams`]). Note that a jitted function's
//! cache key covers the shapes of its tree arguments, not the transformation inside an
//! `Optimizer`: use one staged train-step function per optimizer configuration.
//!
//! Losses (`l2_loss`, `huber_loss`, `softmax_cross_entropy`, ...) live here, in [`loss`],
//! as in Optax; [`loss::typed`] has them over `Tensor`s with the shapes in the signatures.
//! Beyond Optax's main namespace: the schedule-free optimizers of `optax.contrib`
//! ([`schedule_free_adamw`], [`schedule_free_sgd`], [`schedule_free_eval_params`]).
//!
//! ```
//! use ferrax_optim::{adamw, chain, clip_by_global_norm, Optimizer};
//! use ferrax_core::{Tensor, C};
//! let mut w = Tensor::<(C<3>,)>::from_vec(vec![1.0, -2.0, 3.0]).unwrap();
//! let tx = chain([clip_by_global_norm(1.0), adamw(0.05, 1e-4, None)]);
//! let mut opt = Optimizer::new(&w, tx).unwrap();
//! for _ in 0..200 {
//!     let g = &w * 2.0; // gradient of |w|^2
//!     opt.update(&mut w, &g).unwrap();
//! }
//! assert!(w.to_vec().unwrap().iter().all(|x| x.abs() < 0.05));
//! ```

extern crate ferrax_core as ferrax;

mod alias;
mod base;
mod clipping;
mod combine;
pub mod loss;
mod num;
mod optimizer;
pub mod schedule;
mod schedule_free;
mod state;
mod transform;
pub mod tree_utils;
mod typed_state;

pub use alias::*;
pub use base::{
    apply_updates, identity, set_to_zero, GradientTransformation, Mask, Transform, UpdateCtx,
};
pub use clipping::{adaptive_grad_clip, clip, clip_by_block_rms, clip_by_global_norm, zero_nans};
pub use combine::{
    apply_if_finite, chain, inject_hyperparams, lookahead, masked, multi_steps, multi_transform,
    reduce_on_plateau, HyperValues, PlateauConfig,
};
pub use optimizer::Optimizer;
pub use schedule::Schedule;
pub use schedule_free::{
    schedule_free, schedule_free_adamw, schedule_free_eval_params, schedule_free_sgd,
};
pub use state::OptState;
pub use transform::*;
pub use typed_state::{
    EmaState, ScaleByAdaDeltaState, ScaleByAdamState, ScaleByAmsgradState, ScaleByLionState,
    ScaleByRmsState, ScaleByRssState, TraceState, TypedState,
};
