//! Logistic regression on the Wisconsin breast-cancer data (embedded), trained
//! with gradients from `#[grad]` inside a `#[jit]`-staged training step.
//!
//! Run: `cargo run --release --example logistic_regression`

use ferrax::prelude::*;
use ferrax::random::Key;

const FEATURES: usize = 30;
type X = Tensor<(Dyn, C<FEATURES>)>;
type Y = Tensor<(Dyn, C<1>)>;

/// The model: one linear layer, logits = x·w + b.
#[derive(Tree)]
struct LogReg {
    w: Tensor<(C<FEATURES>, C<1>)>,
    b: Tensor<(C<1>,)>,
}

fn logits(m: &LogReg, x: &X) -> Y {
    x.matmul(&m.w) + &m.b
}

/// Mean binary cross-entropy with logits: softplus(z) - y·z, computed stably.
#[grad(wrt = m)]
fn loss(m: &LogReg, x: &X, y: &Y) -> Tensor<()> {
    let z = logits(m, x);
    (z.softplus() - y * &z).mean()
}

/// One step of plain gradient descent, staged: traced once, then a cached executable.
#[jit]
fn train_step(m: &mut LogReg, x: &X, y: &Y, lr: f32) -> Tensor<()> {
    let (l, g) = loss::value_and_grad(m, x, y);
    m.w = &m.w - &(g.w * lr);
    m.b = &m.b - &(g.b * lr);
    l
}

fn load() -> Result<(Vec<[f32; FEATURES]>, Vec<f32>), String> {
    let text = include_str!("data/breast_cancer.csv");
    let mut lines = text.lines();
    lines.next().ok_or("empty file")?; // header: rows,features,class names
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (i, line) in lines.enumerate() {
        let vals: Vec<f32> = line
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f32>()
                    .map_err(|e| format!("line {}: {e}", i + 2))
            })
            .collect::<Result<_, _>>()?;
        if vals.len() != FEATURES + 1 {
            return Err(format!(
                "line {}: expected {} values, found {}",
                i + 2,
                FEATURES + 1,
                vals.len()
            ));
        }
        let mut row = [0.0; FEATURES];
        row.copy_from_slice(&vals[..FEATURES]);
        xs.push(row);
        ys.push(vals[FEATURES]);
    }
    Ok((xs, ys))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rows, labels) = load()?;
    let n = rows.len();
    // Standardize each feature (statistics over all rows; the split below is random).
    let mut mean = [0.0f32; FEATURES];
    let mut sd = [0.0f32; FEATURES];
    for j in 0..FEATURES {
        mean[j] = rows.iter().map(|r| r[j]).sum::<f32>() / n as f32;
        sd[j] = (rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f32>() / n as f32)
            .sqrt()
            .max(1e-6);
    }
    // A fixed random split: 450 rows to train, the rest to test.
    let perm = ferrax::random::permutation(&Key::new(0), Dyn(n))?.to_vec()?;
    let (train_idx, test_idx) = perm.split_at(450);
    let make = |idx: &[i32]| -> Result<(X, Y), ferrax::Error> {
        let mut xv = Vec::with_capacity(idx.len() * FEATURES);
        let mut yv = Vec::with_capacity(idx.len());
        for &i in idx {
            let r = &rows[i as usize];
            xv.extend((0..FEATURES).map(|j| (r[j] - mean[j]) / sd[j]));
            yv.push(labels[i as usize]);
        }
        Ok((
            X::from_vec_shape((Dyn(idx.len()), C), xv)?,
            Y::from_vec_shape((Dyn(idx.len()), C), yv)?,
        ))
    };
    let (x_train, y_train) = make(train_idx)?;
    let (x_test, y_test) = make(test_idx)?;

    let mut model = LogReg {
        w: Tensor::zeros(),
        b: Tensor::zeros(),
    };
    let start = std::time::Instant::now();
    for step in 0..=300 {
        let l = train_step(&mut model, &x_train, &y_train, 0.5);
        if step % 50 == 0 {
            println!("step {step:>3}  loss {:.4}", l.item()?);
        }
    }
    let elapsed = start.elapsed();
    let accuracy = |x: &X, y: &Y| -> Result<f32, ferrax::Error> {
        let pred = logits(&model, x).to_vec()?;
        let truth = y.to_vec()?;
        let hits = pred
            .iter()
            .zip(&truth)
            .filter(|(z, t)| ((**z > 0.0) as i32 as f32) == **t)
            .count();
        Ok(hits as f32 / truth.len() as f32)
    };
    println!(
        "train accuracy {:.1}%",
        100.0 * accuracy(&x_train, &y_train)?
    );
    println!(
        "test accuracy  {:.1}%  ({} held-out rows)",
        100.0 * accuracy(&x_test, &y_test)?,
        test_idx.len()
    );
    println!(
        "301 staged steps in {:.1} ms ({} compile)",
        elapsed.as_secs_f64() * 1e3,
        train_step::stats().compiles
    );
    Ok(())
}
