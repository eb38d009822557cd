//! The [`Module`] trait: a [`Tree`] whose leaves carry a kind ([`VarKind::Param`] or
//! [`VarKind::State`]) and which can be switched between training and evaluation mode.
//! `#[derive(Module)]` implements it; [`Filter`]s select leaves by kind and path (for
//! gradients, optimizers and checkpoints); [`Module::summary`] prints a table.
//!
//! ```
//! # extern crate ferrax_core as ferrax;
//! use ferrax_nn::{Filter, Linear, Module, Rngs};
//!
//! #[derive(Module)]
//! #[module(crate = ferrax_nn)] // users of the `ferrax` facade leave this out
//! struct Mlp {
//!     l1: Linear<4, 8>,
//!     l2: Linear<8, 2>,
//! }
//!
//! # fn main() -> ferrax_core::Result<()> {
//! let mut rngs = Rngs::new(0);
//! let m = Mlp { l1: Linear::new(&mut rngs)?, l2: Linear::new(&mut rngs)? };
//! assert_eq!(m.num_params(), 4 * 8 + 8 + 8 * 2 + 2);
//! let paths: Vec<String> = m.select(&Filter::path("l2")).iter().map(|v| v.path.to_string()).collect();
//! assert_eq!(paths, ["l2.kernel", "l2.bias"]);
//! println!("{}", m.summary());
//! # Ok(())
//! # }
//! ```

use ferrax_core::tree::{Path, PathElem, Tree};
use ferrax_core::{dtype::Elem, random::Key};
use ferrax_core::{Array, Error, Result, Shape, Tensor};
use std::fmt;
use std::sync::Arc;

/// What a leaf of a module is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarKind {
    /// A trained parameter (weights, biases): what gradients and optimizers act on.
    Param,
    /// Non-trained state (batch statistics, counters, caches, PRNG streams).
    State,
}

impl fmt::Display for VarKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarKind::Param => "param",
            VarKind::State => "state",
        })
    }
}

/// One leaf of a module: where it is, what kind it is, and its value.
#[derive(Clone, Debug)]
pub struct Var {
    /// The leaf's path (`l1.kernel`).
    pub path: Path,
    /// Parameter or state.
    pub kind: VarKind,
    /// The value (shares its buffer with the module).
    pub value: Array,
}

