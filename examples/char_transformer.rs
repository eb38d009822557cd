//! A small GPT-style character model trained on Shakespeare's sonnets (public domain,
//! embedded from `examples/data/sonnets.txt`): token and learned position embeddings,
//! pre-norm transformer blocks with causal multi-head self-attention (`ferrax::nn`), a
//! final LayerNorm and a linear head over the 128 ASCII codes. Training is a `#[jit]`-staged
//! AdamW step with warmup-cosine learning rate and global-norm clipping (`ferrax::optim`),
//! bounded by a step count and a wall-clock budget. It prints the training and held-out
//! loss, then samples a continuation of a prompt with `ferrax::random::categorical`.
//!
//! Run: `cargo run --release --example char_transformer`
//! (`FERRAX_EXAMPLE_SECONDS=20` shortens the training budget.)

use ferrax::nn::{losses, Embed, LayerNorm, Linear, Module, Rngs, TransformerBlock};
use ferrax::optim::schedule::warmup_cosine_decay_schedule;
use ferrax::optim::{adamw, chain, clip_by_global_norm, Optimizer};
use ferrax::prelude::*;
use ferrax::random::Key;
use std::time::{Duration, Instant};

/// Vocabulary: ASCII codes (the text is checked to be ASCII).
pub const V: usize = 128;
/// Context length.
pub const T: usize = 64;
/// Model width, attention heads, MLP width.
pub const D: usize = 64;
pub const HEADS: usize = 4;
pub const F: usize = 4 * D;
/// Sequences per training batch.
pub const BATCH: usize = 16;
const STEPS: usize = 500;
const DEFAULT_SECONDS: u64 = 90;

pub type Ids<B> = Tensor<(B, C<T>), i32>;
pub type Batch = Ids<C<BATCH>>;

#[derive(Module, Clone, Debug)]
pub struct Gpt {
    tok: Embed<V, D>,
    pos: Embed<T, D>,
    b1: TransformerBlock<D, HEADS, F>,
    b2: TransformerBlock<D, HEADS, F>,
    ln: LayerNorm<D>,
    head: Linear<D, V>,
}

impl Gpt {
    pub fn new(rngs: &mut Rngs) -> ferrax::Result<Self> {
        Ok(Gpt {
            tok: Embed::new(rngs)?,
            pos: Embed::new(rngs)?,
            b1: TransformerBlock::new(rngs)?,
            b2: TransformerBlock::new(rngs)?,
            ln: LayerNorm::new(),
            head: Linear::new(rngs)?,
        })
    }
    /// Next-character logits at every position of every sequence.
    pub fn forward<B: Dim>(&self, ids: &Ids<B>) -> Tensor<(B, C<T>, C<V>)> {
        let pos: Tensor<(C<T>, C<D>)> = self.pos.forward(&Tensor::<(C<T>,), i32>::arange());
        let h: Tensor<(B, C<T>, C<D>)> = self.tok.forward(ids) + &pos;
        let h = self.b1.forward(&h, true);
        let h = self.b2.forward(&h, true);
        self.head.forward(&self.ln.forward(&h))
    }
}

/// Mean next-character cross-entropy (nats per character).
#[grad(wrt = m)]
pub fn loss(m: &Gpt, x: &Batch, y: &Batch) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

#[jit]
pub fn train_step(m: &mut Gpt, opt: &mut Optimizer<Gpt>, x: &Batch, y: &Batch) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    // Inside a trace the update only records ops; an error is a shape mismatch between the
    // model and its own gradient, i.e. a bug, so stop loudly.
    opt.update(m, &g)
        .expect("AdamW update of the model by its own gradient");
    l
}

#[jit]
pub fn eval_loss(m: &Gpt, x: &Batch, y: &Batch) -> Tensor<()> {
    losses::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean()
}

#[jit]
pub fn logits_one(m: &Gpt, x: &Ids<C<1>>) -> Tensor<(C<1>, C<T>, C<V>)> {
    m.forward(x)
}

/// Inputs and next-character targets for windows of `text` starting at `starts`.
pub fn windows(text: &[u8], starts: &[usize]) -> ferrax::Result<(Batch, Batch)> {
    let mut x = Vec::with_capacity(BATCH * T);
    let mut y = Vec::with_capacity(BATCH * T);
    for &s in starts {
        x.extend(text[s..s + T].iter().map(|&b| b as i32));
        y.extend(text[s + 1..s + T + 1].iter().map(|&b| b as i32));
    }
    Ok((Batch::from_vec(x)?, Batch::from_vec(y)?))
}

