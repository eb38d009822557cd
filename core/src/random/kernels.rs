//! Host kernels of the random primitives: `jax.random`'s sampling algorithms on plain
//! slices, step for step, so that results match JAX bit for bit (or to the ulp where JAX
//! leans on XLA's transcendental functions).
//!
//! Floating samplers run in a compute type `R` (f32 or f64); bf16/f16 compute in f32 and
//! round to the storage type through `q` where JAX rounds (uniform, normal).

use super::math::{erf_f64, erfinv_f32, erfinv_f64};
use super::threefry::{
    bits32, bits32_legacy, bits64, collect_indexed, fill_indexed, split_at, threefry2x32,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use half::{bf16, f16};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Which counter layout the threefry streams use (`jax_threefry_partitionable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `jax_threefry_partitionable=True` (JAX's default): element `i` is block `i`.
    #[default]
    Partitionable,
    /// The older layout: counters `iota(n)` split into the two cipher lanes.
    Legacy,
}

/// `split(key, n)` under `layout`.
pub(crate) fn split_keys(key: [u32; 2], n: usize, layout: Layout) -> Vec<[u32; 2]> {
    match layout {
        Layout::Partitionable => collect_indexed(n, |i| split_at(key, i as u64)),
        Layout::Legacy => {
            let w = bits32_legacy(key, 2 * n);
            (0..n).map(|i| [w[2 * i], w[2 * i + 1]]).collect()
        }
    }
}

/// The first two keys of `split(key, 2)` (the common `key, sub = split(key)`).
pub(crate) fn split2(key: [u32; 2], layout: Layout) -> ([u32; 2], [u32; 2]) {
    match layout {
        Layout::Partitionable => (split_at(key, 0), split_at(key, 1)),
        Layout::Legacy => {
            let k = split_keys(key, 2, layout);
            (k[0], k[1])
        }
    }
}

fn legacy_unsupported(op: &'static str, what: &str) -> Error {
    Error::unsupported(
        op,
        format!("{what} is implemented only for the partitionable threefry layout (JAX's default)"),
    )
}

/// `random_bits(key, 32, shape)` as a vector of `n` words.
pub(crate) fn random_bits32(key: [u32; 2], n: usize, layout: Layout) -> Vec<u32> {
    match layout {
        Layout::Partitionable => collect_indexed(n, |i| bits32(key, i as u64)),
        Layout::Legacy => bits32_legacy(key, n),
    }
}

/// `random_bits(key, 64, shape)`, as i64 bit patterns.
pub(crate) fn random_bits64(key: [u32; 2], n: usize, layout: Layout) -> Result<Vec<i64>> {
    match layout {
        Layout::Partitionable => Ok(collect_indexed(n, |i| bits64(key, i as u64) as i64)),
        Layout::Legacy => Err(legacy_unsupported("random_bits", "64-bit random bits")),
    }
}

/// The compute type of the floating samplers.
pub(crate) trait Real:
    Copy
    + PartialOrd
    + Send
    + Sync
    + Default
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
    fn fma(self, a: Self, b: Self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn erfinv(self) -> Self;
    fn is_nan(self) -> bool;
    fn max(self, o: Self) -> Self;
}

macro_rules! real {
    ($t:ty, $erfinv:expr) => {
        impl Real for $t {
            #[inline]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn fma(self, a: Self, b: Self) -> Self {
                self.mul_add(a, b)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            #[allow(clippy::redundant_closure_call)]
            fn erfinv(self) -> Self {
                ($erfinv)(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline]
            fn max(self, o: Self) -> Self {
                // lax.max propagates NaN.
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else if o > self {
                    o
                } else {
                    self
                }
            }
        }
    };
}
real!(f32, erfinv_f32);
real!(f64, erfinv_f64);

/// The floating storage formats and how each turns random bits into `[0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fmt {
    F32,
    F64,
    BF16,
    F16,
}

impl Fmt {
    pub(crate) fn of(op: &'static str, dt: DType) -> Result<Fmt> {
        Ok(match dt {
            DType::F32 => Fmt::F32,
            DType::F64 => Fmt::F64,
            DType::BF16 => Fmt::BF16,
            DType::F16 => Fmt::F16,
            _ => {
                return Err(Error::dtype(
                    op,
                    format!("needs a floating dtype, got {dt}"),
                ))
            }
        })
    }
    /// Rounds an f64 to this format (returned as f64, exactly).
    pub(crate) fn round(self, x: f64) -> f64 {
        match self {
            Fmt::F32 => x as f32 as f64,
            Fmt::F64 => x,
            Fmt::BF16 => bf16::from_f64(x).to_f64(),
            Fmt::F16 => f16::from_f64(x).to_f64(),
        }
    }
    /// The smallest positive normal number (`finfo.tiny`).
    fn tiny(self) -> f64 {
        match self {
            Fmt::F32 | Fmt::BF16 => f32::MIN_POSITIVE as f64,
            Fmt::F64 => f64::MIN_POSITIVE,
            Fmt::F16 => f16::MIN_POSITIVE.to_f64(),
        }
    }
    /// `nextafter(x, +inf)` (`up`) or `nextafter(x, -inf)` of `x` rounded to this format.
    pub(crate) fn next(self, x: f64, up: bool) -> f64 {
        if x.is_nan() || (x.is_infinite() && (x > 0.0) == up) {
            return x;
        }
        let (bits, width): (u64, u32) = match self {
            Fmt::F32 => ((x as f32).to_bits() as u64, 32),
            Fmt::F64 => (x.to_bits(), 64),
            Fmt::BF16 => (bf16::from_f64(x).to_bits() as u64, 16),
            Fmt::F16 => (f16::from_f64(x).to_bits() as u64, 16),
        };
        // Sign-magnitude bits -> a monotonic integer, step, and back.
        let sign = 1u64 << (width - 1);
        let mag = (bits & (sign - 1)) as i128;
        let ord = if bits & sign != 0 { -mag } else { mag } + if up { 1 } else { -1 };
        let nb = if ord < 0 {
            sign | (-ord) as u64
        } else {
            ord as u64
        };
        match self {
            Fmt::F32 => f32::from_bits(nb as u32) as f64,
            Fmt::F64 => f64::from_bits(nb),
            Fmt::BF16 => bf16::from_bits(nb as u16).to_f64(),
            Fmt::F16 => f16::from_bits(nb as u16).to_f64(),
        }
    }
}

/// A source of `[0, 1)` floats of one format, by element index, from one key.
pub(crate) struct Unit {
    fmt: Fmt,
    key: [u32; 2],
    legacy: Option<Vec<u32>>,
}

impl Unit {
    pub(crate) fn new(
        op: &'static str,
        fmt: Fmt,
        key: [u32; 2],
        n: usize,
        layout: Layout,
    ) -> Result<Unit> {
        let legacy = match (layout, fmt) {
            (Layout::Partitionable, _) => None,
            (Layout::Legacy, Fmt::F32) => Some(bits32_legacy(key, n)),
            (Layout::Legacy, _) => {
                return Err(legacy_unsupported(op, "sampling f64/bf16/f16 values"))
            }
        };
        Ok(Unit { fmt, key, legacy })
    }
    /// The `[0, 1)` value at index `i`, as `jax.random._uniform` builds it: the top
    /// mantissa-many bits under the exponent of 1.0, minus 1.
    #[inline]
    pub(crate) fn get<R: Real>(&self, i: usize) -> R {
        let w32 = || match &self.legacy {
            None => bits32(self.key, i as u64),
            Some(v) => v[i],
        };
        match self.fmt {
            Fmt::F32 => R::of((f32::from_bits((w32() >> 9) | 0x3F80_0000) - 1.0) as f64),
            Fmt::F64 => {
                let b = bits64(self.key, i as u64);
                R::of(f64::from_bits((b >> 12) | 0x3FF0_0000_0000_0000) - 1.0)
            }
            // bf16 has 7 mantissa bits, so JAX draws 8 random bits (the low byte).
            Fmt::BF16 => {
                let h = (((w32() as u8) as u16) >> 1) | 0x3F80;
                R::of(bf16::from_bits(h).to_f64() - 1.0)
            }
            Fmt::F16 => {
                let h = ((w32() as u16) >> 6) | 0x3C00;
                R::of(f16::from_bits(h).to_f64() - 1.0)
            }
        }
    }
}

/// The scalar `[0, 1)` draw of `uniform(key, ())`.
fn unit_scalar<R: Real>(fmt: Fmt, key: [u32; 2], layout: Layout) -> R {
    match layout {
        Layout::Partitionable => Unit {
            fmt,
            key,
            legacy: None,
        }
        .get(0),
        Layout::Legacy => {
            let w = threefry2x32(key, [0, 0])[0];
            Unit {
                fmt,
                key,
                legacy: Some(vec![w]),
            }
            .get(0)
        }
    }
}

/// Parameters of the affine map `uniform` applies, rounded to the sample format as JAX does.
#[derive(Clone, Copy)]
pub(crate) struct Affine<R> {
    lo: R,
    range: R,
}

impl<R: Real> Affine<R> {
    pub(crate) fn new(fmt: Fmt, lo: f64, hi: f64) -> Affine<R> {
        let lo = fmt.round(lo);
        let hi = fmt.round(hi);
        Affine {
            lo: R::of(lo),
            range: R::of(fmt.round(hi - lo)),
        }
    }
    /// `max(lo, f * range + lo)` with the multiply-add fused, as XLA:CPU emits it.
    #[inline]
    pub(crate) fn apply(&self, fmt: Fmt, f: R) -> R {
        self.lo.max(q(fmt, f.fma(self.range, self.lo)))
    }
}

/// Rounds a compute value to the storage format.
#[inline]
fn q<R: Real>(fmt: Fmt, x: R) -> R {
    match fmt {
        Fmt::BF16 | Fmt::F16 => R::of(fmt.round(x.f64())),
        _ => x,
    }
}

/// `sqrt(2) * erfinv(u)` in the sample format.
#[inline]
fn sqrt2_erfinv<R: Real>(fmt: Fmt, u: R) -> R {
    let s = R::of(fmt.round(std::f64::consts::SQRT_2));
    q(fmt, s * q(fmt, u.erfinv()))
}

/// A standard normal draw from a `[0, 1)` value: `sqrt2 * erfinv(uniform(-1+, 1))`.
#[inline]
fn normal_from_unit<R: Real>(fmt: Fmt, aff: &Affine<R>, f: R) -> R {
    sqrt2_erfinv(fmt, aff.apply(fmt, f))
}

fn normal_affine<R: Real>(fmt: Fmt) -> Affine<R> {
    Affine::new(fmt, fmt.next(-1.0, true), 1.0)
}

/// The elementwise floating distributions (one output value per random draw).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Elementwise {
    Uniform { min: f64, max: f64 },
    Normal,
    TruncatedNormal { lower: f64, upper: f64 },
    Exponential,
    Gumbel,
}

/// Samples `n` values of an elementwise distribution.
pub(crate) fn sample_elementwise<R: Real>(
    op: &'static str,
    dist: Elementwise,
    fmt: Fmt,
    key: [u32; 2],
    n: usize,
    layout: Layout,
) -> Result<Vec<R>> {
    let unit = Unit::new(op, fmt, key, n, layout)?;
    Ok(match dist {
        Elementwise::Uniform { min, max } => {
            let aff = Affine::<R>::new(fmt, min, max);
            collect_indexed(n, |i| aff.apply(fmt, unit.get(i)))
        }
        Elementwise::Normal => {
            let aff = normal_affine::<R>(fmt);
            collect_indexed(n, |i| normal_from_unit(fmt, &aff, unit.get(i)))
        }
        Elementwise::TruncatedNormal { lower, upper } => {
            let s2 = fmt.round(std::f64::consts::SQRT_2);
            let (lo, hi) = (fmt.round(lower), fmt.round(upper));
            let a = fmt.round(erf_f64(fmt.round(lo / s2)));
            let b = fmt.round(erf_f64(fmt.round(hi / s2)));
            let aff = Affine::<R>::new(fmt, a, b);
            // Clamped to the open interval, as JAX does, so rounding never lands on a bound.
            let cl = R::of(fmt.next(lo, true));
            let ch = R::of(fmt.next(hi, false));
            collect_indexed(n, |i| {
                let x = sqrt2_erfinv(fmt, aff.apply(fmt, unit.get(i)));
                let x = if x < cl { cl } else { x };
                if x > ch {
                    ch
                } else {
                    x
                }
            })
        }
        Elementwise::Exponential => {
            let aff = Affine::<R>::new(fmt, 0.0, 1.0);
            collect_indexed(n, |i| {
                let u = aff.apply(fmt, unit.get(i));
                q(fmt, -q(fmt, (-u).ln_1p()))
            })
        }
        Elementwise::Gumbel => {
            let aff = Affine::<R>::new(fmt, fmt.tiny(), 1.0);
            collect_indexed(n, |i| gumbel_of(fmt, aff.apply(fmt, unit.get(i))))
        }
    })
}

/// `-log(-log(u))` in the sample format.
#[inline]
fn gumbel_of<R: Real>(fmt: Fmt, u: R) -> R {
    q(fmt, -q(fmt, (-q(fmt, u.ln())).ln()))
}

/// `uniform(key, shape, dtype(p)) < p` for `n` draws, `p` scalar or per element.
pub(crate) fn bernoulli<R: Real>(
    fmt: Fmt,
    key: [u32; 2],
    n: usize,
    p: &[R],
    layout: Layout,
) -> Result<Vec<bool>> {
    let unit = Unit::new("bernoulli", fmt, key, n, layout)?;
    let aff = Affine::<R>::new(fmt, 0.0, 1.0);
    // `p` is either one value for all draws or one per draw.
    Ok(collect_indexed(n, |i| {
        aff.apply(fmt, unit.get(i)) < p[i % p.len()]
    }))
}

/// Gumbel-max over the last axis of `logits` (`batch = logits.len() / k` rows, broadcast
/// over `n / batch` leading repeats): `argmax(gumbel(key, (n, k)) + logits)`.
pub(crate) fn categorical<R: Real>(
    fmt: Fmt,
    key: [u32; 2],
    logits: &[R],
    k: usize,
    n: usize,
    layout: Layout,
) -> Result<Vec<i32>> {
    let unit = Unit::new("categorical", fmt, key, n * k, layout)?;
    let aff = Affine::<R>::new(fmt, fmt.tiny(), 1.0);
    let batch = logits.len() / k.max(1);
    Ok(collect_indexed(n, |o| {
        let row = &logits[(o % batch.max(1)) * k..][..k];
        let mut best = 0usize;
        let mut best_v = R::default();
        for (j, &l) in row.iter().enumerate() {
            let g = gumbel_of(fmt, aff.apply(fmt, unit.get(o * k + j)));
            let v = q(fmt, g + l);
            // jnp.argmax: the first maximum, NaN counting as the largest value.
            let better = j == 0 || (!best_v.is_nan() && (v.is_nan() || v > best_v));
            if better {
                best = j;
                best_v = v;
            }
        }
        best as i32
    }))
}

/// The integer formats `randint` produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntFmt {
    I32,
    U32,
    I64,
}

impl IntFmt {
    fn range(self) -> (i128, i128) {
        match self {
            IntFmt::I32 => (i32::MIN as i128, i32::MAX as i128),
            IntFmt::U32 => (0, u32::MAX as i128),
            IntFmt::I64 => (i64::MIN as i128, i64::MAX as i128),
        }
    }
    fn bits(self) -> u32 {
        match self {
            IntFmt::I64 => 64,
            _ => 32,
        }
    }
}

/// XLA's unsigned remainder: `x % 0 == x`.
#[inline]
fn urem(x: u64, m: u64) -> u64 {
    if m == 0 {
        x
    } else {
        x % m
    }
}

/// `randint(key, shape, min, max)`: two streams of full-width bits combined modulo the span
/// (JAX's construction, wrap-arounds included). Values are returned as i64 in the format's
/// range (u32 values as their unsigned value).
pub(crate) fn randint(
    fmt: IntFmt,
    key: [u32; 2],
    n: usize,
    min: i64,
    max: i64,
    layout: Layout,
) -> Result<Vec<i64>> {
    let (tmin, tmax) = fmt.range();
    let nbits = fmt.bits();
    let mask: u64 = if nbits == 64 {
        u64::MAX
    } else {
        (1u64 << nbits) - 1
    };
    let out_of_range = (max as i128) > tmax;
    let lo = (min as i128).clamp(tmin, tmax);
    let hi = (max as i128).clamp(tmin, tmax);
    // (maxval - minval) in the dtype, wrapping, then reinterpreted as unsigned.
    let mut span = ((hi - lo) as u64) & mask;
    if hi <= lo {
        span = 1;
    }
    if out_of_range && hi > lo {
        span = span.wrapping_add(1) & mask;
    }
    let half = 1u64 << (nbits / 2);
    let mut mult = urem(half, span);
    mult = urem(mult.wrapping_mul(mult) & mask, span);
    let (k1, k2) = split2(key, layout);
    let (hb, lb): (Vec<u64>, Vec<u64>) = if nbits == 64 {
        let h = random_bits64(k1, n, layout)?;
        let l = random_bits64(k2, n, layout)?;
        (
            h.into_iter().map(|x| x as u64).collect(),
            l.into_iter().map(|x| x as u64).collect(),
        )
    } else {
        let h = random_bits32(k1, n, layout);
        let l = random_bits32(k2, n, layout);
        (
            h.into_iter().map(u64::from).collect(),
            l.into_iter().map(u64::from).collect(),
        )
    };
    Ok(collect_indexed(n, |i| {
        let off =
            (urem(hb[i], span).wrapping_mul(mult) & mask).wrapping_add(urem(lb[i], span)) & mask;
        let off = urem(off, span);
        // minval + offset in the dtype, wrapping.
        let v = (lo as u64).wrapping_add(off) & mask;
        match fmt {
            IntFmt::I32 => v as u32 as i32 as i64,
            IntFmt::U32 => v as i64,
            IntFmt::I64 => v as i64,
        }
    }))
}

/// The permutation `jax.random.permutation` applies to `n` rows: repeated stable sorts of
/// the current order by fresh 32-bit keys (enough rounds to make ties unlikely).
pub(crate) fn permutation_indices(key: [u32; 2], n: usize, layout: Layout) -> Vec<usize> {
    let rounds = (3.0 * (n.max(1) as f64).ln() / (u32::MAX as f64).ln()).ceil() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    let mut key = key;
    for _ in 0..rounds {
        let (k, sub) = split2(key, layout);
        key = k;
        let sort_keys = random_bits32(sub, n, layout);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&j| sort_keys[j]);
        idx = order.into_iter().map(|j| idx[j]).collect();
    }
    idx
}

