//! A child process saving steps in a loop is killed with SIGKILL at random points, 20 times.
//! After each kill a fresh manager must list only complete steps, each restoring
//! bit-identical to what was saved, and must clean up every leftover.
//!
//! The child is this test binary re-invoked with `FERRAX_CKPT_CRASH_CHILD` set (so no extra
//! binary is needed); `FERRAX_CKPT_CRASH_SEED` reproduces a run.

mod common;

use common::{random_array, trees_bit_eq, Rng, TestDir};
use ferrax_checkpoint::{json, CheckpointManager, Options};
use ferrax_core::{Array, DType};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FERRAX_CKPT_CRASH_CHILD";
const KILLS: usize = 20;

/// What step `s` saves: a function of `s` alone, so the parent can check it. About 1.5 MB,
/// so a kill often lands in the middle of writing the data file.
fn tree_for(s: u64) -> (Array, Vec<Array>, Array) {
    let mut r = Rng(s.wrapping_mul(0x2545_F491_4F6C_DD1D));
    (
        random_array(&mut r, DType::F32, &[256, 1024]),
        vec![
            random_array(&mut r, DType::BF16, &[300, 300]),
            random_array(&mut r, DType::I64, &[1000]),
        ],
        Array::scalar(s as i64),
    )
}

fn options() -> Options {
    Options {
        max_to_keep: Some(3),
        ..Options::default()
    }
}

fn child(dir: &Path) -> ! {
    let mgr = CheckpointManager::new(dir, options()).expect("child: open");
    let mut s = mgr.latest_step().map_or(1, |s| s + 1);
    loop {
        mgr.save(s, &tree_for(s), json!({ "step": s }))
            .expect("child: save");
        s += 1;
    }
}

#[test]
fn sigkill_during_saves() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let seed = std::env::var("FERRAX_CKPT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("sigkill_during_saves: FERRAX_CKPT_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = TestDir::new("crash");
    let exe = std::env::current_exe().unwrap();
    let mut verified = 0usize;
    let mut max_step = 0u64;
    let mut leftovers = 0usize;
    let start = Instant::now();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "sigkill_during_saves",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "round {round}: the child exited by itself ({status}); it should save until killed"
            );
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        // Leftovers of the interrupted save or delete, before start-up cleans them up.
        leftovers += std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let n = e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                n.contains(".tmp-") || n.contains(".deleting-")
            })
            .count();
        let mgr = CheckpointManager::new(dir.path(), options()).unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.parse::<u64>().is_ok(),
                "round {round}: leftover `{name}` survived start-up cleanup"
            );
            assert!(
                dir.path().join(&name).join("COMMIT_SUCCESS").exists(),
                "round {round}: `{name}` has no commit marker"
            );
        }
        for s in mgr.all_steps() {
            let expected = tree_for(s);
            let back = mgr
                .restore(s, &expected)
                .unwrap_or_else(|e| panic!("round {round}: step {s} does not restore: {e}"));
            assert!(
                trees_bit_eq(&back, &expected),
                "round {round}: step {s} differs"
            );
            assert_eq!(mgr.metadata(s).unwrap()["step"], s);
            verified += 1;
            max_step = max_step.max(s);
        }
    }
    eprintln!(
        "sigkill_during_saves: {KILLS} kills, {leftovers} interrupted saves/deletes cleaned up, \
         {verified} step restores verified, last step {max_step}, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        max_step > 0,
        "no step was ever committed: the kills came too early to test anything"
    );
}
