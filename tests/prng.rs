//! The PRNG against `jax.random`: every value of `tests/reference/prng.json` (keys, splits,
//! bits, every sampler, x64 samplers, the legacy counter layout), moment checks for the
//! samplers JAX gave no values for, thread-count independence and tracing.

use ferrax::random::{self, Key};
use ferrax::{Array, Dyn, Tensor, C};
use serde_json::Value;
use std::sync::OnceLock;

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/prng.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("prng.json")).expect("json")
    })
}

/// The f64 arrays named `name` in the raw file text, in file order, parsed with Rust's
/// correctly rounded `str::parse` (serde_json's default float parser may be an ulp off).
fn raw_f64_arrays(name: &str) -> Vec<Vec<f64>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/prng.json");
    let text = std::fs::read_to_string(path).expect("prng.json");
    let pat = format!("\"{name}\": [");
    text.match_indices(&pat)
        .map(|(at, _)| {
            let body = &text[at + pat.len()..];
            let body = &body[..body.find(']').expect("array end")];
            body.split(',')
                .map(|x| x.trim().parse::<f64>().expect("f64"))
                .collect()
        })
        .collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    let mut out = Vec::new();
    flatten(v, &mut |x| out.push(x.as_u64().expect("u32") as u32));
    out
}

fn i64s(v: &Value) -> Vec<i64> {
    let mut out = Vec::new();
    flatten(v, &mut |x| out.push(x.as_i64().expect("int")));
    out
}

