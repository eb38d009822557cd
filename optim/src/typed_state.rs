//! Typed views of an [`OptState`]: a transformation's state as a struct whose per-parameter
//! fields have the parameters' own type (Optax's `ScaleByAdamState(count, mu, nu)`), read
//! from a chain by position or by transformation name. See the [`OptState`] module docs
//! for why the engine keeps a dynamic state and how these views relate to it.

use crate::state::OptState;
use ferrax_core::tree::{self, Tree};
use ferrax_core::{Array, Error, Result};

/// A typed view of one transformation's state (implemented by [`ScaleByAdamState`],
/// [`TraceState`], ...). Read one with [`OptState::typed`], [`OptState::piece`],
/// [`OptState::piece_by_name`] or [`OptState::find_typed`].
pub trait TypedState: Sized {
    /// The parameter tree the per-parameter fields are rebuilt into.
    type Params: Tree;
    /// The type's name, as in Optax (used in errors).
    const NAME: &'static str;
    /// The state node's fields, in order.
    const FIELDS: &'static [&'static str];
    /// The transformations whose state has this type.
    const MADE_BY: &'static [&'static str];
    /// Reads the fields from a node already checked to have exactly [`Self::FIELDS`].
    fn from_fields(op: &'static str, state: &OptState, like: &Self::Params) -> Result<Self>;
}

fn field_names(s: &OptState) -> Vec<&'static str> {
    match s.untagged() {
        OptState::Node(es) => es.iter().map(|(n, _)| *n).collect(),
        _ => Vec::new(),
    }
}

/// A short description of a state for errors: what made it and what it holds.
pub(crate) fn describe(s: &OptState) -> String {
    let body = match s.untagged() {
        OptState::Empty => "stateless".to_string(),
        OptState::Leaf(a) => format!("a single {} array of shape {:?}", a.dtype(), a.shape()),
        OptState::Leaves(v) => format!("{} per-parameter arrays", v.len()),
        OptState::Node(_) => format!("fields {}", field_names(s).join(", ")),
        OptState::Seq(ss) => {
            let names: Vec<String> = ss
                .iter()
                .map(|p| p.transform_name().unwrap_or("untagged").to_string())
                .collect();
            format!("a chain of {} pieces: {}", ss.len(), names.join(", "))
        }
        OptState::Tagged(..) => unreachable!("untagged() strips every tag"),
    };
    match s.transform_name() {
        Some(n) => format!("`{n}` ({body})"),
        None => format!("a state with {body}"),
    }
}

/// `name` as one array (a step counter), for [`TypedState::from_fields`].
pub(crate) fn count_field(op: &'static str, ty: &str, s: &OptState, name: &str) -> Result<Array> {
    s.get(name)
        .and_then(|f| f.as_array())
        .cloned()
        .ok_or_else(|| {
            Error::invalid(
                op,
                format!(
                    "{ty}.{name}: expected a single array, found {}",
                    describe_opt(s.get(name))
                ),
            )
        })
}

fn describe_opt(s: Option<&OptState>) -> String {
    s.map_or_else(|| "nothing".to_string(), describe)
}

/// The per-parameter arrays of field `name` rebuilt into `like`'s type.
pub(crate) fn tree_field<T: Tree>(
    op: &'static str,
    ty: &str,
    s: &OptState,
    name: &str,
    like: &T,
) -> Result<T> {
    leaves_into(op, &format!("{ty}.{name}"), s.get(name), like)
}

