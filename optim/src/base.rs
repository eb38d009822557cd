//! The core abstraction: a [`GradientTransformation`] (`init` + `update` over flattened
//! leaves), the cheap shareable handle [`Transform`] with the typed surface over any
//! [`Tree`], [`apply_updates`], masks by leaf path, and the trivial transformations.
//!
//! Transformations work on flat leaf lists (`Vec<Array>`, plus the leaves' paths for masks)
//! so each is compiled once, not once per model type; the generic part is the thin
//! [`Transform::init`] / [`Transform::update`] layer that flattens and rebuilds a tree.

use crate::num;
use crate::state::OptState;
use ferrax_core::tree::{self, Path, Tree};
use ferrax_core::{Array, Error, Result};
use std::fmt;
use std::sync::Arc;

/// What an update sees besides the incoming updates: the leaf paths (for masks), the
/// current parameters (for weight decay, trust ratios, ...) and, optionally, the loss value
/// (for [`reduce_on_plateau`](crate::reduce_on_plateau)).
#[derive(Clone, Copy, Debug)]
pub struct UpdateCtx<'a> {
    /// The path of each leaf, in leaf order.
    pub paths: &'a [Path],
    /// The current parameters, in leaf order, if the caller passed them.
    pub params: Option<&'a [Array]>,
    /// The current loss value (rank 0), if the caller passed it.
    pub value: Option<&'a Array>,
}

