//! Markov chain Monte Carlo: [`Mcmc`] runs HMC or NUTS chains ([`Kernel`]) on a model's
//! compiled [`Potential`], with Stan's windowed warmup (dual-averaging step size, diagonal
//! or dense mass matrix), chains in parallel threads, sequentially or vectorized, init
//! strategies, and per-draw statistics (divergences, tree depth, steps).
//!
//! ```
//! use ferrax_core::random::Key;
//! use ferrax_infer::{dist::Normal, handlers::sample, mcmc::{Kernel, Mcmc}};
//! # fn main() -> ferrax_infer::Result<()> {
//! let model = || sample("x", Normal::new(1.0, 2.0)?, None);
//! let run = Mcmc::new(Kernel::nuts(), 200, 300).num_chains(2).run(&Key::new(0), &model)?;
//! let x = run.site("x").unwrap();
//! assert!((x.mean()[0] - 1.0).abs() < 0.6);
//! # Ok(())
//! # }
//! ```

pub mod nuts;
mod vectorized;

use crate::diagnostics;
use crate::error::{Error, Result};
use crate::potential::Potential;
use ferrax_core::random::Key;
use nuts::{
    adaptation_windows, find_reasonable_step_size, hmc_step, nuts_step, DualAveraging, Point, Rng,
    Welford, WelfordCov,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The transition kernel and its settings.
#[derive(Clone, Debug)]
pub enum Kernel {
    /// Hamiltonian Monte Carlo with a fixed number of leapfrog steps.
    Hmc {
        /// Leapfrog steps per transition.
        num_steps: usize,
        /// Shared settings.
        settings: KernelSettings,
    },
    /// The No-U-Turn sampler (multinomial, Stan's variant).
    Nuts {
        /// Maximum tree depth (at most `2^depth` steps per transition).
        max_tree_depth: usize,
        /// Shared settings.
        settings: KernelSettings,
    },
}

/// Settings HMC and NUTS share.
#[derive(Clone, Debug)]
pub struct KernelSettings {
    /// Target mean acceptance probability for step-size adaptation.
    pub target_accept_prob: f64,
    /// Initial step size (refined by the heuristic search, then adapted).
    pub step_size: f64,
    /// Adapt the step size during warmup.
    pub adapt_step_size: bool,
    /// Adapt the mass matrix during warmup.
    pub adapt_mass_matrix: bool,
    /// Use (and adapt) a dense mass matrix instead of a diagonal one (NumPyro's
    /// `dense_mass=True`).
    pub dense_mass: bool,
    /// Energy error that counts as a divergence.
    pub max_delta_energy: f64,
    /// How initial points are chosen.
    pub init: InitStrategy,
}

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            target_accept_prob: 0.8,
            step_size: 1.0,
            adapt_step_size: true,
            adapt_mass_matrix: true,
            dense_mass: false,
            max_delta_energy: 1000.0,
            init: InitStrategy::Uniform { radius: 2.0 },
        }
    }
}

/// How a chain's initial point is chosen.
#[derive(Clone, Debug)]
pub enum InitStrategy {
    /// Uniform in `(-radius, radius)` in unconstrained space (NumPyro's default
    /// `init_to_uniform`, radius 2); retried until the potential is finite.
    Uniform {
        /// Half width.
        radius: f64,
    },
    /// Given constrained values per site.
    Values(HashMap<String, ferrax_core::Array>),
    /// The elementwise median of `num_samples` prior draws of each latent site (NumPyro's
    /// `init_to_median`, 15 draws by default).
    Median {
        /// Prior draws to take the median of.
        num_samples: usize,
    },
    /// Zero in unconstrained space, i.e. the bijection's image of 0 for each site (a
    /// point inside every support; NumPyro's `init_to_feasible`).
    Feasible,
}

