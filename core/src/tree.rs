//! Trees: structures of tensors (structs, tuples, arrays, `Vec`, `Option`) flattened into
//! leaves with paths (`l1.w`, `layers.3.b`) and rebuilt. Gradients, optimizers and
//! checkpoints all work on trees. `#[derive(Tree)]` implements [`Tree`] for a struct.
//!
//! The core is non-generic: visitors are `dyn FnMut`, so each new tree type adds only a
//! thin flatten/rebuild shim, and every operation here ([`leaves`], [`unflatten`],
//! [`map_leaves`], [`zip_map`], [`tree_summary`], ...) is a few generic lines around a
//! non-generic body.
//!
//! ```
//! # extern crate ferrax_core as ferrax; // what the facade crate `ferrax` provides
//! use ferrax::{tree, Tensor, Tree, C};
//!
//! #[derive(Tree)]
//! struct Linear {
//!     w: Tensor<(C<2>, C<3>)>,
//!     b: Tensor<(C<3>,)>,
//!     #[tree(static)]
//!     name: String,
//! }
//!
//! # fn main() {
//! let l = Linear { w: Tensor::ones(), b: Tensor::zeros(), name: "l1".into() };
//! let paths: Vec<String> = tree::paths(&l).iter().map(|p| p.to_string()).collect();
//! assert_eq!(paths, ["w", "b"]);
//! assert_eq!(tree::numel(&l), 9);
//! # }
//! ```
//!
//! The functions below work on any tree:
//!
//! ```
//! use ferrax_core::{tree, Tensor, C};
//! let t = (Tensor::<(C<2>, C<3>)>::ones(), vec![Tensor::<(C<3>,)>::zeros(); 2]);
//! let paths: Vec<String> = tree::leaves_with_paths(&t)
//!     .iter()
//!     .map(|(p, _)| p.to_string())
//!     .collect();
//! assert_eq!(paths, ["0", "1.0", "1.1"]);
//! assert_eq!(tree::numel(&t), 12);
//! let z = tree::zeros_like(&t);
//! assert_eq!(z.0.to_vec().unwrap(), vec![0.0; 6]);
//! ```

use crate::array::{AVal, Array};
use crate::dtype::{DType, Elem};
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::fmt;
use std::marker::PhantomData;

/// One step of a leaf path: a struct field or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A named field.
    Field(&'static str),
    /// A position in a tuple, array or `Vec`.
    Index(usize),
}

impl fmt::Display for PathElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElem::Field(n) => f.write_str(n),
            PathElem::Index(k) => write!(f, "{k}"),
        }
    }
}

/// The path of a leaf inside a tree, displayed as `l1.w` or `layers.3.b`. The root (a tree
/// that is a single tensor) has the empty path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathElem>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Path {
    /// Runs `f` with `e` pushed onto the path, popping it afterwards.
    pub fn with<R>(&mut self, e: PathElem, f: impl FnOnce(&mut Path) -> R) -> R {
        self.0.push(e);
        let r = f(self);
        self.0.pop();
        r
    }
    /// The path as error messages show it: `` `l1.w` ``, or `the root` for the empty path
    /// (an empty pair of backticks would read as a typo).
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            "the root".to_string()
        } else {
            format!("`{self}`")
        }
    }
}

/// A structure whose leaves are arrays.
///
/// `visit` walks the leaves in a fixed order with their paths; `rebuild` makes a new tree of
/// the same structure from a function that gives each leaf's replacement (in the same
/// order). Every other tree operation (the free functions of this module) is built from
/// these two.
///
/// Implemented for [`Tensor`] and [`Array`] (leaves), tuples up to 8, `[T; N]`, `Vec<T>`,
/// `Option<T>` (`None` has no leaves), `Box<T>`, `()` and `PhantomData<T>` (no leaves), and
/// by `#[derive(Tree)]` for structs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tree of tensors",
    label = "`{Self}` has no tensor leaves",
    note = "trees are tensors, `Array`s, and structs (`#[derive(Tree)]`), tuples, arrays, `Vec`s, `Option`s and `Box`es of trees",
    note = "a struct field holding plain data (a size, a flag, a config) is not a leaf: mark it `#[tree(static)]` to clone it on rebuild instead of visiting it"
)]
pub trait Tree: Sized {
    /// Calls `f` on every leaf, in order, with its path.
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array));
    /// Builds a tree of the same structure whose leaves are `f(path, old_leaf)`, called in
    /// the order of [`Tree::visit`]. The new leaf must fit the leaf's type (a
    /// `Tensor<S, E>` checks dtype `E` and shape `S`; an `Array` leaf takes any array):
    /// an error naming the path otherwise.
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self>;
    /// Feeds what the tree holds besides its leaves' shapes and dtypes, and that changes what
    /// a staged function computes (an optimizer's hyperparameters), into the `#[jit]` cache
    /// key. Containers and `#[derive(Tree)]` structs forward to their subtrees; `#[tree(static)]`
    /// fields are not included.
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        let _ = h;
    }
}