/// A tree of variables with kinds and a train/eval mode (Flax NNX's `nnx.Module`).
///
/// Implemented by `#[derive(Module)]`, by the layers of this crate, by tensors (a tensor
/// is one parameter unless its field says otherwise), and by `Vec`, `Option`, `Box`,
/// arrays and tuples of modules. The provided methods are built on the two required ones.
pub trait Module: Tree {
    /// Calls `f` on every leaf, in [`Tree::visit`] order, with its path and kind. `kind`
    /// is the kind imposed by an enclosing field (`#[module(state)]`); `None` lets each
    /// leaf keep its own (tensors: [`VarKind::Param`]).
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    );
    /// Sets training (`true`) or evaluation mode here and in every submodule.
    fn set_training(&mut self, training: bool);

    /// Training mode: dropout drops, batch norm uses and updates batch statistics.
    fn train(&mut self) {
        self.set_training(true)
    }
    /// Evaluation mode: dropout is the identity, batch norm uses its running statistics.
    fn eval(&mut self) {
        self.set_training(false)
    }
    /// Every leaf with its path and kind, in visit order.
    fn vars(&self) -> Vec<Var> {
        let mut out = Vec::new();
        self.visit_vars(&mut Path::default(), None, &mut |p, k, a| {
            out.push(Var {
                path: p.clone(),
                kind: k,
                value: a.clone(),
            })
        });
        out
    }
    /// The leaves `filter` selects.
    fn select(&self, filter: &Filter) -> Vec<Var> {
        self.vars()
            .into_iter()
            .filter(|v| filter.matches(&v.path, v.kind))
            .collect()
    }
    /// One flag per leaf in visit order: whether `filter` selects it (an optimizer mask).
    fn mask(&self, filter: &Filter) -> Vec<bool> {
        self.vars()
            .iter()
            .map(|v| filter.matches(&v.path, v.kind))
            .collect()
    }
    /// Number of parameter elements (state excluded).
    fn num_params(&self) -> usize {
        self.select(&Filter::Param)
            .iter()
            .map(|v| v.value.numel())
            .sum()
    }
    /// A table of every leaf: path, kind, shape, dtype, elements, bytes, with totals per
    /// kind. Print it with `{}`.
    fn summary(&self) -> ModuleSummary {
        ModuleSummary { vars: self.vars() }
    }
    /// A copy where each leaf `filter` selects is replaced by `f(path, kind, leaf)`; the
    /// others are shared. Each new leaf must keep its shape and dtype.
    fn map_vars(
        &self,
        filter: &Filter,
        mut f: impl FnMut(&Path, VarKind, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let kinds: Vec<VarKind> = self.vars().iter().map(|v| v.kind).collect();
        let mut i = 0;
        self.rebuild(&mut Path::default(), &mut |p, a| {
            let k = kinds[i];
            i += 1;
            if filter.matches(p, k) {
                let new = f(p, k, a)?;
                check_same(p, a, &new)?;
                Ok(new)
            } else {
                Ok(a.clone())
            }
        })
    }
    /// Copies into `self` the leaves of `other` (a module of the same structure) that
    /// `filter` selects, e.g. the updated batch statistics of a training step
    /// (`model.update_from(&new, &Filter::State)`, Flax's `nnx.update`).
    fn update_from(&mut self, other: &Self, filter: &Filter) -> Result<()> {
        let theirs = other.vars();
        let mine = self.vars();
        if theirs.len() != mine.len() {
            return Err(Error::Tree(format!(
                "update_from: the modules have {} and {} leaves",
                mine.len(),
                theirs.len()
            )));
        }
        let mut i = 0;
        let new = self.rebuild(&mut Path::default(), &mut |p, a| {
            let (m, t) = (&mine[i], &theirs[i]);
            i += 1;
            if t.path != *p {
                return Err(Error::Tree(format!(
                    "update_from: leaf {} is at {} in the other module",
                    p.describe(),
                    t.path.describe()
                )));
            }
            if filter.matches(p, m.kind) {
                check_same(p, a, &t.value)?;
                Ok(t.value.clone())
            } else {
                Ok(a.clone())
            }
        })?;
        *self = new;
        Ok(())
    }
}

fn check_same(p: &Path, old: &Array, new: &Array) -> Result<()> {
    if old.aval() != new.aval() {
        return Err(Error::Tree(format!(
            "leaf {} is {} but the new value is {}",
            p.describe(),
            old.aval(),
            new.aval()
        )));
    }
    Ok(())
}

