//! B7: NUTS throughput as minimum bulk ESS per second, on (a) logistic regression with
//! N = 1000, D = 25 (tests/reference/logreg_data.json) and (b) eight schools,
//! non-centered (data from tests/reference/posteriors.json). Each run is 4 chains x
//! (1000 warmup + 1000 draws), chains in parallel threads; the `*_vectorized` entries run
//! the same chains with `ChainMethod::Vectorized` (one vmapped potential for all chains).
//!
//! Before the criterion timing, one run of each model prints its wall time, the minimum
//! bulk ESS over every latent element, and their ratio (the B7 number). Criterion then
//! times whole runs (`sample_size(10)`: each sample is a full 4-chain run).

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::diagnostics::ess_bulk;
use ferrax_infer::dist::{Bernoulli, DistExt, HalfCauchy, Normal};
use ferrax_infer::handlers::{deterministic, plate, sample};
use ferrax_infer::math::ArrayMath;
use ferrax_infer::mcmc::{ChainMethod, Kernel, Mcmc};
use ferrax_infer::potential::Potential;
use std::time::{Duration, Instant};

const WARMUP: usize = 1000;
const DRAWS: usize = 1000;
const CHAINS: usize = 4;

fn load(name: &str) -> serde_json::Value {
    let p = format!("{}/../tests/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"));
    serde_json::from_str(&s).expect("valid json")
}

/// The generator the reference file documents (splitmix64; the first output comes after
/// one increment).
struct SplitMix64(u64);
impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// X (N x D, row-major) and y from the file. X is decoded from its base64 f32 bytes and
/// checked against the splitmix64 recipe, so a corrupted file cannot go unnoticed.
fn logreg_data() -> (usize, usize, Vec<f64>, Vec<f64>) {
    let d = load("logreg_data.json");
    let n = d["N"].as_u64().expect("N") as usize;
    let dd = d["D"].as_u64().expect("D") as usize;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d["X_f32_le_base64"].as_str().expect("X"))
        .expect("base64");
    let x: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect();
    assert_eq!(x.len(), n * dd);
    let mut rng = SplitMix64(d["seed"].as_u64().expect("seed"));
    for (i, &xi) in x.iter().enumerate() {
        let g = (rng.next() >> 40) as f64 / (1u64 << 22) as f64 - 2.0;
        assert_eq!(g, xi, "X[{i}] differs from the splitmix64 recipe");
    }
    let y: Vec<f64> = d["y"]
        .as_str()
        .expect("y")
        .chars()
        .map(|c| if c == '1' { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(y.len(), n);
    (n, dd, x, y)
}

fn logreg_model() -> impl Fn() -> ferrax_infer::Result<()> + Sync {
    let (n, dd, x, y) = logreg_data();
    let x = Array::from_vec(vec![n, dd], x).expect("X");
    let y = Array::from_vec(vec![n], y).expect("y");
    move || {
        let w = sample(
            "w",
            Normal::new(0.0, 1.0)?.expand(&[dd])?.to_event(1)?,
            None,
        )?;
        // X . w as a broadcast product and a row sum (the potential is compiled once, so
        // this costs one fused loop per evaluation).
        let logits = x.mul(&w)?.sum_last(1)?;
        sample(
            "y",
            Bernoulli::logits(logits)?.to_event(1)?,
            Some(y.clone()),
        )?;
        Ok(())
    }
}

fn eight_schools_model() -> impl Fn() -> ferrax_infer::Result<()> + Sync {
    let r = load("posteriors.json");
    let data = &r["models"]["eight_schools_noncentered"]["data"];
    let col = |k: &str| -> Vec<f64> {
        data[k]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect()
    };
    let y = Array::from_vec(vec![8], col("y")).expect("y");
    let sigma = Array::from_vec(vec![8], col("sigma")).expect("sigma");
    move || {
        let mu = sample("mu", Normal::new(0.0, 5.0)?, None)?;
        let tau = sample("tau", HalfCauchy::new(5.0)?, None)?;
        plate("J", 8, None, |_| {
            let tt = sample("theta_tilde", Normal::new(0.0, 1.0)?, None)?;
            let theta = deterministic("theta", mu.add(&tau.mul(&tt)?)?)?;
            sample("obs", Normal::new(&theta, &sigma)?, Some(y.clone()))?;
            Ok(())
        })
    }
}

/// One full run: wall time and the minimum bulk ESS over every latent element.
fn run_once(
    model: &(impl Fn() -> ferrax_infer::Result<()> + Sync),
    seed: u64,
) -> (Duration, f64, usize) {
    run_with(model, seed, ChainMethod::Parallel)
}

fn run_with(
    model: &(impl Fn() -> ferrax_infer::Result<()> + Sync),
    seed: u64,
    method: ChainMethod,
) -> (Duration, f64, usize) {
    let latent: Vec<String> = Potential::new(model, &Key::new(0))
        .expect("potential")
        .sites()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let t = Instant::now();
    let run = Mcmc::new(Kernel::nuts(), WARMUP, DRAWS)
        .num_chains(CHAINS)
        .chain_method(method)
        .run(&Key::new(seed), model)
        .expect("mcmc");
    let wall = t.elapsed();
    let mut min_ess = f64::INFINITY;
    for name in &latent {
        let d = run.site(name).expect("latent site");
        for i in 0..d.numel() {
            min_ess = min_ess.min(ess_bulk(&d.element(i)));
        }
    }
    (wall, min_ess, run.divergences())
}

fn report(label: &str, model: &(impl Fn() -> ferrax_infer::Result<()> + Sync)) {
    let (wall, ess, div) = run_once(model, 1);
    println!(
        "B7{label}: {CHAINS} chains x ({WARMUP} warmup + {DRAWS} draws): wall {:.3} s, \
         min bulk ESS {ess:.0}, min bulk ESS/s {:.1}, divergences {div}",
        wall.as_secs_f64(),
        ess / wall.as_secs_f64()
    );
}

fn b7(c: &mut Criterion) {
    let lr = logreg_model();
    let es = eight_schools_model();
    report("a logistic regression (N=1000, D=25)", &lr);
    report("b eight schools (non-centered)", &es);
    let mut g = c.benchmark_group("b7_nuts");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.bench_function("logreg_4x(1000+1000)", |b| {
        let mut seed = 100;
        b.iter(|| {
            seed += 1;
            run_once(&lr, seed)
        })
    });
    g.bench_function("eight_schools_4x(1000+1000)", |b| {
        let mut seed = 200;
        b.iter(|| {
            seed += 1;
            run_once(&es, seed)
        })
    });
    g.bench_function("logreg_4x(1000+1000)_vectorized", |b| {
        let mut seed = 300;
        b.iter(|| {
            seed += 1;
            run_with(&lr, seed, ChainMethod::Vectorized)
        })
    });
    g.bench_function("eight_schools_4x(1000+1000)_vectorized", |b| {
        let mut seed = 400;
        b.iter(|| {
            seed += 1;
            run_with(&es, seed, ChainMethod::Vectorized)
        })
    });
    g.finish();
}

criterion_group!(benches, b7);
criterion_main!(benches);