impl<S: Shape, E: Elem> Tree for Tensor<S, E> {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        f(path, self.array())
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let new = f(path, self.array())?;
        Tensor::from_array(new).map_err(|e| Error::Tree(format!("leaf {}: {e}", path.describe())))
    }
}

impl Tree for Array {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        f(path, self)
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        f(path, self)
    }
}

impl<T: Tree> Tree for Box<T> {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        (**self).visit(path, f)
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(Box::new((**self).rebuild(path, f)?))
    }
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        (**self).fingerprint(h)
    }
}

/// `Some(t)` is `t` itself (no path step: an optional submodule's leaves keep the paths
/// they would have if it were not optional); `None` has no leaves and rebuilds as `None`.
impl<T: Tree> Tree for Option<T> {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        if let Some(t) = self {
            t.visit(path, f)
        }
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        self.as_ref().map(|t| t.rebuild(path, f)).transpose()
    }
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        if let Some(x) = self {
            x.fingerprint(h)
        }
    }
}

impl<T: Tree> Tree for Vec<T> {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        for (i, t) in self.iter().enumerate() {
            path.with(PathElem::Index(i), |p| t.visit(p, f));
        }
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        self.iter()
            .enumerate()
            .map(|(i, t)| path.with(PathElem::Index(i), |p| t.rebuild(p, f)))
            .collect()
    }
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        self.iter().for_each(|x| x.fingerprint(h))
    }
}

impl<T: Tree, const N: usize> Tree for [T; N] {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        for (i, t) in self.iter().enumerate() {
            path.with(PathElem::Index(i), |p| t.visit(p, f));
        }
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let v = self
            .iter()
            .enumerate()
            .map(|(i, t)| path.with(PathElem::Index(i), |p| t.rebuild(p, f)))
            .collect::<Result<Vec<T>>>()?;
        Ok(v.try_into()
            .unwrap_or_else(|_| unreachable!("one element rebuilt per element")))
    }
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        self.iter().for_each(|x| x.fingerprint(h))
    }
}

impl Tree for () {
    fn visit(&self, _: &mut Path, _: &mut dyn FnMut(&Path, &Array)) {}
    fn rebuild(
        &self,
        _: &mut Path,
        _: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(())
    }
}

/// No leaves: lets a struct keep a type-level marker without `#[tree(static)]`.
impl<T: ?Sized> Tree for PhantomData<T> {
    fn visit(&self, _: &mut Path, _: &mut dyn FnMut(&Path, &Array)) {}
    fn rebuild(
        &self,
        _: &mut Path,
        _: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(PhantomData)
    }
}

macro_rules! tuple_tree {
    ($($T:ident $i:tt),+) => {
        impl<$($T: Tree),+> Tree for ($($T,)+) {
            fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
                $(path.with(PathElem::Index($i), |p| self.$i.visit(p, f));)+
            }
            fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
                $(self.$i.fingerprint(h);)+
            }
            fn rebuild(
                &self,
                path: &mut Path,
                f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
            ) -> Result<Self> {
                Ok(($(path.with(PathElem::Index($i), |p| self.$i.rebuild(p, f))?,)+))
            }
        }
    };
}
tuple_tree!(A 0);
tuple_tree!(A 0, B 1);
tuple_tree!(A 0, B 1, C 2);
tuple_tree!(A 0, B 1, C 2, D 3);
tuple_tree!(A 0, B 1, C 2, D 3, E 4);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

// ---- operations on any tree -------------------------------------------------------------

/// Calls `f` on every leaf of `t` with its path from the root.
pub fn for_each_leaf<T: Tree>(t: &T, mut f: impl FnMut(&Path, &Array)) {
    t.visit(&mut Path::default(), &mut f)
}

/// Rebuilds `t` from the root with `f` giving each new leaf (see [`Tree::rebuild`]).
fn rebuild_root<T: Tree>(t: &T, f: &mut dyn FnMut(&Path, &Array) -> Result<Array>) -> Result<T> {
    t.rebuild(&mut Path::default(), f)
}

