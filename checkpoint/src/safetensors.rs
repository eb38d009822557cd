//! The safetensors file format, written and read here rather than through the `safetensors`
//! crate: the reader streams straight into typed buffers (no copy of the whole file, no
//! `mmap` whose pages another process can change under us), checksums the bytes as it
//! reads them, and reports each violation as its own [`Corruption`] variant.
//!
//! Layout (<https://github.com/huggingface/safetensors>): an 8-byte little-endian header
//! length `N`, `N` bytes of JSON (`{"name": {"dtype": "F32", "shape": [2, 3],
//! "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}`, padded with spaces),
//! then the data section: every tensor's little-endian row-major bytes, contiguous, with
//! offsets relative to the section's start.
//!
//! Reading never allocates more than the file holds: the header is read only after its
//! length is checked against the file's size, the number of axes is bounded, and each
//! tensor's buffer is allocated only after the whole layout has been validated against the
//! file's size (so a 100-byte file cannot claim a 1 TB tensor).

use crate::error::{Corruption, Error, Result};
use ferrax_core::{Array, DType, Storage};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// The largest header the reference implementation accepts (100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// The most axes a tensor may have. Bounds what a malicious header can make us allocate.
pub const MAX_RANK: usize = 64;
/// The metadata key the format reserves.
pub const METADATA_KEY: &str = "__metadata__";
/// The `__metadata__` key under which ferrax records the data section's CRC32.
pub const DATA_CRC_KEY: &str = "ferrax.data_crc32";
/// Encode/decode granularity: big enough for full-speed I/O, small enough to stay in cache.
const CHUNK: usize = 1 << 20;

/// One tensor to write: its name, shape and a shared host buffer.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Arc<Storage>,
}

impl Leaf {
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    pub fn nbytes(&self) -> u64 {
        self.data.size_bytes() as u64
    }
}

/// The safetensors name of a dtype.
pub fn dtype_to_st(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::BF16 => "BF16",
        DType::F16 => "F16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::U32 => "U32",
        DType::Bool => "BOOL",
    }
}

fn dtype_from_st(name: &str, s: &str) -> std::result::Result<DType, Corruption> {
    Ok(match s {
        "F32" => DType::F32,
        "F64" => DType::F64,
        "BF16" => DType::BF16,
        "F16" => DType::F16,
        "I32" => DType::I32,
        "I64" => DType::I64,
        "U32" => DType::U32,
        "BOOL" => DType::Bool,
        "I8" | "U8" | "I16" | "U16" | "U64" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F6_E2M3"
        | "F6_E3M2" | "F4" | "C64" | "E8M0" => {
            return Err(Corruption::UnsupportedDType {
                name: name.into(),
                dtype: s.into(),
            })
        }
        _ => {
            return Err(Corruption::UnknownDType {
                name: name.into(),
                dtype: s.into(),
            })
        }
    })
}

// ---- writing ----------------------------------------------------------------------------

/// What writing a file produced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    /// Total bytes of the file.
    pub bytes: u64,
    /// CRC32 of the whole file.
    pub crc32: u32,
}

/// Appends the little-endian bytes of elements `range` of `s` to `out`.
fn encode(s: &Storage, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    macro_rules! le {
        ($v:expr, $n:literal) => {{
            let v = &$v[range];
            let start = out.len();
            out.resize(start + v.len() * $n, 0);
            for (x, o) in v.iter().zip(out[start..].chunks_exact_mut($n)) {
                o.copy_from_slice(&x.to_le_bytes());
            }
        }};
    }
    match s {
        Storage::F32(v) => le!(v, 4),
        Storage::F64(v) => le!(v, 8),
        Storage::BF16(v) => le!(v, 2),
        Storage::F16(v) => le!(v, 2),
        Storage::I32(v) => le!(v, 4),
        Storage::I64(v) => le!(v, 8),
        Storage::U32(v) => le!(v, 4),
        Storage::Bool(v) => out.extend(v[range].iter().map(|&b| b as u8)),
    }
}

