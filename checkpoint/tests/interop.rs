//! Interop with Python's safetensors: a committed fixture written by Python
//! (`tests/fixtures/make_fixture.py`) loads in ferrax with exact values, and files ferrax
//! writes load in Python's `safetensors.numpy` with identical bytes, dtypes and shapes.
//! The Python direction runs when `python3 -c "import safetensors, numpy"` works (CI
//! installs both); elsewhere it prints why it skips.

extern crate ferrax_core as ferrax;

mod common;

use common::{every_kind_tree, TestDir};
use ferrax::{bf16, f16, tree, Array, DType, Storage, Tensor, Tree, C};
use ferrax_checkpoint::{
    load_arrays, load_tree_with, save_tree_with_metadata, CheckpointManager, Options,
    RestoreOptions, Value,
};
use std::collections::BTreeMap;
use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/python_written.safetensors"
);

#[test]
fn python_written_fixture_loads_exactly() {
    let l = load_arrays(FIXTURE).unwrap();
    assert_eq!(l.metadata["writer"], "python");
    let get = |n: &str| {
        l.tensors
            .iter()
            .find(|(k, _)| k == n)
            .unwrap_or_else(|| panic!("no tensor {n}"))
            .1
            .clone()
    };
    let w = get("params.w");
    assert_eq!(w.shape(), [2, 3]);
    assert_eq!(
        w.to_vec::<f32>().unwrap(),
        vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
    );
    assert_eq!(
        get("params.b").to_vec::<f64>().unwrap(),
        vec![1e-3, -2.5, f64::INFINITY]
    );
    assert_eq!(
        get("half").to_vec::<f16>().unwrap(),
        [0.5, -1.0, 65504.0, 2f64.powi(-24)]
            .map(f16::from_f64)
            .to_vec()
    );
    assert_eq!(
        get("ints.i32").to_vec::<i32>().unwrap(),
        vec![i32::MIN, -1, 0, i32::MAX]
    );
    let i64s = get("ints.i64");
    assert_eq!(i64s.shape(), [2, 1]);
    assert_eq!(i64s.to_vec::<i64>().unwrap(), vec![i64::MIN, (1 << 62) + 1]);
    assert_eq!(
        get("ints.u32").to_vec::<u32>().unwrap(),
        vec![0, u32::MAX, 7]
    );
    assert_eq!(
        get("mask").to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    let step = get("step");
    assert_eq!(
        (step.rank(), step.to_vec::<i64>().unwrap()),
        (0, vec![1234])
    );
    let empty = get("empty");
    assert_eq!(
        (empty.shape(), empty.dtype()),
        (&[0usize, 3][..], DType::F32)
    );

    // Into a typed tree: the `params` sub-tree of Python's flat names.
    #[derive(Tree, Debug)]
    struct Params {
        w: Tensor<(C<2>, C<3>)>,
        b: Tensor<(C<3>,), f64>,
    }
    let target = Params {
        w: Tensor::zeros(),
        b: Tensor::zeros(),
    };
    let p = load_tree_with(
        FIXTURE,
        &target,
        &RestoreOptions::default().subtree("params"),
    )
    .unwrap();
    assert_eq!(p.b.to_vec().unwrap()[1], -2.5);
}

/// The little-endian bytes of an array, encoded independently of the crate's writer.
fn le_hex(a: &Array) -> String {
    let s = a.storage("test").unwrap();
    let bytes: Vec<u8> = match s {
        Storage::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Storage::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Storage::BF16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        Storage::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        Storage::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Storage::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Storage::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Storage::Bool(v) => v.iter().map(|&b| b as u8).collect(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::U32 => "uint32",
        DType::Bool => "bool",
    }
}

/// Python side: numpy has no bfloat16, so `safetensors.numpy` cannot load BF16 tensors;
/// those are read from the raw layout (header + offsets, as the spec defines it) as uint16.
const CHECK_PY: &str = r#"
import json, struct, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

path, expected_path, bf16_path = sys.argv[1], sys.argv[2], sys.argv[3]
expected = json.load(open(expected_path))
got = load_file(path)
names = expected["tensors"]
assert set(got) == set(names), (sorted(got), sorted(expected["tensors"]))
for name, e in names.items():
    a = got[name]
    assert str(a.dtype) == e["dtype"], (name, a.dtype, e["dtype"])
    assert list(a.shape) == e["shape"], (name, a.shape, e["shape"])
    assert a.astype(a.dtype.newbyteorder("<")).tobytes().hex() == e["hex"], name
with safe_open(path, framework="numpy") as f:
    meta = f.metadata()
assert meta["run"] == expected["meta_run"], meta
# A known value, checked as a number rather than as bytes.
assert got["1"].tolist() == [[1.5, -2.0, 0.25]], got["1"]

raw = open(bf16_path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
for name, e in expected["bf16"].items():
    info = header[name]
    assert info["dtype"] == "BF16" and info["shape"] == e["shape"], info
    b, end = info["data_offsets"]
    bits = np.frombuffer(raw[8 + n + b:8 + n + end], dtype="<u2")
    assert bits.tobytes().hex() == e["hex"], name
    as_f32 = (bits.astype(np.uint32) << 16).view(np.float32)
    if name == "1":
        assert as_f32.tolist() == [1.0, -3.5], as_f32
print("python: ok", len(got), "tensors +", len(expected["bf16"]), "bf16")
"#;

#[test]
fn files_written_by_ferrax_load_in_python() {
    let probe = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output();
    match &probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "files_written_by_ferrax_load_in_python: SKIPPED: python3 cannot import safetensors/numpy ({}); `pip install safetensors numpy` to run it",
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            );
            return;
        }
        Err(e) => {
            eprintln!("files_written_by_ferrax_load_in_python: SKIPPED: no python3 ({e})");
            return;
        }
    }
    let dir = TestDir::new("interop");
    // Everything numpy has (all dtypes but bf16), rank 0 and empty tensors, plus a known
    // value: saved as the tree `(leaves, known)`, so the names are `0.<i>` and `1`.
    let leaves: Vec<Array> = tree::leaves(&every_kind_tree(11))
        .into_iter()
        .filter(|a| a.dtype() != DType::BF16)
        .collect();
    let known = Array::from_vec(vec![1, 3], vec![1.5f32, -2.0, 0.25]).unwrap();
    let saved = (leaves, known);
    let mut meta = BTreeMap::new();
    meta.insert("run".to_string(), "interop ✓".to_string());
    let path = dir.path().join("ferrax.safetensors");
    save_tree_with_metadata(&path, &saved, &meta).unwrap();
    let mut tensors = serde_json::Map::new();
    for (p, a) in tree::leaves_with_paths(&saved) {
        tensors.insert(
            p.to_string(),
            serde_json::json!({"dtype": numpy_name(a.dtype()), "shape": a.shape(), "hex": le_hex(&a)}),
        );
    }

    // bf16, in a step file written by the manager (real checkpoints are readable too).
    let bf = (
        every_kind_tree(12).0[DType::ALL.iter().position(|&d| d == DType::BF16).unwrap()].clone(),
        Array::from_vec(vec![2], vec![bf16::from_f32(1.0), bf16::from_f32(-3.5)]).unwrap(),
    );
    let mgr = CheckpointManager::new(dir.path().join("ckpt"), Options::default()).unwrap();
    mgr.save(1, &bf, Value::Null).unwrap();
    mgr.close().unwrap();
    let bf16_path = dir.path().join("ckpt").join("1").join("data.safetensors");
    let mut expected_bf16 = serde_json::Map::new();
    for (name, a) in [("0", &bf.0), ("1", &bf.1)] {
        expected_bf16.insert(
            name.into(),
            serde_json::json!({"shape": a.shape(), "hex": le_hex(a)}),
        );
    }
    let expected =
        serde_json::json!({"tensors": tensors, "bf16": expected_bf16, "meta_run": "interop ✓"});
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(CHECK_PY)
        .arg(&path)
        .arg(&expected_path)
        .arg(&bf16_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python rejected the ferrax files:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
}
