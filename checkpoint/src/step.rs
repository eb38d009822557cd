//! Step directories on disk: the atomic commit protocol, reading a committed step back,
//! scanning a checkpoint directory, cleaning up after crashes, and deleting steps.
//!
//! Commit protocol for step `s` in directory `d`:
//! 1. write everything into `d/s.tmp-<unique>`: the data file, then the manifest, each
//!    `fsync`ed;
//! 2. write the commit marker (with the manifest's CRC32), `fsync` it and the directory;
//! 3. rename the directory to `d/s` (atomic; refuses if `d/s` exists) and `fsync` `d`.
//!
//! A crash before step 3 leaves only a `*.tmp-*` directory, which is never listed and is
//! removed at start-up; after step 3 the step is complete and durable. Deletion renames
//! `d/s` to `d/s.deleting-<unique>` first, so a crash mid-delete never leaves a listed,
//! half-deleted step.

use crate::error::{Corruption, Error, Result};
use crate::manifest::{
    dtype_from_name, parse_manifest, parse_marker, FileEntry, LeafEntry, Manifest, Marker,
    DATA_FILE, FORMAT, FORMAT_VERSION, MANIFEST_FILE, MARKER_FILE, MAX_METADATA_FILE,
};
use crate::safetensors::{self, Leaf, METADATA_KEY};
use crate::Stage;
use ferrax_core::{tree, Array, Tree};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A test hook called at each [`Stage`] of a save; an `Err` simulates a crash right there.
pub type FailHook = Arc<dyn Fn(Stage, u64) -> std::result::Result<(), String> + Send + Sync>;
/// A progress callback: `(step, data bytes written, total data bytes)`.
pub type ProgressFn = Arc<dyn Fn(u64, u64, u64) + Send + Sync>;

