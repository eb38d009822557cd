//! Conv1d, grouped Conv2d and ConvTranspose2d against naive loops (gather form for the
//! convolutions, scatter form for the transposed one), and GroupNorm against its closed
//! form.

use ferrax_core::prim::conv::Padding;
use ferrax_core::{ops::linalg::Conv2dOpts, Tensor, C};
use ferrax_nn::{Conv1d, Conv1dOpts, Conv2d, ConvTranspose2d, GroupNorm, Module, Rngs};

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

fn ramp(n: usize, s: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.7 + 0.3).sin() * s).collect()
}

/// JAX's SAME padding, written out independently: `(low, high)`.
fn same_pads(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    let win = (k - 1) * d + 1;
    let total = ((out - 1) * s + win).saturating_sub(n);
    (total / 2, total - total / 2)
}

/// Naive NWC convolution, kernel `(K, CI / G, CO)`, explicit low padding `plo` and output
/// length `ol`; taps outside the input read zero.
#[allow(clippy::too_many_arguments)]
fn naive_conv1d(
    x: &[f32],
    (n, l, ci): (usize, usize, usize),
    w: &[f32],
    (k, co, g): (usize, usize, usize),
    (s, d, plo, ol): (usize, usize, usize, usize),
) -> Vec<f32> {
    let (cig, cog) = (ci / g, co / g);
    let mut y = vec![0.0; n * ol * co];
    for b in 0..n {
        for o in 0..ol {
            for c in 0..co {
                let grp = c / cog;
                let mut acc = 0.0;
                for t in 0..k {
                    let p = (o * s + t * d) as isize - plo as isize;
                    if p < 0 || p >= l as isize {
                        continue;
                    }
                    for cl in 0..cig {
                        acc += x[(b * l + p as usize) * ci + grp * cig + cl]
                            * w[(t * cig + cl) * co + c];
                    }
                }
                y[(b * ol + o) * co + c] = acc;
            }
        }
    }
    y
}

#[test]
fn conv1d_matches_naive_loops() {
    let xv = ramp(2 * 9 * 4, 1.0);
    let x = Tensor::<(C<2>, C<9>, C<4>)>::from_vec(xv.clone()).unwrap();

    // VALID, stride 2, dilation 2, dense, with bias: (9 - 5) / 2 + 1 = 3 outputs.
    let mut c =
        Conv1d::<4, 3, 3>::new(&mut Rngs::new(1), Conv1dOpts::valid().stride(2).dilation(2))
            .unwrap();
    c.bias = Some(Tensor::from_vec(vec![0.5, -0.25, 1.0]).unwrap());
    let y: Tensor<(C<2>, C<3>, C<3>)> = c.forward(&x).unwrap();
    let mut e = naive_conv1d(
        &xv,
        (2, 9, 4),
        &c.kernel.to_vec().unwrap(),
        (3, 3, 1),
        (2, 2, 0, 3),
    );
    for (i, v) in e.iter_mut().enumerate() {
        *v += [0.5, -0.25, 1.0][i % 3];
    }
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // SAME, stride 2: ceil(9 / 2) = 5 outputs; groups = 4 / 2 = 2.
    let c =
        Conv1d::<4, 6, 4, f32, 2>::new(&mut Rngs::new(2), Conv1dOpts::same().stride(2)).unwrap();
    assert_eq!(c.kernel.dims(), &[4, 2, 6]);
    let y: Tensor<(C<2>, C<5>, C<6>)> = c.forward(&x).unwrap();
    let (plo, _) = same_pads(9, 4, 2, 1);
    let e = naive_conv1d(
        &xv,
        (2, 9, 4),
        &c.kernel.to_vec().unwrap(),
        (4, 6, 2),
        (2, 1, plo, 5),
    );
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // Explicit padding (2, 1), depthwise (groups = 4), no bias: 9 + 3 - 3 + 1 = 10.
    let c = Conv1d::<4, 4, 3, f32, 1>::with_init(
        &mut Rngs::new(3),
        Conv1dOpts::valid().padding(Padding::Explicit(vec![(2, 1)])),
        &ferrax_nn::init::normal(1.0),
        None,
    )
    .unwrap();
    let y: Tensor<(C<2>, C<10>, C<4>)> = c.forward(&x).unwrap();
    let e = naive_conv1d(
        &xv,
        (2, 9, 4),
        &c.kernel.to_vec().unwrap(),
        (3, 4, 4),
        (1, 1, 2, 10),
    );
    close(&y.to_vec().unwrap(), &e, 1e-5);
    assert_eq!(c.num_params(), 3 * 4);

    // A wrong output length is an error naming both sizes.
    let bad: ferrax_core::Result<Tensor<(C<2>, C<9>, C<4>)>> = c.forward(&x);
    let msg = bad.unwrap_err().to_string();
    assert!(msg.contains("Conv1d") && msg.contains("10"), "{msg}");
}