/// `found`'s per-parameter arrays rebuilt into `like`'s type; `label` names it in errors.
fn leaves_into<T: Tree>(
    op: &'static str,
    label: &str,
    found: Option<&OptState>,
    like: &T,
) -> Result<T> {
    let leaves = found.and_then(|f| f.as_leaves()).ok_or_else(|| {
        Error::invalid(
            op,
            format!(
                "{label}: expected per-parameter arrays, found {}",
                describe_opt(found)
            ),
        )
    })?;
    let n = tree::leaf_count(like);
    if leaves.len() != n {
        return Err(Error::invalid(
            op,
            format!(
                "{label} holds {} arrays but the parameters given have {n} leaves \
                 (is this the tree the optimizer was initialized with, and not a masked subset?)",
                leaves.len()
            ),
        ));
    }
    tree::unflatten(like, leaves.to_vec())
        .map_err(|e| Error::invalid(op, format!("{label} does not fit the parameters: {e}")))
}

/// Checks that `s` is a state of `S` (made by one of its transformations, with its fields)
/// and reads it.
fn view<S: TypedState>(op: &'static str, s: &OptState, like: &S::Params) -> Result<S> {
    if let Some(made_by) = s.transform_name() {
        if !S::MADE_BY.contains(&made_by) {
            return Err(Error::invalid(
                op,
                format!(
                    "found {}, which is not a {} (the state of {})",
                    describe(s),
                    S::NAME,
                    S::MADE_BY.join(", ")
                ),
            ));
        }
    }
    if field_names(s) != S::FIELDS {
        return Err(Error::invalid(
            op,
            format!(
                "found {}, but a {} has fields {}",
                describe(s),
                S::NAME,
                S::FIELDS.join(", ")
            ),
        ));
    }
    S::from_fields(op, s, like)
}

impl OptState {
    /// The pieces of the chain in this state: the state itself when it is a chain's, else
    /// the first chain below it, depth first (e.g. under `inject_hyperparams`' `inner`).
    pub fn chain_pieces(&self) -> Option<&[OptState]> {
        match self.untagged() {
            OptState::Seq(ss) if ss.iter().all(|p| p.transform_name().is_some()) => Some(ss),
            OptState::Seq(ss) => ss.iter().find_map(|s| s.chain_pieces()),
            OptState::Node(es) => es.iter().find_map(|(_, s)| s.chain_pieces()),
            _ => None,
        }
    }

    /// This state viewed as `S` (a bare transformation's state, or one piece).
    ///
    /// ```
    /// use ferrax_optim::{scale_by_adam, AdamConfig, ScaleByAdamState};
    /// use ferrax_core::{Tensor, C};
    /// let w = Tensor::<(C<2>,)>::ones();
    /// let st = scale_by_adam(AdamConfig::default()).init(&w).unwrap();
    /// let s: ScaleByAdamState<Tensor<(C<2>,)>> = st.typed(&w).unwrap();
    /// assert_eq!(s.mu.to_vec().unwrap(), vec![0.0, 0.0]);
    /// ```
    pub fn typed<S: TypedState>(&self, like: &S::Params) -> Result<S> {
        view("OptState::typed", self, like)
    }

    /// Piece `i` of the chain (see [`OptState::chain_pieces`]) viewed as `S`.
    ///
    /// ```
    /// use ferrax_optim::{adam, ScaleByAdamState};
    /// use ferrax_core::{Tensor, C};
    /// let w = Tensor::<(C<3>,)>::ones();
    /// let st = adam(0.1).init(&w).unwrap(); // chain(scale_by_adam, scale_by_learning_rate)
    /// let s: ScaleByAdamState<_> = st.piece(0, &w).unwrap();
    /// assert_eq!(s.count.to_vec::<i32>().unwrap(), vec![0]);
    /// assert!(st.piece::<ScaleByAdamState<_>>(1, &w).is_err()); // the learning-rate piece
    /// ```
    pub fn piece<S: TypedState>(&self, i: usize, like: &S::Params) -> Result<S> {
        const OP: &str = "OptState::piece";
        let pieces = self.chain_pieces().ok_or_else(|| {
            Error::invalid(
                OP,
                format!("no chain in this state: found {}", describe(self)),
            )
        })?;
        let p = pieces.get(i).ok_or_else(|| {
            Error::invalid(
                OP,
                format!(
                    "piece {i} asked for a {}, but the chain has {} pieces ({})",
                    S::NAME,
                    pieces.len(),
                    piece_names(pieces)
                ),
            )
        })?;
        view(OP, p, like).map_err(|e| Error::invalid(OP, format!("piece {i}: {}", strip_op(&e))))
    }