/// One Gamma(alpha) draw (Marsaglia–Tsang, with the `alpha < 1` boost), as JAX's
/// `_gamma_one`: the same key splits, the same rejection loop, so samples match JAX's
/// wherever the transcendental functions agree. `log_space` returns `log` of the sample.
pub(crate) fn gamma_one<R: Real>(
    fmt: Fmt,
    key: [u32; 2],
    alpha: R,
    log_space: bool,
    layout: Layout,
) -> R {
    let zero = R::of(0.0);
    let one = R::of(1.0);
    let third = R::of(1.0 / 3.0);
    let squeeze = R::of(0.0331);
    let half = R::of(0.5);
    let boost = alpha >= one;
    let a = if boost { alpha } else { alpha + one };
    let d = a - third;
    let c = third / d.sqrt();
    let naff = normal_affine::<R>(fmt);
    let (mut key, subkey) = split2(key, layout);
    let (mut x2, mut v3, mut u) = (zero, one, R::of(2.0));
    let reject = |x2: R, v3: R, u: R| {
        u >= one - squeeze * (x2 * x2) && u.ln() >= x2 * half + d * (one - v3 + v3.ln())
    };
    // Bounded only for NaN alpha (every comparison false); a valid alpha accepts with
    // probability > 0.95 per round.
    let mut guard = 0u32;
    while reject(x2, v3, u) && guard < 10_000 {
        guard += 1;
        let (next, mut xkey, ukey) = match layout {
            Layout::Partitionable => (split_at(key, 0), split_at(key, 1), split_at(key, 2)),
            Layout::Legacy => {
                let ks = split_keys(key, 3, layout);
                (ks[0], ks[1], ks[2])
            }
        };
        key = next;
        let (mut x, mut v) = (zero, -one);
        let mut inner = 0u32;
        while v <= zero && inner < 10_000 {
            inner += 1;
            let (k, sub) = split2(xkey, layout);
            xkey = k;
            x = normal_from_unit(fmt, &naff, unit_scalar::<R>(fmt, sub, layout));
            v = one + x * c;
        }
        x2 = x * x;
        v3 = v * v * v;
        u = unit_scalar::<R>(fmt, ukey, layout);
    }
    if log_space {
        // log(U) = -Exponential via log1p(-u), so log-space and direct samples agree.
        let log_u = (-unit_scalar::<R>(fmt, subkey, layout)).ln_1p();
        let log_boost = if boost || log_u == zero {
            zero
        } else {
            log_u * (one / alpha)
        };
        d.ln() + v3.ln() + log_boost
    } else {
        let s = one - unit_scalar::<R>(fmt, subkey, layout);
        let b = if boost { one } else { s.powf(one / alpha) };
        d * v3 * b
    }
}

