//! [`OptState`]: the state of a gradient transformation, a small tree of arrays (step
//! counters, moments, hyperparameters) with named and positional children.
//!
//! One dynamic type serves every transformation, so `chain`, `masked` and friends compose
//! without a generic state type per combination (the crate's "non-generic inside" rule),
//! and it implements [`Tree`]: a state is checkpointed, traced and threaded through a
//! `#[jit]` train step like any other tree. Its structure is fixed by `init`; `update`
//! only replaces arrays, so the leaf shapes and dtypes are stable from step to step.
//!
//! **Why the core stays dynamic.** Transformations run on flat leaf lists, so each one is
//! compiled once for every parameter type (a model struct, a tuple, a `Vec` of tensors)
//! rather than monomorphized per model and per combination of pieces; and a state that is
//! one tree type is what lets `#[jit]` thread it, checkpoints save it and wrappers such as
//! `apply_if_finite` select between two of them leaf by leaf. Optax gets both for free
//! (a `NamedTuple` of pytrees is itself a pytree); a Rust generic state type per chain
//! would give up the first.
//!
//! **Typed views.** What a user loses is Optax's `ScaleByAdamState(count, mu, nu)` with
//! `mu` and `nu` shaped like the params. The typed surface gives it back without touching
//! the engine: a chain tags each piece with its transformation's name
//! ([`OptState::Tagged`], invisible to the tree), and a view rebuilds the per-parameter
//! arrays into the caller's own parameter type: [`OptState::tree`] for one field
//! (`state.tree("mu", &params)`), [`OptState::piece`] / [`OptState::piece_by_name`] /
//! [`OptState::find_typed`] for a whole state as a struct such as
//! [`ScaleByAdamState<T>`](crate::ScaleByAdamState). Views copy no data (arrays share
//! buffers) and check what they read: the piece's transformation, its fields, and each
//! leaf's shape and dtype against the parameters given, with errors that say what was
//! found.

use ferrax_core::tree::{Path, PathElem, Tree};
use ferrax_core::{Array, Error, Result};

/// The state of a gradient transformation (see the module docs).
///
/// ```
/// use ferrax_optim::{adam, OptState};
/// use ferrax_core::{Tensor, C};
/// let params = Tensor::<(C<3>,)>::ones();
/// let state: OptState = adam(0.1).init(&params).unwrap();
/// // chain(scale_by_adam, scale_by_learning_rate): the first piece holds count, mu, nu.
/// let adam_state = &state.children()[0];
/// assert_eq!(adam_state.get("mu").unwrap().as_leaves().unwrap()[0].shape(), &[3]);
/// assert_eq!(state.find("count").unwrap().as_array().unwrap().to_vec::<i32>().unwrap(), vec![0]);
/// ```
#[derive(Clone, Debug, Default)]
pub enum OptState {
    /// No arrays (stateless transformations).
    #[default]
    Empty,
    /// One array: a step counter, a hyperparameter, a random key.
    Leaf(Array),
    /// One array per parameter leaf (moments, accumulators), in the parameters' leaf order.
    Leaves(Vec<Array>),
    /// Named children (the fields of one transformation's state).
    Node(Vec<(&'static str, OptState)>),
    /// Positional children (one per piece of a `chain`).
    Seq(Vec<OptState>),
    /// A piece of a [`chain`](crate::chain) labelled with the name of the transformation
    /// that made it, so typed views can check what they read and errors can say what they
    /// found. Transparent as a tree (no path element, no leaves of its own): checkpoints
    /// and jitted steps see only the state inside, and the accessors look through it.
    Tagged(&'static str, Box<OptState>),
}

impl OptState {
    /// A node from `(name, child)` pairs.
    pub fn node(entries: Vec<(&'static str, OptState)>) -> OptState {
        OptState::Node(entries)
    }
    /// `state` labelled as made by the transformation `transform` (see [`OptState::Tagged`]).
    pub fn tagged(transform: &'static str, state: OptState) -> OptState {
        let mut state = state;
        while let OptState::Tagged(_, inner) = state {
            state = *inner;
        }
        OptState::Tagged(transform, Box::new(state))
    }
    /// The state without its [`OptState::Tagged`] label (itself if it has none).
    pub fn untagged(&self) -> &OptState {
        match self {
            OptState::Tagged(_, s) => s.untagged(),
            s => s,
        }
    }
    /// The name of the transformation that made this state, when it is a chain's piece.
    pub fn transform_name(&self) -> Option<&'static str> {
        match self {
            OptState::Tagged(n, _) => Some(n),
            _ => None,
        }
    }
    /// The direct child called `name` of a [`OptState::Node`].
    pub fn get(&self, name: &str) -> Option<&OptState> {
        match self {
            OptState::Node(es) => es.iter().find(|(n, _)| *n == name).map(|(_, s)| s),
            OptState::Tagged(_, s) => s.get(name),
            _ => None,
        }
    }
    /// Mutable access to the direct child called `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut OptState> {
        match self {
            OptState::Node(es) => es.iter_mut().find(|(n, _)| *n == name).map(|(_, s)| s),
            OptState::Tagged(_, s) => s.get_mut(name),
            _ => None,
        }
    }
    /// The first node child called `name` anywhere below (depth first, in order).
    pub fn find(&self, name: &str) -> Option<&OptState> {
        match self {
            OptState::Node(es) => {
                es.iter()
                    .find_map(|(n, s)| if *n == name { Some(s) } else { s.find(name) })
            }
            OptState::Seq(ss) => ss.iter().find_map(|s| s.find(name)),
            OptState::Tagged(_, s) => s.find(name),
            _ => None,
        }
    }
    fn find_mut(&mut self, name: &str) -> Option<&mut OptState> {
        match self {
            OptState::Node(es) => {
                if let Some(i) = es.iter().position(|(n, _)| *n == name) {
                    return Some(&mut es[i].1);
                }
                es.iter_mut().find_map(|(_, s)| s.find_mut(name))
            }
            OptState::Seq(ss) => ss.iter_mut().find_map(|s| s.find_mut(name)),
            OptState::Tagged(_, s) => s.find_mut(name),
            _ => None,
        }
    }
    /// The children of a [`OptState::Seq`] (the pieces of a chain) or of a node, in order.
    pub fn children(&self) -> Vec<&OptState> {
        match self {
            OptState::Seq(ss) => ss.iter().collect(),
            OptState::Node(es) => es.iter().map(|(_, s)| s).collect(),
            OptState::Tagged(_, s) => s.children(),
            _ => Vec::new(),
        }
    }
    /// The array of a [`OptState::Leaf`].
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            OptState::Leaf(a) => Some(a),
            OptState::Tagged(_, s) => s.as_array(),
            _ => None,
        }
    }
    /// The arrays of a [`OptState::Leaves`].
    pub fn as_leaves(&self) -> Option<&[Array]> {
        match self {
            OptState::Leaves(v) => Some(v),
            OptState::Tagged(_, s) => s.as_leaves(),
            _ => None,
        }
    }
    /// The current value of an injected hyperparameter (see
    /// [`inject_hyperparams`](crate::inject_hyperparams)): a rank-0 array.
    pub fn hyperparam(&self, name: &str) -> Option<Array> {
        self.find("hyperparams")?.get(name)?.as_array().cloned()
    }
    /// The learning rate of the last update, if the transformation injects it (every
    /// optimizer built with [`inject_hyperparams`](crate::inject_hyperparams)).
    pub fn learning_rate(&self) -> Option<Array> {
        self.hyperparam("learning_rate")
    }
    /// Overwrites an injected hyperparameter that is not driven by a schedule: the next
    /// update uses `value` (no rebuild, no recompilation of a jitted step).
    pub fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<()> {
        let hp = self.find_mut("hyperparams").ok_or_else(|| {
            Error::invalid(
                "set_hyperparam",
                "this state has no injected hyperparameters",
            )
        })?;
        let slot = hp.get_mut(name).ok_or_else(|| {
            Error::invalid(
                "set_hyperparam",
                format!("no injected hyperparameter `{name}`"),
            )
        })?;
        let dt = slot
            .as_array()
            .map(|a| a.dtype())
            .ok_or_else(|| Error::invalid("set_hyperparam", format!("`{name}` is not an array")))?;
        *slot = OptState::Leaf(Array::full(&[], dt, value));
        Ok(())
    }

