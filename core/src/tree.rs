//! Trees: structures of tensors (structs, tuples, arrays, `Vec`, `Option`) flattened into
//! leaves with paths (`l1.w`, `layers.3.b`) and rebuilt. Gradients, optimizers and
//! checkpoints all work on trees. `#[derive(Tree)]` implements [`Tree`] for a struct.
//!
//! The core is non-generic: visitors are `dyn FnMut`, so each new tree type adds only a
//! thin flatten/rebuild shim.

use crate::array::Array;
use crate::dtype::Elem;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::fmt;

/// One step of a leaf path: a struct field or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A named field.
    Field(&'static str),
    /// A position in a tuple, array or `Vec`.
    Index(usize),
}

/// The path of a leaf inside a tree, displayed as `l1.w` or `layers.3.b`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathElem>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match e {
                PathElem::Field(n) => f.write_str(n)?,
                PathElem::Index(k) => write!(f, "{k}")?,
            }
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
}

/// A structure whose leaves are arrays.
///
/// `visit` walks the leaves in a fixed order with their paths; `rebuild` makes a new tree of
/// the same structure from a function that gives each leaf's replacement (in the same
/// order). Every other tree operation is built from these two.
pub trait Tree: Sized {
    /// Calls `f` on every leaf, in order, with its path.
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array));
    /// Builds a tree of the same structure whose leaves are `f(path, old_leaf)`; the new
    /// leaf must have the old leaf's dtype and fit its type (an error otherwise).
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self>;
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
        Tensor::from_array(new).map_err(|e| Error::Tree(format!("leaf `{path}`: {e}")))
    }
}