/// The leaves of `t` in visit order (cheap: arrays share their buffers).
///
/// ```
/// use ferrax_core::{tree, Tensor, C};
/// let t = [Tensor::<(C<2>,)>::ones(), Tensor::<(C<2>,)>::zeros()];
/// assert_eq!(tree::leaves(&t).len(), 2);
/// ```
pub fn leaves<T: Tree>(t: &T) -> Vec<Array> {
    let mut out = Vec::new();
    for_each_leaf(t, |_, a| out.push(a.clone()));
    out
}

/// The leaves of `t` with their paths, in visit order.
pub fn leaves_with_paths<T: Tree>(t: &T) -> Vec<(Path, Array)> {
    let mut out = Vec::new();
    for_each_leaf(t, |p, a| out.push((p.clone(), a.clone())));
    out
}

/// The paths of the leaves of `t`, in visit order.
pub fn paths<T: Tree>(t: &T) -> Vec<Path> {
    let mut out = Vec::new();
    for_each_leaf(t, |p, _| out.push(p.clone()));
    out
}

/// The shapes and dtypes of the leaves of `t`, with their paths.
pub fn avals_with_paths<T: Tree>(t: &T) -> Vec<(Path, AVal)> {
    let mut out = Vec::new();
    for_each_leaf(t, |p, a| out.push((p.clone(), a.aval().clone())));
    out
}

/// How many leaves `t` has.
pub fn leaf_count<T: Tree>(t: &T) -> usize {
    fold(t, 0, |n, _, _| n + 1)
}

/// Total element count of the leaves (the parameter count of a model).
pub fn numel<T: Tree>(t: &T) -> usize {
    fold(t, 0, |n, _, a| n + a.numel())
}

/// Total size of the leaves' elements in bytes.
pub fn size_bytes<T: Tree>(t: &T) -> usize {
    fold(t, 0, |n, _, a| n + a.numel() * a.dtype().size_bytes())
}

/// Folds `f` over the leaves in visit order, starting from `init` (JAX's `tree_reduce`).
///
/// ```
/// use ferrax_core::{tree, Tensor, C};
/// let t = (Tensor::<(C<2>, C<3>)>::ones(), Tensor::<(C<4>,)>::ones());
/// let biggest = tree::fold(&t, 0, |m, _, a| m.max(a.numel()));
/// assert_eq!(biggest, 6);
/// ```
pub fn fold<T: Tree, A>(t: &T, init: A, mut f: impl FnMut(A, &Path, &Array) -> A) -> A {
    // The accumulator moves through an `Option` because `visit` lends each leaf to an
    // `FnMut` that cannot return a value.
    let mut acc = Some(init);
    for_each_leaf(t, |p, a| {
        let cur = acc.take().expect("accumulator present between leaves");
        acc = Some(f(cur, p, a));
    });
    acc.expect("accumulator present after the last leaf")
}

/// Like [`fold`] with a fallible `f` (one that runs ops): stops at the first error.
pub fn try_fold<T: Tree, A>(
    t: &T,
    init: A,
    mut f: impl FnMut(A, &Path, &Array) -> Result<A>,
) -> Result<A> {
    fold(t, Ok(init), |acc, p, a| acc.and_then(|acc| f(acc, p, a)))
}

/// A tree of `t`'s structure whose leaves are `f(path, leaf)` (JAX's `tree_map`). Each new
/// leaf must fit the leaf's type; otherwise the error names the path.
///
/// ```
/// use ferrax_core::{tree, Array, Tensor, C};
/// let t = (Tensor::<(C<2>,)>::ones(), Tensor::<(C<3>,)>::ones());
/// let z = tree::map_leaves(&t, |_, a| Ok(Array::full(a.shape(), a.dtype(), 7.0))).unwrap();
/// assert_eq!(z.1.to_vec().unwrap(), vec![7.0; 3]);
/// ```
#[doc(alias = "tree_map")]
pub fn map_leaves<T: Tree>(t: &T, mut f: impl FnMut(&Path, &Array) -> Result<Array>) -> Result<T> {
    rebuild_root(t, &mut f)
}

/// Zeros of each leaf's shape and dtype, in `t`'s structure.
pub fn zeros_like<T: Tree>(t: &T) -> T {
    rebuild_root(t, &mut |_, a| Ok(Array::zeros(a.shape(), a.dtype())))
        .expect("zeros of each leaf's own shape and dtype fit its type")
}

