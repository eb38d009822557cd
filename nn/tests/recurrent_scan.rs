//! Recurrent cells run over time with `scan` (`LSTMCell::scan`, `GRUCell::scan`, `Rnn`)
//! against a Rust loop over the cell's single step, forwards and reversed, eagerly and
//! under `#[jit]` (where the program holds one `scan`), with gradients by finite
//! differences.

extern crate ferrax_core as ferrax;

use ferrax_core::prim::reshape::squeeze;
use ferrax_core::prim::slice::slice_in_dim;
use ferrax_core::testing::{check_grads, GradCheck};
use ferrax_core::{tree, Array, Tensor, C};
use ferrax_macros::jit;
use ferrax_nn::{GRUCell, LSTMCell, Rngs, Rnn};

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

fn ramp(shape: &[usize], s: f64) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec(
        shape.to_vec(),
        (0..n)
            .map(|i| (i as f64 * 0.37 + 0.1).sin() * s)
            .collect::<Vec<f64>>(),
    )
    .unwrap()
}

const B: usize = 2;
const T: usize = 6;
const I: usize = 3;
const HD: usize = 4;
type Xs = Tensor<(C<B>, C<T>, C<I>), f64>;

fn step_x(xs: &Xs, t: usize) -> Tensor<(C<B>, C<I>), f64> {
    Tensor::from_array(squeeze(&slice_in_dim(xs.array(), 1, t, t + 1, 1).unwrap(), &[1]).unwrap())
        .unwrap()
}

/// The outputs `(B, T, HD)` as a flat vector in (b, t, h) order from per-step `(B, HD)`.
fn by_time(steps: &[Vec<f64>]) -> Vec<f64> {
    let mut out = vec![0.0; B * T * HD];
    for (t, s) in steps.iter().enumerate() {
        for b in 0..B {
            for h in 0..HD {
                out[(b * T + t) * HD + h] = s[b * HD + h];
            }
        }
    }
    out
}

#[test]
fn lstm_scan_matches_a_loop_over_steps() {
    let cell = LSTMCell::<I, HD, f64>::new(&mut Rngs::new(0)).unwrap();
    let xs = Xs::from_array(ramp(&[B, T, I], 1.5)).unwrap();
    let c0 = Tensor::from_array(ramp(&[B, HD], 0.3)).unwrap();
    let h0 = Tensor::from_array(ramp(&[B, HD], -0.2)).unwrap();
    for reverse in [false, true] {
        let mut carry = (c0.clone(), h0.clone());
        let mut ys = vec![Vec::new(); T];
        let order: Vec<usize> = if reverse {
            (0..T).rev().collect()
        } else {
            (0..T).collect()
        };
        for &t in &order {
            let (c2, y) = cell.forward(&carry, &step_x(&xs, t));
            carry = c2;
            ys[t] = y.to_vec().unwrap();
        }
        let ((c, h), out) = cell.scan(&(c0.clone(), h0.clone()), &xs, reverse).unwrap();
        close(&out.to_vec().unwrap(), &by_time(&ys), 1e-12);
        close(&c.to_vec().unwrap(), &carry.0.to_vec().unwrap(), 1e-12);
        close(&h.to_vec().unwrap(), &carry.1.to_vec().unwrap(), 1e-12);
    }
    // The unrolled loop and `Rnn` (zero carry) agree with the scan.
    let zero = cell.initialize_carry(C::<B>);
    let (_, unrolled) = cell.unroll(&zero, &xs).unwrap();
    let rnn = Rnn::new(cell.clone());
    close(
        &rnn.forward(&xs).unwrap().to_vec().unwrap(),
        &unrolled.to_vec().unwrap(),
        1e-12,
    );
    // Reversed: the last output is the first step from the zero carry.
    let rev = Rnn::reversed(cell.clone())
        .forward(&xs)
        .unwrap()
        .to_vec()
        .unwrap();
    let (_, first) = cell.forward(&zero, &step_x(&xs, T - 1));
    let first = first.to_vec().unwrap();
    for b in 0..B {
        close(
            &rev[(b * T + T - 1) * HD..(b * T + T) * HD],
            &first[b * HD..(b + 1) * HD],
            1e-12,
        );
    }
}