/// Gamma draws for every element of `alpha`, element `i` from key `split(key, n)[i]`.
pub(crate) fn gamma<R: Real>(
    fmt: Fmt,
    key: [u32; 2],
    alpha: &[R],
    log_space: bool,
    layout: Layout,
) -> Vec<R> {
    let keys = split_keys(key, alpha.len(), layout);
    let mut out = vec![R::default(); alpha.len()];
    fill_indexed(&mut out, |i| {
        gamma_one(fmt, keys[i], alpha[i], log_space, layout)
    });
    out
}

/// `beta(key, a, b)`: the ratio of two log-space gamma draws, scaled by their maximum.
pub(crate) fn beta<R: Real>(fmt: Fmt, key: [u32; 2], a: &[R], b: &[R], layout: Layout) -> Vec<R> {
    let (ka, kb) = split2(key, layout);
    let la = gamma(fmt, ka, a, true, layout);
    let lb = gamma(fmt, kb, b, true, layout);
    collect_indexed(a.len(), |i| {
        let m = la[i].max(lb[i]);
        let ea = (la[i] - m).exp();
        let eb = (lb[i] - m).exp();
        ea / (ea + eb)
    })
}

/// `dirichlet(key, alpha)`: log-space gamma draws, softmax over rows of length `k`.
pub(crate) fn dirichlet<R: Real>(
    fmt: Fmt,
    key: [u32; 2],
    alpha: &[R],
    k: usize,
    layout: Layout,
) -> Vec<R> {
    let mut g = gamma(fmt, key, alpha, true, layout);
    if k == 0 {
        return g;
    }
    for row in g.chunks_mut(k) {
        let m = row.iter().copied().fold(row[0], |a, b| a.max(b));
        let mut s = R::of(0.0);
        for x in row.iter_mut() {
            *x = (*x - m).exp();
            s = s + *x;
        }
        for x in row.iter_mut() {
            *x = *x / s;
        }
    }
    g
}