/// Naive NHWC convolution with groups, strides, kernel dilation and low padding.
#[allow(clippy::too_many_arguments)]
fn naive_conv2d(
    x: &[f32],
    (n, h, w, ci): (usize, usize, usize, usize),
    k: &[f32],
    (kh, kw, co, g): (usize, usize, usize, usize),
    s: (usize, usize),
    d: (usize, usize),
    plo: (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let (cig, cog) = (ci / g, co / g);
    let mut y = vec![0.0; n * oh * ow * co];
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for c in 0..co {
                    let grp = c / cog;
                    let mut acc = 0.0;
                    for a in 0..kh {
                        for bb in 0..kw {
                            let pi = (i * s.0 + a * d.0) as isize - plo.0 as isize;
                            let pj = (j * s.1 + bb * d.1) as isize - plo.1 as isize;
                            if pi < 0 || pj < 0 || pi >= h as isize || pj >= w as isize {
                                continue;
                            }
                            for cl in 0..cig {
                                acc += x[((b * h + pi as usize) * w + pj as usize) * ci
                                    + grp * cig
                                    + cl]
                                    * k[((a * kw + bb) * cig + cl) * co + c];
                            }
                        }
                    }
                    y[((b * oh + i) * ow + j) * co + c] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn grouped_and_dilated_conv2d_match_naive_loops() {
    let xv = ramp(2 * 7 * 6 * 4, 1.0);
    let x = Tensor::<(C<2>, C<7>, C<6>, C<4>)>::from_vec(xv.clone()).unwrap();
    // Groups 2, SAME, stride (2, 1), dilation (1, 2): outputs (4, 6).
    let opts = Conv2dOpts::same().stride(2, 1).dilation(1, 2);
    let c = Conv2d::<4, 6, 3, 2, f32, 2>::new(&mut Rngs::new(4), opts).unwrap();
    assert_eq!(c.kernel.dims(), &[3, 2, 2, 6]);
    let y: Tensor<(C<2>, C<4>, C<6>, C<6>)> = c.forward(&x).unwrap();
    let (ph, _) = same_pads(7, 3, 2, 1);
    let (pw, _) = same_pads(6, 2, 1, 2);
    let e = naive_conv2d(
        &xv,
        (2, 7, 6, 4),
        &c.kernel.to_vec().unwrap(),
        (3, 2, 6, 2),
        (2, 1),
        (1, 2),
        (ph, pw),
        (4, 6),
    );
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // Dense, VALID, stride 2, with bias: ((7 - 3) / 2 + 1, (6 - 2) / 2 + 1) = (3, 3).
    let mut c =
        Conv2d::<4, 3, 3, 2>::new(&mut Rngs::new(9), Conv2dOpts::valid().stride(2, 2)).unwrap();
    c.bias = Some(Tensor::from_vec(vec![0.5, 0.0, -1.0]).unwrap());
    let y: Tensor<(C<2>, C<3>, C<3>, C<3>)> = c.forward(&x).unwrap();
    let mut e = naive_conv2d(
        &xv,
        (2, 7, 6, 4),
        &c.kernel.to_vec().unwrap(),
        (3, 2, 3, 1),
        (2, 2),
        (1, 1),
        (0, 0),
        (3, 3),
    );
    for (i, v) in e.iter_mut().enumerate() {
        *v += [0.5, 0.0, -1.0][i % 3];
    }
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // Depthwise, explicit padding ((1, 0), (0, 2)), VALID-style sizes: (7, 7).
    let opts = Conv2dOpts {
        padding: Padding::Explicit(vec![(1, 0), (0, 2)]),
        ..Conv2dOpts::valid()
    };
    let c = Conv2d::<4, 4, 2, 2, f32, 1>::new(&mut Rngs::new(5), opts).unwrap();
    let y: Tensor<(C<2>, C<7>, C<7>, C<4>)> = c.forward(&x).unwrap();
    let e = naive_conv2d(
        &xv,
        (2, 7, 6, 4),
        &c.kernel.to_vec().unwrap(),
        (2, 2, 4, 4),
        (1, 1),
        (1, 1),
        (1, 0),
        (7, 7),
    );
    close(&y.to_vec().unwrap(), &e, 1e-5);
}

/// Naive transposed convolution in scatter form: input element `i` (on the dilated grid at
/// `lo + i s`) adds `x[i] w[a]` to output `lo + i s - a d` (the kernel is not flipped, as
/// in `lax.conv_transpose(transpose_kernel=False)`).
#[allow(clippy::too_many_arguments)]
fn naive_conv_transpose2d(
    x: &[f32],
    (n, h, w, ci): (usize, usize, usize, usize),
    k: &[f32],
    (kh, kw, co): (usize, usize, usize),
    s: (usize, usize),
    d: (usize, usize),
    lo: (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let mut y = vec![0.0; n * oh * ow * co];
    for b in 0..n {
        for i in 0..h {
            for j in 0..w {
                for a in 0..kh {
                    for bb in 0..kw {
                        let oi = (lo.0 + i * s.0) as isize - (a * d.0) as isize;
                        let oj = (lo.1 + j * s.1) as isize - (bb * d.1) as isize;
                        if oi < 0 || oj < 0 || oi >= oh as isize || oj >= ow as isize {
                            continue;
                        }
                        for c in 0..ci {
                            let xv = x[((b * h + i) * w + j) * ci + c];
                            for o in 0..co {
                                y[((b * oh + oi as usize) * ow + oj as usize) * co + o] +=
                                    xv * k[((a * kw + bb) * ci + c) * co + o];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn conv_transpose2d_matches_scatter_loops() {
    let xv = ramp(2 * 3 * 4 * 3, 1.0);
    let x = Tensor::<(C<2>, C<3>, C<4>, C<3>)>::from_vec(xv.clone()).unwrap();

    // SAME, stride 2, kernel 3: output = input * stride. JAX pads the dilated input by
    // (k - 1, k + s - 2 - (k - 1)) when s > k - 1, else ceil((k + s - 2) / 2) low:
    // k = 3, s = 2: pad_len 3, low 2.
    let mut t =
        ConvTranspose2d::<3, 2, 3, 3>::new(&mut Rngs::new(6), Conv2dOpts::same().stride(2, 2))
            .unwrap();
    t.bias = Some(Tensor::from_vec(vec![0.25, -0.5]).unwrap());
    let y: Tensor<(C<2>, C<6>, C<8>, C<2>)> = t.forward(&x).unwrap();
    let mut e = naive_conv_transpose2d(
        &xv,
        (2, 3, 4, 3),
        &t.kernel.to_vec().unwrap(),
        (3, 3, 2),
        (2, 2),
        (1, 1),
        (2, 2),
        (6, 8),
    );
    for (i, v) in e.iter_mut().enumerate() {
        *v += [0.25, -0.5][i % 2];
    }
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // VALID, stride (2, 3), kernel (3, 2): n s + max(k - s, 0) = (7, 12); low pad k - 1.
    let t = ConvTranspose2d::<3, 2, 3, 2>::with_init(
        &mut Rngs::new(7),
        Conv2dOpts::valid().stride(2, 3),
        &ferrax_nn::init::normal(1.0),
        None,
    )
    .unwrap();
    let y: Tensor<(C<2>, C<7>, C<12>, C<2>)> = t.forward(&x).unwrap();
    let e = naive_conv_transpose2d(
        &xv,
        (2, 3, 4, 3),
        &t.kernel.to_vec().unwrap(),
        (3, 2, 2),
        (2, 3),
        (1, 1),
        (2, 1),
        (7, 12),
    );
    close(&y.to_vec().unwrap(), &e, 1e-5);

    // SAME with kernel dilation 2 and stride 1: the dilated kernel is 5 wide, pad_len 4,
    // low ceil(4 / 2) = 2; output = input.
    let t =
        ConvTranspose2d::<3, 2, 3, 3>::new(&mut Rngs::new(8), Conv2dOpts::same().dilation(2, 2))
            .unwrap();
    let y: Tensor<(C<2>, C<3>, C<4>, C<2>)> = t.forward(&x).unwrap();
    let e = naive_conv_transpose2d(
        &xv,
        (2, 3, 4, 3),
        &t.kernel.to_vec().unwrap(),
        (3, 3, 2),
        (1, 1),
        (2, 2),
        (2, 2),
        (3, 4),
    );
    let mut yb = y.to_vec().unwrap();
    let b = t.bias.as_ref().unwrap().to_vec().unwrap();
    for (i, v) in yb.iter_mut().enumerate() {
        *v -= b[i % 2];
    }
    close(&yb, &e, 1e-5);

    // Wrong output size: an error, not a panic.
    let bad: ferrax_core::Result<Tensor<(C<2>, C<6>, C<6>, C<2>)>> = t.forward(&x);
    assert!(bad.is_err());
    // A zero stride is an error naming the strides.
    let z = ConvTranspose2d::<3, 2, 3, 3> {
        opts: Conv2dOpts::same().stride(0, 1),
        ..t.clone()
    };
    let bad: ferrax_core::Result<Tensor<(C<2>, C<3>, C<4>, C<2>)>> = z.forward(&x);
    assert!(bad.unwrap_err().to_string().contains("strides"));
}

#[test]
fn group_norm_matches_closed_form() {
    // (B, H, W, D) = (2, 2, 3, 6), 3 groups of 2 channels.
    let xv: Vec<f32> = (0..72)
        .map(|i| (i as f32 * 0.37).sin() * 3.0 + (i % 5) as f32)
        .collect();
    let x = Tensor::<(C<2>, C<2>, C<3>, C<6>)>::from_vec(xv.clone()).unwrap();
    let mut gn = GroupNorm::<6, 3>::new();
    let sc = [1.0, 2.0, 0.5, -1.0, 1.5, 3.0];
    let bi = [0.0, 0.1, -0.2, 0.3, 0.0, 1.0];
    gn.scale = Tensor::from_vec(sc.to_vec()).unwrap();
    gn.bias = Tensor::from_vec(bi.to_vec()).unwrap();
    let y = gn.forward(&x).to_vec().unwrap();
    let mut e = vec![0.0f32; 72];
    for b in 0..2 {
        for g in 0..3 {
            // Every spatial position, channels 2g and 2g + 1 of example b.
            let idx: Vec<usize> = (0..6)
                .flat_map(|p| [b * 36 + p * 6 + 2 * g, b * 36 + p * 6 + 2 * g + 1])
                .collect();
            let m = idx.iter().map(|&i| xv[i] as f64).sum::<f64>() / 12.0;
            let v = idx.iter().map(|&i| (xv[i] as f64 - m).powi(2)).sum::<f64>() / 12.0;
            for &i in &idx {
                let c = i % 6;
                e[i] =
                    (((xv[i] as f64 - m) / (v + 1e-6).sqrt()) * sc[c] as f64 + bi[c] as f64) as f32;
            }
        }
    }
    close(&y, &e, 1e-5);
    assert_eq!(gn.num_params(), 12);
    // One group is LayerNorm over all non-batch axes; D groups is instance norm.
    let inst = GroupNorm::<6, 6>::new().forward(&x).to_vec().unwrap();
    let m0 = (0..6).map(|p| inst[p * 6]).sum::<f32>() / 6.0;
    assert!(m0.abs() < 1e-5, "instance-norm channel mean {m0}");
}