/// Rebuilds a tree of `template`'s structure from `leaves` in visit order (the inverse of
/// [`leaves`]). The count must match and every leaf must have the dtype and shape of the
/// template's leaf at its position; an error names the path and both shapes otherwise.
///
/// ```
/// use ferrax_core::{tree, Tensor, C};
/// let t = (Tensor::<(C<2>,)>::ones(), Tensor::<(C<3>,)>::zeros());
/// let back: (Tensor<(C<2>,)>, Tensor<(C<3>,)>) = tree::unflatten(&t, tree::leaves(&t)).unwrap();
/// assert_eq!(back.0.to_vec().unwrap(), vec![1.0, 1.0]);
/// assert!(tree::unflatten(&t, vec![]).is_err());
/// ```
pub fn unflatten<T: Tree>(template: &T, leaves: Vec<Array>) -> Result<T> {
    let expected = leaf_count(template);
    if leaves.len() != expected {
        return Err(Error::Tree(format!(
            "unflatten: the template has {expected} leaves but {} were given",
            leaves.len()
        )));
    }
    let mut it = leaves.into_iter();
    rebuild_root(template, &mut |p, old| {
        let new = it.next().expect("leaf count checked above");
        check_same_aval("unflatten", "the template's", p, old, &new)?;
        Ok(new)
    })
}

/// A tree of `a`'s structure whose leaves are `f(path, leaf_of_a, leaf_of_b)`: `b` must
/// have the same structure (the same leaves at the same paths with the same shapes).
///
/// ```
/// use ferrax_core::{tree, Tensor, C};
/// let p = (Tensor::<(C<2>,)>::ones(), Tensor::<(C<3>,)>::ones());
/// let g = tree::map_leaves(&p, |_, a| Ok(a.clone())).unwrap();
/// let n = tree::zip_map(&p, &g, |_, x, _y| Ok(x.clone())).unwrap();
/// assert_eq!(tree::numel(&n), 5);
/// ```
pub fn zip_map<T: Tree>(
    a: &T,
    b: &T,
    mut f: impl FnMut(&Path, &Array, &Array) -> Result<Array>,
) -> Result<T> {
    let bl = leaves_with_paths(b);
    let n = leaf_count(a);
    if bl.len() != n {
        return Err(Error::Tree(format!(
            "zip_map: the first tree has {n} leaves, the second {}",
            bl.len()
        )));
    }
    let mut it = bl.into_iter();
    rebuild_root(a, &mut |p, x| {
        let (bp, y) = it.next().expect("leaf count checked above");
        if bp != *p {
            return Err(Error::Tree(format!(
                "zip_map: the trees differ in structure: a leaf at {} in the first tree is at \
                 {} in the second",
                p.describe(),
                bp.describe()
            )));
        }
        if x.shape() != y.shape() {
            return Err(Error::Tree(format!(
                "zip_map: leaf {} has shape {:?} in the first tree but {:?} in the second",
                p.describe(),
                x.shape(),
                y.shape()
            )));
        }
        f(p, x, &y)
    })
}

/// Checks that `new` has `old`'s dtype and shape; the error names the op, the path and both.
fn check_same_aval(op: &str, whose: &str, path: &Path, old: &Array, new: &Array) -> Result<()> {
    if new.shape() != old.shape() {
        return Err(Error::Tree(format!(
            "{op}: leaf {} has shape {:?} but {whose} leaf there has shape {:?}",
            path.describe(),
            new.shape(),
            old.shape()
        )));
    }
    if new.dtype() != old.dtype() {
        return Err(Error::Tree(format!(
            "{op}: leaf {} has dtype {} but {whose} leaf there has dtype {}",
            path.describe(),
            new.dtype(),
            old.dtype()
        )));
    }
    Ok(())
}

// ---- summary ----------------------------------------------------------------------------

/// One leaf of a [`TreeSummary`].
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Where the leaf sits.
    pub path: Path,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
}

impl SummaryRow {
    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }
}

/// The shapes, dtypes and sizes of a tree's leaves, displayed as an indented table with
/// per-node subtotals and a totals line (like a pytree visualizer or a model summary).
///
/// ```
/// use ferrax_core::{tree, Tensor, C};
/// let t = (Tensor::<(C<2>, C<3>)>::ones(), vec![Tensor::<(C<3>,)>::ones()]);
/// let s = tree::tree_summary(&t);
/// assert_eq!(s.numel(), 9);
/// let text = s.to_string();
/// assert!(text.contains("[2, 3]"));
/// assert!(text.contains("total (2 leaves)"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TreeSummary {
    rows: Vec<SummaryRow>,
}

