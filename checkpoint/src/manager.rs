//! [`CheckpointManager`]: a directory of numbered steps with async saves, atomic commits,
//! retention policies and restore into a target tree (Orbax's `CheckpointManager`).

use crate::error::{Error, Result};
use crate::restore::RestoreOptions;
use crate::step::{self, FailHook, ProgressFn, SaveJob};
use ferrax_core::Tree;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Whether a larger or a smaller metric is better, for [`Options::best_fn`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BestMode {
    /// Smaller is better (a loss).
    #[default]
    Min,
    /// Larger is better (an accuracy).
    Max,
}

/// A function from a step's metadata to the metric that ranks it.
pub type BestFn = Arc<dyn Fn(&Value) -> Option<f64> + Send + Sync>;

/// Options of a [`CheckpointManager`]. Build with struct update syntax:
///
/// ```
/// use ferrax_checkpoint::{BestMode, Options};
/// use std::sync::Arc;
/// let opts = Options {
///     max_to_keep: Some(3),
///     best_fn: Some(Arc::new(|m| m["loss"].as_f64())),
///     best_mode: BestMode::Min,
///     ..Options::default()
/// };
/// assert!(opts.cleanup_tmp);
/// ```
#[derive(Clone)]
pub struct Options {
    /// Keep at most this many steps (the newest, or the best with `best_fn`); `None` keeps
    /// all. Older steps are deleted only after a new step is committed.
    pub max_to_keep: Option<usize>,
    /// Steps that are multiples of this are never deleted by retention.
    pub keep_period: Option<u64>,
    /// Ranks steps by a metric read from their metadata; retention then keeps the best
    /// `max_to_keep` instead of the newest.
    pub best_fn: Option<BestFn>,
    /// Whether `best_fn`'s metric is better smaller or larger.
    pub best_mode: BestMode,
    /// With `best_fn`, keep steps whose metadata gives no metric (Orbax's default).
    pub keep_checkpoints_without_metrics: bool,
    /// [`CheckpointManager::should_save`] (and so `save`) accepts only multiples of this.
    pub save_interval_steps: Option<u64>,
    /// Create the directory if it does not exist.
    pub create: bool,
    /// At start-up, remove leftovers of interrupted saves and deletes and step directories
    /// without a commit marker. Leave off only if another process may be saving into the
    /// same directory right now.
    pub cleanup_tmp: bool,
    /// Called from the background thread as data is written: `(step, bytes, total)`.
    pub progress: Option<ProgressFn>,
    /// Test hook: called at each [`Stage`](crate::Stage) of a save; an `Err` simulates a
    /// crash there (files are left exactly as they are).
    #[doc(hidden)]
    pub fail_hook: Option<FailHook>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_to_keep: None,
            keep_period: None,
            best_fn: None,
            best_mode: BestMode::Min,
            keep_checkpoints_without_metrics: true,
            save_interval_steps: None,
            create: true,
            cleanup_tmp: true,
            progress: None,
            fail_hook: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("max_to_keep", &self.max_to_keep)
            .field("keep_period", &self.keep_period)
            .field("best_fn", &self.best_fn.as_ref().map(|_| "<fn>"))
            .field("best_mode", &self.best_mode)
            .field(
                "keep_checkpoints_without_metrics",
                &self.keep_checkpoints_without_metrics,
            )
            .field("save_interval_steps", &self.save_interval_steps)
            .field("create", &self.create)
            .field("cleanup_tmp", &self.cleanup_tmp)
            .finish_non_exhaustive()
    }
}

/// The committed steps and their metadata, shared with the background thread.
type Steps = Arc<Mutex<BTreeMap<u64, Value>>>;

struct Pending {
    step: u64,
    handle: JoinHandle<Result<()>>,
}