    /// The first piece (anywhere in the state, depth first) made by the transformation
    /// called `transform`, viewed as `S`.
    pub fn piece_by_name<S: TypedState>(&self, transform: &str, like: &S::Params) -> Result<S> {
        const OP: &str = "OptState::piece_by_name";
        let p = self.find_piece(&|n| n == transform).ok_or_else(|| {
            Error::invalid(
                OP,
                format!(
                    "no piece made by `{transform}`; the pieces are: {}",
                    all_piece_names(self)
                ),
            )
        })?;
        view(OP, p, like)
    }

    /// The first piece (anywhere, depth first) made by one of `S`'s transformations
    /// ([`TypedState::MADE_BY`]), viewed as `S`; a bare transformation's own state too.
    pub fn find_typed<S: TypedState>(&self, like: &S::Params) -> Result<S> {
        const OP: &str = "OptState::find_typed";
        if self.transform_name().is_none() && field_names(self) == S::FIELDS {
            return view(OP, self, like);
        }
        let p = self
            .find_piece(&|n| S::MADE_BY.contains(&n))
            .ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!(
                        "no {} (the state of {}) in this state; the pieces are: {}",
                        S::NAME,
                        S::MADE_BY.join(", "),
                        all_piece_names(self)
                    ),
                )
            })?;
        view(OP, p, like)
    }

    /// The per-parameter field `name` (the first one found, depth first: `"mu"`, `"nu"`,
    /// `"trace"`, ...) rebuilt into the parameters' type.
    ///
    /// ```
    /// use ferrax_optim::{adam, apply_updates};
    /// use ferrax_core::{Tensor, C};
    /// let w = Tensor::<(C<2>,)>::from_vec(vec![1.0, -2.0]).unwrap();
    /// let tx = adam(0.1);
    /// let mut st = tx.init(&w).unwrap();
    /// let g = Tensor::<(C<2>,)>::from_vec(vec![0.5, 1.0]).unwrap();
    /// tx.update(&g, &mut st, Some(&w)).unwrap();
    /// let mu: Tensor<(C<2>,)> = st.tree("mu", &w).unwrap(); // (1 - b1) * g
    /// assert_eq!(mu.to_vec().unwrap(), vec![0.05, 0.1]);
    /// assert!(st.tree("velocity", &w).is_err());
    /// ```
    pub fn tree<T: Tree>(&self, name: &str, like: &T) -> Result<T> {
        const OP: &str = "OptState::tree";
        let found = self.find(name).ok_or_else(|| {
            Error::invalid(
                OP,
                format!(
                    "no field `{name}` in this state; its fields are: {}",
                    all_field_names(self).join(", ")
                ),
            )
        })?;
        leaves_into(OP, &format!("`{name}`"), Some(found), like)
    }

    fn find_piece(&self, pred: &dyn Fn(&str) -> bool) -> Option<&OptState> {
        if self.transform_name().is_some_and(pred) {
            return Some(self);
        }
        match self.untagged() {
            OptState::Seq(ss) => ss.iter().find_map(|s| s.find_piece(pred)),
            OptState::Node(es) => es.iter().find_map(|(_, s)| s.find_piece(pred)),
            _ => None,
        }
    }
}

