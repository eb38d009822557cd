//! Helpers shared by the integration tests: scratch directories and test trees.
#![allow(dead_code)]

use ferrax_core::{bf16, f16, Array, DType, Storage};
use std::path::{Path, PathBuf};

/// A scratch directory under the system temp dir, removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("ferrax-ckpt-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TestDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic generator (splitmix64), so failures reproduce from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An array of `shape` and `dtype` with arbitrary bit patterns (NaN payloads included).
pub fn random_array(rng: &mut Rng, dtype: DType, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    let s = match dtype {
        DType::F32 => Storage::F32((0..n).map(|_| f32::from_bits(rng.next() as u32)).collect()),
        DType::F64 => Storage::F64((0..n).map(|_| f64::from_bits(rng.next())).collect()),
        DType::BF16 => Storage::BF16((0..n).map(|_| bf16::from_bits(rng.next() as u16)).collect()),
        DType::F16 => Storage::F16((0..n).map(|_| f16::from_bits(rng.next() as u16)).collect()),
        DType::I32 => Storage::I32((0..n).map(|_| rng.next() as i32).collect()),
        DType::I64 => Storage::I64((0..n).map(|_| rng.next() as i64).collect()),
        DType::U32 => Storage::U32((0..n).map(|_| rng.next() as u32).collect()),
        DType::Bool => Storage::Bool((0..n).map(|_| rng.next() & 1 == 1).collect()),
    };
    Array::from_storage(shape.to_vec(), s).unwrap()
}

/// One leaf of every dtype, plus rank-0 and empty leaves, in a nested tree.
pub fn every_kind_tree(seed: u64) -> (Vec<Array>, (Array, Array), Vec<Vec<Array>>) {
    let mut rng = Rng(seed);
    let by_dtype = DType::ALL
        .iter()
        .map(|&d| random_array(&mut rng, d, &[2, 3]))
        .collect();
    let scalars = (
        random_array(&mut rng, DType::I64, &[]),
        random_array(&mut rng, DType::F32, &[]),
    );
    let odd = vec![
        DType::ALL
            .iter()
            .map(|&d| random_array(&mut rng, d, &[0, 4]))
            .collect(),
        vec![
            random_array(&mut rng, DType::Bool, &[]),
            random_array(&mut rng, DType::BF16, &[1, 1, 1, 5]),
        ],
    ];
    (by_dtype, scalars, odd)
}

/// Whether two trees' leaves are bit-identical (same paths, shapes, dtypes, bits).
pub fn trees_bit_eq<T: ferrax_core::Tree>(a: &T, b: &T) -> bool {
    let la = ferrax_core::tree::leaves_with_paths(a);
    let lb = ferrax_core::tree::leaves_with_paths(b);
    la.len() == lb.len()
        && la
            .iter()
            .zip(&lb)
            .all(|((pa, x), (pb, y))| pa == pb && x.bit_eq(y))
}