#[test]
fn gru_scan_matches_a_loop_over_steps() {
    let cell = GRUCell::<I, HD, f64>::new(&mut Rngs::new(1)).unwrap();
    let mut cell = cell;
    cell.recurrent_bias = Tensor::from_array(ramp(&[HD], 0.5)).unwrap();
    let xs = Xs::from_array(ramp(&[B, T, I], 1.5)).unwrap();
    let h0 = Tensor::from_array(ramp(&[B, HD], 0.4)).unwrap();
    for reverse in [false, true] {
        let mut h = h0.clone();
        let mut ys = vec![Vec::new(); T];
        for k in 0..T {
            let t = if reverse { T - 1 - k } else { k };
            let (h2, y) = cell.forward(&h, &step_x(&xs, t));
            h = h2;
            ys[t] = y.to_vec().unwrap();
        }
        let (hs, out) = Rnn {
            cell: cell.clone(),
            reverse,
        }
        .forward_with_carry(&h0, &xs)
        .unwrap();
        close(&out.to_vec().unwrap(), &by_time(&ys), 1e-12);
        close(&hs.to_vec().unwrap(), &h.to_vec().unwrap(), 1e-12);
    }
}

#[jit]
fn lstm_loss(cell: &LSTMCell<I, HD, f64>, xs: &Xs) -> Tensor<(), f64> {
    Rnn::new(cell.clone())
        .forward(xs)
        .expect("scan")
        .square()
        .sum()
}

#[test]
fn jitted_scan_is_one_scan_primitive_and_matches_eager() {
    let cell = LSTMCell::<I, HD, f64>::new(&mut Rngs::new(2)).unwrap();
    let xs = Xs::from_array(ramp(&[B, T, I], 1.0)).unwrap();
    let j = lstm_loss(&cell, &xs).item().unwrap();
    let e = ferrax_core::jit::disable_jit(|| lstm_loss(&cell, &xs))
        .item()
        .unwrap();
    assert!(
        (j - e).abs() <= 1e-12 * e.abs().max(1.0),
        "jit {j} vs eager {e}"
    );
    // The staged program holds the step once, inside one scan, whatever T is.
    let prog = lstm_loss::trace(&cell, &xs).unwrap().to_string();
    assert_eq!(prog.matches("scan").count(), 1, "{prog}");
    assert_eq!(prog.matches("logistic").count(), 3, "{prog}");
}

fn grad_opts() -> GradCheck {
    GradCheck {
        eps: 1e-6,
        rtol: 1e-5,
        atol: 1e-8,
        ..GradCheck::default()
    }
}

#[test]
fn scan_gradients_match_finite_differences() {
    let xs = Xs::from_array(ramp(&[B, T, I], 1.0)).unwrap();
    let w = Tensor::<(C<B>, C<T>, C<HD>), f64>::from_array(ramp(&[B, T, HD], 1.0)).unwrap();

    let lstm = LSTMCell::<I, HD, f64>::new(&mut Rngs::new(3)).unwrap();
    let c0 = (
        Tensor::<(C<B>, C<HD>), f64>::from_array(ramp(&[B, HD], 0.3)).unwrap(),
        Tensor::<(C<B>, C<HD>), f64>::from_array(ramp(&[B, HD], -0.4)).unwrap(),
    );
    let nm = tree::leaf_count(&lstm);
    let mut args = tree::leaves(&lstm);
    args.extend(tree::leaves(&c0));
    args.push(xs.array().clone());
    for reverse in [false, true] {
        let f = |a: &[Array]| -> ferrax_core::Result<Array> {
            let m: LSTMCell<I, HD, f64> = tree::unflatten(&lstm, a[..nm].to_vec())?;
            let c = (
                Tensor::from_array(a[nm].clone())?,
                Tensor::from_array(a[nm + 1].clone())?,
            );
            let x = Xs::from_array(a[nm + 2].clone())?;
            let ((cf, hf), ys) = m.scan(&c, &x, reverse)?;
            Ok(((ys * &w).sum() + cf.square().sum() + hf.sum()).into_array())
        };
        check_grads(&f, &args, grad_opts()).unwrap_or_else(|e| panic!("LSTM scan: {e}"));
    }

    let gru = GRUCell::<I, HD, f64>::new(&mut Rngs::new(4)).unwrap();
    let nm = tree::leaf_count(&gru);
    let mut args = tree::leaves(&gru);
    args.push(ramp(&[B, HD], 0.3));
    args.push(xs.array().clone());
    let f = |a: &[Array]| -> ferrax_core::Result<Array> {
        let m: GRUCell<I, HD, f64> = tree::unflatten(&gru, a[..nm].to_vec())?;
        let h = Tensor::from_array(a[nm].clone())?;
        let x = Xs::from_array(a[nm + 1].clone())?;
        let (hf, ys) = m.scan(&h, &x, false)?;
        Ok(((ys * &w).sum() + hf.square().sum()).into_array())
    };
    check_grads(&f, &args, grad_opts()).unwrap_or_else(|e| panic!("GRU scan: {e}"));
}
