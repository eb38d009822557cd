//! Grouped key/value heads against a naive loop, causal + padding masks together, and
//! decoding with a KV cache (token by token, and a prompt chunk then tokens) against the
//! full causal forward, eagerly and under `#[jit]`.

extern crate ferrax_core as ferrax;

use ferrax_core::prim::slice::slice_in_dim;
use ferrax_core::{Array, Tensor, C};
use ferrax_macros::jit;
use ferrax_nn::{init, KvCache, Linear, Module, MultiHeadAttention, Rngs};

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
    (0..n).map(|i| (i as f32 * 0.61 + 0.2).sin() * s).collect()
}

const D: usize = 8;
const H: usize = 4;
const KVD: usize = 4; // head dim 2, so 2 key/value heads, each shared by 2 query heads
const T: usize = 5;
type Gqa = MultiHeadAttention<D, H, f32, KVD>;

/// Every projection with a non-zero bias, so the test sees the biases too.
fn gqa(seed: u64) -> Gqa {
    let mut r = Rngs::new(seed);
    let b = init::normal(0.5);
    let k = init::lecun_normal();
    MultiHeadAttention {
        query: Linear::with_init(&mut r, &k, Some(&b)).unwrap(),
        key: Linear::with_init(&mut r, &k, Some(&b)).unwrap(),
        value: Linear::with_init(&mut r, &k, Some(&b)).unwrap(),
        out: Linear::with_init(&mut r, &k, Some(&b)).unwrap(),
    }
}

fn proj<const I: usize, const O: usize>(l: &Linear<I, O>, xs: &[f32]) -> Vec<f32> {
    let w = l.kernel.to_vec().unwrap();
    let b = l.bias.as_ref().unwrap().to_vec().unwrap();
    let rows = xs.len() / I;
    let mut out = vec![0.0; rows * O];
    for t in 0..rows {
        for o in 0..O {
            out[t * O + o] = b[o] + (0..I).map(|i| xs[t * I + i] * w[i * O + o]).sum::<f32>();
        }
    }
    out
}

