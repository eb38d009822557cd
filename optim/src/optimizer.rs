//! [`Optimizer`]: a transformation together with its state and a step counter, updating a
//! model in place (like Flax NNX's `nnx.Optimizer`). It is a [`Tree`] (its leaves are the
//! step and the state), so a `#[jit]` train step takes it as a `&mut` argument and the new
//! state is written back after each call.

use crate::base::{apply_updates, Transform};
use crate::num;
use crate::state::OptState;
use crate::typed_state::TypedState;
use ferrax_core::tree::{Path, PathElem, Tree};
use ferrax_core::{Array, Result};
use std::fmt;
use std::marker::PhantomData;

/// Owns the optimizer state for parameters of type `T` and applies updates in place.
///
/// ```
/// use ferrax_optim::{adam, Optimizer};
/// use ferrax_core::{Tensor, C};
/// let mut w = Tensor::<(C<2>,)>::from_vec(vec![1.0, -1.0]).unwrap();
/// let mut opt = Optimizer::new(&w, adam(0.1)).unwrap();
/// for _ in 0..50 {
///     let g = &w * 2.0;
///     opt.update(&mut w, &g).unwrap();
/// }
/// assert!(w.to_vec().unwrap().iter().all(|x| x.abs() < 0.1));
/// assert_eq!(opt.step().to_vec::<i32>().unwrap(), vec![50]);
/// ```
pub struct Optimizer<T> {
    tx: Transform,
    /// Identifies this optimizer's transformation in `#[jit]` cache keys: hyperparameters live
    /// inside closures, so they cannot be hashed; a fresh id per `Optimizer::new` (kept by
    /// clones and rebuilds) keeps two optimizers from sharing a compiled program.
    id: u64,
    state: OptState,
    step: Array,
    _p: PhantomData<fn() -> T>,
}

impl<T> Clone for Optimizer<T> {
    fn clone(&self) -> Self {
        Optimizer {
            tx: self.tx.clone(),
            id: self.id,
            state: self.state.clone(),
            step: self.step.clone(),
            _p: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Optimizer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Optimizer")
            .field("tx", &self.tx)
            .field("step", &self.step)
            .field("state", &self.state)
            .finish()
    }
}

impl<T: Tree> Optimizer<T> {
    /// Initializes the state of `tx` for `model`'s parameters.
    pub fn new(model: &T, tx: Transform) -> Result<Self> {
        let state = tx.init(model)?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Optimizer {
            tx,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            state,
            step: num::zero_count(),
            _p: PhantomData,
        })
    }
    /// One optimizer step: transforms `grads` and adds the updates to `model`. On error the
    /// model and the state are unchanged.
    pub fn update(&mut self, model: &mut T, grads: &T) -> Result<()> {
        self.update_with_value(model, grads, None)
    }
    /// [`Optimizer::update`] passing the loss value too (for `reduce_on_plateau`).
    pub fn update_with_value(
        &mut self,
        model: &mut T,
        grads: &T,
        value: Option<&Array>,
    ) -> Result<()> {
        let mut state = self.state.clone();
        let updates = self
            .tx
            .update_with_value(grads, &mut state, Some(model), value)?;
        let new_model = apply_updates(model, &updates)?;
        let step = num::safe_increment(&self.step)?;
        *model = new_model;
        self.state = state;
        self.step = step;
        Ok(())
    }
}

/// Typed views of the state, with the moments in the model's own type (see
/// [`TypedState`]).
///
/// ```
/// use ferrax_optim::{adam, Optimizer, ScaleByAdamState};
/// use ferrax_core::{Tensor, C};
/// let mut w = Tensor::<(C<2>,)>::from_vec(vec![1.0, -1.0]).unwrap();
/// let mut opt = Optimizer::new(&w, adam(0.1)).unwrap();
/// let g = &w * 2.0;
/// opt.update(&mut w, &g).unwrap();
/// let s: ScaleByAdamState<Tensor<(C<2>,)>> = opt.find_typed(&w).unwrap();
/// assert_eq!(s.count.to_vec::<i32>().unwrap(), vec![1]);
/// let mu = s.mu.to_vec().unwrap(); // (1 - b1) * g
/// assert!((mu[0] - 0.2).abs() < 1e-7 && (mu[1] + 0.2).abs() < 1e-7);
/// ```
impl<T: Tree> Optimizer<T> {
    /// Piece `i` of the transformation's chain as `S` (see [`OptState::piece`]); `like` is
    /// the model (any tree with the parameters' structure).
    pub fn piece<S: TypedState<Params = T>>(&self, i: usize, like: &T) -> Result<S> {
        self.state.piece(i, like)
    }
    /// The first piece made by the transformation `transform` as `S` (see
    /// [`OptState::piece_by_name`]).
    pub fn piece_by_name<S: TypedState<Params = T>>(&self, transform: &str, like: &T) -> Result<S> {
        self.state.piece_by_name(transform, like)
    }
    /// The first piece whose type is `S`, e.g. the Adam moments of any Adam-family
    /// optimizer (see [`OptState::find_typed`]).
    pub fn find_typed<S: TypedState<Params = T>>(&self, like: &T) -> Result<S> {
        self.state.find_typed(like)
    }
    /// One per-parameter field of the state (`"mu"`, `"trace"`, ...) in the model's type
    /// (see [`OptState::tree`]).
    pub fn state_tree(&self, name: &str, like: &T) -> Result<T> {
        self.state.tree(name, like)
    }
}

impl<T> Optimizer<T> {
    /// The state of the transformation.
    pub fn state(&self) -> &OptState {
        &self.state
    }
    /// Mutable state (e.g. [`OptState::set_hyperparam`]).
    pub fn state_mut(&mut self) -> &mut OptState {
        &mut self.state
    }
    /// Number of updates applied (rank-0 i32).
    pub fn step(&self) -> &Array {
        &self.step
    }
    /// The learning rate used by the last update, when the transformation injects it
    /// ([`inject_hyperparams`](crate::inject_hyperparams)).
    pub fn learning_rate(&self) -> Option<Array> {
        self.state.learning_rate()
    }
    /// The transformation.
    pub fn transform(&self) -> &Transform {
        &self.tx
    }
}

impl<T> Tree for Optimizer<T> {
    /// The transformation's configuration (hyperparameters) selects the compiled program:
    /// two optimizers with the same state shapes must not share one.
    fn fingerprint(&self, mut h: &mut dyn std::hash::Hasher) {
        std::hash::Hash::hash(&self.id, &mut h);
    }
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        path.with(PathElem::Field("step"), |p| f(p, &self.step));
        path.with(PathElem::Field("opt_state"), |p| self.state.visit(p, f));
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let step = path.with(PathElem::Field("step"), |p| f(p, &self.step))?;
        let state = path.with(PathElem::Field("opt_state"), |p| self.state.rebuild(p, f))?;
        Ok(Optimizer {
            tx: self.tx.clone(),
            id: self.id,
            state,
            step,
            _p: PhantomData,
        })
    }
}