    // ---- accessors for transformations: errors name the op --------------------------

    pub(crate) fn field(&self, op: &'static str, name: &str) -> Result<&OptState> {
        self.get(name).ok_or_else(|| {
            Error::invalid(
                op,
                format!("the state has no `{name}`: was it made by this transformation's init?"),
            )
        })
    }
    pub(crate) fn array(&self, op: &'static str, name: &str) -> Result<Array> {
        self.field(op, name)?
            .as_array()
            .cloned()
            .ok_or_else(|| Error::invalid(op, format!("state `{name}` is not a single array")))
    }
    pub(crate) fn per_param(&self, op: &'static str, name: &str, n: usize) -> Result<Vec<Array>> {
        let v = self
            .field(op, name)?
            .as_leaves()
            .ok_or_else(|| Error::invalid(op, format!("state `{name}` is not per-leaf")))?;
        crate::num::check_len(op, &format!("state `{name}`"), n, v.len())?;
        Ok(v.to_vec())
    }
    pub(crate) fn seq(&self, op: &'static str, n: usize) -> Result<&[OptState]> {
        match self.untagged() {
            OptState::Seq(s) if s.len() == n => Ok(s),
            _ => Err(Error::invalid(
                op,
                format!(
                    "expected a state of {n} pieces: was it made by this transformation's init?"
                ),
            )),
        }
    }
}

impl Tree for OptState {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        match self {
            OptState::Empty => {}
            OptState::Leaf(a) => f(path, a),
            OptState::Leaves(v) => {
                for (i, a) in v.iter().enumerate() {
                    path.with(PathElem::Index(i), |p| f(p, a));
                }
            }
            OptState::Node(es) => {
                for (n, s) in es {
                    path.with(PathElem::Field(n), |p| s.visit(p, f));
                }
            }
            OptState::Seq(ss) => {
                for (i, s) in ss.iter().enumerate() {
                    path.with(PathElem::Index(i), |p| s.visit(p, f));
                }
            }
            OptState::Tagged(_, s) => (**s).visit(path, f),
        }
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(match self {
            OptState::Empty => OptState::Empty,
            OptState::Leaf(a) => OptState::Leaf(f(path, a)?),
            OptState::Leaves(v) => OptState::Leaves(
                v.iter()
                    .enumerate()
                    .map(|(i, a)| path.with(PathElem::Index(i), |p| f(p, a)))
                    .collect::<Result<_>>()?,
            ),
            OptState::Node(es) => OptState::Node(
                es.iter()
                    .map(|(n, s)| Ok((*n, path.with(PathElem::Field(n), |p| s.rebuild(p, f))?)))
                    .collect::<Result<_>>()?,
            ),
            OptState::Seq(ss) => OptState::Seq(
                ss.iter()
                    .enumerate()
                    .map(|(i, s)| path.with(PathElem::Index(i), |p| s.rebuild(p, f)))
                    .collect::<Result<_>>()?,
            ),
            OptState::Tagged(n, s) => OptState::Tagged(n, Box::new((**s).rebuild(path, f)?)),
        })
    }
}