/// Saves numbered steps of a tree into a directory and restores them.
///
/// `save` blocks only to snapshot the tree (tensors are immutable, so a snapshot is a
/// reference count per leaf) and writes on a background thread; the step appears on disk
/// atomically when it is durable. An error of a background save is returned by the next
/// call (`save`, `wait_until_finished`, `restore`, `delete`, `close`), never swallowed.
///
/// ```
/// use ferrax_checkpoint::{CheckpointManager, Options};
/// use ferrax_core::{Tensor, C};
/// let dir = std::env::temp_dir().join(format!("ferrax-doc-{}", std::process::id()));
/// let mgr = CheckpointManager::new(&dir, Options { max_to_keep: Some(2), ..Options::default() })?;
/// let w = Tensor::<(C<2>, C<2>)>::ones();
/// for step in 1..=3 {
///     mgr.save(step, &w, serde_json::json!({ "loss": 1.0 / step as f64 }))?;
/// }
/// mgr.wait_until_finished()?;
/// assert_eq!(mgr.all_steps(), vec![2, 3]);
/// let back: Tensor<(C<2>, C<2>)> = mgr.restore(3, &w)?;
/// assert_eq!(back.to_vec()?, vec![1.0; 4]);
/// # mgr.close()?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CheckpointManager {
    dir: PathBuf,
    opts: Options,
    steps: Steps,
    pending: Mutex<Option<Pending>>,
    /// Serializes `save` calls from several threads, so no save's handle (and error) is
    /// overwritten by another's.
    saving: Mutex<()>,
}