/// Calls `f` on the little-endian bytes of `s`, a chunk at a time.
fn for_each_chunk(
    s: &Storage,
    buf: &mut Vec<u8>,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let per = (CHUNK / s.dtype().size_bytes()).max(1);
    let n = s.len();
    let mut i = 0;
    while i < n {
        let j = (i + per).min(n);
        buf.clear();
        encode(s, i..j, buf);
        f(buf)?;
        i = j;
    }
    Ok(())
}

/// The CRC32 of the data section the leaves make.
pub(crate) fn data_crc(leaves: &[Leaf]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut buf = Vec::new();
    for l in leaves {
        for_each_chunk(&l.data, &mut buf, &mut |b| {
            h.update(b);
            Ok(())
        })
        .expect("hashing does not fail");
    }
    h.finalize()
}

/// The header bytes (JSON padded with spaces to a multiple of 8, as Python writes it).
pub(crate) fn header_bytes(
    leaves: &[Leaf],
    metadata: &BTreeMap<String, String>,
) -> serde_json::Result<Vec<u8>> {
    let mut map = serde_json::Map::new();
    if !metadata.is_empty() {
        map.insert(METADATA_KEY.into(), serde_json::to_value(metadata)?);
    }
    let mut off = 0u64;
    for l in leaves {
        let end = off + l.nbytes();
        map.insert(
            l.name.clone(),
            serde_json::json!({
                "dtype": dtype_to_st(l.dtype()),
                "shape": l.shape,
                "data_offsets": [off, end],
            }),
        );
        off = end;
    }
    let mut bytes = serde_json::to_vec(&map)?;
    // The prefix is 8 bytes, so padding the header to 8 aligns the data section to 8.
    while bytes.len() % 8 != 0 {
        bytes.push(b' ');
    }
    Ok(bytes)
}

/// Writes a safetensors file of `leaves` (in order) to `w`, returning its size and CRC32.
/// `progress` is called with the data bytes written so far after each chunk.
pub(crate) fn write<W: Write>(
    w: &mut W,
    leaves: &[Leaf],
    metadata: &BTreeMap<String, String>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Written> {
    let header = header_bytes(leaves, metadata).map_err(io::Error::other)?;
    let mut h = crc32fast::Hasher::new();
    let prefix = (header.len() as u64).to_le_bytes();
    for part in [&prefix[..], &header[..]] {
        w.write_all(part)?;
        h.update(part);
    }
    let mut total = 8 + header.len() as u64;
    let mut data_written = 0u64;
    let mut buf = Vec::with_capacity(CHUNK);
    for l in leaves {
        for_each_chunk(&l.data, &mut buf, &mut |b| {
            w.write_all(b)?;
            h.update(b);
            data_written += b.len() as u64;
            progress(data_written);
            Ok(())
        })?;
    }
    total += data_written;
    Ok(Written {
        bytes: total,
        crc32: h.finalize(),
    })
}

// ---- the header -------------------------------------------------------------------------

/// One tensor's entry in a validated header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name (a flattened tree path for files ferrax writes).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Sizes, outermost first.
    pub shape: Vec<usize>,
    /// Byte range in the data section.
    pub begin: u64,
    /// End of the byte range (exclusive).
    pub end: u64,
}

