//! Restoring saved leaves into a target tree: structure, shape and dtype checks that name
//! the leaf's path, optional dtype casts, and partial restore of a sub-tree.

use crate::error::{Error, Result};
use ferrax_core::{prim::convert::convert, tree, Array, Path, Tree};
use std::collections::{HashMap, HashSet};

/// How to match saved leaves to a target tree.
///
/// ```
/// use ferrax_checkpoint::RestoreOptions;
/// // Restore the model half of a saved `(model, optimizer_state)` tuple, converting dtypes.
/// let opts = RestoreOptions::default().subtree("0").cast(true);
/// assert_eq!(opts.prefix(), Some("0"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    prefix: Option<String>,
    cast: bool,
    partial: bool,
}

impl RestoreOptions {
    /// Restore the saved sub-tree at path `prefix` (e.g. `"0"` for the first element of a
    /// saved tuple, `"encoder.layers"`): the target's leaf at path `p` reads the saved leaf
    /// `prefix.p`. Saved leaves outside the prefix are ignored.
    pub fn subtree(mut self, prefix: impl Into<String>) -> Self {
        let p = prefix.into();
        self.prefix = (!p.is_empty()).then_some(p);
        self
    }
    /// Convert a saved leaf to the target's dtype when they differ (otherwise a mismatch is
    /// an error).
    pub fn cast(mut self, yes: bool) -> Self {
        self.cast = yes;
        self
    }
    /// Allow the checkpoint (or the sub-tree) to have leaves the target lacks; they are not
    /// read into memory.
    pub fn partial(mut self, yes: bool) -> Self {
        self.partial = yes;
        self
    }
    /// The sub-tree prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The saved name of the target's leaf at `p`.
    pub(crate) fn saved_name(&self, p: &str) -> String {
        match (&self.prefix, p.is_empty()) {
            (None, _) => p.to_string(),
            (Some(pre), true) => pre.clone(),
            (Some(pre), false) => format!("{pre}.{p}"),
        }
    }

    fn in_scope(&self, saved: &str) -> bool {
        match &self.prefix {
            None => true,
            Some(pre) => {
                saved == pre
                    || (saved.len() > pre.len()
                        && saved.starts_with(pre.as_str())
                        && saved.as_bytes()[pre.len()] == b'.')
            }
        }
    }

    /// Checks the leaf names (before any data is read) and returns the saved names to load.
    pub(crate) fn plan<T: Tree>(&self, target: &T, saved: &[&str]) -> Result<HashSet<String>> {
        let wanted: HashSet<String> = tree::paths(target)
            .iter()
            .map(|p| self.saved_name(&p.to_string()))
            .collect();
        let saved_set: HashSet<&str> = saved.iter().copied().collect();
        if let Some(missing) = tree::paths(target)
            .iter()
            .map(|p| self.saved_name(&p.to_string()))
            .find(|n| !saved_set.contains(n.as_str()))
        {
            return Err(Error::MissingLeaf {
                path: missing,
                saved_sample: saved.iter().take(8).map(|s| s.to_string()).collect(),
            });
        }
        if !self.partial {
            let extra: Vec<String> = saved
                .iter()
                .filter(|s| self.in_scope(s) && !wanted.contains(**s))
                .map(|s| s.to_string())
                .collect();
            if !extra.is_empty() {
                return Err(Error::UnexpectedLeaves { paths: extra });
            }
        }
        Ok(wanted)
    }

    /// Rebuilds `target` from the loaded arrays (keyed by saved name).
    pub(crate) fn rebuild<T: Tree>(
        &self,
        target: &T,
        loaded: &mut HashMap<String, Array>,
    ) -> Result<T> {
        let mut err: Option<Error> = None;
        let res = tree::map_leaves(target, |p: &Path, old: &Array| {
            let name = self.saved_name(&p.to_string());
            let fail = |err: &mut Option<Error>, e: Error| {
                let msg = e.to_string();
                *err = Some(e);
                Err(ferrax_core::Error::Tree(msg))
            };
            let Some(a) = loaded.remove(&name) else {
                return fail(
                    &mut err,
                    Error::MissingLeaf {
                        path: name,
                        saved_sample: Vec::new(),
                    },
                );
            };
            if a.shape() != old.shape() {
                return fail(
                    &mut err,
                    Error::ShapeMismatch {
                        path: name,
                        saved: a.shape().to_vec(),
                        target: old.shape().to_vec(),
                    },
                );
            }
            if a.dtype() != old.dtype() {
                if !self.cast {
                    return fail(
                        &mut err,
                        Error::DTypeMismatch {
                            path: name,
                            saved: a.dtype(),
                            target: old.dtype(),
                        },
                    );
                }
                return convert(&a, old.dtype());
            }
            Ok(a)
        });
        match (res, err) {
            (_, Some(e)) => Err(e),
            (Ok(t), None) => Ok(t),
            (Err(e), None) => Err(Error::Core(e)),
        }
    }
}