fn hex32s(v: &Value) -> Vec<u32> {
    let mut out = Vec::new();
    flatten(v, &mut |x| {
        let s = x.as_str().expect("hex string");
        out.push(u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex"))
    });
    out
}

fn flatten(v: &Value, f: &mut dyn FnMut(&Value)) {
    match v {
        Value::Array(xs) => xs.iter().for_each(|x| flatten(x, f)),
        x => f(x),
    }
}

/// Distance in units in the last place between two f32s of the same sign region.
fn ulps32(a: f32, b: f32) -> u32 {
    let ord = |x: f32| {
        let b = x.to_bits() as i32;
        if b < 0 {
            i32::MIN.wrapping_sub(b) as i64
        } else {
            b as i64
        }
    };
    (ord(a) - ord(b)).unsigned_abs() as u32
}

fn ulps64(a: f64, b: f64) -> u64 {
    let ord = |x: f64| {
        let b = x.to_bits() as i64;
        if b < 0 {
            i64::MIN.wrapping_sub(b) as i128
        } else {
            b as i128
        }
    };
    (ord(a) - ord(b)).unsigned_abs() as u64
}

/// The normal tolerance the reference file states (its verification's `max_ulp_diff`).
fn normal_ulp_tolerance() -> u32 {
    reference()["verification"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.get("max_ulp_diff").and_then(Value::as_u64))
        .max()
        .expect("the reference states a ulp tolerance") as u32
}

fn key_data(k: &Key) -> Vec<u32> {
    k.data().unwrap().to_vec()
}

/// Checks one `keys/<seed>` section (either layout): returns the normal ulp errors seen.
fn check_section(sec: &Value, seed: u64) -> Vec<u32> {
    let key = Key::new(seed);
    assert_eq!(sec["seed"].as_u64(), Some(seed));
    assert_eq!(
        key_data(&key),
        u32s(&sec["key_data"]["u32"]),
        "key data, seed {seed}"
    );

    let s2: Vec<u32> = key.split(2).unwrap().iter().flat_map(key_data).collect();
    assert_eq!(s2, u32s(&sec["split"]["u32"]), "split, seed {seed}");
    let (a, b) = key.split2().unwrap();
    assert_eq!(
        [key_data(&a), key_data(&b)].concat(),
        s2,
        "split2, seed {seed}"
    );
    let s4: Vec<u32> = key.split(4).unwrap().iter().flat_map(key_data).collect();
    assert_eq!(s4, u32s(&sec["split_4"]["u32"]), "split_4, seed {seed}");
    assert_eq!(
        key_data(&key.fold_in(7).unwrap()),
        u32s(&sec["fold_in_7"]["u32"]),
        "fold_in 7, seed {seed}"
    );

    let b8 = random::random_bits32(&key, (C::<8>,)).unwrap();
    assert_eq!(
        b8.to_vec().unwrap(),
        u32s(&sec["random_bits_u32_8"]["u32"]),
        "bits 8, seed {seed}"
    );
    assert_eq!(
        hex32s(&sec["random_bits_u32_8"]["hex"]),
        u32s(&sec["random_bits_u32_8"]["u32"])
    );
    let b3 = random::random_bits32(&key, (C::<3>,)).unwrap();
    assert_eq!(
        b3.to_vec().unwrap(),
        u32s(&sec["random_bits_u32_3"]["u32"]),
        "bits 3, seed {seed}"
    );
    let b23 = key.bits::<(C<2>, C<3>)>().unwrap();
    assert_eq!(b23.dims(), &[2, 3]);
    assert_eq!(
        b23.to_vec().unwrap(),
        u32s(&sec["random_bits_u32_2x3"]["u32"]),
        "bits 2x3, seed {seed}"
    );

    let u = key.uniform::<(C<8>,), f32>().unwrap().to_vec().unwrap();
    let want = hex32s(&sec["uniform_f32_8"]["bits"]);
    assert_eq!(
        u.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want,
        "uniform, seed {seed}"
    );
    let u = random::uniform::<_, f32>(&key, (C::<8>,), -2.0, 3.0)
        .unwrap()
        .to_vec()
        .unwrap();
    let want = hex32s(&sec["uniform_f32_8_min-2_max3"]["bits"]);
    assert_eq!(
        u.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want,
        "uniform[-2, 3), seed {seed}"
    );

    let z = random::normal::<_, f32>(&key, (C::<8>,))
        .unwrap()
        .to_vec()
        .unwrap();
    let want = hex32s(&sec["normal_f32_8"]["bits"]);
    let errs: Vec<u32> = z
        .iter()
        .zip(&want)
        .map(|(a, &b)| ulps32(*a, f32::from_bits(b)))
        .collect();
    let tol = normal_ulp_tolerance();
    assert!(
        errs.iter().all(|&e| e <= tol),
        "normal, seed {seed}: ulp errors {errs:?} > {tol}"
    );

    let r = random::randint::<_, i32>(&key, (C::<8>,), 0, 10)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        r.iter().map(|&x| x as i64).collect::<Vec<_>>(),
        i64s(&sec["randint_8_0_10"]["values"])
    );
    let r = random::randint::<_, i32>(&key, (C::<8>,), -1000, 100_000)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        r.iter().map(|&x| x as i64).collect::<Vec<_>>(),
        i64s(&sec["randint_8_-1000_100000"]["values"]),
        "randint[-1000, 100000), seed {seed}"
    );

    let p = random::permutation(&key, C::<10>)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        p.iter().map(|&x| x as i64).collect::<Vec<_>>(),
        i64s(&sec["permutation_10"]),
        "permutation, seed {seed}"
    );

    let bern = random::bernoulli(&key, 0.3, (C::<16>,))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        bern.iter().map(|&x| x as i64).collect::<Vec<_>>(),
        i64s(&sec["bernoulli_0.3_16"]),
        "bernoulli, seed {seed}"
    );

    let logits: Vec<f32> = sec["categorical_8"]["logits_f32"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let logits = Tensor::<(C<5>,)>::from_vec(logits).unwrap();
    let c = random::categorical(&key, &logits, (C::<8>,))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        c.iter().map(|&x| x as i64).collect::<Vec<_>>(),
        i64s(&sec["categorical_8"]["values"]),
        "categorical, seed {seed}"
    );
    errs
}

#[test]
fn jax_reference_partitionable() {
    let mut all = Vec::new();
    for seed in [0u64, 42] {
        all.extend(check_section(&reference()["keys"][seed.to_string()], seed));
    }
    eprintln!("normal f32 ulp errors vs JAX: {all:?}");
}

#[test]
fn jax_reference_legacy_layout() {
    random::with_threefry_partitionable(false, || {
        for seed in [0u64, 42] {
            check_section(
                &reference()["partitionable_false"]["keys"][seed.to_string()],
                seed,
            );
        }
    });
    // The setting is scoped: back to the default afterwards.
    assert_eq!(random::threefry_layout(), random::Layout::Partitionable);
}