/// Takes a snapshot of a tree's leaves: Arc clones of the immutable host buffers, no copy.
pub(crate) fn snapshot<T: Tree>(t: &T) -> Result<Vec<Leaf>> {
    let mut out = Vec::new();
    let mut err = None;
    tree::for_each_leaf(t, |p, a| {
        if err.is_some() {
            return;
        }
        let name = p.to_string();
        if name == METADATA_KEY {
            err = Some(Error::ReservedName { path: name });
            return;
        }
        match a.storage_arc() {
            Some(s) => out.push(Leaf {
                name,
                shape: a.shape().to_vec(),
                data: Arc::clone(s),
            }),
            None => err = Some(Error::Traced { path: name }),
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A suffix no other temporary file of this or any other process uses.
pub(crate) fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `fsync`s a directory, making the creation, rename or removal of its entries durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates `path` (which must not exist), lets `f` write it, flushes and `fsync`s it.
pub(crate) fn write_synced<R>(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<&File>) -> io::Result<R>,
) -> Result<R> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, &file);
    let r = f(&mut w).map_err(|e| Error::io("write", path, e))?;
    w.flush().map_err(|e| Error::io("write", path, e))?;
    drop(w);
    file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
    Ok(r)
}

/// The directory of `step` inside `dir`.
pub(crate) fn step_dir(dir: &Path, step: u64) -> PathBuf {
    dir.join(step.to_string())
}

/// Everything a background save needs, owned (it moves to the worker thread).
pub(crate) struct SaveJob {
    pub dir: PathBuf,
    pub step: u64,
    pub leaves: Vec<Leaf>,
    pub metadata: serde_json::Value,
    pub hook: Option<FailHook>,
    pub progress: Option<ProgressFn>,
}

impl SaveJob {
    fn hook(&self, stage: Stage) -> Result<()> {
        match &self.hook {
            Some(h) => h(stage, self.step).map_err(|msg| Error::Injected {
                step: self.step,
                stage,
                msg,
            }),
            None => Ok(()),
        }
    }

    /// Runs the commit protocol. On a real failure the temporary directory is removed; on an
    /// injected one it is left as a crash would leave it.
    pub fn run(&self) -> Result<()> {
        self.hook(Stage::BeforeWrite)?;
        let tmp = self.dir.join(format!("{}.tmp-{}", self.step, unique()));
        fs::create_dir(&tmp).map_err(|e| Error::io("create directory", &tmp, e))?;
        match self.write_into(&tmp) {
            Ok(()) => Ok(()),
            Err(e @ Error::Injected { .. }) => Err(e),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    fn write_into(&self, tmp: &Path) -> Result<()> {
        let total: u64 = self.leaves.iter().map(Leaf::nbytes).sum();
        let data_path = tmp.join(DATA_FILE);
        let no_meta = BTreeMap::new();
        let written = write_synced(&data_path, |w| {
            let mut report = |done: u64| {
                if let Some(p) = &self.progress {
                    p(self.step, done, total)
                }
            };
            safetensors::write(w, &self.leaves, &no_meta, &mut report)
        })?;
        self.hook(Stage::DataWritten)?;
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            step: self.step,
            timestamp_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            metadata: self.metadata.clone(),
            leaves: self
                .leaves
                .iter()
                .map(|l| LeafEntry {
                    path: l.name.clone(),
                    dtype: l.dtype().name().into(),
                    shape: l.shape.clone(),
                    file: DATA_FILE.into(),
                })
                .collect(),
            files: vec![FileEntry {
                name: DATA_FILE.into(),
                size: written.bytes,
                crc32: written.crc32,
            }],
        };
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::io("serialize manifest", tmp.join(MANIFEST_FILE), e.into()))?;
        write_synced(&tmp.join(MANIFEST_FILE), |w| w.write_all(&bytes))?;
        self.hook(Stage::BeforeCommit)?;
        let marker = Marker {
            format: FORMAT.into(),
            manifest_crc32: crc32fast::hash(&bytes),
        };
        let marker = serde_json::to_vec(&marker).expect("a marker serializes");
        write_synced(&tmp.join(MARKER_FILE), |w| w.write_all(&marker))?;
        fsync_dir(tmp)?;
        self.hook(Stage::BeforeRename)?;
        let fin = step_dir(&self.dir, self.step);
        // rename(2) would replace an *empty* directory; refuse anything that exists (a
        // committed step is never empty, so it could never be replaced anyway).
        if fs::symlink_metadata(&fin).is_ok() {
            return Err(Error::StepExists {
                step: self.step,
                dir: self.dir.clone(),
            });
        }
        fs::rename(tmp, &fin).map_err(|e| Error::io("rename", tmp, e))?;
        fsync_dir(&self.dir)?;
        Ok(())
    }
}

/// Reads a small metadata file, refusing one above the limit before reading it.
fn read_small(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    if len > MAX_METADATA_FILE {
        return Err(Error::corrupt(
            path,
            Corruption::MetadataTooLarge {
                len,
                max: MAX_METADATA_FILE,
            },
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(MAX_METADATA_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// Reads and checks the marker and manifest of a committed step directory.
pub(crate) fn read_manifest(sdir: &Path, step: u64) -> Result<Manifest> {
    let mpath = sdir.join(MARKER_FILE);
    let marker = parse_marker(&read_small(&mpath)?, &mpath)?;
    let path = sdir.join(MANIFEST_FILE);
    let bytes = read_small(&path)?;
    let actual = crc32fast::hash(&bytes);
    if actual != marker.manifest_crc32 {
        return Err(Error::corrupt(
            &path,
            Corruption::ManifestChecksum {
                expected: marker.manifest_crc32,
                actual,
            },
        ));
    }
    let m = parse_manifest(&bytes, &path)?;
    if m.step != step {
        return Err(Error::corrupt(
            &path,
            Corruption::StepMismatch {
                expected: step,
                found: m.step,
            },
        ));
    }
    Ok(m)
}

/// Reads the leaves `want` accepts from a committed step, verifying every file's size and
/// checksum and that the files agree with the manifest.
pub(crate) fn load_step(
    sdir: &Path,
    m: &Manifest,
    want: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, Array>> {
    let mut out = HashMap::new();
    for f in &m.files {
        let path = sdir.join(&f.name);
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if len != f.size {
            return Err(Error::corrupt(
                &path,
                Corruption::FileSize {
                    expected: f.size,
                    actual: len,
                },
            ));
        }
        let mut r = safetensors::Hashing::new(file);
        let header = safetensors::read_header(&mut r, len, &path)?;
        let leaves: Vec<&LeafEntry> = m.leaves.iter().filter(|l| l.file == f.name).collect();
        check_agrees(&leaves, &header, &path)?;
        let arrays = safetensors::read_data(&mut r, &header, want, &path)?;
        let actual = r.hash.finalize();
        if actual != f.crc32 {
            return Err(Error::corrupt(
                &path,
                Corruption::FileChecksum {
                    expected: f.crc32,
                    actual,
                },
            ));
        }
        out.extend(arrays);
    }
    Ok(out)
}

/// Checks that the manifest's leaves for a file are exactly the file's tensors.
fn check_agrees(leaves: &[&LeafEntry], h: &safetensors::Header, path: &Path) -> Result<()> {
    let mismatch = |p: &str, msg: String| {
        Error::corrupt(
            path,
            Corruption::ManifestMismatch {
                path: p.into(),
                msg,
            },
        )
    };
    let by_name: HashMap<&str, &safetensors::TensorInfo> =
        h.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for l in leaves {
        let Some(t) = by_name.get(l.path.as_str()) else {
            return Err(mismatch(
                &l.path,
                "in the manifest but not in the data file".into(),
            ));
        };
        let dt = dtype_from_name(&l.dtype);
        if dt != Some(t.dtype) || l.shape != t.shape {
            return Err(mismatch(
                &l.path,
                format!(
                    "the manifest says {}{:?}, the data file {}{:?}",
                    l.dtype, l.shape, t.dtype, t.shape
                ),
            ));
        }
    }
    if leaves.len() != h.tensors.len() {
        let listed: std::collections::HashSet<&str> =
            leaves.iter().map(|l| l.path.as_str()).collect();
        let extra = h
            .tensors
            .iter()
            .find(|t| !listed.contains(t.name.as_str()))
            .map(|t| t.name.clone())
            .unwrap_or_default();
        return Err(mismatch(
            &extra,
            "in the data file but not in the manifest".into(),
        ));
    }
    Ok(())
}

/// What a directory entry's name says it is.
enum Entry {
    Step(u64),
    /// A leftover of an interrupted save or delete.
    Leftover,
    Other,
}

fn classify(name: &str) -> Entry {
    let (head, tail) = match name.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (name, None),
    };
    let numeric = !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit());
    match (numeric, tail) {
        (true, None) => head.parse().map_or(Entry::Other, Entry::Step),
        (true, Some(t)) if t.starts_with("tmp-") || t.starts_with("deleting-") => Entry::Leftover,
        _ => Entry::Other,
    }
}

/// Lists the committed steps of `dir` with their metadata. With `cleanup`, removes leftovers
/// of interrupted saves and deletes, and step directories without a commit marker.
pub(crate) fn scan(dir: &Path, cleanup: bool) -> Result<BTreeMap<u64, serde_json::Value>> {
    let mut steps = BTreeMap::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut removed = false;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("list", dir, e))?;
        let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = ent.path();
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        match classify(&name) {
            Entry::Step(step) if is_dir => {
                if path.join(MARKER_FILE).is_file() {
                    // A committed step whose manifest is damaged is still listed (it exists);
                    // restoring it reports the damage.
                    let meta = read_manifest(&path, step)
                        .map(|m| m.metadata)
                        .unwrap_or(serde_json::Value::Null);
                    steps.insert(step, meta);
                } else if cleanup {
                    remove_dir(&path)?;
                    removed = true;
                }
            }
            Entry::Leftover if cleanup => {
                if is_dir {
                    remove_dir(&path)?;
                } else {
                    fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                }
                removed = true;
            }
            _ => {}
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    Ok(steps)
}

fn remove_dir(path: &Path) -> Result<()> {
    fs::remove_dir_all(path).map_err(|e| Error::io("remove directory", path, e))
}

/// Deletes a committed step: first renamed out of the listing (atomic), then removed.
pub(crate) fn delete_step(dir: &Path, step: u64) -> Result<()> {
    let sdir = step_dir(dir, step);
    let gone = dir.join(format!("{step}.deleting-{}", unique()));
    fs::rename(&sdir, &gone).map_err(|e| Error::io("rename", &sdir, e))?;
    fsync_dir(dir)?;
    remove_dir(&gone)?;
    fsync_dir(dir)
}
