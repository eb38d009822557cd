//! Bounded mutation fuzzing of the safetensors loader and the manifest / marker parsers
//! (cargo-fuzz needs nightly; this runs on stable in CI). Valid files are mutated (bit
//! flips, interesting bytes, truncation, insertion, duplication, a rewritten length
//! prefix); every result must load or fail with an error: no panic, no hang, and no
//! allocation beyond a small multiple of the input's size (a counting global allocator
//! tracks this thread's peak).
//!
//! `FERRAX_FUZZ_CASES` sets the case count (default 100 000 for the loader, half that for
//! the manifest).

use ferrax_checkpoint::manifest::{parse_manifest, parse_marker};
use ferrax_checkpoint::{parse_safetensors, Error};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

// ---- a per-thread counting allocator ----------------------------------------------------

struct Counting;

thread_local! {
    static CUR: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn add(n: usize) {
    let _ = CUR.try_with(|c| {
        let v = c.get() + n;
        c.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}
fn sub(n: usize) {
    let _ = CUR.try_with(|c| c.set(c.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator; the bookkeeping uses const-initialized
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            add(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) };
        sub(l.size());
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            sub(l.size());
            add(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the peak bytes it had allocated at once.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CUR.with(|c| c.get());
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(|p| p.get()) - base)
}

// ---- mutations --------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    Prefix(u64),
}

const INTERESTING: &[u8] = b"\x00\xff{}[]\",:-019eE.\\ ";

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), prop::sample::select(INTERESTING))
            .prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::collection::vec(prop::sample::select(INTERESTING), 1..6)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        prop_oneof![0u64..4096, any::<u64>()].prop_map(Mutation::Prefix),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::FlipBit(i, b) => {
            if let Some(x) = bytes.get_mut(i % n) {
                *x ^= 1 << b;
            }
        }
        Mutation::SetByte(i, b) => {
            if let Some(x) = bytes.get_mut(i % n) {
                *x = *b;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Insert(i, v) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, v.iter().copied());
        }
        Mutation::Duplicate(i, k) => {
            let at = i % n;
            let end = (at + k).min(bytes.len());
            let piece: Vec<u8> = bytes.get(at..end).unwrap_or_default().to_vec();
            bytes.splice(at..at, piece);
        }
        Mutation::Prefix(v) => {
            if bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("FERRAX_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Valid safetensors files to mutate: every dtype, rank 0, empty tensors, metadata.
fn seeds() -> Vec<Vec<u8>> {
    use ferrax_core::{Array, DType};
    let dir = std::env::temp_dir().join(format!("ferrax-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = Vec::new();
    let mut k = 0;
    let mut save = |t: &dyn Fn(&Path) -> ferrax_checkpoint::Result<()>| {
        let p = dir.join(format!("{k}.safetensors"));
        k += 1;
        t(&p).unwrap();
        out.push(std::fs::read(&p).unwrap());
    };
    let every: Vec<Array> = DType::ALL
        .iter()
        .map(|&d| Array::full(&[2, 3], d, 1.0))
        .collect();
    save(&|p| ferrax_checkpoint::save_tree(p, &every));
    let odd = (
        Array::scalar(7i64),
        Array::zeros(&[0, 5], DType::F32),
        Array::full(&[3], DType::Bool, 1.0),
    );
    save(&|p| ferrax_checkpoint::save_tree(p, &odd));
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("k".to_string(), "v".to_string());
    let one = vec![Array::full(&[4, 4], DType::BF16, 0.5)];
    save(&|p| ferrax_checkpoint::save_tree_with_metadata(p, &one, &meta));
    // Header-heavy: 300 small leaves, so the header's parse dominates the allocation.
    let many: Vec<Array> = (0..300)
        .map(|i| Array::full(&[i % 3], DType::ALL[i % 8], i as f64))
        .collect();
    save(&|p| ferrax_checkpoint::save_tree(p, &many));
    let _ = std::fs::remove_dir_all(&dir);
    out.push(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/python_written.safetensors"
        ))
        .unwrap(),
    );
    for s in &out {
        parse_safetensors(s).expect("seeds are valid");
    }
    out
}

/// What one loader case may allocate: the input's size (tensor data never exceeds it) times
/// a small factor for the parsed header, plus fixed overhead (I/O chunk buffers, error
/// strings).
fn alloc_bound(len: usize) -> usize {
    4 * len + 64 * 1024
}

#[test]
fn fuzz_safetensors_loader() {
    let seeds = seeds();
    let n = cases(100_000);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(arb_mutation(), 1..5));
    let start = Instant::now();
    // `run` takes an `Fn`: the statistics live in cells.
    let max_ratio = Cell::new(0f64);
    let max_over = Cell::new(0usize);
    let errors = Cell::new(0u64);
    let slowest = Cell::new(Duration::ZERO);
    let result = runner.run(&strategy, |(seed, muts)| {
        let mut bytes = seeds[seed].clone();
        for m in &muts {
            apply(&mut bytes, m);
        }
        let t = Instant::now();
        let (res, peak) = measure(|| parse_safetensors(&bytes).map(|l| l.tensors.len()));
        slowest.set(slowest.get().max(t.elapsed()));
        if let Err(e) = &res {
            errors.set(errors.get() + 1);
            // Corruption must be reported as such, never as an I/O error on in-memory data.
            prop_assert!(
                !matches!(e, Error::Io { .. }),
                "an I/O error from memory: {e}"
            );
        }
        prop_assert!(
            peak <= alloc_bound(bytes.len()),
            "{} bytes allocated for a {}-byte input",
            peak,
            bytes.len()
        );
        max_over.set(max_over.get().max(peak.saturating_sub(bytes.len())));
        if bytes.len() >= 8192 {
            max_ratio.set(max_ratio.get().max(peak as f64 / bytes.len() as f64));
        }
        prop_assert!(
            t.elapsed() < Duration::from_secs(1),
            "a case took {:?}",
            t.elapsed()
        );
        Ok(())
    });
    eprintln!(
        "fuzz_safetensors_loader: {n} cases in {:.1} s, {} rejected, slowest {:?}, peak allocation at most input + {} B, at most {:.2}x the input for inputs of 8 KiB or more",
        start.elapsed().as_secs_f64(),
        errors.get(),
        slowest.get(),
        max_over.get(),
        max_ratio.get()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn fuzz_manifest_and_marker_parsers() {
    let manifest = br#"{"format":"ferrax-checkpoint","format_version":1,"step":12,"timestamp_unix_ms":1700000000000,
        "metadata":{"loss":0.25,"tags":["a","b"],"nested":{"x":[1,2,{"y":null}]}},
        "leaves":[{"path":"l1.w","dtype":"f32","shape":[2,3],"file":"data.safetensors"},
                  {"path":"step","dtype":"i64","shape":[],"file":"data.safetensors"}],
        "files":[{"name":"data.safetensors","size":1234,"crc32":3735928559}]}"#
        .to_vec();
    let marker = br#"{"format":"ferrax-checkpoint","manifest_crc32":123}"#.to_vec();
    let p = Path::new("manifest.json");
    parse_manifest(&manifest, p).unwrap();
    parse_marker(&marker, p).unwrap();
    let n = cases(100_000) / 2;
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let start = Instant::now();
    let result = runner.run(
        &(any::<bool>(), prop::collection::vec(arb_mutation(), 1..5)),
        |(is_marker, muts)| {
            let mut bytes = if is_marker {
                marker.clone()
            } else {
                manifest.clone()
            };
            for m in &muts {
                apply(&mut bytes, m);
            }
            let (_, peak) = measure(|| {
                let _ = parse_manifest(&bytes, p);
                let _ = parse_marker(&bytes, p);
            });
            // serde_json's `Value` for the user metadata costs more per input byte than
            // the header's entries; the bound is still linear in the input.
            prop_assert!(
                peak <= 16 * bytes.len() + 64 * 1024,
                "{peak} bytes for {} input bytes",
                bytes.len()
            );
            Ok(())
        },
    );
    eprintln!(
        "fuzz_manifest_and_marker_parsers: {n} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