/// Summarizes the leaves of `t` (see [`TreeSummary`]); print it with `{}`.
pub fn tree_summary<T: Tree>(t: &T) -> TreeSummary {
    let mut rows = Vec::new();
    for_each_leaf(t, |p, a| {
        rows.push(SummaryRow {
            path: p.clone(),
            shape: a.shape().to_vec(),
            dtype: a.dtype(),
        })
    });
    TreeSummary { rows }
}

impl TreeSummary {
    /// The leaves, in visit order.
    pub fn rows(&self) -> &[SummaryRow] {
        &self.rows
    }
    /// Number of leaves.
    pub fn leaf_count(&self) -> usize {
        self.rows.len()
    }
    /// Total element count.
    pub fn numel(&self) -> usize {
        self.rows.iter().map(SummaryRow::numel).sum()
    }
    /// Total bytes.
    pub fn size_bytes(&self) -> usize {
        self.rows.iter().map(SummaryRow::bytes).sum()
    }

    /// The table's lines as cells: (indent, name, shape, dtype, elements, bytes). Interior
    /// nodes get a line of their own, before their first leaf, with their subtree's totals.
    fn lines(&self) -> Vec<[String; 5]> {
        let mut out = Vec::new();
        let mut prev: &[PathElem] = &[];
        for (i, row) in self.rows.iter().enumerate() {
            let path = &row.path.0;
            if path.is_empty() {
                out.push(leaf_cells("(root)".into(), row));
                prev = path;
                continue;
            }
            let common = path.iter().zip(prev).take_while(|(a, b)| a == b).count();
            // Interior nodes of this leaf not already opened by the previous leaf.
            for d in common.min(path.len() - 1)..path.len() - 1 {
                let prefix = &path[..=d];
                let (n, bytes) = self.rows[i..]
                    .iter()
                    .take_while(|r| r.path.0.starts_with(prefix))
                    .fold((0, 0), |(n, b), r| (n + r.numel(), b + r.bytes()));
                out.push([
                    format!("{}{}", "  ".repeat(d), path[d]),
                    String::new(),
                    String::new(),
                    group_digits(n),
                    human_bytes(bytes),
                ]);
            }
            let name = format!("{}{}", "  ".repeat(path.len() - 1), path[path.len() - 1]);
            out.push(leaf_cells(name, row));
            prev = path;
        }
        out
    }
}

fn leaf_cells(name: String, row: &SummaryRow) -> [String; 5] {
    [
        name,
        format!("{:?}", row.shape),
        row.dtype.to_string(),
        group_digits(row.numel()),
        human_bytes(row.bytes()),
    ]
}

/// `1234567` as `1,234,567`: parameter counts are read by eye.
fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in B / KiB / MiB / GiB with one decimal above a KiB.
fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

impl fmt::Display for TreeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = ["path", "shape", "dtype", "elements", "bytes"].map(String::from);
        let leaves = self.leaf_count();
        let total = [
            format!(
                "total ({leaves} lea{})",
                if leaves == 1 { "f" } else { "ves" }
            ),
            String::new(),
            String::new(),
            group_digits(self.numel()),
            human_bytes(self.size_bytes()),
        ];
        let body = self.lines();
        let mut w = [0usize; 5];
        for line in std::iter::once(&header).chain(&body).chain([&total]) {
            for (wi, cell) in w.iter_mut().zip(line).skip(1) {
                *wi = (*wi).max(cell.chars().count());
            }
        }
        for line in std::iter::once(&header).chain(&body) {
            w[0] = w[0].max(line[0].chars().count());
        }
        // The totals label spans the name, shape and dtype columns.
        w[0] = w[0].max(total[0].chars().count().saturating_sub(w[1] + w[2] + 4));
        let width = w.iter().sum::<usize>() + 2 * (w.len() - 1);
        let write_line = |f: &mut fmt::Formatter<'_>, c: &[String; 5]| {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
                c[0],
                c[1],
                c[2],
                c[3],
                c[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4]
            );
            writeln!(f, "{}", line.trim_end())
        };
        write_line(f, &header)?;
        writeln!(f, "{}", "-".repeat(width))?;
        for line in &body {
            write_line(f, line)?;
        }
        writeln!(f, "{}", "-".repeat(width))?;
        let line = format!(
            "{:<w012$}  {:>w3$}  {:>w4$}",
            total[0],
            total[3],
            total[4],
            w012 = w[0] + w[1] + w[2] + 4,
            w3 = w[3],
            w4 = w[4]
        );
        write!(f, "{}", line.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_bytes() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