fn piece_names(pieces: &[OptState]) -> String {
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i}: {}", describe(p)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn all_piece_names(s: &OptState) -> String {
    fn walk(s: &OptState, out: &mut Vec<&'static str>) {
        if let Some(n) = s.transform_name() {
            out.push(n);
        }
        match s.untagged() {
            OptState::Seq(ss) => ss.iter().for_each(|c| walk(c, out)),
            OptState::Node(es) => es.iter().for_each(|(_, c)| walk(c, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(s, &mut out);
    if out.is_empty() {
        "none (this state is not a chain's)".to_string()
    } else {
        out.join(", ")
    }
}

fn all_field_names(s: &OptState) -> Vec<&'static str> {
    fn walk(s: &OptState, out: &mut Vec<&'static str>) {
        match s.untagged() {
            OptState::Seq(ss) => ss.iter().for_each(|c| walk(c, out)),
            OptState::Node(es) => {
                for (n, c) in es {
                    if !out.contains(n) {
                        out.push(n);
                    }
                    walk(c, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(s, &mut out);
    out
}

/// The message of an `Invalid` error without its op (to re-wrap it under another op).
fn strip_op(e: &Error) -> String {
    match e {
        Error::Invalid { msg, .. } => msg.clone(),
        e => e.to_string(),
    }
}

macro_rules! typed_state {
    (
        $(#[$meta:meta])*
        $name:ident made by [$($made_by:literal),+] { $([$count:ident])? $($field:ident),+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $name<T> {
            $(
                /// The transformation's step count (rank-0 `i32`).
                pub $count: Array,
            )?
            $(
                #[doc = concat!("`", stringify!($field), "`, one array per parameter, in the parameters' type.")]
                pub $field: T,
            )+
        }

        impl<T: Tree> TypedState for $name<T> {
            type Params = T;
            const NAME: &'static str = stringify!($name);
            const FIELDS: &'static [&'static str] = &[$(stringify!($count),)? $(stringify!($field)),+];
            const MADE_BY: &'static [&'static str] = &[$($made_by),+];
            fn from_fields(op: &'static str, s: &OptState, like: &T) -> Result<Self> {
                Ok($name {
                    $($count: count_field(op, Self::NAME, s, stringify!($count))?,)?
                    $($field: tree_field(op, Self::NAME, s, stringify!($field), like)?,)+
                })
            }
        }
    };
}

typed_state! {
    /// The state of Adam and the Adam family (Optax's `ScaleByAdamState`, which Optax's
    /// adamax, yogi and radam share; ferrax's belief and stddev states have the same fields
    /// and read as this type too). `mu` is stored in `AdamConfig::mu_dtype` when set, so a
    /// typed view then needs parameters of that dtype.
    ScaleByAdamState made by [
        "scale_by_adam", "scale_by_adamax", "scale_by_yogi", "scale_by_radam",
        "scale_by_belief", "scale_by_stddev"
    ] { [count] mu, nu }
}

typed_state! {
    /// The state of AMSGrad (Optax's `ScaleByAmsgradState`).
    ScaleByAmsgradState made by ["scale_by_amsgrad"] { [count] mu, nu, nu_max }
}

typed_state! {
    /// The state of Lion (Optax's `ScaleByLionState`).
    ScaleByLionState made by ["scale_by_lion"] { [count] mu }
}

typed_state! {
    /// The state of RMSProp's rescaling (Optax's `ScaleByRmsState` with its count).
    ScaleByRmsState made by ["scale_by_rms"] { [count] nu }
}

typed_state! {
    /// The state of momentum (Optax's `TraceState`).
    TraceState made by ["trace"] { trace }
}

typed_state! {
    /// The state of an exponential moving average (Optax's `EmaState`).
    EmaState made by ["ema"] { [count] ema }
}

typed_state! {
    /// The state of AdaGrad's accumulator (Optax's `ScaleByRssState`).
    ScaleByRssState made by ["scale_by_rss"] { sum_of_squares }
}

typed_state! {
    /// The state of AdaDelta (Optax's `ScaleByAdaDeltaState`).
    ScaleByAdaDeltaState made by ["scale_by_adadelta"] { e_g, e_x }
}
