//! The safetensors reader/writer and manifest parser: exact round trips (table and
//! proptest), and a table-driven negative corpus where each kind of damage has its own
//! error.

extern crate ferrax_core as ferrax;

mod common;

use common::{every_kind_tree, random_array, trees_bit_eq, Rng, TestDir};
use ferrax_checkpoint::manifest::parse_manifest;
use ferrax_checkpoint::{
    load_arrays, load_tree, load_tree_with, parse_safetensors, save_tree, save_tree_with_metadata,
    Corruption, Error, RestoreOptions,
};
use ferrax_core::{Array, DType, Tensor, C};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn round_trip_every_dtype_rank0_and_empty() {
    let dir = TestDir::new("rt");
    let path = dir.path().join("t.safetensors");
    let t = every_kind_tree(7);
    let mut meta = BTreeMap::new();
    meta.insert("run".to_string(), "exp-1 ✓".to_string());
    save_tree_with_metadata(&path, &t, &meta).unwrap();
    let back = load_tree(&path, &t).unwrap();
    assert!(trees_bit_eq(&t, &back));
    let loaded = load_arrays(&path).unwrap();
    assert_eq!(loaded.metadata["run"], "exp-1 ✓");
    assert!(loaded.metadata.contains_key("ferrax.data_crc32"));
    assert_eq!(loaded.tensors.len(), ferrax_core::tree::leaf_count(&t));
    // Names are the flattened tree paths, in visit order in the data section.
    let names: Vec<&str> = loaded.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..3], ["0.0", "0.1", "0.2"]);
    assert!(names.contains(&"2.1.1"));
}

#[test]
fn typed_tree_round_trip_and_checks() {
    let dir = TestDir::new("typed");
    let path = dir.path().join("m.safetensors");
    let w = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let step = Tensor::<(), i64>::from_array(Array::scalar(41i64)).unwrap();
    let tree = (w.clone(), step.clone());
    save_tree(&path, &tree).unwrap();
    let back = load_tree(&path, &tree).unwrap();
    assert_eq!(back.0.to_vec().unwrap(), w.to_vec().unwrap());
    assert_eq!(back.1.array().to_vec::<i64>().unwrap(), vec![41]);

    // Shape mismatch names the path.
    let wrong = (Tensor::<(C<3>, C<2>)>::zeros(), step.clone());
    match load_tree(&path, &wrong) {
        Err(Error::ShapeMismatch {
            path,
            saved,
            target,
        }) => {
            assert_eq!(
                (path.as_str(), saved, target),
                ("0", vec![2, 3], vec![3, 2])
            );
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    // Dtype mismatch, then the same with a cast.
    let as_f64 = (Tensor::<(C<2>, C<3>), f64>::zeros(), step.clone());
    let err = load_tree(&path, &as_f64).unwrap_err();
    assert!(
        matches!(&err, Error::DTypeMismatch { path, .. } if path == "0"),
        "{err}"
    );
    let cast = load_tree_with(&path, &as_f64, &RestoreOptions::default().cast(true)).unwrap();
    assert_eq!(cast.0.to_vec().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    // A target with fewer leaves: an error, unless partial.
    let only_w = (w.clone(),);
    assert!(matches!(
        load_tree(&path, &only_w),
        Err(Error::UnexpectedLeaves { .. })
    ));
    let p = load_tree_with(&path, &only_w, &RestoreOptions::default().partial(true)).unwrap();
    assert_eq!(p.0.to_vec().unwrap(), w.to_vec().unwrap());
    // A sub-tree: the saved leaf "0" into a bare tensor.
    let sub = load_tree_with(&path, &w, &RestoreOptions::default().subtree("0")).unwrap();
    assert_eq!(sub.to_vec().unwrap(), w.to_vec().unwrap());
    // A target with a leaf the file lacks.
    let more = (w.clone(), step, Tensor::<(C<1>,)>::zeros());
    assert!(matches!(load_tree(&path, &more), Err(Error::MissingLeaf { path, .. }) if path == "2"));
}

#[test]
fn traced_and_reserved_leaves_are_refused() {
    #[allow(non_snake_case)]
    #[derive(ferrax_core::Tree)]
    struct Weird {
        __metadata__: Tensor<(C<1>,)>,
    }
    let dir = TestDir::new("reserved");
    let t = Weird {
        __metadata__: Tensor::zeros(),
    };
    let err = save_tree(dir.path().join("w.safetensors"), &t).unwrap_err();
    assert!(matches!(err, Error::ReservedName { .. }), "{err}");
}

// ---- negative corpus --------------------------------------------------------------------

/// A file from a header string and data bytes.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn entry(name: &str, dtype: &str, shape: &str, b: u64, e: u64) -> String {
    format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[{b},{e}]}}"#)
}