#[test]
fn jax_reference_x64() {
    let mut errs = Vec::new();
    let uniforms = raw_f64_arrays("uniform_f64_8");
    let normals = raw_f64_arrays("normal_f64_8");
    assert_eq!((uniforms.len(), normals.len()), (2, 2));
    for (j, seed) in [0u64, 42].into_iter().enumerate() {
        let sec = &reference()["x64_samplers"]["keys"][seed.to_string()];
        // The raw parse agrees with serde's to within an ulp (same numbers, same order).
        let parsed: Vec<f64> = sec["uniform_f64_8"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(parsed
            .iter()
            .zip(&uniforms[j])
            .all(|(a, b)| ulps64(*a, *b) <= 1));
        let key = Key::new(seed);
        let bits = random::random_bits64(&key, (C::<4>,))
            .unwrap()
            .to_vec()
            .unwrap();
        let want: Vec<u64> = sec["random_bits_u64_4"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            bits.iter().map(|&b| b as u64).collect::<Vec<_>>(),
            want,
            "bits64, seed {seed}"
        );

        let u = random::uniform::<_, f64>(&key, (C::<8>,), 0.0, 1.0)
            .unwrap()
            .to_vec()
            .unwrap();
        let want = &uniforms[j];
        assert_eq!(
            u.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "uniform f64, seed {seed}"
        );

        let z = random::normal::<_, f64>(&key, (C::<8>,))
            .unwrap()
            .to_vec()
            .unwrap();
        for (a, b) in z.iter().zip(&normals[j]) {
            errs.push(ulps64(*a, *b));
        }
    }
    eprintln!("normal f64 ulp errors vs JAX: {errs:?}");
    assert!(
        errs.iter().all(|&e| e <= 4),
        "normal f64 ulp errors {errs:?}"
    );
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var)
}

fn f64v<S: ferrax::Shape, E: ferrax::Float>(t: &Tensor<S, E>) -> Vec<f64> {
    t.array().storage("test").unwrap().to_f64_vec()
}

/// Asserts a sample mean within `z` standard errors of `mean` (deterministic keys, so this
/// either always passes or always fails).
fn assert_mean(what: &str, got: f64, mean: f64, var: f64, n: usize) {
    let se = (var / n as f64).sqrt();
    assert!(
        (got - mean).abs() < 5.0 * se,
        "{what}: mean {got}, expected {mean} ± {}",
        5.0 * se
    );
}

#[test]
fn gamma_moments() {
    const N: usize = 20_000;
    for (i, &alpha) in [0.3f64, 1.0, 2.5, 9.0].iter().enumerate() {
        let key = Key::new(100 + i as u64);
        let a = Tensor::<()>::scalar(alpha as f32);
        let g = random::gamma(&key, &a, (Dyn(N),)).unwrap();
        let v = f64v(&g);
        assert!(
            v.iter().all(|&x| x >= 0.0 && x.is_finite()),
            "gamma({alpha}) support"
        );
        let (m, var) = mean_var(&v);
        assert_mean(&format!("gamma({alpha})"), m, alpha, alpha, N);
        assert!(
            (var / alpha - 1.0).abs() < 0.1,
            "gamma({alpha}) variance {var}"
        );
        // loggamma draws the same variates in log space.
        let lg = f64v(&random::loggamma(&key, &a, (Dyn(N),)).unwrap());
        let agree = v
            .iter()
            .zip(&lg)
            .filter(|(x, l)| (x.ln() - **l).abs() < 1e-3 * (1.0 + l.abs()))
            .count();
        assert!(
            agree > N * 99 / 100,
            "loggamma({alpha}) agrees with log(gamma) on {agree}/{N}"
        );
    }
    // f64 and per-element alpha.
    let alphas = Tensor::<(C<2>,), f64>::from_vec(vec![0.5, 4.0]).unwrap();
    let g = random::gamma(&Key::new(7), &alphas, (Dyn(N / 2), C::<2>)).unwrap();
    let v = f64v(&g);
    for (j, &alpha) in [0.5, 4.0].iter().enumerate() {
        let col: Vec<f64> = v.iter().skip(j).step_by(2).copied().collect();
        let (m, _) = mean_var(&col);
        assert_mean(&format!("gamma f64({alpha})"), m, alpha, alpha, col.len());
    }
}

