//! CheckpointManager: async save semantics, injected failures at every stage of the commit,
//! background I/O failures, retention policies, restore checks and damaged steps.

extern crate ferrax_core as ferrax;

mod common;

use common::{every_kind_tree, trees_bit_eq, TestDir};
use ferrax::{Tensor, Tree, C};
use ferrax_checkpoint::{
    json, BestMode, CheckpointManager, Corruption, Error, Options, RestoreOptions, Stage, Value,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

#[derive(Tree, Clone, Debug)]
struct Model {
    w: Tensor<(C<4>, C<3>)>,
    b: Tensor<(C<3>,)>,
}

impl Model {
    fn new(x: f32) -> Self {
        Model {
            w: Tensor::from_vec((0..12).map(|i| x + i as f32).collect()).unwrap(),
            b: Tensor::from_vec(vec![x, -x, x * 2.0]).unwrap(),
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn save_returns_before_commit_and_snapshot_is_isolated() {
    let dir = TestDir::new("async");
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let opts = Options {
        fail_hook: Some(Arc::new(move |stage, _| {
            if stage == Stage::BeforeWrite {
                // Hold the writer until the test has looked at the directory.
                rx.lock().unwrap().recv().map_err(|e| e.to_string())?;
            }
            Ok(())
        })),
        ..Options::default()
    };
    let mgr = CheckpointManager::new(dir.path(), opts).unwrap();
    let mut model = Model::new(1.0);
    let expected = model.clone();
    assert!(mgr.save(1, &model, json!({"loss": 0.25})).unwrap());
    // The writer has not run: nothing is listed and the step directory does not exist.
    assert!(!dir.path().join("1").exists());
    assert_eq!(mgr.all_steps(), Vec::<u64>::new());
    // Replacing and dropping the model after save() returned does not change what is saved.
    model.w = Tensor::zeros();
    model = Model::new(-5.0);
    drop(model);
    tx.send(()).unwrap();
    mgr.wait_until_finished().unwrap();
    assert!(dir.path().join("1").join("COMMIT_SUCCESS").exists());
    assert_eq!(mgr.all_steps(), vec![1]);
    let back = mgr.restore(1, &Model::new(0.0)).unwrap();
    assert!(trees_bit_eq(&back, &expected));
    assert_eq!(mgr.metadata(1).unwrap()["loss"], 0.25);
}

#[test]
fn restore_waits_for_the_pending_save() {
    let dir = TestDir::new("restore-waits");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    let t = every_kind_tree(3);
    mgr.save(5, &t, Value::Null).unwrap();
    // No explicit wait: restore must wait for the commit itself.
    let back = mgr.restore(5, &t).unwrap();
    assert!(trees_bit_eq(&t, &back));
    let (s, back) = mgr.restore_latest(&t).unwrap();
    assert_eq!(s, 5);
    assert!(trees_bit_eq(&t, &back));
}

#[test]
fn drop_waits_for_the_pending_save() {
    let dir = TestDir::new("drop");
    {
        let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
        mgr.save(9, &Model::new(2.0), Value::Null).unwrap();
    }
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    assert_eq!(mgr.all_steps(), vec![9]);
}

/// A hook that fails once at `stage` of `step`.
fn fail_once(stage: Stage, step: u64) -> (Options, Arc<AtomicBool>) {
    let armed = Arc::new(AtomicBool::new(true));
    let a = Arc::clone(&armed);
    let opts = Options {
        max_to_keep: Some(1),
        fail_hook: Some(Arc::new(move |s, st| {
            if s == stage && st == step && a.swap(false, Ordering::SeqCst) {
                return Err("simulated crash".into());
            }
            Ok(())
        })),
        ..Options::default()
    };
    (opts, armed)
}

#[test]
fn failure_before_commit_loses_nothing() {
    for stage in [
        Stage::BeforeWrite,
        Stage::DataWritten,
        Stage::BeforeCommit,
        Stage::BeforeRename,
    ] {
        let dir = TestDir::new("inject");
        let (opts, _) = fail_once(stage, 2);
        let mgr = CheckpointManager::new(dir.path(), opts.clone()).unwrap();
        let m1 = Model::new(1.0);
        mgr.save(1, &m1, Value::Null).unwrap();
        mgr.save(2, &Model::new(2.0), Value::Null).unwrap();
        let err = mgr.wait_until_finished().unwrap_err();
        assert!(
            matches!(&err, Error::Background { step: 2, source } if matches!(**source, Error::Injected { .. })),
            "{stage:?}: {err}"
        );
        // The error was returned once; the manager is usable.
        mgr.wait_until_finished().unwrap();
        assert_eq!(mgr.all_steps(), vec![1], "{stage:?}");
        assert_eq!(mgr.latest_step(), Some(1));
        let leftovers = names(dir.path());
        if stage != Stage::BeforeWrite {
            assert!(
                leftovers.iter().any(|n| n.starts_with("2.tmp-")),
                "{stage:?}: {leftovers:?}"
            );
        }
        assert!(!dir.path().join("2").exists());
        drop(mgr);

        // Start-up finds and removes the temporary directory; step 1 is intact.
        let mgr = CheckpointManager::new(dir.path(), opts).unwrap();
        assert_eq!(names(dir.path()), vec!["1"], "{stage:?}");
        assert!(trees_bit_eq(&mgr.restore(1, &m1).unwrap(), &m1));
        // Saving the same step again works, and only then does retention drop step 1.
        let m2 = Model::new(2.0);
        mgr.save(2, &m2, Value::Null).unwrap();
        mgr.wait_until_finished().unwrap();
        assert_eq!(mgr.all_steps(), vec![2]);
        assert!(trees_bit_eq(&mgr.restore(2, &m2).unwrap(), &m2));
    }
}

#[test]
fn failure_after_commit_keeps_the_step() {
    let dir = TestDir::new("after-commit");
    let (opts, _) = fail_once(Stage::AfterCommit, 2);
    let mgr = CheckpointManager::new(dir.path(), opts).unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    mgr.save(2, &Model::new(2.0), Value::Null).unwrap();
    assert!(mgr.wait_until_finished().is_err());
    // Committed; retention did not run, so step 1 is still there too.
    assert_eq!(mgr.all_steps(), vec![1, 2]);
}

#[test]
fn background_error_is_returned_by_the_next_call() {
    let dir = TestDir::new("next-call");
    let (opts, _) = fail_once(Stage::BeforeCommit, 1);
    let mgr = CheckpointManager::new(dir.path(), opts).unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    // The next save reports step 1's failure and does not start step 2.
    let err = mgr.save(2, &Model::new(2.0), Value::Null).unwrap_err();
    assert!(matches!(err, Error::Background { step: 1, .. }), "{err}");
    mgr.wait_until_finished().unwrap();
    assert!(mgr.all_steps().is_empty());
    assert!(mgr.save(2, &Model::new(2.0), Value::Null).unwrap());
    mgr.close().unwrap();
}

#[test]
fn write_failure_in_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new("readonly");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.path().join("probe");
    if std::fs::create_dir(&probe).is_ok() {
        // Root (as in CI containers) ignores permission bits; the test below, which replaces
        // the directory by a file, covers the same path for every user.
        std::fs::remove_dir(&probe).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("write_failure_in_a_read_only_directory: running as a user that can write to a read-only directory (root); skipping this variant");
        return;
    }
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    let err = mgr.wait_until_finished().unwrap_err();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        matches!(&err, Error::Background { source, .. } if matches!(**source, Error::Io { .. })),
        "{err}"
    );
    assert!(mgr.all_steps().is_empty());
}

#[test]
fn write_failure_when_the_directory_is_gone() {
    let dir = TestDir::new("gone");
    let root = dir.path().join("ckpt");
    let mgr = CheckpointManager::new(&root, Options::default()).unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    mgr.wait_until_finished().unwrap();
    // Replace the checkpoint directory by a plain file: every write below it fails.
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    mgr.save(2, &Model::new(2.0), Value::Null).unwrap();
    let err = mgr.restore(1, &Model::new(0.0)).unwrap_err();
    assert!(
        matches!(&err, Error::Background { step: 2, source } if matches!(**source, Error::Io { .. })),
        "{err}"
    );
    assert_eq!(mgr.all_steps(), vec![1], "step 2 is not listed");
}

#[test]
fn steps_are_never_overwritten() {
    let dir = TestDir::new("exists");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    let err = mgr.save(1, &Model::new(2.0), Value::Null).unwrap_err();
    assert!(matches!(err, Error::StepExists { step: 1, .. }), "{err}");
    // A step committed by another manager (unknown to this one) is not replaced either.
    let other = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    other.save(2, &Model::new(3.0), Value::Null).unwrap();
    other.close().unwrap();
    mgr.save(2, &Model::new(4.0), Value::Null).unwrap();
    let err = mgr.wait_until_finished().unwrap_err();
    assert!(
        matches!(&err, Error::Background { source, .. } if matches!(**source, Error::StepExists { step: 2, .. })),
        "{err}"
    );
    mgr.reload().unwrap();
    let back = mgr.restore(2, &Model::new(0.0)).unwrap();
    assert!(trees_bit_eq(&back, &Model::new(3.0)));
    assert!(!names(dir.path()).iter().any(|n| n.contains(".tmp-")));
}

#[test]
fn retention_policies_on_disk() {
    let dir = TestDir::new("retention");
    let mgr = CheckpointManager::new(
        dir.path(),
        Options {
            max_to_keep: Some(2),
            keep_period: Some(4),
            ..Options::default()
        },
    )
    .unwrap();
    for s in 1..=9 {
        mgr.save(s, &Model::new(s as f32), Value::Null).unwrap();
    }
    mgr.wait_until_finished().unwrap();
    assert_eq!(mgr.all_steps(), vec![4, 8, 9]);
    assert_eq!(names(dir.path()), vec!["4", "8", "9"]);

    let dir = TestDir::new("best");
    let mgr = CheckpointManager::new(
        dir.path(),
        Options {
            max_to_keep: Some(2),
            best_fn: Some(Arc::new(|m| m["acc"].as_f64())),
            best_mode: BestMode::Max,
            ..Options::default()
        },
    )
    .unwrap();
    for (s, acc) in [(1, 0.5), (2, 0.9), (3, 0.1), (4, 0.7), (5, 0.2)] {
        mgr.save(
            s,
            &Model::new(1.0),
            json!({ "acc": acc, "note": format!("step {s}") }),
        )
        .unwrap();
    }
    mgr.wait_until_finished().unwrap();
    assert_eq!(mgr.all_steps(), vec![2, 4]);
    assert_eq!(mgr.best_step(), Some(2));
    assert_eq!(mgr.latest_step(), Some(4));
    assert_eq!(mgr.metadata(4).unwrap()["note"], "step 4");
    // Metadata survives a restart (it is read back from the manifests).
    drop(mgr);
    let mgr = CheckpointManager::new(
        dir.path(),
        Options {
            best_fn: Some(Arc::new(|m| m["acc"].as_f64())),
            best_mode: BestMode::Max,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(mgr.best_step(), Some(2));
}

#[test]
fn interval_should_save_and_delete() {
    let dir = TestDir::new("interval");
    let mgr = CheckpointManager::new(
        dir.path(),
        Options {
            save_interval_steps: Some(5),
            ..Options::default()
        },
    )
    .unwrap();
    assert!(mgr.should_save(0) && mgr.should_save(10) && !mgr.should_save(3));
    assert!(!mgr.save(3, &Model::new(1.0), Value::Null).unwrap());
    assert!(mgr.save(5, &Model::new(1.0), Value::Null).unwrap());
    assert!(!mgr.should_save(5));
    assert!(mgr.save(10, &Model::new(1.0), Value::Null).unwrap());
    mgr.wait_until_finished().unwrap();
    assert_eq!(mgr.all_steps(), vec![5, 10]);
    mgr.delete(5).unwrap();
    assert_eq!(mgr.all_steps(), vec![10]);
    assert_eq!(names(dir.path()), vec!["10"]);
    assert!(matches!(
        mgr.delete(5),
        Err(Error::StepNotFound { step: 5, .. })
    ));
    assert!(matches!(
        mgr.restore(7, &Model::new(0.0)),
        Err(Error::StepNotFound { step: 7, .. })
    ));
    assert!(matches!(
        CheckpointManager::new(
            dir.path(),
            Options {
                max_to_keep: Some(0),
                ..Options::default()
            }
        ),
        Err(Error::InvalidOptions(_))
    ));
    let empty = TestDir::new("empty");
    let mgr = CheckpointManager::new(empty.path(), Options::default()).unwrap();
    assert!(matches!(
        mgr.restore_latest(&Model::new(0.0)),
        Err(Error::NoCheckpoints { .. })
    ));
}

#[test]
fn restore_model_and_optimizer_state_partially_and_with_casts() {
    #[derive(Tree, Clone, Debug)]
    struct AdamState {
        count: Tensor<(), i32>,
        mu: Model,
        nu: Model,
    }
    let dir = TestDir::new("restore");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    let model = Model::new(3.0);
    let opt = AdamState {
        count: Tensor::from_array(ferrax::Array::scalar(17i32)).unwrap(),
        mu: Model::new(0.1),
        nu: Model::new(0.2),
    };
    mgr.save(100, &(model.clone(), opt.clone()), json!({"lr": 1e-3}))
        .unwrap();
    let (m, o) = mgr.restore(100, &(Model::new(0.0), opt.clone())).unwrap();
    assert!(trees_bit_eq(&m, &model));
    assert!(trees_bit_eq(&o, &opt));
    assert_eq!(o.count.array().to_vec::<i32>().unwrap(), vec![17]);

    // Only the model (a sub-tree), e.g. for evaluation.
    let m = mgr
        .restore_with(
            100,
            &Model::new(0.0),
            &RestoreOptions::default().subtree("0"),
        )
        .unwrap();
    assert!(trees_bit_eq(&m, &model));
    // Only `mu` of the optimizer state.
    let mu = mgr
        .restore_with(
            100,
            &Model::new(0.0),
            &RestoreOptions::default().subtree("1.mu"),
        )
        .unwrap();
    assert!(trees_bit_eq(&mu, &opt.mu));
    // The full tree into a model alone is refused unless partial.
    let err = mgr.restore(100, &(Model::new(0.0),)).unwrap_err();
    assert!(matches!(err, Error::UnexpectedLeaves { .. }), "{err}");
    let (m,) = mgr
        .restore_with(
            100,
            &(Model::new(0.0),),
            &RestoreOptions::default().partial(true),
        )
        .unwrap();
    assert!(trees_bit_eq(&m, &model));

    // Shape and dtype errors name the path.
    #[derive(Tree, Debug)]
    struct Wide {
        w: Tensor<(C<4>, C<4>)>,
        b: Tensor<(C<3>,)>,
    }
    let err = mgr
        .restore_with(
            100,
            &Wide {
                w: Tensor::zeros(),
                b: Tensor::zeros(),
            },
            &RestoreOptions::default().subtree("0"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("`0.w`"), "{err}");
    #[derive(Tree, Debug)]
    struct Half {
        w: Tensor<(C<4>, C<3>), ferrax::bf16>,
        b: Tensor<(C<3>,), f64>,
    }
    let target = Half {
        w: Tensor::zeros(),
        b: Tensor::zeros(),
    };
    let sub = RestoreOptions::default().subtree("0");
    let err = mgr.restore_with(100, &target, &sub).unwrap_err();
    assert!(
        matches!(&err, Error::DTypeMismatch { path, .. } if path == "0.w"),
        "{err}"
    );
    let h = mgr.restore_with(100, &target, &sub.cast(true)).unwrap();
    assert_eq!(h.b.to_vec().unwrap(), vec![3.0, -3.0, 6.0]);
}

#[test]
fn progress_is_reported() {
    let dir = TestDir::new("progress");
    let last = Arc::new(AtomicU64::new(0));
    let l = Arc::clone(&last);
    let mgr = CheckpointManager::new(
        dir.path(),
        Options {
            progress: Some(Arc::new(move |_, done, total| {
                assert!(done <= total);
                l.store(done, Ordering::SeqCst);
            })),
            ..Options::default()
        },
    )
    .unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    mgr.wait_until_finished().unwrap();
    assert_eq!(last.load(Ordering::SeqCst), 15 * 4);
}

/// Damages a committed step in `how` and checks the restore error.
fn damaged(how: fn(&Path), check: fn(&Corruption) -> bool) {
    let dir = TestDir::new("damage");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    mgr.save(1, &Model::new(1.0), json!({"a": 1})).unwrap();
    mgr.wait_until_finished().unwrap();
    how(&dir.path().join("1"));
    let err = mgr.restore(1, &Model::new(0.0)).unwrap_err();
    let kind = err
        .corruption()
        .unwrap_or_else(|| panic!("not a corruption: {err}"));
    assert!(check(kind), "unexpected {kind:?}");
}

/// Rewrites the manifest with `f` and a marker whose checksum matches it.
fn edit_manifest(sdir: &Path, f: impl Fn(&mut Value)) {
    let p = sdir.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut m);
    let bytes = serde_json::to_vec(&m).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    let marker = json!({"format": "ferrax-checkpoint", "manifest_crc32": crc32(&bytes)});
    std::fs::write(sdir.join("COMMIT_SUCCESS"), marker.to_string()).unwrap();
}

/// CRC32 (IEEE), bit by bit: an independent check of the crate's checksums.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn damaged_steps_are_reported_precisely() {
    damaged(
        |d| {
            let p = d.join("data.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len() - 3;
            b[n] ^= 0x40;
            std::fs::write(&p, b).unwrap();
        },
        |c| matches!(c, Corruption::FileChecksum { .. }),
    );
    damaged(
        |d| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(d.join("data.safetensors"))
                .unwrap();
            f.write_all(&[0]).unwrap();
        },
        |c| matches!(c, Corruption::FileSize { .. }),
    );
    damaged(
        |d| {
            let p = d.join("manifest.json");
            let s = std::fs::read_to_string(&p)
                .unwrap()
                .replace("\"a\": 1", "\"a\": 2");
            std::fs::write(&p, s).unwrap();
        },
        |c| matches!(c, Corruption::ManifestChecksum { .. }),
    );
    damaged(
        |d| std::fs::write(d.join("COMMIT_SUCCESS"), b"ok").unwrap(),
        |c| matches!(c, Corruption::BadMarker { .. }),
    );
    damaged(
        |d| edit_manifest(d, |m| m["step"] = json!(2)),
        |c| {
            matches!(
                c,
                Corruption::StepMismatch {
                    expected: 1,
                    found: 2
                }
            )
        },
    );
    damaged(
        |d| edit_manifest(d, |m| m["leaves"][0]["shape"] = json!([3, 4])),
        |c| matches!(c, Corruption::ManifestMismatch { path, .. } if path == "w"),
    );
    damaged(
        |d| edit_manifest(d, |m| m["files"][0]["crc32"] = json!(12345)),
        |c| {
            matches!(
                c,
                Corruption::FileChecksum {
                    expected: 12345,
                    ..
                }
            )
        },
    );
}

#[test]
fn the_file_checksum_is_a_standard_crc32() {
    let dir = TestDir::new("crc");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    mgr.save(1, &Model::new(1.0), Value::Null).unwrap();
    mgr.wait_until_finished().unwrap();
    let sdir = dir.path().join("1");
    let m: Value =
        serde_json::from_slice(&std::fs::read(sdir.join("manifest.json")).unwrap()).unwrap();
    let data = std::fs::read(sdir.join("data.safetensors")).unwrap();
    assert_eq!(m["files"][0]["crc32"], json!(crc32(&data)));
    assert_eq!(m["files"][0]["size"], json!(data.len()));
    assert_eq!(
        m["leaves"][0],
        json!({"path": "w", "dtype": "f32", "shape": [4, 3], "file": "data.safetensors"})
    );
}

#[test]
fn rng_keys_scalars_and_strings_round_trip() {
    use ferrax::random::Key;
    let dir = TestDir::new("key");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    let key = Key::new(0xDEAD_BEEF_0000_0042).split(2).unwrap()[1].clone();
    let count = Tensor::<(), i64>::from_array(ferrax::Array::scalar(i64::MAX - 1)).unwrap();
    let state = (Model::new(1.0), key.clone(), count);
    let meta = json!({"run": "exp-ü", "epoch": 3, "tags": ["a", "b"]});
    mgr.save(7, &state, meta.clone()).unwrap();
    let target = (Model::new(0.0), Key::new(0), Tensor::<(), i64>::zeros());
    let (m, k, c) = mgr.restore(7, &target).unwrap();
    assert!(trees_bit_eq(&m, &state.0));
    assert_eq!(k.data().unwrap(), key.data().unwrap());
    assert_eq!(c.array().to_vec::<i64>().unwrap(), vec![i64::MAX - 1]);
    assert_eq!(mgr.metadata(7).unwrap(), meta);
}

#[test]
fn saves_from_several_threads_are_all_committed() {
    let dir = TestDir::new("threads");
    let mgr = CheckpointManager::new(dir.path(), Options::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let mgr = &mgr;
            s.spawn(move || {
                for i in 0..5 {
                    mgr.save(t * 100 + i, &Model::new(i as f32), Value::Null)
                        .unwrap();
                }
            });
        }
    });
    mgr.wait_until_finished().unwrap();
    assert_eq!(mgr.all_steps().len(), 20);
}