fn softmax_row(v: &[f32]) -> Vec<f32> {
    let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Naive grouped attention for one example `(T, D)`: query head `h` reads key/value head
/// `h / (H / K)`; `allowed(t, u)` says whether query `t` may see key `u`.
fn naive_gqa(m: &Gqa, xs: &[f32], allowed: impl Fn(usize, usize) -> bool) -> Vec<f32> {
    let (q, k, v) = (proj(&m.query, xs), proj(&m.key, xs), proj(&m.value, xs));
    let dh = D / H;
    let kh = KVD / dh;
    let mut o = vec![0.0; T * D];
    for h in 0..H {
        let g = h / (H / kh);
        for t in 0..T {
            let s: Vec<f32> = (0..T)
                .map(|u| {
                    if !allowed(t, u) {
                        f32::MIN
                    } else {
                        (0..dh)
                            .map(|j| q[t * D + h * dh + j] * k[u * KVD + g * dh + j])
                            .sum::<f32>()
                            / (dh as f32).sqrt()
                    }
                })
                .collect();
            let p = softmax_row(&s);
            for j in 0..dh {
                o[t * D + h * dh + j] = (0..T).map(|u| p[u] * v[u * KVD + g * dh + j]).sum();
            }
        }
    }
    proj(&m.out, &o)
}

#[test]
fn grouped_kv_heads_match_naive_loops() {
    let m = gqa(3);
    assert_eq!(m.key.kernel.dims(), &[D, KVD]);
    assert_eq!(m.num_params(), 2 * (D * D + D) + 2 * (D * KVD + KVD));
    let xv = ramp(2 * T * D, 1.0);
    let x = Tensor::<(C<2>, C<T>, C<D>)>::from_vec(xv.clone()).unwrap();
    for causal in [false, true] {
        let y = m.forward(&x, causal).to_vec().unwrap();
        for b in 0..2 {
            let e = naive_gqa(&m, &xv[b * T * D..(b + 1) * T * D], |t, u| {
                !causal || u <= t
            });
            close(&y[b * T * D..(b + 1) * T * D], &e, 1e-5);
        }
    }
    // Causal and a key-padding mask together: example 0 hides key 1, example 1 keys 3, 4.
    let hidden = |b: usize, u: usize| (b == 0 && u == 1) || (b == 1 && u >= 3);
    let mask: Vec<bool> = (0..2 * T * T)
        .map(|i| !hidden(i / (T * T), i % T))
        .collect();
    let mask = Tensor::<(C<2>, C<T>, C<T>), bool>::from_vec(mask).unwrap();
    let y = m
        .forward_masked(&x, &x, Some(&mask), true)
        .unwrap()
        .to_vec()
        .unwrap();
    for b in 0..2 {
        let e = naive_gqa(&m, &xv[b * T * D..(b + 1) * T * D], |t, u| {
            u <= t && !hidden(b, u)
        });
        close(&y[b * T * D..(b + 1) * T * D], &e, 1e-5);
    }
    // Multi-query attention (one key/value head) and the default (one per query head).
    let mq = MultiHeadAttention::<D, H, f32, 2>::new(&mut Rngs::new(1)).unwrap();
    assert_eq!(mq.forward(&x, true).dims(), &[2, T, D]);
}

/// Positions `[a, b)` of a `(2, T, D)` sequence.
fn chunk<const N: usize>(x: &Tensor<(C<2>, C<T>, C<D>)>, a: usize) -> Tensor<(C<2>, C<N>, C<D>)> {
    Tensor::from_array(slice_in_dim(x.array(), 1, a, a + N, 1).unwrap()).unwrap()
}

/// Concatenates per-chunk outputs `(2, n_i, D)` along time.
fn time_concat(parts: &[Array]) -> Vec<f32> {
    let refs: Vec<&Array> = parts.iter().collect();
    ferrax_core::prim::concatenate::concatenate(&refs, 1)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn kv_cache_decoding_equals_full_causal_forward() {
    let m = gqa(5);
    let x = Tensor::<(C<2>, C<T>, C<D>)>::from_vec(ramp(2 * T * D, 1.3)).unwrap();
    let full = m.forward(&x, true).to_vec().unwrap();

    // One token at a time into a cache longer than the sequence (unwritten slots must be
    // masked out).
    let mut cache: KvCache<C<2>, 7, KVD> = m.init_cache(C);
    let mut outs = vec![];
    for t in 0..T {
        outs.push(
            m.decode(&chunk::<1>(&x, t), &mut cache)
                .unwrap()
                .into_array(),
        );
    }
    close(&time_concat(&outs), &full, 1e-5);
    assert_eq!(cache.index.item().unwrap(), T as i32);
    // The cache holds the projected keys of every position decoded so far.
    let k = m.key.forward(&x).to_vec().unwrap();
    let ck = cache.key.to_vec().unwrap();
    for b in 0..2 {
        close(
            &ck[b * 7 * KVD..b * 7 * KVD + T * KVD],
            &k[b * T * KVD..(b + 1) * T * KVD],
            1e-6,
        );
    }
    // The cache is state: no parameters.
    assert_eq!(cache.num_params(), 0);
    assert_eq!(cache.vars().len(), 3);

    // A prompt of 3 in one call, then 2 single tokens.
    let mut cache: KvCache<C<2>, T, KVD> = m.init_cache(C);
    let mut outs = vec![m
        .decode(&chunk::<3>(&x, 0), &mut cache)
        .unwrap()
        .into_array()];
    for t in 3..T {
        outs.push(
            m.decode(&chunk::<1>(&x, t), &mut cache)
                .unwrap()
                .into_array(),
        );
    }
    close(&time_concat(&outs), &full, 1e-5);

    // The cache is full now: one more position is an error naming the sizes.
    let err = m
        .decode(&chunk::<1>(&x, 0), &mut cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("decode") && err.contains("5"), "{err}");
}

#[jit]
fn decode_step(
    m: &Gqa,
    x: &Tensor<(C<2>, C<1>, C<D>)>,
    cache: &mut KvCache<C<2>, 6, KVD>,
) -> Tensor<(C<2>, C<1>, C<D>)> {
    m.decode(x, cache).expect("decode inside jit")
}

#[test]
fn jitted_decode_step_equals_eager_and_full_forward() {
    let m = gqa(9);
    let x = Tensor::<(C<2>, C<T>, C<D>)>::from_vec(ramp(2 * T * D, 0.8)).unwrap();
    let full = m.forward(&x, true).to_vec().unwrap();
    let mut cj: KvCache<C<2>, 6, KVD> = m.init_cache(C);
    let mut ce = cj.clone();
    let before = decode_step::stats();
    let (mut oj, mut oe) = (vec![], vec![]);
    for t in 0..T {
        let xt = chunk::<1>(&x, t);
        oj.push(decode_step(&m, &xt, &mut cj).into_array());
        oe.push(m.decode(&xt, &mut ce).unwrap().into_array());
    }
    // The staged step reads the index from the cache, so one compile serves every step.
    assert_eq!(decode_step::stats().compiles - before.compiles, 1);
    close(&time_concat(&oj), &time_concat(&oe), 1e-6);
    close(&time_concat(&oj), &full, 1e-5);
    assert_eq!(cj.index.item().unwrap(), T as i32);
    close(
        &cj.value.to_vec().unwrap(),
        &ce.value.to_vec().unwrap(),
        1e-6,
    );
}

#[test]
fn transformer_block_decoding_equals_full_forward() {
    let mut blk =
        ferrax_nn::TransformerBlock::<D, H, 16, f32, KVD>::new(&mut Rngs::new(4)).unwrap();
    blk.mlp_in.bias = Some(Tensor::from_vec(ramp(16, 0.3)).unwrap());
    let x = Tensor::<(C<2>, C<T>, C<D>)>::from_vec(ramp(2 * T * D, 1.1)).unwrap();
    let full = blk.forward(&x, true).to_vec().unwrap();
    let mut cache: KvCache<C<2>, 8, KVD> = blk.attn.init_cache(C);
    let mut outs = vec![blk
        .decode(&chunk::<2>(&x, 0), &mut cache)
        .unwrap()
        .into_array()];
    for t in 2..T {
        outs.push(
            blk.decode(&chunk::<1>(&x, t), &mut cache)
                .unwrap()
                .into_array(),
        );
    }
    close(&time_concat(&outs), &full, 1e-5);
}

#[test]
fn key_padding_equals_attention_over_the_unpadded_keys() {
    // Example 0 has 3 real positions, example 1 has 5; the padded keys must not change the
    // valid queries' outputs, which then equal attention over the truncated sequence.
    let m = gqa(11);
    let xv = ramp(2 * T * D, 1.0);
    let x = Tensor::<(C<2>, C<T>, C<D>)>::from_vec(xv.clone()).unwrap();
    let valid = Tensor::<(C<2>, C<T>), bool>::from_vec(
        (0..2 * T).map(|i| i / T == 1 || i % T < 3).collect(),
    )
    .unwrap();
    let mask = ferrax_nn::make_attention_mask(&valid, &valid);
    let mv = mask.to_vec().unwrap();
    for (i, &v) in mv.iter().enumerate() {
        let (b, q, k) = (i / (T * T), (i / T) % T, i % T);
        assert_eq!(v, b == 1 || (q < 3 && k < 3), "mask[{b}, {q}, {k}]");
    }
    for causal in [false, true] {
        let y = m
            .forward_masked(&x, &x, Some(&mask), causal)
            .unwrap()
            .to_vec()
            .unwrap();
        let short = Tensor::<(C<1>, C<3>, C<D>)>::from_vec(xv[..3 * D].to_vec()).unwrap();
        close(
            &y[..3 * D],
            &m.forward(&short, causal).to_vec().unwrap(),
            1e-5,
        );
        let full = m.forward(&x, causal).to_vec().unwrap();
        close(&y[T * D..], &full[T * D..], 1e-6);
    }
}
