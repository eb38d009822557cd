//! The HMC and NUTS kernels over a flat `f64` state with a diagonal or dense mass matrix, plus
//! Stan's warmup pieces (dual averaging of the step size, windowed variance estimation).
//! NUTS is Stan's multinomial variant: biased progressive sampling between subtrees,
//! uniform within, and the generalized no-U-turn criterion checked over the whole tree,
//! each merged subtree, and across subtree boundaries.

use crate::error::Result;

/// A small fast generator for the sampler's own randomness (momenta, directions,
/// acceptance): xoshiro256++ seeded by splitmix64.
#[derive(Clone, Debug)]
pub struct Rng([u64; 4]);

impl Rng {
    /// Seeds from a 64-bit value.
    pub fn new(seed: u64) -> Rng {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform on [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Potential energy and gradient.
pub trait GradFn {
    /// `(U(z), dU/dz)`.
    fn eval(&self, z: &[f64]) -> Result<(f64, Vec<f64>)>;
}
impl GradFn for crate::potential::Potential {
    fn eval(&self, z: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.value_and_grad(z)
    }
}
impl<F: Fn(&[f64]) -> Result<(f64, Vec<f64>)>> GradFn for F {
    fn eval(&self, z: &[f64]) -> Result<(f64, Vec<f64>)> {
        self(z)
    }
}

/// A point of phase space with its cached potential and gradient.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position.
    pub z: Vec<f64>,
    /// Momentum.
    pub r: Vec<f64>,
    /// Potential energy at `z`.
    pub pe: f64,
    /// Gradient of the potential at `z`.
    pub grad: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Velocity `M^-1 r`. The inverse mass matrix is either its diagonal (length d) or the
/// full matrix row-major (length d*d); every kernel function takes it in either form.
pub fn velocity(r: &[f64], inv_mass: &[f64]) -> Vec<f64> {
    let d = r.len();
    if inv_mass.len() == d {
        r.iter().zip(inv_mass).map(|(r, m)| r * m).collect()
    } else {
        (0..d)
            .map(|i| dot(&inv_mass[i * d..(i + 1) * d], r))
            .collect()
    }
}

/// Kinetic energy `r^T M^-1 r / 2` (diagonal or dense inverse mass matrix).
pub fn kinetic(r: &[f64], inv_mass: &[f64]) -> f64 {
    0.5 * dot(r, &velocity(r, inv_mass))
}

/// Lower Cholesky factor of a symmetric positive definite row-major `d x d` matrix, or
/// `None` when it is not positive definite.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// One velocity-Verlet (leapfrog) step of size `eps` (negative = backward in time).
pub fn leapfrog(p: &Point, eps: f64, inv_mass: &[f64], f: &dyn GradFn) -> Result<Point> {
    let n = p.z.len();
    let mut r = Vec::with_capacity(n);
    let mut z = Vec::with_capacity(n);
    for i in 0..n {
        r.push(p.r[i] - 0.5 * eps * p.grad[i]);
    }
    let v = velocity(&r, inv_mass);
    for i in 0..n {
        z.push(p.z[i] + eps * v[i]);
    }
    let (pe, grad) = f.eval(&z)?;
    for i in 0..n {
        r[i] -= 0.5 * eps * grad[i];
    }
    Ok(Point { z, r, pe, grad })
}

/// Statistics of one transition.
#[derive(Clone, Debug, Default)]
pub struct TransitionInfo {
    /// Mean Metropolis acceptance probability over the trajectory (what step-size
    /// adaptation targets).
    pub accept_prob: f64,
    /// Whether the trajectory diverged (energy error above the threshold).
    pub diverging: bool,
    /// Tree depth reached (NUTS; 0 for HMC).
    pub tree_depth: usize,
    /// Number of leapfrog steps (gradient evaluations).
    pub num_steps: usize,
    /// Potential energy of the returned state.
    pub potential_energy: f64,
}

/// A momentum draw from `N(0, M)`.
fn momentum(rng: &mut Rng, inv_mass: &[f64], d: usize) -> Vec<f64> {
    if inv_mass.len() == d {
        return inv_mass.iter().map(|m| rng.normal() / m.sqrt()).collect();
    }
    // With M^-1 = L L^T, r = L^-T xi has covariance L^-T L^-1 = M.
    let xi: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let Some(l) = cholesky(inv_mass, d) else {
        // Not positive definite (cannot come from the regularized warmup estimate): fall
        // back to its diagonal.
        return (0..d)
            .map(|i| xi[i] / inv_mass[i * d + i].abs().sqrt())
            .collect();
    };
    let mut r = vec![0.0; d];
    for i in (0..d).rev() {
        let mut s = xi[i];
        for k in i + 1..d {
            s -= l[k * d + i] * r[k];
        }
        r[i] = s / l[i * d + i];
    }
    r
}

fn logaddexp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Fixed-length HMC: `num_steps` leapfrog steps then a Metropolis correction.
pub fn hmc_step(
    cur: &Point,
    eps: f64,
    num_steps: usize,
    inv_mass: &[f64],
    f: &dyn GradFn,
    rng: &mut Rng,
    max_delta_energy: f64,
) -> Result<(Point, TransitionInfo)> {
    let mut p = cur.clone();
    p.r = momentum(rng, inv_mass, cur.z.len());
    let h0 = p.pe + kinetic(&p.r, inv_mass);
    let mut q = p.clone();
    let mut diverging = false;
    for _ in 0..num_steps.max(1) {
        q = leapfrog(&q, eps, inv_mass, f)?;
        let h = q.pe + kinetic(&q.r, inv_mass);
        if !h.is_finite() || h - h0 > max_delta_energy {
            diverging = true;
            break;
        }
    }
    let h1 = q.pe + kinetic(&q.r, inv_mass);
    let d = h0 - h1;
    let accept_prob = if d.is_nan() || diverging {
        0.0
    } else {
        d.exp().min(1.0)
    };
    let next = if rng.uniform() < accept_prob { q } else { p };
    let info = TransitionInfo {
        accept_prob,
        diverging,
        tree_depth: 0,
        num_steps: num_steps.max(1),
        potential_energy: next.pe,
    };
    Ok((next, info))
}

struct Nuts<'a> {
    f: &'a dyn GradFn,
    inv_mass: &'a [f64],
    eps: f64,
    h0: f64,
    max_delta: f64,
    n_leapfrog: usize,
    sum_metro: f64,
    divergent: bool,
}

/// The state a subtree build leaves behind.
struct Sub {
    /// The far end (in the build direction).
    end: Point,
    /// The proposal sampled from the subtree.
    prop: Point,
    /// Velocity `M^-1 r` at the near and far ends.
    p_sharp_beg: Vec<f64>,
    p_sharp_end: Vec<f64>,
    /// Momenta at the near and far ends.
    p_beg: Vec<f64>,
    p_end: Vec<f64>,
    rho: Vec<f64>,
    log_sum_w: f64,
}

impl Nuts<'_> {
    fn sharp(&self, r: &[f64]) -> Vec<f64> {
        velocity(r, self.inv_mass)
    }
    fn criterion(a: &[f64], b: &[f64], rho: &[f64]) -> bool {
        dot(a, rho) > 0.0 && dot(b, rho) > 0.0
    }

    /// Builds a subtree of `2^depth` leapfrog steps from `start` in direction `sign`.
    /// Returns `None` when it diverged or made a U-turn (the caller stops there).
    fn build(
        &mut self,
        depth: usize,
        start: &Point,
        sign: f64,
        rng: &mut Rng,
    ) -> Result<Option<Sub>> {
        if depth == 0 {
            let q = leapfrog(start, sign * self.eps, self.inv_mass, self.f)?;
            self.n_leapfrog += 1;
            let mut h = q.pe + kinetic(&q.r, self.inv_mass);
            if h.is_nan() {
                h = f64::INFINITY;
            }
            if h - self.h0 > self.max_delta {
                self.divergent = true;
            }
            let lw = self.h0 - h;
            self.sum_metro += if lw > 0.0 { 1.0 } else { lw.exp() };
            if self.divergent {
                return Ok(None);
            }
            let ps = self.sharp(&q.r);
            return Ok(Some(Sub {
                p_sharp_beg: ps.clone(),
                p_sharp_end: ps,
                p_beg: q.r.clone(),
                p_end: q.r.clone(),
                rho: q.r.clone(),
                log_sum_w: lw,
                prop: q.clone(),
                end: q,
            }));
        }
        let Some(init) = self.build(depth - 1, start, sign, rng)? else {
            return Ok(None);
        };
        let Some(fin) = self.build(depth - 1, &init.end, sign, rng)? else {
            return Ok(None);
        };
        let log_sum_w = logaddexp(init.log_sum_w, fin.log_sum_w);
        // Uniform (multinomial) sampling within a subtree.
        let prop = if rng.uniform() < (fin.log_sum_w - log_sum_w).exp() {
            fin.prop
        } else {
            init.prop
        };
        let rho: Vec<f64> = init.rho.iter().zip(&fin.rho).map(|(a, b)| a + b).collect();
        let mut ok = Self::criterion(&init.p_sharp_beg, &fin.p_sharp_end, &rho);
        let ext: Vec<f64> = init
            .rho
            .iter()
            .zip(&fin.p_beg)
            .map(|(a, b)| a + b)
            .collect();
        ok &= Self::criterion(&init.p_sharp_beg, &fin.p_sharp_beg, &ext);
        let ext: Vec<f64> = fin
            .rho
            .iter()
            .zip(&init.p_end)
            .map(|(a, b)| a + b)
            .collect();
        ok &= Self::criterion(&init.p_sharp_end, &fin.p_sharp_end, &ext);
        if !ok {
            return Ok(None);
        }
        Ok(Some(Sub {
            end: fin.end,
            prop,
            p_sharp_beg: init.p_sharp_beg,
            p_sharp_end: fin.p_sharp_end,
            p_beg: init.p_beg,
            p_end: fin.p_end,
            rho,
            log_sum_w,
        }))
    }
}

/// One NUTS transition from `cur`.
pub fn nuts_step(
    cur: &Point,
    eps: f64,
    max_tree_depth: usize,
    inv_mass: &[f64],
    f: &dyn GradFn,
    rng: &mut Rng,
    max_delta_energy: f64,
) -> Result<(Point, TransitionInfo)> {
    let mut p0 = cur.clone();
    p0.r = momentum(rng, inv_mass, cur.z.len());
    let h0 = p0.pe + kinetic(&p0.r, inv_mass);
    let mut nuts = Nuts {
        f,
        inv_mass,
        eps,
        h0,
        max_delta: max_delta_energy,
        n_leapfrog: 0,
        sum_metro: 0.0,
        divergent: false,
    };
    let ps0 = nuts.sharp(&p0.r);
    // Both ends of the trajectory, with their momenta and velocities.
    let (mut fwd, mut bck) = (p0.clone(), p0.clone());
    let (mut p_sharp_fwd_fwd, mut p_sharp_fwd_bck, mut p_sharp_bck_fwd, mut p_sharp_bck_bck) =
        (ps0.clone(), ps0.clone(), ps0.clone(), ps0);
    let (mut p_fwd_bck, mut p_bck_fwd) = (p0.r.clone(), p0.r.clone());
    let mut rho = p0.r.clone();
    let mut log_sum_w = 0.0;
    let mut sample = p0;
    let mut depth = 0;
    while depth < max_tree_depth {
        let forward = rng.uniform() > 0.5;
        let (start, sign) = if forward { (&fwd, 1.0) } else { (&bck, -1.0) };
        let start = start.clone();
        let Some(sub) = nuts.build(depth, &start, sign, rng)? else {
            break;
        };
        depth += 1;
        let (rho_fwd, rho_bck);
        if forward {
            rho_bck = rho.clone();
            rho_fwd = sub.rho.clone();
            p_sharp_fwd_bck = sub.p_sharp_beg.clone();
            p_sharp_fwd_fwd = sub.p_sharp_end.clone();
            p_fwd_bck = sub.p_beg.clone();
            fwd = sub.end.clone();
        } else {
            rho_fwd = rho.clone();
            rho_bck = sub.rho.clone();
            p_sharp_bck_fwd = sub.p_sharp_beg.clone();
            p_sharp_bck_bck = sub.p_sharp_end.clone();
            p_bck_fwd = sub.p_beg.clone();
            bck = sub.end.clone();
        }
        // Biased progressive sampling between the old tree and the new subtree.
        if sub.log_sum_w > log_sum_w || rng.uniform() < (sub.log_sum_w - log_sum_w).exp() {
            sample = sub.prop.clone();
        }
        log_sum_w = logaddexp(log_sum_w, sub.log_sum_w);
        rho = rho_bck.iter().zip(&rho_fwd).map(|(a, b)| a + b).collect();
        let mut ok = Nuts::criterion(&p_sharp_bck_bck, &p_sharp_fwd_fwd, &rho);
        let ext: Vec<f64> = rho_bck.iter().zip(&p_fwd_bck).map(|(a, b)| a + b).collect();
        ok &= Nuts::criterion(&p_sharp_bck_bck, &p_sharp_fwd_bck, &ext);
        let ext: Vec<f64> = rho_fwd.iter().zip(&p_bck_fwd).map(|(a, b)| a + b).collect();
        ok &= Nuts::criterion(&p_sharp_bck_fwd, &p_sharp_fwd_fwd, &ext);
        if !ok {
            break;
        }
    }
    let n = nuts.n_leapfrog.max(1);
    let info = TransitionInfo {
        accept_prob: nuts.sum_metro / n as f64,
        diverging: nuts.divergent,
        tree_depth: depth,
        num_steps: nuts.n_leapfrog,
        potential_energy: sample.pe,
    };
    Ok((sample, info))
}

/// Stan's dual averaging of `log(step size)` toward a target acceptance probability.
#[derive(Clone, Debug)]
pub struct DualAveraging {
    mu: f64,
    s_bar: f64,
    x_bar: f64,
    count: f64,
    target: f64,
}

impl DualAveraging {
    /// Restarts around step size `eps` (shrinkage target `log(10 eps)`).
    pub fn new(eps: f64, target: f64) -> Self {
        DualAveraging {
            mu: (10.0 * eps).ln(),
            s_bar: 0.0,
            x_bar: 0.0,
            count: 0.0,
            target,
        }
    }
    /// Feeds one acceptance probability; returns the next step size.
    pub fn update(&mut self, accept_prob: f64) -> f64 {
        const GAMMA: f64 = 0.05;
        const T0: f64 = 10.0;
        const KAPPA: f64 = 0.75;
        let a = if accept_prob.is_finite() {
            accept_prob.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.count += 1.0;
        let eta = 1.0 / (self.count + T0);
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - a);
        let x = self.mu - self.s_bar * self.count.sqrt() / GAMMA;
        let w = self.count.powf(-KAPPA);
        self.x_bar = w * x + (1.0 - w) * self.x_bar;
        x.exp()
    }
    /// The averaged step size (used after warmup).
    pub fn final_step_size(&self) -> f64 {
        self.x_bar.exp()
    }
}

/// Stan's heuristic initial step size: doubles or halves until the one-step acceptance
/// probability crosses 0.8.
pub fn find_reasonable_step_size(
    cur: &Point,
    inv_mass: &[f64],
    f: &dyn GradFn,
    rng: &mut Rng,
    eps0: f64,
) -> Result<f64> {
    let mut eps = eps0;
    let mut p = cur.clone();
    p.r = momentum(rng, inv_mass, cur.z.len());
    let h0 = p.pe + kinetic(&p.r, inv_mass);
    let mut direction = 0.0;
    for _ in 0..100 {
        let q = leapfrog(&p, eps, inv_mass, f)?;
        let h = q.pe + kinetic(&q.r, inv_mass);
        let d = if h.is_nan() {
            f64::NEG_INFINITY
        } else {
            h0 - h
        };
        let dir = if d > (0.8f64).ln() { 1.0 } else { -1.0 };
        if direction == 0.0 {
            direction = dir;
        }
        if dir != direction {
            break;
        }
        let next = if direction > 0.0 {
            eps * 2.0
        } else {
            eps * 0.5
        };
        if !(1e-12..=1e7).contains(&next) {
            break;
        }
        eps = next;
    }
    Ok(eps)
}

/// Welford's running mean and variance per coordinate.
#[derive(Clone, Debug)]
pub struct Welford {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}
impl Welford {
    /// Empty, for `d` coordinates.
    pub fn new(d: usize) -> Self {
        Welford {
            n: 0.0,
            mean: vec![0.0; d],
            m2: vec![0.0; d],
        }
    }
    /// Adds a draw.
    pub fn push(&mut self, x: &[f64]) {
        self.n += 1.0;
        for i in 0..x.len() {
            let d = x[i] - self.mean[i];
            self.mean[i] += d / self.n;
            self.m2[i] += d * (x[i] - self.mean[i]);
        }
    }
    /// Stan's regularized variance: shrunk toward 1e-3 with weight 5 / (n + 5).
    pub fn regularized_variance(&self) -> Vec<f64> {
        let n = self.n;
        self.m2
            .iter()
            .map(|m| {
                let v = if n > 1.0 { m / (n - 1.0) } else { 1.0 };
                (n / (n + 5.0)) * v + 1e-3 * (5.0 / (n + 5.0))
            })
            .collect()
    }
}

/// Welford's running mean and full covariance (for a dense mass matrix).
#[derive(Clone, Debug)]
pub struct WelfordCov {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}
impl WelfordCov {
    /// Empty, for `d` coordinates.
    pub fn new(d: usize) -> Self {
        WelfordCov {
            n: 0.0,
            mean: vec![0.0; d],
            m2: vec![0.0; d * d],
        }
    }
    /// Adds a draw.
    pub fn push(&mut self, x: &[f64]) {
        let d = x.len();
        self.n += 1.0;
        let before: Vec<f64> = x.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        for i in 0..d {
            self.mean[i] += before[i] / self.n;
        }
        for i in 0..d {
            let after = x[i] - self.mean[i];
            for j in 0..d {
                self.m2[i * d + j] += after * before[j];
            }
        }
    }
    /// Stan's regularized covariance, row-major: `n/(n+5) cov + 1e-3 * 5/(n+5) I`.
    pub fn regularized_covariance(&self) -> Vec<f64> {
        let n = self.n;
        let d = self.mean.len();
        let mut c = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                let v = if n > 1.0 {
                    self.m2[i * d + j] / (n - 1.0)
                } else if i == j {
                    1.0
                } else {
                    0.0
                };
                c[i * d + j] = (n / (n + 5.0)) * v;
            }
            c[i * d + i] += 1e-3 * (5.0 / (n + 5.0));
        }
        // Symmetrize the round-off of the one-sided update.
        for i in 0..d {
            for j in 0..i {
                let m = 0.5 * (c[i * d + j] + c[j * d + i]);
                c[i * d + j] = m;
                c[j * d + i] = m;
            }
        }
        c
    }
}

/// Stan's warmup schedule: the iterations (0-based, inclusive end) at which each slow
/// (mass-matrix) window ends. Fast initial buffer 75, terminal buffer 50, first window 25,
/// doubling; scaled down (15% / 10%) for short warmups as Stan does.
pub fn adaptation_windows(num_warmup: usize) -> (usize, usize, Vec<usize>) {
    let (mut init, mut term, mut base) = (75usize, 50usize, 25usize);
    if num_warmup < 20 {
        return (num_warmup, 0, Vec::new());
    }
    if init + base + term > num_warmup {
        init = (0.15 * num_warmup as f64) as usize;
        term = (0.1 * num_warmup as f64) as usize;
        base = num_warmup - init - term;
    }
    let end_slow = num_warmup - term;
    let mut ends = Vec::new();
    let mut start = init;
    let mut size = base;
    while start < end_slow {
        let mut end = start + size;
        // A window that would leave less than twice the next one's size absorbs the rest.
        if end + 2 * size > end_slow {
            end = end_slow;
        }
        ends.push(end - 1);
        start = end;
        size *= 2;
    }
    (init, term, ends)
}