fn valid_file() -> Vec<u8> {
    let dir = TestDir::new("valid");
    let p = dir.path().join("v.safetensors");
    save_tree(
        &p,
        &(Tensor::<(C<4>,)>::ones(), Tensor::<(C<2>,), i32>::zeros()),
    )
    .unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn negative_corpus_each_case_has_its_own_error() {
    let ones65 = format!("[{}]", vec!["1"; 65].join(","));
    let mut flipped = valid_file();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    type Check = fn(&Corruption) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("too short", vec![1, 2, 3], |c| {
            matches!(c, Corruption::TooShort { len: 3 })
        }),
        (
            "header too large",
            {
                let mut v = 200_000_000u64.to_le_bytes().to_vec();
                v.extend_from_slice(b"{}");
                v
            },
            |c| matches!(c, Corruption::HeaderTooLarge { .. }),
        ),
        (
            "header out of bounds",
            {
                let mut v = 100u64.to_le_bytes().to_vec();
                v.extend_from_slice(b"{}");
                v
            },
            |c| {
                matches!(
                    c,
                    Corruption::HeaderOutOfBounds {
                        len: 100,
                        available: 2
                    }
                )
            },
        ),
        (
            "header not utf-8",
            {
                let mut v = 4u64.to_le_bytes().to_vec();
                v.extend_from_slice(&[b'{', 0xff, 0xfe, b'}']);
                v
            },
            |c| matches!(c, Corruption::HeaderNotUtf8 { at: 1 }),
        ),
        ("header not json", file(r#"{"a":"#, &[]), |c| {
            matches!(c, Corruption::HeaderNotJson { .. })
        }),
        ("header not an object", file("[1,2]", &[]), |c| {
            matches!(c, Corruption::HeaderSchema { .. })
        }),
        (
            "entry missing offsets",
            file(r#"{"a":{"dtype":"F32","shape":[]}}"#, &[]),
            |c| matches!(c, Corruption::HeaderSchema { .. }),
        ),
        (
            "metadata not strings",
            file(r#"{"__metadata__":{"a":1}}"#, &[]),
            |c| matches!(c, Corruption::HeaderSchema { .. }),
        ),
        (
            "duplicate name",
            file(
                &format!(
                    "{{{},{}}}",
                    entry("a", "F32", "[1]", 0, 4),
                    entry("a", "F32", "[1]", 4, 8)
                ),
                &[0; 8],
            ),
            |c| matches!(c, Corruption::DuplicateName { name } if name == "a"),
        ),
        (
            "duplicate metadata",
            file(r#"{"__metadata__":{},"__metadata__":{}}"#, &[]),
            |c| matches!(c, Corruption::DuplicateName { name } if name == "__metadata__"),
        ),
        (
            "unknown dtype",
            file(&format!("{{{}}}", entry("a", "F33", "[1]", 0, 4)), &[0; 4]),
            |c| matches!(c, Corruption::UnknownDType { dtype, .. } if dtype == "F33"),
        ),
        (
            "unsupported dtype",
            file(&format!("{{{}}}", entry("a", "U8", "[4]", 0, 4)), &[0; 4]),
            |c| matches!(c, Corruption::UnsupportedDType { dtype, .. } if dtype == "U8"),
        ),
        (
            "rank too large",
            file(
                &format!("{{{}}}", entry("a", "F32", &ones65, 0, 4)),
                &[0; 4],
            ),
            |c| matches!(c, Corruption::RankTooLarge { rank: 65, .. }),
        ),
        (
            "shape overflow",
            file(
                &format!(
                    "{{{}}}",
                    entry("a", "F32", "[1099511627776,1099511627776]", 0, 4)
                ),
                &[0; 4],
            ),
            |c| matches!(c, Corruption::ShapeOverflow { .. }),
        ),
        (
            "offsets reversed",
            file(&format!("{{{}}}", entry("a", "F32", "[1]", 4, 0)), &[0; 4]),
            |c| {
                matches!(
                    c,
                    Corruption::OffsetsReversed {
                        begin: 4,
                        end: 0,
                        ..
                    }
                )
            },
        ),
        (
            "offsets out of bounds",
            file(
                &format!("{{{}}}", entry("a", "F32", "[25]", 0, 100)),
                &[0; 4],
            ),
            |c| {
                matches!(
                    c,
                    Corruption::OffsetsOutOfBounds {
                        end: 100,
                        data_len: 4,
                        ..
                    }
                )
            },
        ),
        (
            "size mismatch",
            file(&format!("{{{}}}", entry("a", "F32", "[2]", 0, 4)), &[0; 4]),
            |c| {
                matches!(
                    c,
                    Corruption::SizeMismatch {
                        expected: 8,
                        actual: 4,
                        ..
                    }
                )
            },
        ),
        (
            "overlap",
            file(
                &format!(
                    "{{{},{}}}",
                    entry("a", "F32", "[2]", 0, 8),
                    entry("b", "F32", "[2]", 4, 12)
                ),
                &[0; 12],
            ),
            |c| matches!(c, Corruption::Overlap { first, second, at: 4 } if first == "a" && second == "b"),
        ),
        (
            "gap",
            file(
                &format!(
                    "{{{},{}}}",
                    entry("a", "F32", "[1]", 0, 4),
                    entry("b", "F32", "[1]", 8, 12)
                ),
                &[0; 12],
            ),
            |c| matches!(c, Corruption::Gap { from: 4, to: 8 }),
        ),
        (
            "trailing bytes",
            file(&format!("{{{}}}", entry("a", "F32", "[1]", 0, 4)), &[0; 8]),
            |c| {
                matches!(
                    c,
                    Corruption::TrailingBytes {
                        data_len: 8,
                        used: 4
                    }
                )
            },
        ),
        (
            "invalid bool",
            file(&format!("{{{}}}", entry("m", "BOOL", "[2]", 0, 2)), &[1, 7]),
            |c| {
                matches!(
                    c,
                    Corruption::InvalidBool {
                        index: 1,
                        byte: 7,
                        ..
                    }
                )
            },
        ),
        ("data checksum", flipped, |c| {
            matches!(c, Corruption::DataChecksum { .. })
        }),
    ];
    let mut kinds = Vec::new();
    for (name, bytes, check) in &cases {
        let err = match parse_safetensors(bytes) {
            Ok(_) => panic!("case `{name}`: a corrupt file loaded"),
            Err(e) => e,
        };
        let kind = err
            .corruption()
            .unwrap_or_else(|| panic!("case `{name}`: not a corruption error: {err}"));
        assert!(check(kind), "case `{name}`: unexpected error {kind:?}");
        // The message names the problem, not just "corrupt".
        assert!(err.to_string().len() > 20, "{err}");
        kinds.push(std::mem::discriminant(kind));
    }
    // Cases that share a variant are the different ways to break the schema / duplicate.
    kinds.sort_by_key(|d| format!("{d:?}"));
    kinds.dedup();
    assert_eq!(
        kinds.len(),
        cases.len() - 3,
        "each kind of damage has its own variant"
    );
    // The valid files these were derived from load.
    assert!(parse_safetensors(&valid_file()).is_ok());
    assert!(parse_safetensors(&file("{}", &[])).is_ok());
    assert!(parse_safetensors(&file(
        &format!("{{{}}}", entry("e", "F32", "[0,3]", 0, 0)),
        &[]
    ))
    .is_ok());
}

#[test]
fn manifest_negative_corpus() {
    let good = r#"{"format":"ferrax-checkpoint","format_version":1,"step":3,"timestamp_unix_ms":0,
        "metadata":{"loss":0.5,"note":"ok"},
        "leaves":[{"path":"w","dtype":"f32","shape":[2],"file":"data.safetensors"}],
        "files":[{"name":"data.safetensors","size":100,"crc32":5}]}"#;
    let p = Path::new("manifest.json");
    let m = parse_manifest(good.as_bytes(), p).unwrap();
    assert_eq!(m.metadata["note"], "ok");
    type Check = fn(&Corruption) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        ("not json", good[..40].to_string(), |c| matches!(c, Corruption::ManifestNotJson { .. })),
        ("schema", good.replace(r#""step":3"#, r#""step":"three""#), |c| matches!(c, Corruption::ManifestSchema { .. })),
        ("other format", good.replace("ferrax-checkpoint", "orbax"), |c| matches!(c, Corruption::NotAManifest { .. })),
        ("version", good.replace(r#""format_version":1"#, r#""format_version":99"#), |c| matches!(c, Corruption::UnsupportedVersion { found: 99, supported: 1 })),
        ("path traversal", good.replace(r#""name":"data.safetensors""#, r#""name":"../../etc/passwd""#), |c| matches!(c, Corruption::BadFileName { .. })),
        ("unknown file", good.replace(r#""file":"data.safetensors""#, r#""file":"other""#), |c| matches!(c, Corruption::UnknownFile { .. })),
        ("dtype", good.replace(r#""dtype":"f32""#, r#""dtype":"f128""#), |c| matches!(c, Corruption::ManifestDType { .. })),
        ("duplicate leaf", good.replace(r#""leaves":[{"path":"w","dtype":"f32","shape":[2],"file":"data.safetensors"}]"#,
            r#""leaves":[{"path":"w","dtype":"f32","shape":[2],"file":"data.safetensors"},{"path":"w","dtype":"f32","shape":[2],"file":"data.safetensors"}]"#),
            |c| matches!(c, Corruption::DuplicateName { .. })),
        ("rank", good.replace(r#""shape":[2]"#, &format!("\"shape\":[{}]", vec!["1"; 65].join(","))), |c| matches!(c, Corruption::ManifestSchema { .. })),
    ];
    for (name, text, check) in &cases {
        let err = parse_manifest(text.as_bytes(), p).unwrap_err();
        let kind = err
            .corruption()
            .unwrap_or_else(|| panic!("`{name}`: {err}"));
        assert!(check(kind), "case `{name}`: unexpected {kind:?}");
    }
    let huge = vec![b' '; (64 << 20) + 1];
    assert!(matches!(
        parse_manifest(&huge, p).unwrap_err().corruption(),
        Some(Corruption::MetadataTooLarge { .. })
    ));
}

// ---- proptest round trip ----------------------------------------------------------------

fn arb_leaf() -> impl Strategy<Value = (usize, Vec<usize>, u64)> {
    (
        0..DType::ALL.len(),
        prop::collection::vec(0usize..4, 0..4),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Random trees (all dtypes, rank 0, empty tensors, nesting) round-trip bit-exactly.
    #[test]
    fn proptest_round_trip(
        leaves in prop::collection::vec(prop::collection::vec(arb_leaf(), 0..4), 0..4),
        scalar_seed in any::<u64>(),
    ) {
        let tree: (Vec<Vec<Array>>, Array) = (
            leaves
                .iter()
                .map(|group| {
                    group
                        .iter()
                        .map(|(d, shape, seed)| random_array(&mut Rng(*seed), DType::ALL[*d], shape))
                        .collect()
                })
                .collect(),
            random_array(&mut Rng(scalar_seed), DType::ALL[(scalar_seed % 8) as usize], &[]),
        );
        let dir = TestDir::new("prop");
        let path = dir.path().join("p.safetensors");
        save_tree(&path, &tree).unwrap();
        let back = load_tree(&path, &tree).unwrap();
        prop_assert!(trees_bit_eq(&tree, &back));
        // The in-memory parser agrees with the file reader.
        let bytes = std::fs::read(&path).unwrap();
        let loaded = parse_safetensors(&bytes).unwrap();
        prop_assert_eq!(loaded.tensors.len(), ferrax_core::tree::leaf_count(&tree));
    }
}