impl fmt::Debug for CheckpointManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointManager")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("steps", &self.all_steps())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in the worker is reported through its JoinHandle; the data stays valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CheckpointManager {
    /// Opens (or with `create`, creates) a checkpoint directory and lists its committed
    /// steps; with `cleanup_tmp`, removes leftovers of interrupted saves.
    pub fn new(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if opts.max_to_keep == Some(0) {
            return Err(Error::InvalidOptions(
                "max_to_keep = Some(0) would delete every step; use None to keep all".into(),
            ));
        }
        if opts.keep_period == Some(0) || opts.save_interval_steps == Some(0) {
            return Err(Error::InvalidOptions(
                "keep_period and save_interval_steps must be positive".into(),
            ));
        }
        if opts.create {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        }
        let steps = step::scan(&dir, opts.cleanup_tmp)?;
        Ok(CheckpointManager {
            dir,
            opts,
            steps: Arc::new(Mutex::new(steps)),
            pending: Mutex::new(None),
            saving: Mutex::new(()),
        })
    }

    /// The checkpoint directory.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The committed steps, ascending. A save in flight is not listed until it commits.
    pub fn all_steps(&self) -> Vec<u64> {
        lock(&self.steps).keys().copied().collect()
    }

    /// The newest committed step.
    pub fn latest_step(&self) -> Option<u64> {
        lock(&self.steps).keys().next_back().copied()
    }

    /// The committed step with the best metric (`best_fn`), or the latest without one.
    pub fn best_step(&self) -> Option<u64> {
        let Some(f) = &self.opts.best_fn else {
            return self.latest_step();
        };
        let steps = lock(&self.steps);
        let mut best: Option<(u64, f64)> = None;
        for (&s, m) in steps.iter() {
            if let Some(v) = f(m).filter(|v| !v.is_nan()) {
                let better = match (best, self.opts.best_mode) {
                    (None, _) => true,
                    (Some((_, b)), BestMode::Min) => v <= b,
                    (Some((_, b)), BestMode::Max) => v >= b,
                };
                if better {
                    best = Some((s, v));
                }
            }
        }
        best.map(|(s, _)| s)
    }

    /// The metadata saved with a committed step.
    pub fn metadata(&self, step: u64) -> Result<Value> {
        self.wait_until_finished()?;
        lock(&self.steps)
            .get(&step)
            .cloned()
            .ok_or_else(|| self.not_found(step))
    }

    /// Whether `save(step, ..)` would save: the step is not saved or being saved, and it is
    /// a multiple of `save_interval_steps` (if set).
    pub fn should_save(&self, step: u64) -> bool {
        let pending = lock(&self.pending).as_ref().map(|p| p.step);
        !lock(&self.steps).contains_key(&step)
            && pending != Some(step)
            && self
                .opts
                .save_interval_steps
                .is_none_or(|k| step.is_multiple_of(k))
    }

    /// Saves `tree` as `step` with `metadata` (any JSON: metrics, strings; `Value::Null` for
    /// none). Blocks only to wait for the previous save and to snapshot the tree, then
    /// writes on a background thread. Returns `Ok(false)` (and saves nothing) when `step`
    /// is not a multiple of `save_interval_steps`.
    ///
    /// Errors: [`Error::StepExists`] if the step is committed (steps are never overwritten);
    /// [`Error::Background`] if the *previous* save failed (this one is then not started);
    /// [`Error::Traced`] for a traced leaf.
    pub fn save<T: Tree>(&self, step: u64, tree: &T, metadata: Value) -> Result<bool> {
        let _one_at_a_time = lock(&self.saving);
        self.wait_until_finished()?;
        if lock(&self.steps).contains_key(&step) {
            return Err(Error::StepExists {
                step,
                dir: self.dir.clone(),
            });
        }
        if !self.should_save(step) {
            return Ok(false);
        }
        let leaves = step::snapshot(tree)?;
        let job = SaveJob {
            dir: self.dir.clone(),
            step,
            leaves,
            metadata: metadata.clone(),
            hook: self.opts.fail_hook.clone(),
            progress: self.opts.progress.clone(),
        };
        let steps = Arc::clone(&self.steps);
        let opts = self.opts.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ferrax-checkpoint-save-{step}"))
            .spawn(move || {
                job.run()?;
                lock(&steps).insert(job.step, metadata);
                if let Some(h) = &job.hook {
                    h(crate::Stage::AfterCommit, job.step).map_err(|msg| Error::Injected {
                        step: job.step,
                        stage: crate::Stage::AfterCommit,
                        msg,
                    })?;
                }
                apply_retention(&job.dir, &steps, &opts)
            })
            .map_err(|e| Error::io("spawn the save thread for", &self.dir, e))?;
        *lock(&self.pending) = Some(Pending { step, handle });
        Ok(true)
    }

    /// Blocks until the save in flight (if any) is durable; returns its error if it failed.
    pub fn wait_until_finished(&self) -> Result<()> {
        let pending = lock(&self.pending).take();
        let Some(Pending { step, handle }) = pending else {
            return Ok(());
        };
        match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Background {
                step,
                source: Box::new(e),
            }),
            Err(panic) => Err(Error::WorkerPanicked {
                step,
                msg: panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            }),
        }
    }

    fn not_found(&self, step: u64) -> Error {
        Error::StepNotFound {
            step,
            dir: self.dir.clone(),
            available: self.all_steps(),
        }
    }

    /// Restores committed `step` into a tree of `target`'s structure, checking every leaf's
    /// shape and dtype (errors name the path). Waits for a save in flight first.
    pub fn restore<T: Tree>(&self, step: u64, target: &T) -> Result<T> {
        self.restore_with(step, target, &RestoreOptions::default())
    }

    /// Restores the latest committed step; returns it with the tree.
    pub fn restore_latest<T: Tree>(&self, target: &T) -> Result<(u64, T)> {
        self.wait_until_finished()?;
        let step = self.latest_step().ok_or_else(|| Error::NoCheckpoints {
            dir: self.dir.clone(),
        })?;
        Ok((step, self.restore(step, target)?))
    }

    /// [`restore`](Self::restore) with options: a sub-tree, dtype casts, partial restore.
    pub fn restore_with<T: Tree>(&self, step: u64, target: &T, opts: &RestoreOptions) -> Result<T> {
        self.wait_until_finished()?;
        if !lock(&self.steps).contains_key(&step) {
            return Err(self.not_found(step));
        }
        let sdir = step::step_dir(&self.dir, step);
        let m = step::read_manifest(&sdir, step)?;
        let saved: Vec<&str> = m.leaves.iter().map(|l| l.path.as_str()).collect();
        let wanted = opts.plan(target, &saved)?;
        let mut loaded = step::load_step(&sdir, &m, &|n| wanted.contains(n))?;
        opts.rebuild(target, &mut loaded)
    }

    /// Deletes a committed step (waits for a save in flight first).
    pub fn delete(&self, step: u64) -> Result<()> {
        self.wait_until_finished()?;
        if !lock(&self.steps).contains_key(&step) {
            return Err(self.not_found(step));
        }
        step::delete_step(&self.dir, step)?;
        lock(&self.steps).remove(&step);
        Ok(())
    }

    /// Re-reads the directory (after another process changed it). Does not clean up.
    pub fn reload(&self) -> Result<()> {
        self.wait_until_finished()?;
        let steps = step::scan(&self.dir, false)?;
        *lock(&self.steps) = steps;
        Ok(())
    }

    /// Waits for the save in flight and returns its error, if any. Dropping the manager
    /// also waits, but can only print an error.
    pub fn close(self) -> Result<()> {
        self.wait_until_finished()
    }
}