#[test]
fn beta_and_dirichlet_moments() {
    const N: usize = 20_000;
    let (a, b) = (2.0f64, 3.5f64);
    let ta = Tensor::<()>::scalar(a as f32);
    let tb = Tensor::<()>::scalar(b as f32);
    let x = f64v(&random::beta(&Key::new(3), &ta, &tb, (Dyn(N),)).unwrap());
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let mean = a / (a + b);
    let var = a * b / ((a + b) * (a + b) * (a + b + 1.0));
    let (m, v) = mean_var(&x);
    assert_mean("beta", m, mean, var, N);
    assert!((v / var - 1.0).abs() < 0.1, "beta variance {v} vs {var}");

    let alpha = Tensor::<(C<3>,)>::from_vec(vec![1.0, 2.0, 3.0]).unwrap();
    let d = random::dirichlet(&Key::new(4), &alpha, (Dyn(N / 2), C::<3>)).unwrap();
    let d = f64v(&d);
    for row in d.chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5 && row.iter().all(|&p| p >= 0.0));
    }
    for (j, &aj) in [1.0f64, 2.0, 3.0].iter().enumerate() {
        let col: Vec<f64> = d.iter().skip(j).step_by(3).copied().collect();
        let mean = aj / 6.0;
        let var = mean * (1.0 - mean) / 7.0;
        let (m, v) = mean_var(&col);
        assert_mean(&format!("dirichlet[{j}]"), m, mean, var, col.len());
        assert!(
            (v / var - 1.0).abs() < 0.1,
            "dirichlet[{j}] variance {v} vs {var}"
        );
    }
}

/// Standard normal pdf and cdf, for truncated-normal moments.
fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}
fn cdf(x: f64) -> f64 {
    0.5 * (1.0 + random::math::erf_f64(x / std::f64::consts::SQRT_2))
}

#[test]
fn truncated_normal_moments() {
    const N: usize = 20_000;
    for (i, &(lo, hi)) in [(-1.0f64, 2.0f64), (0.5, f64::INFINITY), (-2.0, 2.0)]
        .iter()
        .enumerate()
    {
        let t = random::truncated_normal::<_, f32>(&Key::new(20 + i as u64), (Dyn(N),), lo, hi)
            .unwrap();
        let x = f64v(&t);
        assert!(
            x.iter().all(|&v| v > lo && v < hi),
            "truncated_normal({lo}, {hi}) support"
        );
        let z = cdf(hi) - cdf(lo);
        let (pa, pb) = (pdf(lo), if hi.is_finite() { pdf(hi) } else { 0.0 });
        let mean = (pa - pb) / z;
        let hb = if hi.is_finite() { hi * pb } else { 0.0 };
        let var = 1.0 + (lo * pa - hb) / z - mean * mean;
        let (m, v) = mean_var(&x);
        assert_mean(&format!("truncated_normal({lo}, {hi})"), m, mean, var, N);
        assert!(
            (v / var - 1.0).abs() < 0.1,
            "truncated_normal({lo}, {hi}) variance {v} vs {var}"
        );
    }
    assert!(random::truncated_normal::<_, f32>(&Key::new(0), (C::<2>,), 1.0, 1.0).is_err());
}

#[test]
fn elementwise_moments_and_dtypes() {
    const N: usize = 20_000;
    let key = Key::new(11);
    let u = f64v(&random::uniform::<_, f64>(&key, (Dyn(N),), -1.0, 3.0).unwrap());
    assert!(u.iter().all(|&x| (-1.0..3.0).contains(&x)));
    let (m, _) = mean_var(&u);
    assert_mean("uniform f64", m, 1.0, 16.0 / 12.0, N);
    let z = f64v(&random::normal::<_, f64>(&key, (Dyn(N),)).unwrap());
    let (m, v) = mean_var(&z);
    assert_mean("normal f64", m, 0.0, 1.0, N);
    assert!((v - 1.0).abs() < 0.05);
    let e = f64v(&random::exponential::<_, f32>(&key, (Dyn(N),)).unwrap());
    assert!(e.iter().all(|&x| x >= 0.0));
    assert_mean("exponential", mean_var(&e).0, 1.0, 1.0, N);
    let g = f64v(&random::gumbel::<_, f32>(&key, (Dyn(N),)).unwrap());
    let pi2_6 = std::f64::consts::PI.powi(2) / 6.0;
    assert_mean("gumbel", mean_var(&g).0, 0.577_215_664_9, pi2_6, N);
    // Half precision: JAX's 8/16-bit construction, values in range.
    let hb = random::uniform::<_, ferrax::bf16>(&key, (Dyn(4096),), 0.0, 1.0).unwrap();
    let hb = f64v(&hb);
    assert!(hb.iter().all(|&x| (0.0..1.0).contains(&x)));
    assert!(
        hb.iter().all(|&x| (x * 128.0).fract() == 0.0),
        "bf16 uniform has 7 random bits"
    );
    let hh = f64v(&random::normal::<_, ferrax::f16>(&key, (Dyn(N),)).unwrap());
    let (m, v) = mean_var(&hh);
    assert_mean("normal f16", m, 0.0, 1.0, N);
    assert!((v - 1.0).abs() < 0.05);
    // Bernoulli frequency, scalar and per-element p.
    let bern = random::bernoulli(&key, 0.25, (Dyn(N),))
        .unwrap()
        .to_vec()
        .unwrap();
    let f = bern.iter().filter(|&&b| b).count() as f64 / N as f64;
    assert_mean("bernoulli", f, 0.25, 0.25 * 0.75, N);
    let p = Tensor::<(C<2>,)>::from_vec(vec![0.0, 1.0]).unwrap();
    let bt = random::bernoulli_tensor(&key, &p, (C::<3>, C::<2>))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(bt, vec![false, true, false, true, false, true]);
    assert!(random::bernoulli(&key, 1.5, (C::<2>,)).is_err());
}