impl<'a> UpdateCtx<'a> {
    /// The parameters, or an error naming `op` (which needs them) if none were passed.
    pub fn params(&self, op: &'static str) -> Result<&'a [Array]> {
        self.params.ok_or_else(|| {
            Error::invalid(
                op,
                "needs the current parameters: pass `Some(&params)` to update",
            )
        })
    }
}

/// An Optax-style gradient transformation over a flat list of leaves.
///
/// `init` builds the state for parameters `params` (with their `paths`); `update` turns
/// incoming updates (gradients, or the output of the previous piece of a chain) into new
/// updates and advances the state. Implementations compute only with ferrax-core ops, so
/// the same code runs eagerly and inside a `#[jit]` trace. On error the state is left as
/// it was.
pub trait GradientTransformation: Send + Sync + fmt::Debug {
    /// The initial state for these parameters.
    fn init(&self, params: &[Array], paths: &[Path]) -> Result<OptState>;
    /// Transforms `updates` and advances `state`.
    fn update(
        &self,
        updates: Vec<Array>,
        state: &mut OptState,
        ctx: &UpdateCtx<'_>,
    ) -> Result<Vec<Array>>;
    /// The transformation's name (`"scale_by_adam"`, `"chain"`, ...): a chain tags each
    /// piece's state with it, so typed views and errors can say which piece is which.
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// A shareable gradient transformation: what every constructor in this crate returns.
///
/// ```
/// use ferrax_optim::{apply_updates, sgd};
/// use ferrax_core::{Tensor, C};
/// let params = Tensor::<(C<2>,)>::from_vec(vec![1.0, 2.0]).unwrap();
/// let grads = Tensor::<(C<2>,)>::from_vec(vec![0.5, -1.0]).unwrap();
/// let tx = sgd(0.1);
/// let mut state = tx.init(&params).unwrap();
/// let updates = tx.update(&grads, &mut state, Some(&params)).unwrap();
/// let params = apply_updates(&params, &updates).unwrap();
/// assert_eq!(params.to_vec().unwrap(), vec![0.95, 2.1]);
/// ```
#[derive(Clone)]
pub struct Transform(Arc<dyn GradientTransformation>);

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Transform {
    /// Wraps a transformation.
    pub fn new(t: impl GradientTransformation + 'static) -> Transform {
        Transform(Arc::new(t))
    }
    /// A transformation from two closures (for custom pieces of a chain).
    pub fn from_fns<I, U>(name: &'static str, init: I, update: U) -> Transform
    where
        I: Fn(&[Array], &[Path]) -> Result<OptState> + Send + Sync + 'static,
        U: Fn(Vec<Array>, &mut OptState, &UpdateCtx<'_>) -> Result<Vec<Array>>
            + Send
            + Sync
            + 'static,
    {
        Transform::new(FnTx { name, init, update })
    }
    /// The transformation's name (see [`GradientTransformation::name`]).
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
    /// The initial state for `params` (any tree).
    pub fn init<T: Tree>(&self, params: &T) -> Result<OptState> {
        let (paths, leaves): (Vec<Path>, Vec<Array>) =
            tree::leaves_with_paths(params).into_iter().unzip();
        self.0.init(&leaves, &paths)
    }
    /// Transforms `grads` (a tree shaped like the parameters) into updates of the same
    /// type, advancing `state`. Add them with [`apply_updates`].
    pub fn update<T: Tree>(
        &self,
        grads: &T,
        state: &mut OptState,
        params: Option<&T>,
    ) -> Result<T> {
        self.update_with_value(grads, state, params, None)
    }
    /// [`Transform::update`] that also passes the loss value (for
    /// [`reduce_on_plateau`](crate::reduce_on_plateau)).
    pub fn update_with_value<T: Tree>(
        &self,
        grads: &T,
        state: &mut OptState,
        params: Option<&T>,
        value: Option<&Array>,
    ) -> Result<T> {
        let (paths, leaves): (Vec<Path>, Vec<Array>) =
            tree::leaves_with_paths(grads).into_iter().unzip();
        let params = params.map(tree::leaves);
        if let Some(p) = &params {
            num::check_len("update", "the parameter tree", leaves.len(), p.len())?;
        }
        let ctx = UpdateCtx {
            paths: &paths,
            params: params.as_deref(),
            value,
        };
        let out = self.0.update(leaves, state, &ctx)?;
        tree::unflatten(grads, out)
    }
    /// The untyped form of [`Transform::init`].
    pub fn init_leaves(&self, params: &[Array], paths: &[Path]) -> Result<OptState> {
        self.0.init(params, paths)
    }
    /// The untyped form of [`Transform::update`].
    pub fn update_leaves(
        &self,
        updates: Vec<Array>,
        state: &mut OptState,
        ctx: &UpdateCtx<'_>,
    ) -> Result<Vec<Array>> {
        self.0.update(updates, state, ctx)
    }
}

/// A transformation made of two closures (see [`Transform::from_fns`]).
struct FnTx<I, U> {
    name: &'static str,
    init: I,
    update: U,
}

impl<I, U> fmt::Debug for FnTx<I, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl<I, U> GradientTransformation for FnTx<I, U>
where
    I: Fn(&[Array], &[Path]) -> Result<OptState> + Send + Sync,
    U: Fn(Vec<Array>, &mut OptState, &UpdateCtx<'_>) -> Result<Vec<Array>> + Send + Sync,
{
    fn init(&self, params: &[Array], paths: &[Path]) -> Result<OptState> {
        (self.init)(params, paths)
    }
    fn update(
        &self,
        updates: Vec<Array>,
        state: &mut OptState,
        ctx: &UpdateCtx<'_>,
    ) -> Result<Vec<Array>> {
        (self.update)(updates, state, ctx)
    }
    fn name(&self) -> &'static str {
        self.name
    }
}

/// A stateless transformation applying `f` to each leaf.
pub(crate) fn stateless_map<F>(name: &'static str, f: F) -> Transform
where
    F: Fn(&Array) -> Result<Array> + Send + Sync + 'static,
{
    Transform::from_fns(
        name,
        |_, _| Ok(OptState::Empty),
        move |u, _, _| u.iter().map(&f).collect(),
    )
}

/// Leaves the updates unchanged (Optax's `identity`).
pub fn identity() -> Transform {
    Transform::from_fns("identity", |_, _| Ok(OptState::Empty), |u, _, _| Ok(u))
}

/// Replaces every update by zeros (freezes the parameters it is applied to; combine with
/// [`multi_transform`](crate::multi_transform) or [`masked`](crate::masked)).
pub fn set_to_zero() -> Transform {
    stateless_map("set_to_zero", |u| Ok(Array::zeros(u.shape(), u.dtype())))
}

/// `params + updates`, leaf by leaf, in the parameters' dtype (Optax's `apply_updates`).
///
/// ```
/// use ferrax_optim::apply_updates;
/// use ferrax_core::{Tensor, C};
/// let p = Tensor::<(C<2>,)>::from_vec(vec![1.0, 2.0]).unwrap();
/// let u = Tensor::<(C<2>,)>::from_vec(vec![0.5, -0.5]).unwrap();
/// assert_eq!(apply_updates(&p, &u).unwrap().to_vec().unwrap(), vec![1.5, 1.5]);
/// ```
pub fn apply_updates<T: Tree>(params: &T, updates: &T) -> Result<T> {
    tree::zip_map(params, updates, |_, p, u| {
        num::add(p, &num::cast(u, p.dtype())?)
    })
}

/// A predicate on leaf paths choosing which leaves a transformation applies to.
///
/// ```
/// use ferrax_optim::Mask;
/// use ferrax_core::tree::{Path, PathElem};
/// let no_bias = Mask::new(|p: &Path| !p.to_string().ends_with('b'));
/// assert!(no_bias.contains(&Path(vec![PathElem::Field("w")])));
/// assert!(!no_bias.contains(&Path(vec![PathElem::Field("b")])));
/// ```
#[derive(Clone)]
pub struct Mask(Arc<dyn Fn(&Path) -> bool + Send + Sync>);

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mask(..)")
    }
}

impl Mask {
    /// A mask from a predicate on the leaf path (`true` = the transformation applies).
    pub fn new(f: impl Fn(&Path) -> bool + Send + Sync + 'static) -> Mask {
        Mask(Arc::new(f))
    }
    /// Every leaf.
    pub fn all() -> Mask {
        Mask::new(|_| true)
    }
    /// Whether the leaf at `path` is selected.
    pub fn contains(&self, path: &Path) -> bool {
        (self.0)(path)
    }
}

impl<F: Fn(&Path) -> bool + Send + Sync + 'static> From<F> for Mask {
    fn from(f: F) -> Mask {
        Mask::new(f)
    }
}