/// Selects leaves of a module by kind and path (Flax NNX filters).
///
/// ```
/// use ferrax_nn::{Filter, VarKind};
/// use ferrax_core::tree::{Path, PathElem};
/// let p = Path(vec![PathElem::Field("bn"), PathElem::Field("mean")]);
/// assert!(Filter::State.matches(&p, VarKind::State));
/// assert!(Filter::path("bn").and(Filter::Param.not()).matches(&p, VarKind::State));
/// assert!(!Filter::path("b").matches(&p, VarKind::State)); // whole path elements only
/// assert!(Filter::name("mean").matches(&p, VarKind::State));
/// ```
#[derive(Clone)]
pub enum Filter {
    /// Every leaf.
    All,
    /// No leaf.
    Nothing,
    /// Parameters.
    Param,
    /// State.
    State,
    /// Leaves under a path prefix, compared element by element (`"l1"` or `"layers.0"`).
    PathPrefix(Vec<String>),
    /// Leaves whose last path element is this name (`"bias"`).
    Name(String),
    /// Leaves that every filter selects.
    And(Vec<Filter>),
    /// Leaves that any filter selects.
    Or(Vec<Filter>),
    /// Leaves the filter does not select.
    Not(Box<Filter>),
    /// A predicate.
    Fn(Arc<dyn Fn(&Path, VarKind) -> bool + Send + Sync>),
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => f.write_str("All"),
            Filter::Nothing => f.write_str("Nothing"),
            Filter::Param => f.write_str("Param"),
            Filter::State => f.write_str("State"),
            Filter::PathPrefix(p) => write!(f, "PathPrefix({})", p.join(".")),
            Filter::Name(n) => write!(f, "Name({n})"),
            Filter::And(v) => f.debug_tuple("And").field(v).finish(),
            Filter::Or(v) => f.debug_tuple("Or").field(v).finish(),
            Filter::Not(x) => f.debug_tuple("Not").field(x).finish(),
            Filter::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

impl Filter {
    /// Leaves under `prefix` (dot-separated path elements).
    pub fn path(prefix: &str) -> Filter {
        Filter::PathPrefix(
            prefix
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
    /// Leaves whose last path element is `name`.
    pub fn name(name: &str) -> Filter {
        Filter::Name(name.to_string())
    }
    /// A filter from a predicate.
    pub fn from_fn(f: impl Fn(&Path, VarKind) -> bool + Send + Sync + 'static) -> Filter {
        Filter::Fn(Arc::new(f))
    }
    /// Both filters.
    pub fn and(self, other: Filter) -> Filter {
        Filter::And(vec![self, other])
    }
    /// Either filter.
    pub fn or(self, other: Filter) -> Filter {
        Filter::Or(vec![self, other])
    }
    /// The complement.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
    /// Whether a leaf at `path` of `kind` is selected.
    pub fn matches(&self, path: &Path, kind: VarKind) -> bool {
        match self {
            Filter::All => true,
            Filter::Nothing => false,
            Filter::Param => kind == VarKind::Param,
            Filter::State => kind == VarKind::State,
            Filter::PathPrefix(pre) => {
                pre.len() <= path.0.len()
                    && pre.iter().zip(&path.0).all(|(a, e)| match e {
                        PathElem::Field(n) => a == n,
                        PathElem::Index(i) => a.parse::<usize>().ok() == Some(*i),
                    })
            }
            Filter::Name(n) => path.0.last().is_some_and(|e| e.to_string() == *n),
            Filter::And(v) => v.iter().all(|x| x.matches(path, kind)),
            Filter::Or(v) => v.iter().any(|x| x.matches(path, kind)),
            Filter::Not(x) => !x.matches(path, kind),
            Filter::Fn(f) => f(path, kind),
        }
    }
}

// ---- Module for leaves and containers ---------------------------------------------------

impl<S: Shape, E: Elem> Module for Tensor<S, E> {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        f(path, kind.unwrap_or(VarKind::Param), self.array())
    }
    fn set_training(&mut self, _: bool) {}
}

impl Module for Array {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        f(path, kind.unwrap_or(VarKind::Param), self)
    }
    fn set_training(&mut self, _: bool) {}
}

/// A PRNG key held by a module is state: it is never trained.
impl Module for Key {
    fn visit_vars(
        &self,
        path: &mut Path,
        _: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        f(path, VarKind::State, self.array())
    }
    fn set_training(&mut self, _: bool) {}
}

impl<T: Module> Module for Box<T> {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        (**self).visit_vars(path, kind, f)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
}

impl<T: Module> Module for Option<T> {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        if let Some(t) = self {
            t.visit_vars(path, kind, f)
        }
    }
    fn set_training(&mut self, training: bool) {
        if let Some(t) = self {
            t.set_training(training)
        }
    }
}

impl<T: Module> Module for Vec<T> {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        for (i, t) in self.iter().enumerate() {
            path.with(PathElem::Index(i), |p| t.visit_vars(p, kind, f));
        }
    }
    fn set_training(&mut self, training: bool) {
        self.iter_mut().for_each(|t| t.set_training(training))
    }
}