#[test]
fn randint_ranges_and_dtypes() {
    let key = Key::new(5);
    let wide = random::randint::<_, i32>(&key, (Dyn(4096),), i32::MIN as i64, i32::MAX as i64 + 1)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(wide.iter().any(|&x| x < -1_000_000_000) && wide.iter().any(|&x| x > 1_000_000_000));
    let r = random::randint::<_, i64>(&key, (Dyn(4096),), -5, 1 << 40)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(r.iter().all(|&x| (-5..1 << 40).contains(&x)) && r.iter().any(|&x| x > 1 << 39));
    let r = random::randint::<_, u32>(&key, (Dyn(4096),), 3, 9)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(r.iter().all(|&x| (3..9).contains(&x)));
    // Counts of a small range are near uniform.
    let r = random::randint::<_, i32>(&key, (Dyn(60_000),), 0, 6)
        .unwrap()
        .to_vec()
        .unwrap();
    for k in 0..6 {
        let c = r.iter().filter(|&&x| x == k).count() as f64;
        assert!(
            (c - 10_000.0).abs() < 5.0 * (10_000.0f64 * 5.0 / 6.0).sqrt(),
            "randint count[{k}] = {c}"
        );
    }
    // max <= min gives min, as in JAX.
    let r = random::randint::<_, i32>(&key, (C::<4>,), 7, 7)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(r, vec![7; 4]);
}

#[test]
fn permutations() {
    let key = Key::new(9);
    let p = random::permutation(&key, Dyn(1000))
        .unwrap()
        .to_vec()
        .unwrap();
    let mut s = p.clone();
    s.sort();
    assert_eq!(s, (0..1000).collect::<Vec<i32>>());
    assert_ne!(p, (0..1000).collect::<Vec<i32>>());
    // Rows of a matrix move together, in the order `permutation(n)` gives.
    let x = Tensor::<(C<4>, C<2>)>::from_vec((0..8).map(|v| v as f32).collect()).unwrap();
    let px = random::permutation_of(&key, &x).unwrap().to_vec().unwrap();
    let p4 = random::permutation(&key, C::<4>).unwrap().to_vec().unwrap();
    let want: Vec<f32> = p4
        .iter()
        .flat_map(|&r| [2.0 * r as f32, 2.0 * r as f32 + 1.0])
        .collect();
    assert_eq!(px, want);
}

#[test]
fn categorical_frequencies_and_errors() {
    const N: usize = 20_000;
    let probs = [0.1f64, 0.2, 0.3, 0.4];
    let logits =
        Tensor::<(C<4>,)>::from_vec(probs.iter().map(|p| p.ln() as f32).collect()).unwrap();
    let c = random::categorical(&Key::new(12), &logits, (Dyn(N),))
        .unwrap()
        .to_vec()
        .unwrap();
    for (k, &p) in probs.iter().enumerate() {
        let f = c.iter().filter(|&&x| x == k as i32).count() as f64 / N as f64;
        assert_mean(&format!("categorical[{k}]"), f, p, p * (1.0 - p), N);
    }
    // Batched logits: a row of -inf everywhere but one column always picks it.
    let l = Tensor::<(C<2>, C<3>)>::from_vec(vec![
        0.0,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        0.0,
    ])
    .unwrap();
    let c = random::categorical(&Key::new(1), &l, (C::<5>, C::<2>))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(c, [0, 2].repeat(5));
    // The output shape must end with the logits' batch shape.
    let err = random::categorical(&Key::new(1), &l, (C::<3>,)).unwrap_err();
    assert!(err.to_string().contains("categorical"), "{err}");
}

