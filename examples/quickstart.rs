//! Quickstart: an MLP classifies the handwritten-digits data (embedded, 8x8 images) with
//! `#[derive(Module)]` layers from `ferrax::nn`, a `#[jit]`-staged train step whose gradient
//! comes from `ferrax::ad`, Adam with a cosine learning-rate schedule from `ferrax::optim`,
//! a progress bar, and an Orbax-style checkpoint (`ferrax::checkpoint`) of the trained model,
//! restored and checked at the end. The training code is `examples/common/digits.rs`,
//! shared with `tests/quickstart.rs`, which checks the accuracy this prints.
//!
//! Run: `cargo run --release --example quickstart`
//! (`FERRAX_CHECKPOINT_DIR=<dir>` picks where the checkpoint goes; the default is a
//! `ferrax-quickstart` directory under the system's temporary directory.)

#[path = "common/digits.rs"]
mod digits;

use ferrax::checkpoint::{json, CheckpointManager, Options};
use ferrax::nn::Module;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Hidden units per layer (shared with the test, which checks this model).
const H: usize = digits::HIDDEN;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = digits::load()?;
    let cfg = digits::Config::default();
    let per_epoch = cfg.steps_per_epoch(&data);
    let total = cfg.epochs * per_epoch;
    println!(
        "digits: {} training images ({} with their shifted copies), {} held out",
        data.y_train.dims()[0],
        data.aug_y.len(),
        digits::N_TEST
    );
    println!(
        "{}",
        digits::Mlp::<H>::new(&mut ferrax::nn::Rngs::new(0))?.summary()
    );

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>4}/{len} {msg} [{elapsed}]")?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let model = digits::train::<H>(
        &data,
        &cfg,
        |epoch, _, loss| {
            bar.inc(1);
            if let Some(l) = loss {
                bar.set_message(format!("epoch {}/{}  loss {l:.4}", epoch + 1, cfg.epochs));
            }
        },
        // Reading the loss waits for the step; every 25th is enough for the bar.
        |step| step % 25 == 0,
    )?;
    bar.finish();
    let elapsed = start.elapsed();

    let train_acc = digits::accuracy(&model, &data.x_train, &data.y_train)?;
    let test_acc = digits::accuracy(&model, &data.x_test, &data.y_test)?;
    println!("train accuracy {:.1}%", 100.0 * train_acc);
    println!(
        "test accuracy  {:.1}%  ({} held-out images)",
        100.0 * test_acc,
        digits::N_TEST
    );
    println!(
        "{total} staged Adam steps in {:.2} s ({} compile)",
        elapsed.as_secs_f64(),
        digits::train_step::stats().compiles
    );

    // Save the trained parameters as step `total`, then restore them into a fresh model
    // and check that they classify the same.
    let dir = std::env::var_os("FERRAX_CHECKPOINT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ferrax-quickstart"));
    let mgr = CheckpointManager::new(
        &dir,
        Options {
            max_to_keep: Some(3),
            ..Options::default()
        },
    )?;
    let step = total as u64;
    if mgr.all_steps().contains(&step) {
        // Steps are never overwritten; a rerun replaces the previous run's checkpoint.
        mgr.delete(step)?;
    }
    mgr.save(
        step,
        &model,
        json!({ "test_accuracy": test_acc, "train_accuracy": train_acc, "epochs": cfg.epochs }),
    )?;
    mgr.wait_until_finished()?;
    let fresh = digits::Mlp::<H>::new(&mut ferrax::nn::Rngs::new(1))?;
    let restored = mgr.restore(step, &fresh)?;
    let restored_acc = digits::accuracy(&restored, &data.x_test, &data.y_test)?;
    if restored_acc != test_acc {
        return Err(format!(
            "the restored model scores {restored_acc}, the trained one {test_acc}"
        )
        .into());
    }
    println!(
        "checkpoint: step {step} saved to {} and restored (test accuracy {:.1}%)",
        mgr.directory().join(step.to_string()).display(),
        100.0 * restored_acc
    );
    mgr.close()?;
    Ok(())
}