impl Kernel {
    /// NUTS with NumPyro's defaults (max_tree_depth 10, target_accept_prob 0.8).
    pub fn nuts() -> Kernel {
        Kernel::Nuts {
            max_tree_depth: 10,
            settings: KernelSettings::default(),
        }
    }
    /// HMC with `num_steps` leapfrog steps per transition.
    pub fn hmc(num_steps: usize) -> Kernel {
        Kernel::Hmc {
            num_steps,
            settings: KernelSettings::default(),
        }
    }
    /// Mutable access to the shared settings.
    pub fn settings_mut(&mut self) -> &mut KernelSettings {
        match self {
            Kernel::Hmc { settings, .. } | Kernel::Nuts { settings, .. } => settings,
        }
    }
    /// Sets the target acceptance probability.
    pub fn target_accept_prob(mut self, p: f64) -> Kernel {
        self.settings_mut().target_accept_prob = p;
        self
    }
    /// Sets the maximum tree depth (NUTS only).
    pub fn max_tree_depth(mut self, d: usize) -> Kernel {
        if let Kernel::Nuts { max_tree_depth, .. } = &mut self {
            *max_tree_depth = d;
        }
        self
    }
    /// Uses a dense mass matrix (adapted from the warmup draws' covariance).
    pub fn dense_mass(mut self, dense: bool) -> Kernel {
        self.settings_mut().dense_mass = dense;
        self
    }
    /// Sets the init strategy.
    pub fn init(mut self, init: InitStrategy) -> Kernel {
        self.settings_mut().init = init;
        self
    }
    fn settings(&self) -> &KernelSettings {
        match self {
            Kernel::Hmc { settings, .. } | Kernel::Nuts { settings, .. } => settings,
        }
    }
}

/// How chains are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainMethod {
    /// One thread per chain.
    Parallel,
    /// One after another on the calling thread.
    Sequential,
    /// All chains in lockstep with their gradients evaluated together by one vmapped,
    /// compiled potential (NumPyro's `chain_method="vectorized"`); see
    /// `mcmc/vectorized.rs`.
    Vectorized,
}

/// The MCMC driver (NumPyro's `MCMC`).
#[derive(Clone, Debug)]
pub struct Mcmc {
    kernel: Kernel,
    num_warmup: usize,
    num_samples: usize,
    num_chains: usize,
    thinning: usize,
    method: ChainMethod,
    progress: bool,
}

/// Draws of one site: `data` is `[chain][draw][element]` row-major.
#[derive(Clone, Debug)]
pub struct SiteDraws {
    /// Shape of one value.
    pub shape: Vec<usize>,
    /// Number of chains.
    pub num_chains: usize,
    /// Draws per chain.
    pub num_draws: usize,
    /// The values.
    pub data: Vec<f64>,
}

impl SiteDraws {
    /// Elements per value.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Element `i` of every draw, per chain: `[chain][draw]`.
    pub fn element(&self, i: usize) -> Vec<Vec<f64>> {
        let k = self.numel();
        (0..self.num_chains)
            .map(|c| {
                (0..self.num_draws)
                    .map(|d| self.data[(c * self.num_draws + d) * k + i])
                    .collect()
            })
            .collect()
    }
    /// Posterior mean per element.
    pub fn mean(&self) -> Vec<f64> {
        let k = self.numel();
        let n = (self.num_chains * self.num_draws) as f64;
        let mut m = vec![0.0; k];
        for (j, v) in self.data.iter().enumerate() {
            m[j % k] += v / n;
        }
        m
    }
    /// The draws as an array `[chains, draws, ...shape]`.
    pub fn to_array(&self) -> Result<ferrax_core::Array> {
        let mut s = vec![self.num_chains, self.num_draws];
        s.extend_from_slice(&self.shape);
        Ok(ferrax_core::Array::from_vec(s, self.data.clone())?)
    }
}

