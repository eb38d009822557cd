//! The per-step manifest (`manifest.json`) and commit marker (`COMMIT_SUCCESS`).
//!
//! The manifest records the tree's leaves (path, dtype, shape, file) in visit order, the
//! step, the user's metadata, the format version and each data file's size and CRC32. The
//! marker, written last, records the manifest's CRC32: a step directory is committed iff
//! its marker exists, and the marker's checksum makes a damaged manifest detectable too.

use crate::error::{Corruption, Error, Result};
use crate::safetensors::{BoundedShape, MAX_RANK};
use ferrax_core::DType;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The `format` field of every manifest.
pub const FORMAT: &str = "ferrax-checkpoint";
/// The manifest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a step directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the commit marker inside a step directory.
pub const MARKER_FILE: &str = "COMMIT_SUCCESS";
/// File name of the tensor data inside a step directory.
pub const DATA_FILE: &str = "data.safetensors";
/// The largest manifest or marker read (a manifest of a million leaves is ~100 MB less).
pub const MAX_METADATA_FILE: u64 = 64 << 20;

/// One leaf of the saved tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeafEntry {
    /// The flattened tree path (`l1.w`), also the tensor's name in the data file.
    pub path: String,
    /// The dtype's name (`f32`, `bf16`, ...).
    pub dtype: String,
    /// Sizes, outermost first.
    #[serde(deserialize_with = "bounded_shape")]
    pub shape: Vec<usize>,
    /// The data file holding it.
    pub file: String,
}

/// One data file of the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// A plain file name inside the step directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 (IEEE) of the whole file.
    pub crc32: u32,
}

/// The manifest of one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The training step.
    pub step: u64,
    /// Wall-clock time of the save, milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
    /// The user's metadata (metrics, strings, anything JSON).
    pub metadata: serde_json::Value,
    /// The leaves in the tree's visit order.
    pub leaves: Vec<LeafEntry>,
    /// The data files.
    pub files: Vec<FileEntry>,
}

fn bounded_shape<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<usize>, D::Error> {
    let s = BoundedShape::deserialize(d)?;
    if s.rank > MAX_RANK {
        return Err(serde::de::Error::custom(format_args!(
            "rank {} is above the limit of {MAX_RANK}",
            s.rank
        )));
    }
    s.dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| serde::de::Error::custom("dim overflows usize")))
        .collect()
}

/// Parses a DType name as written in manifests.
pub fn dtype_from_name(s: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| d.name() == s)
}

/// Whether `name` is a plain file name (no separators, not `.`/`..`): a manifest must not
/// be able to point a reader outside its step directory.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('~')
}

/// Parses and validates a manifest (`path` is for error messages). Checks the format name
/// and version before the schema so a newer format is reported as such.
pub fn parse_manifest(bytes: &[u8], path: &Path) -> Result<Manifest> {
    let bad = |kind| Error::corrupt(path, kind);
    if bytes.len() as u64 > MAX_METADATA_FILE {
        return Err(bad(Corruption::MetadataTooLarge {
            len: bytes.len() as u64,
            max: MAX_METADATA_FILE,
        }));
    }
    #[derive(Deserialize)]
    struct Probe {
        format: String,
        format_version: u32,
    }
    let classify = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => Corruption::ManifestSchema { msg: e.to_string() },
        _ => Corruption::ManifestNotJson { msg: e.to_string() },
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| bad(classify(e)))?;
    if probe.format != FORMAT {
        return Err(bad(Corruption::NotAManifest {
            found: probe.format,
        }));
    }
    if probe.format_version != FORMAT_VERSION {
        return Err(bad(Corruption::UnsupportedVersion {
            found: probe.format_version,
            supported: FORMAT_VERSION,
        }));
    }
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(classify(e)))?;
    let mut files = HashSet::new();
    for f in &m.files {
        if !plain_file_name(&f.name) {
            return Err(bad(Corruption::BadFileName {
                name: f.name.clone(),
            }));
        }
        if !files.insert(f.name.as_str()) {
            return Err(bad(Corruption::DuplicateName {
                name: f.name.clone(),
            }));
        }
    }
    let mut paths = HashSet::new();
    for l in &m.leaves {
        if !paths.insert(l.path.as_str()) {
            return Err(bad(Corruption::DuplicateName {
                name: l.path.clone(),
            }));
        }
        if !files.contains(l.file.as_str()) {
            return Err(bad(Corruption::UnknownFile {
                path: l.path.clone(),
                file: l.file.clone(),
            }));
        }
        if dtype_from_name(&l.dtype).is_none() {
            return Err(bad(Corruption::ManifestDType {
                path: l.path.clone(),
                dtype: l.dtype.clone(),
            }));
        }
    }
    Ok(m)
}

/// The commit marker's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Always [`FORMAT`].
    pub format: String,
    /// CRC32 of `manifest.json`.
    pub manifest_crc32: u32,
}

/// Parses a commit marker.
pub fn parse_marker(bytes: &[u8], path: &Path) -> Result<Marker> {
    let bad = |msg: String| Error::corrupt(path, Corruption::BadMarker { msg });
    if bytes.len() as u64 > MAX_METADATA_FILE {
        return Err(Error::corrupt(
            path,
            Corruption::MetadataTooLarge {
                len: bytes.len() as u64,
                max: MAX_METADATA_FILE,
            },
        ));
    }
    let m: Marker = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if m.format != FORMAT {
        return Err(bad(format!("format `{}`, expected `{FORMAT}`", m.format)));
    }
    Ok(m)
}