#[test]
fn keys_are_values_and_errors_name_the_op() {
    let key = Key::new(0);
    assert_ne!(
        key_data(&key.fold_in(1).unwrap()),
        key_data(&key.fold_in(2).unwrap())
    );
    assert_eq!(
        key_data(&key.fold_in(3).unwrap()),
        key_data(&key.fold_in(3).unwrap())
    );
    assert_eq!(key_data(&Key::new(u64::MAX)), vec![u32::MAX, u32::MAX]);
    assert_eq!(
        format!("{:?}", Key::new(42)),
        "Key([0x00000000, 0x0000002a])"
    );
    let bad = Array::from_vec(vec![3], vec![1u32, 2, 3]).unwrap();
    assert!(Key::from_array(bad.clone()).is_err());
    let err = ferrax::prim::random::random_bits(&bad, &[4], 32).unwrap_err();
    assert!(
        err.to_string().contains("random_bits") && err.to_string().contains("[3]"),
        "{err}"
    );
    let key_arr = key.array().clone();
    let err = ferrax::prim::random::random_bits(&key_arr, &[4], 16).unwrap_err();
    assert!(err.to_string().contains("16"), "{err}");
    assert_eq!(key.split(0).unwrap().len(), 0);
    // A key is a tree with one u32[2] leaf, so it travels through staged functions.
    let leaves = ferrax::tree::leaves(&key);
    assert_eq!(leaves.len(), 1);
    let k2: Key = ferrax::tree::unflatten(&key, vec![Key::new(42).array().clone()]).unwrap();
    assert_eq!(key_data(&k2), vec![0, 42]);
    assert!(ferrax::tree::unflatten(&key, vec![bad]).is_err());
}

#[test]
fn independent_of_thread_count() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let key = Key::new(2024);
            let bits = random::random_bits32(&key, (Dyn(1 << 20),)).unwrap();
            let z = random::normal::<_, f32>(&key, (Dyn(100_000),)).unwrap();
            let m = random::bernoulli(&key, 0.1, (Dyn(100_000),)).unwrap();
            let a = Tensor::<()>::scalar(1.5f32);
            let g = random::gamma(&key, &a, (Dyn(40_000),)).unwrap();
            (
                bits.into_array(),
                z.into_array(),
                m.into_array(),
                g.into_array(),
            )
        })
    };
    let (b1, z1, m1, g1) = run(1);
    let (b2, z2, m2, g2) = run(2);
    assert!(b1.bit_eq(&b2) && z1.bit_eq(&z2) && m1.bit_eq(&m2) && g1.bit_eq(&g2));
    // Parallel chunks continue the counter stream: element i is block i.
    let head = random::random_bits32(&Key::new(2024), (C::<8>,))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(&b1.to_vec::<u32>().unwrap()[..8], &head[..]);
    let v = b1.to_vec::<u32>().unwrap();
    assert_eq!(
        v[(1 << 20) - 1],
        ferrax::random::threefry2x32([0, 2024], [0, (1 << 20) - 1])
            .iter()
            .fold(0, |a, b| a ^ b)
    );
}

#[test]
fn traced_keys_record_random_primitives() {
    let aval = ferrax::AVal::new(vec![2], ferrax::DType::U32);
    let (prog, _) = ferrax::trace::trace_fn(&[aval], |ins| {
        let key = Key::from_array(ins[0].clone())?;
        let (k1, k2) = key.split2()?;
        let k3 = k1.fold_in(5)?;
        let u = random::uniform::<_, f32>(&k3, (C::<3>,), 0.0, 1.0)?;
        let b = random::bernoulli(&k2, 0.5, (C::<3>,))?;
        assert!(u.is_tracer() && b.is_tracer() && k3.data().is_err());
        Ok(vec![u.into_array(), b.into_array()])
    })
    .unwrap();
    let names: Vec<&str> = prog.eqns.iter().map(|e| e.prim.name()).collect();
    assert_eq!(
        names,
        [
            "random_split",
            "random_fold_in",
            "random_sample",
            "random_sample"
        ]
    );
}