/// Per-chain sampler statistics.
#[derive(Clone, Debug, Default)]
pub struct ChainStats {
    /// Divergent transitions among the kept draws.
    pub divergences: usize,
    /// Divergent transitions during warmup.
    pub warmup_divergences: usize,
    /// Tree depth of each kept draw.
    pub tree_depth: Vec<usize>,
    /// Leapfrog steps of each kept draw.
    pub num_steps: Vec<usize>,
    /// Mean acceptance probability of each kept draw.
    pub accept_prob: Vec<f64>,
    /// Adapted step size.
    pub step_size: f64,
    /// Adapted inverse mass matrix: its diagonal (length d), or with `dense_mass` the
    /// full `d x d` matrix row-major.
    pub inverse_mass_matrix: Vec<f64>,
    /// Wall time of warmup and of sampling.
    pub warmup_time: Duration,
    /// Wall time of sampling.
    pub sample_time: Duration,
}

/// The result of [`Mcmc::run`].
#[derive(Clone, Debug)]
pub struct McmcResult {
    /// Draws per site (latent sites, then deterministic sites), in model order.
    pub sites: Vec<(String, SiteDraws)>,
    /// Statistics per chain.
    pub chains: Vec<ChainStats>,
    /// With [`ChainMethod::Vectorized`]: how many batched (all-chain) potential
    /// evaluations ran; 0 otherwise.
    pub vectorized_batches: usize,
}

impl McmcResult {
    /// Draws of site `name`.
    pub fn site(&self, name: &str) -> Option<&SiteDraws> {
        self.sites.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }
    /// Total divergent transitions after warmup, over all chains.
    pub fn divergences(&self) -> usize {
        self.chains.iter().map(|c| c.divergences).sum()
    }
    /// NumPyro's `print_summary` table (mean, std, median, 5%, 95%, n_eff (bulk), r_hat)
    /// and the number of divergences.
    pub fn summary(&self) -> String {
        let mut rows = Vec::new();
        for (name, d) in &self.sites {
            for i in 0..d.numel() {
                let label = if d.numel() == 1 {
                    name.clone()
                } else {
                    format!("{name}[{i}]")
                };
                rows.push((label, diagnostics::SummaryRow::of(&d.element(i))));
            }
        }
        let mut s = diagnostics::format_summary(&rows);
        s.push_str(&format!(
            "\nNumber of divergences: {}\n",
            self.divergences()
        ));
        s
    }
    /// Summary statistics per element of every site, keyed `name` or `name[i]`.
    pub fn summary_rows(&self) -> BTreeMap<String, diagnostics::SummaryRow> {
        let mut m = BTreeMap::new();
        for (name, d) in &self.sites {
            for i in 0..d.numel() {
                let label = if d.numel() == 1 {
                    name.clone()
                } else {
                    format!("{name}[{i}]")
                };
                m.insert(label, diagnostics::SummaryRow::of(&d.element(i)));
            }
        }
        m
    }
}

impl Mcmc {
    /// A driver with `num_warmup` adaptation and `num_samples` kept iterations per chain.
    pub fn new(kernel: Kernel, num_warmup: usize, num_samples: usize) -> Mcmc {
        Mcmc {
            kernel,
            num_warmup,
            num_samples,
            num_chains: 1,
            thinning: 1,
            method: ChainMethod::Parallel,
            progress: false,
        }
    }
    /// Number of chains (default 1).
    pub fn num_chains(mut self, n: usize) -> Mcmc {
        self.num_chains = n;
        self
    }
    /// Keep every `t`-th draw (default 1).
    pub fn thinning(mut self, t: usize) -> Mcmc {
        self.thinning = t;
        self
    }
    /// How chains run (default parallel threads).
    pub fn chain_method(mut self, m: ChainMethod) -> Mcmc {
        self.method = m;
        self
    }
    /// Show a progress bar per chain on stderr (indicatif; hidden when stderr is not a
    /// terminal), with the phase, step size and divergences so far.
    pub fn progress_bar(mut self, on: bool) -> Mcmc {
        self.progress = on;
        self
    }

