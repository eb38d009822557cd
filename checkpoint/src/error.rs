//! The one error type of ferrax-checkpoint. Every corrupt-file case has its own
//! [`Corruption`] variant so callers (and the negative-corpus tests) can tell them apart.

use ferrax_core::DType;
use std::path::PathBuf;

/// A way a checkpoint file can be malformed. Carried by [`Error::Corrupt`] with the file's
/// path; each violation of the format is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// Shorter than the 8-byte header-length prefix.
    #[error("the file has {len} bytes, fewer than the 8-byte header length prefix")]
    TooShort { len: u64 },
    /// The header length prefix exceeds the format's limit.
    #[error("the header length {len} exceeds the limit of {max} bytes")]
    HeaderTooLarge { len: u64, max: u64 },
    /// The header length prefix points past the end of the file.
    #[error("the header claims {len} bytes but only {available} follow the prefix")]
    HeaderOutOfBounds { len: u64, available: u64 },
    /// The header is not UTF-8.
    #[error("the header is not valid UTF-8 (at byte {at})")]
    HeaderNotUtf8 { at: usize },
    /// The header is not well-formed JSON.
    #[error("the header is not well-formed JSON: {msg}")]
    HeaderNotJson { msg: String },
    /// The header is JSON but not a safetensors header (wrong types, missing fields).
    #[error("the header is not a safetensors header: {msg}")]
    HeaderSchema { msg: String },
    /// Two tensors (or two `__metadata__` entries) share a name.
    #[error("the name `{name}` appears twice")]
    DuplicateName { name: String },
    /// A dtype string that safetensors does not define.
    #[error("tensor `{name}` has the unknown dtype `{dtype}`")]
    UnknownDType { name: String, dtype: String },
    /// A safetensors dtype that ferrax has no element type for.
    #[error("tensor `{name}` has dtype `{dtype}`, which ferrax does not support")]
    UnsupportedDType { name: String, dtype: String },
    /// More axes than any real tensor has (bounds the memory a header can make us allocate).
    #[error("tensor `{name}` has rank {rank}, above the limit of {max}")]
    RankTooLarge {
        name: String,
        rank: usize,
        max: usize,
    },
    /// The element count or byte size of a shape overflows.
    #[error("tensor `{name}`: the size of shape {shape:?} overflows")]
    ShapeOverflow { name: String, shape: Vec<u64> },
    /// `data_offsets` has begin > end.
    #[error("tensor `{name}` has data_offsets [{begin}, {end}] with begin > end")]
    OffsetsReversed { name: String, begin: u64, end: u64 },
    /// `data_offsets` ends past the data section.
    #[error("tensor `{name}` ends at byte {end} of a {data_len}-byte data section")]
    OffsetsOutOfBounds {
        name: String,
        end: u64,
        data_len: u64,
    },
    /// The byte range does not equal shape x dtype size.
    #[error("tensor `{name}` spans {actual} bytes but its shape and dtype need {expected}")]
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    /// Two tensors' byte ranges overlap.
    #[error("tensors `{first}` and `{second}` overlap at byte {at}")]
    Overlap {
        first: String,
        second: String,
        at: u64,
    },
    /// Bytes between two tensors (or before the first) belong to no tensor.
    #[error("bytes {from}..{to} of the data section belong to no tensor")]
    Gap { from: u64, to: u64 },
    /// Bytes after the last tensor.
    #[error("the data section has {data_len} bytes but the tensors use only {used}")]
    TrailingBytes { data_len: u64, used: u64 },
    /// A bool tensor holds a byte other than 0 or 1.
    #[error("bool tensor `{name}` holds the byte {byte} at element {index}")]
    InvalidBool { name: String, index: u64, byte: u8 },
    /// The file ended before the bytes its header describes (it changed while being read).
    #[error("the file ended early while reading tensor data")]
    Truncated,
    /// The checksum of the data section stored in the header does not match.
    #[error("the data checksum is {actual:08x}, the header records {expected:08x}")]
    DataChecksum { expected: u32, actual: u32 },
    /// The checksum of a whole file does not match the manifest.
    #[error("the file checksum is {actual:08x}, the manifest records {expected:08x}")]
    FileChecksum { expected: u32, actual: u32 },
    /// The file's size does not match the manifest.
    #[error("the file has {actual} bytes, the manifest records {expected}")]
    FileSize { expected: u64, actual: u64 },
    /// A manifest (or commit marker) larger than any real one.
    #[error("{len} bytes is above the limit of {max} for this metadata file")]
    MetadataTooLarge { len: u64, max: u64 },
    /// The manifest is not well-formed JSON.
    #[error("the manifest is not well-formed JSON: {msg}")]
    ManifestNotJson { msg: String },
    /// The manifest is JSON but does not have the manifest's fields and types.
    #[error("the manifest does not match its schema: {msg}")]
    ManifestSchema { msg: String },
    /// The manifest names another format.
    #[error("the manifest's format is `{found}`, expected `ferrax-checkpoint`")]
    NotAManifest { found: String },
    /// A format version this build cannot read.
    #[error("format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    /// The manifest's step differs from the directory's name.
    #[error("the manifest is for step {found} but sits in the directory of step {expected}")]
    StepMismatch { expected: u64, found: u64 },
    /// A file name in the manifest that is not a plain name in the step directory.
    #[error("the manifest names the file `{name}`, which is not a plain file name")]
    BadFileName { name: String },
    /// A leaf that refers to a file the manifest does not list.
    #[error("leaf `{path}` is stored in `{file}`, which the manifest does not list")]
    UnknownFile { path: String, file: String },
    /// A dtype name in the manifest that ferrax does not know.
    #[error("leaf `{path}` has the unknown dtype `{dtype}`")]
    ManifestDType { path: String, dtype: String },
    /// The manifest and a data file disagree about a leaf.
    #[error("leaf `{path}`: {msg}")]
    ManifestMismatch { path: String, msg: String },
    /// The manifest's checksum differs from the one in the commit marker.
    #[error("the manifest checksum is {actual:08x}, the commit marker records {expected:08x}")]
    ManifestChecksum { expected: u32, actual: u32 },
    /// The commit marker is malformed.
    #[error("the commit marker is malformed: {msg}")]
    BadMarker { msg: String },
}