impl Drop for CheckpointManager {
    fn drop(&mut self) {
        if let Err(e) = self.wait_until_finished() {
            // Drop cannot return it; printing is the one way left not to swallow it.
            eprintln!(
                "ferrax-checkpoint: unreported error while closing {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// Which committed steps retention deletes now (pure: tested on its own).
pub(crate) fn steps_to_delete(steps: &BTreeMap<u64, Value>, opts: &Options) -> Vec<u64> {
    let Some(keep) = opts.max_to_keep else {
        return Vec::new();
    };
    let protected = |s: u64| opts.keep_period.is_some_and(|k| s.is_multiple_of(k));
    // Candidates ordered best first; everything after the first `keep` is deleted unless
    // protected.
    let order: Vec<u64> = match &opts.best_fn {
        None => steps.keys().rev().copied().collect(),
        Some(f) => {
            let mut with: Vec<(u64, f64)> = Vec::new();
            for (&s, m) in steps {
                match f(m).filter(|v| !v.is_nan()) {
                    Some(v) => with.push((s, v)),
                    None if opts.keep_checkpoints_without_metrics => {}
                    // No metric and not kept: rank below every step with one.
                    None => with.push((s, f64::NAN)),
                }
            }
            with.sort_by(|a, b| {
                let by_metric = match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => match opts.best_mode {
                        BestMode::Min => a.1.total_cmp(&b.1),
                        BestMode::Max => b.1.total_cmp(&a.1),
                    },
                };
                // Ties: the newer step is better.
                by_metric.then(b.0.cmp(&a.0))
            });
            with.into_iter().map(|(s, _)| s).collect()
        }
    };
    order
        .into_iter()
        .skip(keep)
        .filter(|&s| !protected(s))
        .collect()
}

fn apply_retention(dir: &Path, steps: &Steps, opts: &Options) -> Result<()> {
    let doomed = steps_to_delete(&lock(steps), opts);
    for s in doomed {
        step::delete_step(dir, s)?;
        lock(steps).remove(&s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps(v: &[(u64, Value)]) -> BTreeMap<u64, Value> {
        v.iter().cloned().collect()
    }

    #[test]
    fn retention_newest() {
        let s = steps(&[(1, json!(null)), (2, json!(null)), (3, json!(null))]);
        let o = Options {
            max_to_keep: Some(2),
            ..Options::default()
        };
        assert_eq!(steps_to_delete(&s, &o), vec![1]);
        let o = Options {
            max_to_keep: None,
            ..Options::default()
        };
        assert!(steps_to_delete(&s, &o).is_empty());
    }

    #[test]
    fn retention_keep_period() {
        let s: BTreeMap<u64, Value> = (1..=10).map(|i| (i, json!(null))).collect();
        let o = Options {
            max_to_keep: Some(2),
            keep_period: Some(4),
            ..Options::default()
        };
        assert_eq!(steps_to_delete(&s, &o), vec![7, 6, 5, 3, 2, 1]);
    }

    #[test]
    fn retention_best() {
        let s = steps(&[
            (1, json!({"loss": 0.5})),
            (2, json!({"loss": 0.1})),
            (3, json!({"loss": 0.9})),
            (4, json!({})),
        ]);
        let f: BestFn = Arc::new(|m| m["loss"].as_f64());
        let mut o = Options {
            max_to_keep: Some(1),
            best_fn: Some(f),
            ..Options::default()
        };
        let mut d = steps_to_delete(&s, &o);
        d.sort();
        assert_eq!(d, vec![1, 3]);
        o.best_mode = BestMode::Max;
        let mut d = steps_to_delete(&s, &o);
        d.sort();
        assert_eq!(d, vec![1, 2]);
        o.keep_checkpoints_without_metrics = false;
        let mut d = steps_to_delete(&s, &o);
        d.sort();
        assert_eq!(d, vec![1, 2, 4]);
    }
}