    /// Runs the chains on `model` (chain `i` uses `key.split(num_chains)[i]`).
    pub fn run<R>(&self, key: &Key, model: &(impl Fn() -> Result<R> + Sync)) -> Result<McmcResult> {
        if self.num_chains == 0 || self.num_samples == 0 || self.thinning == 0 {
            return Err(Error::invalid(
                "Mcmc",
                "num_chains, num_samples and thinning must be at least 1",
            ));
        }
        let keys = key.split(self.num_chains)?;
        let mut vectorized_batches = 0;
        let multi = self.progress.then(indicatif::MultiProgress::new);
        let bars = multi.as_ref();
        let results: Vec<Result<(Vec<(String, Vec<usize>)>, Vec<Vec<f64>>, ChainStats)>> =
            match self.method {
                ChainMethod::Sequential => keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| self.run_chain(i, k, model, None, bars))
                    .collect(),
                ChainMethod::Vectorized => {
                    let (k0, _) = keys[0].split2()?;
                    let bp = Potential::new(model, &k0)?.batched(self.num_chains)?;
                    let batcher = vectorized::Batcher::new(bp);
                    let r = std::thread::scope(|s| {
                        let batcher = &batcher;
                        let hs: Vec<_> = keys
                            .iter()
                            .enumerate()
                            .map(|(i, k)| {
                                let k = k.clone();
                                s.spawn(move || {
                                    let h = batcher.handle(i);
                                    self.run_chain(i, &k, model, Some(&h), bars)
                                })
                            })
                            .collect();
                        hs.into_iter()
                            .map(|h| {
                                h.join().unwrap_or_else(|_| {
                                    Err(Error::invalid("Mcmc", "a chain thread panicked"))
                                })
                            })
                            .collect()
                    });
                    vectorized_batches = batcher.batches();
                    r
                }
                ChainMethod::Parallel => std::thread::scope(|s| {
                    let hs: Vec<_> = keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| {
                            let k = k.clone();
                            s.spawn(move || self.run_chain(i, &k, model, None, bars))
                        })
                        .collect();
                    hs.into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(Error::invalid("Mcmc", "a chain thread panicked"))
                            })
                        })
                        .collect()
                }),
            };
        let mut names = Vec::new();
        let mut per_chain = Vec::new();
        let mut chains = Vec::new();
        for r in results {
            let (n, d, st) = r?;
            names = n;
            per_chain.push(d);
            chains.push(st);
        }
        let num_draws = per_chain[0].len();
        let mut sites = Vec::new();
        for (si, (name, shape)) in names.iter().enumerate() {
            let k: usize = shape.iter().product();
            let offset: usize = names[..si]
                .iter()
                .map(|(_, s)| s.iter().product::<usize>())
                .sum();
            let mut data = Vec::with_capacity(self.num_chains * num_draws * k);
            for c in &per_chain {
                for d in c {
                    data.extend_from_slice(&d[offset..offset + k]);
                }
            }
            sites.push((
                name.clone(),
                SiteDraws {
                    shape: shape.clone(),
                    num_chains: self.num_chains,
                    num_draws,
                    data,
                },
            ));
        }
        Ok(McmcResult {
            sites,
            chains,
            vectorized_batches,
        })
    }

    /// The initial point chain 0 of [`Mcmc::run`] with this `key` starts from, as
    /// constrained values per latent site (what the kernel's [`InitStrategy`] picks).
    pub fn init_params<R>(
        &self,
        key: &Key,
        model: &(impl Fn() -> Result<R> + ?Sized),
    ) -> Result<HashMap<String, ferrax_core::Array>> {
        let keys = key.split(self.num_chains.max(1))?;
        let (k_init, k_rng) = keys[0].split2()?;
        let pot = Potential::new(model, &k_init)?;
        let seed = k_rng.data()?;
        let mut rng = Rng::new(((seed[0] as u64) << 32) | seed[1] as u64);
        let z = self.init_point(&pot, &self.kernel.settings().init, &mut rng, model, &k_init)?;
        let vals = pot.constrain(&z)?;
        pot.output_sites()
            .iter()
            .zip(vals)
            .take(pot.sites().len())
            .map(|((n, shape), v)| Ok((n.clone(), ferrax_core::Array::from_vec(shape.clone(), v)?)))
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn run_chain<R>(
        &self,
        chain: usize,
        key: &Key,
        model: &(impl Fn() -> Result<R> + ?Sized),
        grad: Option<&dyn nuts::GradFn>,
        bars: Option<&indicatif::MultiProgress>,
    ) -> Result<(Vec<(String, Vec<usize>)>, Vec<Vec<f64>>, ChainStats)> {
        let (k_init, k_rng) = key.split2()?;
        let pot = Potential::new(model, &k_init)?;
        // The transitions' gradient evaluations (the vectorized method routes them through
        // the shared batch); initialization and output use this chain's own potential.
        let gf: &dyn nuts::GradFn = match grad {
            Some(g) => g,
            None => &pot,
        };
        let seed = k_rng.data()?;
        let mut rng = Rng::new(((seed[0] as u64) << 32) | seed[1] as u64);
        let settings = self.kernel.settings().clone();
        let z0 = self.init_point(&pot, &settings.init, &mut rng, model, &k_init)?;
        let d = pot.dim();
        let (pe, grad) = pot.value_and_grad(&z0)?;
        let mut cur = Point {
            z: z0,
            r: vec![0.0; d],
            pe,
            grad,
        };
        let mut inv_mass = if settings.dense_mass {
            let mut m = vec![0.0; d * d];
            for i in 0..d {
                m[i * d + i] = 1.0;
            }
            m
        } else {
            vec![1.0; d]
        };
        let mut eps = settings.step_size;
        if settings.adapt_step_size {
            eps = find_reasonable_step_size(&cur, &inv_mass, gf, &mut rng, eps)?;
        }
        let mut da = DualAveraging::new(eps, settings.target_accept_prob);
        let (init_buf, _, window_ends) = adaptation_windows(self.num_warmup);
        let mut welford = Welford::new(d);
        let mut welford_cov = WelfordCov::new(d);
        let mut stats = ChainStats::default();
        let total = self.num_warmup + self.num_samples * self.thinning;
        let t0 = Instant::now();
        let mut draws = Vec::with_capacity(self.num_samples);
        let step = |cur: &Point, eps: f64, inv_mass: &[f64], rng: &mut Rng| match &self.kernel {
            Kernel::Nuts {
                max_tree_depth,
                settings,
            } => nuts_step(
                cur,
                eps,
                *max_tree_depth,
                inv_mass,
                gf,
                rng,
                settings.max_delta_energy,
            ),
            Kernel::Hmc {
                num_steps,
                settings,
            } => hmc_step(
                cur,
                eps,
                *num_steps,
                inv_mass,
                gf,
                rng,
                settings.max_delta_energy,
            ),
        };
        let bar = bars.map(|mp| {
            let b = mp.add(indicatif::ProgressBar::new(total as u64));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "chain {prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_prefix(chain.to_string());
            b
        });
        for it in 0..total {
            if let Some(b) = &bar {
                b.set_position(it as u64);
                if it % 16 == 0 {
                    b.set_message(format!(
                        "{} step size {eps:.2e}, divergences {}",
                        if it < self.num_warmup {
                            "warmup"
                        } else {
                            "sample"
                        },
                        stats.warmup_divergences + stats.divergences
                    ));
                }
            }
            let (next, info) = step(&cur, eps, &inv_mass, &mut rng)?;
            cur = next;
            if it < self.num_warmup {
                if info.diverging {
                    stats.warmup_divergences += 1;
                }
                if settings.adapt_step_size {
                    eps = da.update(info.accept_prob);
                }
                if settings.adapt_mass_matrix
                    && it >= init_buf
                    && window_ends.last().is_some_and(|&e| it <= e)
                {
                    if settings.dense_mass {
                        welford_cov.push(&cur.z);
                    } else {
                        welford.push(&cur.z);
                    }
                    if window_ends.contains(&it) {
                        if settings.dense_mass {
                            inv_mass = welford_cov.regularized_covariance();
                            welford_cov = WelfordCov::new(d);
                        } else {
                            inv_mass = welford.regularized_variance();
                            welford = Welford::new(d);
                        }
                        if settings.adapt_step_size {
                            eps = find_reasonable_step_size(&cur, &inv_mass, gf, &mut rng, eps)?;
                            da = DualAveraging::new(eps, settings.target_accept_prob);
                        }
                    }
                }
                if it + 1 == self.num_warmup && settings.adapt_step_size {
                    eps = da.final_step_size();
                }
                if it + 1 == self.num_warmup {
                    stats.warmup_time = t0.elapsed();
                }
                continue;
            }
            if !(it - self.num_warmup).is_multiple_of(self.thinning) {
                continue;
            }
            if info.diverging {
                stats.divergences += 1;
            }
            stats.tree_depth.push(info.tree_depth);
            stats.num_steps.push(info.num_steps);
            stats.accept_prob.push(info.accept_prob);
            draws.push(pot.constrain(&cur.z)?.concat());
        }
        if let Some(b) = bar {
            b.finish_with_message(format!(
                "done: step size {eps:.2e}, divergences {}",
                stats.divergences
            ));
        }
        stats.sample_time = t0.elapsed() - stats.warmup_time;
        stats.step_size = eps;
        stats.inverse_mass_matrix = inv_mass;
        Ok((pot.output_sites().to_vec(), draws, stats))
    }

    fn init_point<R>(
        &self,
        pot: &Potential,
        init: &InitStrategy,
        rng: &mut Rng,
        model: &(impl Fn() -> Result<R> + ?Sized),
        key: &Key,
    ) -> Result<Vec<f64>> {
        let d = pot.dim();
        match init {
            InitStrategy::Uniform { radius } => {
                for _ in 0..100 {
                    let z: Vec<f64> = (0..d)
                        .map(|_| (2.0 * rng.uniform() - 1.0) * radius)
                        .collect();
                    let (pe, g) = pot.value_and_grad(&z)?;
                    if pe.is_finite() && g.iter().all(|x| x.is_finite()) {
                        return Ok(z);
                    }
                }
                Err(Error::invalid(
                    "Mcmc",
                    "no initial point with a finite potential and gradient found in 100 tries",
                ))
            }
            InitStrategy::Values(v) => pot.unconstrain(v),
            InitStrategy::Feasible => Ok(vec![0.0; d]),
            InitStrategy::Median { num_samples } => {
                let n = (*num_samples).max(1);
                let keys = key.fold_in(0x6d656469)?.split(n)?;
                let mut draws: Vec<Vec<Vec<f64>>> = vec![Vec::new(); pot.sites().len()];
                for k in &keys {
                    let (_, tr) =
                        crate::handlers::trace(|| crate::handlers::seed(k.clone(), model))?;
                    for (j, s) in pot.sites().iter().enumerate() {
                        let v = tr.value(&s.name).ok_or_else(|| {
                            Error::site(&s.name, "missing from a prior draw of the model")
                        })?;
                        draws[j].push(crate::math::to_f64(v)?);
                    }
                }
                let mut values = HashMap::new();
                for (s, ds) in pot.sites().iter().zip(&draws) {
                    let m = ds[0].len();
                    let med: Vec<f64> = (0..m)
                        .map(|e| {
                            let col: Vec<f64> = ds.iter().map(|v| v[e]).collect();
                            diagnostics::quantile(&col, 0.5)
                        })
                        .collect();
                    values.insert(
                        s.name.clone(),
                        ferrax_core::Array::from_vec(s.shape.clone(), med)?,
                    );
                }
                pot.unconstrain(&values)
            }
        }
    }
}