/// Errors of ferrax-checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("checkpoint: cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is malformed (see [`Corruption`]).
    #[error("checkpoint: {}: {kind}", path.display())]
    Corrupt { path: PathBuf, kind: Corruption },
    /// Saving a step that already exists (steps are never overwritten).
    #[error("checkpoint: step {step} already exists in {}; steps are never overwritten (delete it first)", dir.display())]
    StepExists { step: u64, dir: PathBuf },
    /// Restoring a step that is not committed.
    #[error("checkpoint: step {step} is not a committed checkpoint in {} (committed: {available:?})", dir.display())]
    StepNotFound {
        step: u64,
        dir: PathBuf,
        available: Vec<u64>,
    },
    /// Restoring the latest step of an empty directory.
    #[error("checkpoint: no committed checkpoint in {}", dir.display())]
    NoCheckpoints { dir: PathBuf },
    /// A leaf is a tracer: only concrete tensors can be saved.
    #[error("checkpoint: leaf `{path}` is a traced tensor; save concrete values (outside `jit`)")]
    Traced { path: String },
    /// A leaf path collides with the safetensors metadata key.
    #[error("checkpoint: leaf path `{path}` is reserved by the safetensors format")]
    ReservedName { path: String },
    /// The saved leaf's shape differs from the target's.
    #[error("checkpoint: leaf `{path}` was saved with shape {saved:?} but the target has shape {target:?}")]
    ShapeMismatch {
        path: String,
        saved: Vec<usize>,
        target: Vec<usize>,
    },
    /// The saved leaf's dtype differs from the target's (and casting was not asked for).
    #[error("checkpoint: leaf `{path}` was saved as {saved} but the target holds {target}; pass `RestoreOptions::cast` to convert")]
    DTypeMismatch {
        path: String,
        saved: DType,
        target: DType,
    },
    /// The target has a leaf the checkpoint lacks.
    #[error("checkpoint: the target has leaf `{path}` but the checkpoint does not (saved leaves start with {saved_sample:?})")]
    MissingLeaf {
        path: String,
        saved_sample: Vec<String>,
    },
    /// The checkpoint has leaves the target lacks (a full restore must use every leaf).
    #[error("checkpoint: the checkpoint has leaves the target lacks: {paths:?}; restore with `RestoreOptions::partial` to ignore them")]
    UnexpectedLeaves { paths: Vec<String> },
    /// Options that make no sense (e.g. `max_to_keep = Some(0)`).
    #[error("checkpoint: invalid options: {0}")]
    InvalidOptions(String),
    /// A background save failed; returned by the first call after it finished.
    #[error("checkpoint: the background save of step {step} failed: {source}")]
    Background {
        step: u64,
        #[source]
        source: Box<Error>,
    },
    /// The background save thread panicked (a bug).
    #[error("checkpoint: the background save of step {step} panicked: {msg}")]
    WorkerPanicked { step: u64, msg: String },
    /// A failure injected by a test hook (simulates a crash at `stage`).
    #[error("checkpoint: injected failure at {stage:?} of step {step}: {msg}")]
    Injected {
        step: u64,
        stage: crate::Stage,
        msg: String,
    },
    /// An error from a tensor operation (e.g. a dtype cast).
    #[error(transparent)]
    Core(#[from] ferrax_core::Error),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, kind: Corruption) -> Self {
        Error::Corrupt {
            path: path.into(),
            kind,
        }
    }
    /// The corruption kind, if this error (or the background error it wraps) is one.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            Error::Corrupt { kind, .. } => Some(kind),
            Error::Background { source, .. } => source.corruption(),
            _ => None,
        }
    }
}

/// `Result` with ferrax-checkpoint's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