/// A validated header: tensors sorted by offset, and the `__metadata__` strings.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The tensors, in the order of their bytes in the data section.
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` map (empty if absent).
    pub metadata: BTreeMap<String, String>,
    /// Bytes before the data section (8 + the header length).
    pub data_start: u64,
}

/// A shape that stops storing axes after `MAX_RANK` (but still counts them), so a header
/// with a million-axis shape costs no memory and reports [`Corruption::RankTooLarge`].
pub(crate) struct BoundedShape {
    pub dims: Vec<u64>,
    pub rank: usize,
}

impl<'de> Deserialize<'de> for BoundedShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BoundedShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of non-negative integers")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<BoundedShape, A::Error> {
                let mut dims = Vec::new();
                let mut rank = 0usize;
                while let Some(d) = seq.next_element::<u64>()? {
                    if rank < MAX_RANK {
                        dims.push(d);
                    }
                    rank += 1;
                }
                Ok(BoundedShape { dims, rank })
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: BoundedShape,
    data_offsets: (u64, u64),
}

/// The header as parsed, before validation; keeps duplicates so they can be reported.
struct RawHeader {
    entries: Vec<(String, RawEntry)>,
    metadata: Vec<BTreeMap<String, String>>,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensor entries")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawHeader, A::Error> {
                let mut h = RawHeader {
                    entries: Vec::new(),
                    metadata: Vec::new(),
                };
                while let Some(k) = map.next_key::<String>()? {
                    if k == METADATA_KEY {
                        // Python writes `__metadata__` as str -> str; anything else is malformed.
                        h.metadata.push(map.next_value()?);
                    } else {
                        let e: RawEntry = map.next_value().map_err(|e: A::Error| {
                            de::Error::custom(format_args!("tensor `{k}`: {e}"))
                        })?;
                        h.entries.push((k, e));
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// Validates a header's JSON against a data section of `data_len` bytes.
fn parse_header(
    json: &[u8],
    data_start: u64,
    data_len: u64,
) -> std::result::Result<Header, Corruption> {
    if let Err(e) = std::str::from_utf8(json) {
        return Err(Corruption::HeaderNotUtf8 {
            at: e.valid_up_to(),
        });
    }
    // A first pass that allocates nothing tells malformed JSON from a wrong schema (the
    // typed pass below wraps its errors with the tensor's name, losing the category).
    serde_json::from_slice::<IgnoredAny>(json)
        .map_err(|e| Corruption::HeaderNotJson { msg: e.to_string() })?;
    let raw: RawHeader = serde_json::from_slice(json)
        .map_err(|e| Corruption::HeaderSchema { msg: e.to_string() })?;
    if raw.metadata.len() > 1 {
        return Err(Corruption::DuplicateName {
            name: METADATA_KEY.into(),
        });
    }
    let mut seen = HashSet::with_capacity(raw.entries.len());
    let mut tensors = Vec::with_capacity(raw.entries.len());
    for (name, e) in raw.entries {
        if !seen.insert(name.clone()) {
            return Err(Corruption::DuplicateName { name });
        }
        let dtype = dtype_from_st(&name, &e.dtype)?;
        if e.shape.rank > MAX_RANK {
            return Err(Corruption::RankTooLarge {
                name,
                rank: e.shape.rank,
                max: MAX_RANK,
            });
        }
        let dims = e.shape.dims;
        let nbytes = dims
            .iter()
            .try_fold(dtype.size_bytes() as u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| usize::try_from(n).is_ok());
        let Some(nbytes) = nbytes else {
            return Err(Corruption::ShapeOverflow { name, shape: dims });
        };
        let (begin, end) = e.data_offsets;
        if begin > end {
            return Err(Corruption::OffsetsReversed { name, begin, end });
        }
        if end > data_len {
            return Err(Corruption::OffsetsOutOfBounds {
                name,
                end,
                data_len,
            });
        }
        if end - begin != nbytes {
            return Err(Corruption::SizeMismatch {
                name,
                expected: nbytes,
                actual: end - begin,
            });
        }
        // Fits in usize: nbytes (their product times the element size) does.
        let shape = dims.iter().map(|&d| d as usize).collect();
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            begin,
            end,
        });
    }
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut used = 0u64;
    let mut prev: Option<&str> = None;
    for t in &tensors {
        if t.begin < used {
            return Err(Corruption::Overlap {
                first: prev.unwrap_or_default().to_string(),
                second: t.name.clone(),
                at: t.begin,
            });
        }
        if t.begin > used {
            return Err(Corruption::Gap {
                from: used,
                to: t.begin,
            });
        }
        used = t.end;
        prev = Some(&t.name);
    }
    if used != data_len {
        return Err(Corruption::TrailingBytes { data_len, used });
    }
    Ok(Header {
        tensors,
        metadata: raw.metadata.into_iter().next().unwrap_or_default(),
        data_start,
    })
}

// ---- reading ----------------------------------------------------------------------------

/// A reader that feeds every byte it reads to a CRC32.
pub(crate) struct Hashing<R> {
    pub inner: R,
    pub hash: crc32fast::Hasher,
    /// A second CRC over the data section only, while it is being read.
    pub data_hash: Option<crc32fast::Hasher>,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: crc32fast::Hasher::new(),
            data_hash: None,
        }
    }
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.hash.update(buf);
        if let Some(h) = &mut self.data_hash {
            h.update(buf);
        }
        Ok(())
    }
}

/// Maps a failed read of bytes the header promised: a short file is corruption (it changed
/// after its size was checked), anything else is an I/O error.
fn read_err(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::corrupt(path, Corruption::Truncated)
    } else {
        Error::io("read", path, e)
    }
}

/// Reads and validates the prefix and header of a `file_len`-byte file.
pub(crate) fn read_header<R: Read>(
    r: &mut Hashing<R>,
    file_len: u64,
    path: &Path,
) -> Result<Header> {
    let bad = |kind| Error::corrupt(path, kind);
    if file_len < 8 {
        return Err(bad(Corruption::TooShort { len: file_len }));
    }
    let mut prefix = [0u8; 8];
    r.fill(&mut prefix).map_err(|e| read_err(path, e))?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_LEN {
        return Err(bad(Corruption::HeaderTooLarge {
            len: n,
            max: MAX_HEADER_LEN,
        }));
    }
    if n > file_len - 8 {
        return Err(bad(Corruption::HeaderOutOfBounds {
            len: n,
            available: file_len - 8,
        }));
    }
    let mut json = vec![0u8; n as usize];
    r.fill(&mut json).map_err(|e| read_err(path, e))?;
    parse_header(&json, 8 + n, file_len - 8 - n).map_err(bad)
}

/// Reads `n` elements of `N` bytes each, decoding with `conv`.
fn read_vec<R: Read, T, const N: usize>(
    r: &mut Hashing<R>,
    n: usize,
    buf: &mut Vec<u8>,
    conv: fn([u8; N]) -> T,
) -> io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    let per = CHUNK / N;
    let mut left = n;
    while left > 0 {
        let k = left.min(per);
        buf.resize(k * N, 0);
        r.fill(buf)?;
        let (chunks, _) = buf.as_chunks::<N>();
        out.extend(chunks.iter().map(|c| conv(*c)));
        left -= k;
    }
    Ok(out)
}

/// Reads one tensor's bytes (the reader is at its first byte) into a storage.
fn read_storage<R: Read>(
    r: &mut Hashing<R>,
    t: &TensorInfo,
    buf: &mut Vec<u8>,
    path: &Path,
) -> Result<Storage> {
    let n: usize = t.shape.iter().product();
    let e = |e| read_err(path, e);
    Ok(match t.dtype {
        DType::F32 => Storage::F32(read_vec(r, n, buf, f32::from_le_bytes).map_err(e)?),
        DType::F64 => Storage::F64(read_vec(r, n, buf, f64::from_le_bytes).map_err(e)?),
        DType::BF16 => {
            Storage::BF16(read_vec(r, n, buf, ferrax_core::bf16::from_le_bytes).map_err(e)?)
        }
        DType::F16 => {
            Storage::F16(read_vec(r, n, buf, ferrax_core::f16::from_le_bytes).map_err(e)?)
        }
        DType::I32 => Storage::I32(read_vec(r, n, buf, i32::from_le_bytes).map_err(e)?),
        DType::I64 => Storage::I64(read_vec(r, n, buf, i64::from_le_bytes).map_err(e)?),
        DType::U32 => Storage::U32(read_vec(r, n, buf, u32::from_le_bytes).map_err(e)?),
        DType::Bool => {
            let bytes = read_vec(r, n, buf, |[b]: [u8; 1]| b).map_err(e)?;
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(Error::corrupt(
                    path,
                    Corruption::InvalidBool {
                        name: t.name.clone(),
                        index: i as u64,
                        byte: bytes[i],
                    },
                ));
            }
            Storage::Bool(bytes.into_iter().map(|b| b == 1).collect())
        }
    })
}

/// Skips `n` bytes, still hashing them.
fn skip<R: Read>(r: &mut Hashing<R>, mut n: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    while n > 0 {
        let k = n.min(CHUNK as u64) as usize;
        buf.resize(k, 0);
        r.fill(buf)?;
        n -= k as u64;
    }
    Ok(())
}

/// Reads the data section after [`read_header`]: the tensors `want` accepts become arrays
/// (in offset order), the others are skipped. Every byte is hashed either way, and the
/// `ferrax.data_crc32` metadata entry, if present, is checked.
pub(crate) fn read_data<R: Read>(
    r: &mut Hashing<R>,
    header: &Header,
    want: &dyn Fn(&str) -> bool,
    path: &Path,
) -> Result<Vec<(String, Array)>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    // The data CRC covers only the data section; the file CRC goes on in `r.hash`.
    r.data_hash = Some(crc32fast::Hasher::new());
    let expected_data_crc = header.metadata.get(DATA_CRC_KEY);
    for t in &header.tensors {
        if want(&t.name) {
            let s = read_storage(r, t, &mut buf, path)?;
            out.push((
                t.name.clone(),
                Array::from_storage(t.shape.clone(), s).map_err(Error::Core)?,
            ));
        } else {
            skip(r, t.end - t.begin, &mut buf).map_err(|e| read_err(path, e))?;
        }
    }
    let data_hash = r.data_hash.take().unwrap_or_default();
    if let Some(s) = expected_data_crc {
        let expected = u32::from_str_radix(s, 16).map_err(|_| {
            Error::corrupt(
                path,
                Corruption::HeaderSchema {
                    msg: format!("`{DATA_CRC_KEY}` is `{s}`, not a hex CRC32"),
                },
            )
        })?;
        let actual = data_hash.finalize();
        if actual != expected {
            return Err(Error::corrupt(
                path,
                Corruption::DataChecksum { expected, actual },
            ));
        }
    }
    Ok(out)
}

/// The tensors and metadata of a safetensors file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The tensors in the order of their bytes in the file.
    pub tensors: Vec<(String, Array)>,
    /// The `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
}