/// Continues `prompt` by `n` characters, drawing each from the model's softmax at
/// temperature `temp`. The context is the last `T` characters; while the text is shorter
/// than `T`, it sits at the start of the window and the causal mask keeps the padding
/// after it from mattering.
pub fn sample(m: &Gpt, prompt: &str, n: usize, temp: f32, key: &Key) -> ferrax::Result<String> {
    let mut out: Vec<u8> = prompt.bytes().collect();
    for i in 0..n {
        let start = out.len().saturating_sub(T);
        let ctx = &out[start..];
        let mut ids = vec![b' ' as i32; T];
        for (d, &c) in ids.iter_mut().zip(ctx) {
            *d = c as i32;
        }
        let logits = logits_one(m, &Ids::<C<1>>::from_vec(ids)?).to_vec()?;
        let at = ctx.len() - 1;
        let row: Vec<f32> = logits[at * V..(at + 1) * V]
            .iter()
            .map(|l| l / temp)
            .collect();
        let c = ferrax::random::categorical(
            &key.fold_in(i as u32)?,
            &Tensor::<(C<V>,)>::from_vec(row)?,
            (C::<1>,),
        )?
        .to_vec()?[0];
        out.push(c as u8);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = include_str!("data/sonnets.txt").as_bytes();
    if let Some(p) = text.iter().position(|&b| b >= V as u8) {
        return Err(format!("sonnets.txt: byte {p} is not ASCII").into());
    }
    // The last sonnet (about a tenth of the text) is held out to measure generalization.
    let split = text.len() - text.len() / 10;
    let (train_text, val_text) = (&text[..split], &text[split..]);
    let budget = Duration::from_secs(
        std::env::var("FERRAX_EXAMPLE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_SECONDS),
    );

    let mut model = Gpt::new(&mut Rngs::new(0))?;
    println!("{}", model.summary());
    let schedule = warmup_cosine_decay_schedule(0.0, 3e-3, 50, STEPS as i64, 1e-4, 1.0)?;
    let mut opt = Optimizer::new(
        &model,
        chain([clip_by_global_norm(1.0), adamw(schedule, 0.1, None)]),
    )?;

    // Fixed held-out windows, so successive evaluations are comparable.
    let val_starts: Vec<usize> = (0..BATCH)
        .map(|i| i * (val_text.len() - T - 1) / BATCH)
        .collect();
    let (vx, vy) = windows(val_text, &val_starts)?;
    println!(
        "{} training characters, {} held out; initial held-out loss {:.3} (uniform over {V} codes: {:.3})",
        train_text.len(),
        val_text.len(),
        eval_loss(&model, &vx, &vy).item()?,
        (V as f32).ln()
    );

    let data_key = Key::new(1);
    let start = Instant::now();
    let mut step = 0;
    let mut recent = Vec::new();
    while step < STEPS && start.elapsed() < budget {
        let starts: Vec<usize> = ferrax::random::randint::<_, i32>(
            &data_key.fold_in(step as u32)?,
            (C::<BATCH>,),
            0,
            (train_text.len() - T - 1) as i64,
        )?
        .to_vec()?
        .into_iter()
        .map(|s| s as usize)
        .collect();
        let (x, y) = windows(train_text, &starts)?;
        recent.push(train_step(&mut model, &mut opt, &x, &y).item()?);
        step += 1;
        if step % 100 == 0 {
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            recent.clear();
            println!(
                "step {step:>4}  train loss {mean:.3}  held-out loss {:.3}  ({:.1} s)",
                eval_loss(&model, &vx, &vy).item()?,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed();
    let final_val = eval_loss(&model, &vx, &vy).item()?;
    println!(
        "{step} staged AdamW steps in {:.1} s ({} compile); final held-out loss {final_val:.3} nats/char",
        elapsed.as_secs_f64(),
        train_step::stats().compiles
    );
    let prompt = "Shall I compare thee";
    let out = sample(&model, prompt, 300, 0.8, &Key::new(7))?;
    println!("--- sample (temperature 0.8) ---\n{out}\n---");
    Ok(())
}