impl<T: Module, const N: usize> Module for [T; N] {
    fn visit_vars(
        &self,
        path: &mut Path,
        kind: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        for (i, t) in self.iter().enumerate() {
            path.with(PathElem::Index(i), |p| t.visit_vars(p, kind, f));
        }
    }
    fn set_training(&mut self, training: bool) {
        self.iter_mut().for_each(|t| t.set_training(training))
    }
}

impl Module for () {
    fn visit_vars(
        &self,
        _: &mut Path,
        _: Option<VarKind>,
        _: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
    }
    fn set_training(&mut self, _: bool) {}
}

macro_rules! tuple_module {
    ($($T:ident $i:tt),+) => {
        impl<$($T: Module),+> Module for ($($T,)+) {
            fn visit_vars(
                &self,
                path: &mut Path,
                kind: Option<VarKind>,
                f: &mut dyn FnMut(&Path, VarKind, &Array),
            ) {
                $(path.with(PathElem::Index($i), |p| self.$i.visit_vars(p, kind, f));)+
            }
            fn set_training(&mut self, training: bool) {
                $(self.$i.set_training(training);)+
            }
        }
    };
}
tuple_module!(A 0);
tuple_module!(A 0, B 1);
tuple_module!(A 0, B 1, C 2);
tuple_module!(A 0, B 1, C 2, D 3);
tuple_module!(A 0, B 1, C 2, D 3, E 4);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

// ---- summary ----------------------------------------------------------------------------

/// The leaves of a module with their kinds, displayed as a table (path, kind, shape, dtype,
/// elements, bytes) with totals per kind. See [`Module::summary`].
#[derive(Clone, Debug)]
pub struct ModuleSummary {
    vars: Vec<Var>,
}

impl ModuleSummary {
    /// The leaves, in visit order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    /// Elements and bytes of the leaves of `kind` (all leaves for `None`).
    pub fn totals(&self, kind: Option<VarKind>) -> (usize, usize) {
        self.vars
            .iter()
            .filter(|v| kind.is_none_or(|k| v.kind == k))
            .fold((0, 0), |(n, b), v| {
                (
                    n + v.value.numel(),
                    b + v.value.numel() * v.value.dtype().size_bytes(),
                )
            })
    }
}

/// `1234567` as `1,234,567`.
fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(n: usize) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    for unit in ["KiB", "MiB", "GiB"] {
        if x < 1024.0 {
            return format!("{x:.1} {unit}");
        }
        x /= 1024.0;
    }
    format!("{x:.1} TiB")
}

impl fmt::Display for ModuleSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<[String; 6]> =
            vec![["path", "kind", "shape", "dtype", "elements", "bytes"].map(String::from)];
        for v in &self.vars {
            let p = v.path.to_string();
            rows.push([
                if p.is_empty() { "(root)".into() } else { p },
                v.kind.to_string(),
                format!("{:?}", v.value.shape()),
                v.value.dtype().to_string(),
                group_digits(v.value.numel()),
                human_bytes(v.value.numel() * v.value.dtype().size_bytes()),
            ]);
        }
        let totals: Vec<[String; 6]> = [
            ("params", Some(VarKind::Param)),
            ("state", Some(VarKind::State)),
            ("total", None),
        ]
        .iter()
        .map(|(label, k)| {
            let (n, b) = self.totals(*k);
            [
                label.to_string(),
                String::new(),
                String::new(),
                String::new(),
                group_digits(n),
                human_bytes(b),
            ]
        })
        .collect();
        let mut w = [0usize; 6];
        for r in rows.iter().chain(&totals) {
            for (wi, c) in w.iter_mut().zip(r) {
                *wi = (*wi).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, r: &[String; 6]| {
            let s = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}  {:>w5$}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4],
                w5 = w[5]
            );
            writeln!(f, "{}", s.trim_end())
        };
        let rule = "-".repeat(w.iter().sum::<usize>() + 10);
        line(f, &rows[0])?;
        writeln!(f, "{rule}")?;
        for r in &rows[1..] {
            line(f, r)?;
        }
        writeln!(f, "{rule}")?;
        for r in &totals {
            line(f, r)?;
        }
        Ok(())
    }
}
