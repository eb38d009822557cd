//! ferrax-checkpoint: saving and restoring trees of tensors (Orbax for ferrax).
//!
//! - [`save_tree`] / [`load_tree`]: one tree in one safetensors file, written atomically.
//! - [`CheckpointManager`]: a directory of numbered steps with async saves (the caller
//!   blocks only to snapshot the tree), atomic commits (temporary directory, `fsync`, commit
//!   marker, rename, `fsync` of the parent), retention policies, and restore into a target
//!   tree with shape and dtype checks.
//!
//! Data files are safetensors (tensor names are the flattened tree paths, `l1.w`), so
//! Python's `safetensors.numpy.load_file` reads a ferrax checkpoint and ferrax reads files
//! Python wrote. Every read is validated: each kind of damage is its own [`Corruption`]
//! variant, never a panic, and reading never allocates tensor buffers beyond the file's
//! size.
//!
//! ```
//! # extern crate ferrax_core as ferrax;
//! use ferrax::{Tensor, Tree, C};
//! use ferrax_checkpoint::{load_tree, save_tree};
//!
//! #[derive(Tree)]
//! struct Linear {
//!     w: Tensor<(C<2>, C<3>)>,
//!     b: Tensor<(C<3>,)>,
//! }
//!
//! # fn main() -> Result<(), ferrax_checkpoint::Error> {
//! let path = std::env::temp_dir().join(format!("ferrax-doc-lib-{}.safetensors", std::process::id()));
//! let l = Linear { w: Tensor::ones(), b: Tensor::zeros() };
//! save_tree(&path, &l)?;
//! let back: Linear = load_tree(&path, &l)?;
//! assert_eq!(back.w.to_vec()?, vec![1.0; 6]);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok(())
//! # }
//! ```

mod error;
mod manager;
pub mod manifest;
mod restore;
pub mod safetensors;
mod step;

pub use error::{Corruption, Error, Result};
pub use manager::{BestFn, BestMode, CheckpointManager, Options};
pub use restore::RestoreOptions;
pub use safetensors::Loaded;
pub use serde_json::{json, Value};
pub use step::{FailHook, ProgressFn};

use ferrax_core::Tree;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The points of a save at which the test hook ([`Options::fail_hook`]) is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Nothing written yet.
    BeforeWrite,
    /// The data file is written and synced, the manifest not yet.
    DataWritten,
    /// Data and manifest are written, the commit marker not yet.
    BeforeCommit,
    /// The marker is written; the directory still has its temporary name.
    BeforeRename,
    /// The step is committed and durable; retention has not run yet.
    AfterCommit,
}

/// Saves `tree` to a safetensors file at `path` (replacing it atomically if it exists:
/// written to a temporary file, `fsync`ed, renamed, the directory `fsync`ed).
pub fn save_tree<T: Tree>(path: impl AsRef<Path>, tree: &T) -> Result<()> {
    save_tree_with_metadata(path, tree, &BTreeMap::new())
}

/// [`save_tree`] with `__metadata__` strings (readable by any safetensors loader). ferrax
/// adds `ferrax.data_crc32`, a checksum of the data that [`load_tree`] verifies.
pub fn save_tree_with_metadata<T: Tree>(
    path: impl AsRef<Path>,
    tree: &T,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let leaves = step::snapshot(tree)?;
    let mut meta = metadata.clone();
    meta.insert(
        safetensors::DATA_CRC_KEY.into(),
        format!("{:08x}", safetensors::data_crc(&leaves)),
    );
    let file_name = path.file_name().ok_or_else(|| {
        Error::io(
            "save to",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", step::unique()));
    let tmp = path.with_file_name(tmp_name);
    let res = step::write_synced(&tmp, |w| {
        safetensors::write(w, &leaves, &meta, &mut |_| {}).map(|_| ())
    })
    .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e)));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    step::fsync_dir(&parent)
}

/// Reads every tensor and the metadata of a safetensors file (any writer's), validating
/// the whole file.
pub fn load_arrays(path: impl AsRef<Path>) -> Result<Loaded> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    Ok(safetensors::read_all(f, len, path)?.0)
}

/// Parses a safetensors file held in memory (validating it like [`load_arrays`]).
pub fn parse_safetensors(bytes: &[u8]) -> Result<Loaded> {
    Ok(safetensors::read_all(bytes, bytes.len() as u64, Path::new("<memory>"))?.0)
}

/// Loads a file written by [`save_tree`] (or by Python) into a tree of `target`'s
/// structure: every leaf must be present with the target's shape and dtype.
pub fn load_tree<T: Tree>(path: impl AsRef<Path>, target: &T) -> Result<T> {
    load_tree_with(path, target, &RestoreOptions::default())
}

/// [`load_tree`] with options: a sub-tree, dtype casts, partial restore.
pub fn load_tree_with<T: Tree>(
    path: impl AsRef<Path>,
    target: &T,
    opts: &RestoreOptions,
) -> Result<T> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let mut r = safetensors::Hashing::new(f);
    let header = safetensors::read_header(&mut r, len, path)?;
    let saved: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
    let wanted = opts.plan(target, &saved)?;
    let arrays = safetensors::read_data(&mut r, &header, &|n| wanted.contains(n), path)?;
    let mut loaded: HashMap<String, _> = arrays.into_iter().collect();
    opts.rebuild(target, &mut loaded)
}