/// Reads a whole safetensors file from `r` (of `len` bytes), validating everything.
pub(crate) fn read_all<R: Read>(r: R, len: u64, path: &Path) -> Result<(Loaded, u32)> {
    let mut r = Hashing::new(r);
    let header = read_header(&mut r, len, path)?;
    let tensors = read_data(&mut r, &header, &|_| true, path)?;
    Ok((
        Loaded {
            tensors,
            metadata: header.metadata,
        },
        r.hash.finalize(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, a: Array) -> Leaf {
        Leaf {
            name: name.into(),
            shape: a.shape().to_vec(),
            data: Arc::clone(a.storage_arc().unwrap()),
        }
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_truncated() {
        let leaves = [leaf(
            "x",
            Array::from_vec(vec![4], vec![1f32, 2., 3., 4.]).unwrap(),
        )];
        let mut bytes = Vec::new();
        write(&mut bytes, &leaves, &BTreeMap::new(), &mut |_| {}).unwrap();
        // The size check passed for the full length, then the data ran out.
        let len = bytes.len() as u64;
        bytes.truncate(bytes.len() - 2);
        let err = read_all(&bytes[..], len, Path::new("x")).unwrap_err();
        assert_eq!(err.corruption(), Some(&Corruption::Truncated));
    }

    #[test]
    fn header_is_padded_and_file_crc_is_reported() {
        let leaves = [leaf(
            "b",
            Array::from_vec(vec![3], vec![true, false, true]).unwrap(),
        )];
        let mut bytes = Vec::new();
        let w = write(&mut bytes, &leaves, &BTreeMap::new(), &mut |_| {}).unwrap();
        assert_eq!(w.bytes, bytes.len() as u64);
        assert_eq!(w.crc32, crc32fast::hash(&bytes));
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(n % 8, 0);
        let (loaded, crc) = read_all(&bytes[..], bytes.len() as u64, Path::new("b")).unwrap();
        assert_eq!(crc, w.crc32);
        assert_eq!(
            loaded.tensors[0].1.to_vec::<bool>().unwrap(),
            vec![true, false, true]
        );
    }

    #[test]
    fn large_tensors_cross_chunk_boundaries() {
        let n = CHUNK / 4 * 2 + 3;
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let leaves = [leaf("big", Array::from_vec(vec![n], v.clone()).unwrap())];
        let mut bytes = Vec::new();
        write(&mut bytes, &leaves, &BTreeMap::new(), &mut |_| {}).unwrap();
        let (loaded, _) = read_all(&bytes[..], bytes.len() as u64, Path::new("big")).unwrap();
        assert_eq!(loaded.tensors[0].1.to_vec::<f32>().unwrap(), v);
    }
}
