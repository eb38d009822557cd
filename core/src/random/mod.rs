//! Pseudo-random numbers, bit-compatible with `jax.random` (threefry2x32, the partitionable
//! counter layout JAX uses by default): a [`Key`] is split or folded into new keys, and the
//! samplers turn a key into tensors.
//!
//! Every function that consumes a key goes through a primitive ([`crate::prim::random`]), so
//! the same code works on a traced key inside a staged function.
//!
//! ```
//! use ferrax_core::random::{self, Key};
//! use ferrax_core::C;
//! # fn main() -> ferrax_core::Result<()> {
//! let key = Key::new(0);
//! // jax.random.uniform(jax.random.PRNGKey(0), (8,))[0]
//! let u = key.uniform::<(C<8>,), f32>()?;
//! assert_eq!(u.to_vec()?[0], 0.947667);
//! let (_k1, k2) = key.split2()?;
//! let z = random::normal::<_, f32>(&k2, (C::<2>, C::<3>))?;
//! assert_eq!(z.dims(), &[2, 3]);
//! # Ok(())
//! # }
//! ```

pub(crate) mod kernels;
pub mod math;
pub(crate) mod threefry;

pub use kernels::Layout;
pub use threefry::threefry2x32;

use crate::array::Array;
use crate::dim::{Dim, C};
use crate::dtype::{DType, Elem, Float, Int};
use crate::error::{Error, Result};
use crate::prim::broadcast_in_dim::broadcast_to;
use crate::prim::random::{random_bits, random_fold_in, random_sample, random_split, Dist};
use crate::shape::{Shape, StaticShape};
use crate::tensor::Tensor;
use crate::tree::{Path, Tree};
use std::cell::Cell;
use std::fmt;

thread_local! {
    static LAYOUT: Cell<Layout> = const { Cell::new(Layout::Partitionable) };
}

/// The threefry counter layout used by random ops bound on this thread.
pub fn threefry_layout() -> Layout {
    LAYOUT.with(|c| c.get())
}

/// Runs `f` with `jax_threefry_partitionable` set to `on` on this thread (`true` is the
/// default and JAX's). The layout is fixed into each primitive when it is bound, so a staged
/// function keeps the layout it was traced with. With `false`, only 32-bit draws (f32
/// samplers, `u32` bits, i32/u32 `randint`, keys) are implemented; others return an error.
pub fn with_threefry_partitionable<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let new = if on {
        Layout::Partitionable
    } else {
        Layout::Legacy
    };
    let prev = LAYOUT.with(|c| c.replace(new));
    struct Restore(Layout);
    impl Drop for Restore {
        fn drop(&mut self) {
            LAYOUT.with(|c| c.set(self.0));
        }
    }
    let _r = Restore(prev);
    f()
}

/// A PRNG key: two `u32` words of threefry2x32 key data (what `jax.random.PRNGKey` holds).
/// Keys are values: splitting or folding makes new keys and never changes this one.
#[derive(Clone)]
pub struct Key {
    data: Tensor<(C<2>,), u32>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.data() {
            Ok([a, b]) => write!(f, "Key([{a:#010x}, {b:#010x}])"),
            Err(_) => write!(f, "Key(traced)"),
        }
    }
}

impl Key {
    /// `jax.random.PRNGKey(seed)`: key data `[seed >> 32, seed & 0xFFFFFFFF]`.
    ///
    /// A negative Python seed `s` in JAX's default 32-bit mode matches
    /// `Key::new(s as u32 as u64)`; with x64 enabled it matches `Key::new(s as u64)`.
    ///
    /// ```
    /// use ferrax_core::random::Key;
    /// assert_eq!(Key::new(42).data().unwrap(), [0, 42]);
    /// ```
    pub fn new(seed: u64) -> Key {
        Key::from_data([(seed >> 32) as u32, seed as u32])
    }
    /// A key from its raw data (`jax.random.wrap_key_data`).
    pub fn from_data(data: [u32; 2]) -> Key {
        Key {
            data: Tensor::from_array_unchecked(
                Array::from_vec(vec![2], data.to_vec()).expect("two elements"),
            ),
        }
    }
    /// A key from a `u32[2]` tensor (possibly a tracer).
    pub fn from_tensor(data: Tensor<(C<2>,), u32>) -> Key {
        Key { data }
    }
    /// A key from an untyped `u32[2]` array (possibly a tracer); errors on another type.
    pub fn from_array(a: Array) -> Result<Key> {
        if a.dtype() != DType::U32 || a.shape() != [2] {
            return Err(Error::shape(
                "Key::from_array",
                format!("a PRNG key is u32[2], got {}", a.aval()),
            ));
        }
        Ok(Key {
            data: Tensor::from_array_unchecked(a),
        })
    }
    /// The key data as a tensor.
    pub fn tensor(&self) -> &Tensor<(C<2>,), u32> {
        &self.data
    }
    /// The key data as an untyped array.
    pub fn array(&self) -> &Array {
        self.data.array()
    }
    /// The two key words (`jax.random.key_data`). Errors inside a staged function.
    pub fn data(&self) -> Result<[u32; 2]> {
        let v = self.data.to_vec()?;
        Ok([v[0], v[1]])
    }
    /// `jax.random.split(key, n)`: `n` new, independent keys.
    ///
    /// ```
    /// use ferrax_core::random::Key;
    /// let ks = Key::new(0).split(4).unwrap();
    /// assert_eq!(ks[1].data().unwrap(), [928981903, 3453687069]);
    /// ```
    pub fn split(&self, n: usize) -> Result<Vec<Key>> {
        Ok(random_split(self.array(), n)?
            .into_iter()
            .map(|a| Key {
                data: Tensor::from_array_unchecked(a),
            })
            .collect())
    }
    /// `split(key)` into two keys, the usual `key, subkey = jax.random.split(key)`.
    pub fn split2(&self) -> Result<(Key, Key)> {
        let mut ks = self.split(2)?;
        let b = ks.pop().expect("two keys");
        let a = ks.pop().expect("two keys");
        Ok((a, b))
    }
    /// `jax.random.fold_in(key, data)`: a new key mixing in `data` (a step count, a
    /// device index). A negative `i32` folds in as `d as u32`, as in JAX.
    pub fn fold_in(&self, data: u32) -> Result<Key> {
        self.fold_in_tensor(&Tensor::scalar(data))
    }
    /// [`Key::fold_in`] with the data as a (possibly traced) `u32` scalar tensor.
    pub fn fold_in_tensor(&self, data: &Tensor<(), u32>) -> Result<Key> {
        Ok(Key {
            data: Tensor::from_array_unchecked(random_fold_in(self.array(), data.array())?),
        })
    }
    /// Uniform `[0, 1)` draws of a static shape: `key.uniform::<(C<3>, C<4>), f32>()`.
    pub fn uniform<S: StaticShape, E: Float>(&self) -> Result<Tensor<S, E>> {
        uniform(self, S::default(), 0.0, 1.0)
    }
    /// Standard normal draws of a static shape.
    pub fn normal<S: StaticShape, E: Float>(&self) -> Result<Tensor<S, E>> {
        normal(self, S::default())
    }
    /// 32 random bits per element of a static shape.
    pub fn bits<S: StaticShape>(&self) -> Result<Tensor<S, u32>> {
        random_bits32(self, S::default())
    }
}

impl Tree for Key {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        self.data.visit(path, f)
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(Key {
            data: self.data.rebuild(path, f)?,
        })
    }
}

fn sample<S: Shape, E: Elem>(
    key: &Key,
    dist: Dist,
    shape: &S,
    params: &[&Array],
) -> Result<Tensor<S, E>> {
    let a = random_sample(key.array(), dist, &shape.dims(), E::DTYPE, params)?;
    Ok(Tensor::from_array_unchecked(a))
}

/// `jax.random.bits(key, shape, uint32)`: 32 random bits per element.
pub fn random_bits32<S: Shape>(key: &Key, shape: S) -> Result<Tensor<S, u32>> {
    Ok(Tensor::from_array_unchecked(random_bits(
        key.array(),
        &shape.dims(),
        32,
    )?))
}

/// `jax.random.bits(key, shape, uint64)` (x64): 64 random bits per element, stored as
/// `i64` bit patterns (read them back with `as u64`).
pub fn random_bits64<S: Shape>(key: &Key, shape: S) -> Result<Tensor<S, i64>> {
    Ok(Tensor::from_array_unchecked(random_bits(
        key.array(),
        &shape.dims(),
        64,
    )?))
}

/// `jax.random.uniform(key, shape, dtype, min, max)`: uniform on `[min, max)`.
///
/// The bounds are rounded to `E` first, as in JAX. f32 results equal JAX's bit for bit.
pub fn uniform<S: Shape, E: Float>(
    key: &Key,
    shape: S,
    min: f64,
    max: f64,
) -> Result<Tensor<S, E>> {
    sample(key, Dist::Uniform { min, max }, &shape, &[])
}

/// `jax.random.normal(key, shape, dtype)`: standard normal draws (`sqrt(2) * erfinv(u)`
/// with XLA's erfinv; equal to JAX's to within an ulp or two).
pub fn normal<S: Shape, E: Float>(key: &Key, shape: S) -> Result<Tensor<S, E>> {
    sample(key, Dist::Normal, &shape, &[])
}

/// `jax.random.truncated_normal(key, lower, upper, shape)`: standard normal draws
/// restricted to the open interval `(lower, upper)` (infinite bounds allowed).
pub fn truncated_normal<S: Shape, E: Float>(
    key: &Key,
    shape: S,
    lower: f64,
    upper: f64,
) -> Result<Tensor<S, E>> {
    if lower.is_nan() || upper.is_nan() || lower >= upper {
        return Err(Error::invalid(
            "truncated_normal",
            format!("needs lower < upper, got lower={lower}, upper={upper}"),
        ));
    }
    sample(key, Dist::TruncatedNormal { lower, upper }, &shape, &[])
}

/// `jax.random.exponential(key, shape)`: rate-1 exponential draws.
pub fn exponential<S: Shape, E: Float>(key: &Key, shape: S) -> Result<Tensor<S, E>> {
    sample(key, Dist::Exponential, &shape, &[])
}

/// `jax.random.gumbel(key, shape)`: standard Gumbel draws.
pub fn gumbel<S: Shape, E: Float>(key: &Key, shape: S) -> Result<Tensor<S, E>> {
    sample(key, Dist::Gumbel, &shape, &[])
}

fn check_prob(op: &'static str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(
            op,
            format!("probability must be in [0, 1], got {p}"),
        ));
    }
    Ok(())
}

/// `jax.random.bernoulli(key, p, shape)` with an f32 probability: `true` with probability
/// `p` (what dropout masks are made of).
pub fn bernoulli<S: Shape>(key: &Key, p: f64, shape: S) -> Result<Tensor<S, bool>> {
    check_prob("bernoulli", p)?;
    let p = Array::scalar(p as f32);
    sample(key, Dist::Bernoulli, &shape, &[&p])
}

/// `jax.random.bernoulli(key, p, shape)` with per-element probabilities, broadcast
/// (numpy-style, right-aligned) to `shape`; the draws use `p`'s float type.
pub fn bernoulli_tensor<S: Shape, Sp: Shape, E: Float>(
    key: &Key,
    p: &Tensor<Sp, E>,
    shape: S,
) -> Result<Tensor<S, bool>> {
    let p = broadcast_to(p.array(), &shape.dims())?;
    sample(key, Dist::Bernoulli, &shape, &[&p])
}

/// `jax.random.randint(key, shape, min, max, dtype)`: integers uniform on `[min, max)`
/// (bounds clipped to `E`'s range; `max <= min` gives `min`). Bit-equal to JAX.
pub fn randint<S: Shape, E: Int>(key: &Key, shape: S, min: i64, max: i64) -> Result<Tensor<S, E>> {
    sample(key, Dist::RandInt { min, max }, &shape, &[])
}

/// `jax.random.permutation(key, n)`: a random ordering of `0..n`.
///
/// ```
/// use ferrax_core::random::{permutation, Key};
/// use ferrax_core::C;
/// let p = permutation(&Key::new(0), C::<10>).unwrap();
/// assert_eq!(p.to_vec().unwrap(), vec![0, 1, 8, 5, 6, 4, 3, 2, 7, 9]);
/// ```
pub fn permutation<D: Dim>(key: &Key, n: D) -> Result<Tensor<(D,), i32>> {
    let len = n.size();
    if len > i32::MAX as usize {
        return Err(Error::invalid(
            "permutation",
            format!("length {len} does not fit the i32 indices"),
        ));
    }
    let x = Array::from_vec(vec![len], (0..len as i32).collect::<Vec<_>>())?;
    sample(key, Dist::Permutation, &(n,), &[&x])
}

/// `jax.random.permutation(key, x)`: `x` with its rows (axis 0) in random order, the same
/// order `permutation(key, rows)` gives.
pub fn permutation_of<S: Shape, E: Elem>(key: &Key, x: &Tensor<S, E>) -> Result<Tensor<S, E>> {
    if S::RANK == 0 {
        return Err(Error::shape(
            "permutation",
            "cannot permute a rank-0 tensor",
        ));
    }
    sample(key, Dist::Permutation, &x.shape(), &[x.array()])
}

/// `jax.random.categorical(key, logits, shape=shape)`: category indices drawn with
/// probabilities `softmax(logits)` over the last axis (the Gumbel-max trick).
///
/// `logits` has shape `batch ++ [k]`; `shape` must end with `batch` (extra leading axes
/// draw repeatedly from the same rows), e.g. logits `(B, K)` with `shape = (B,)`, or logits
/// `(K,)` with `shape = (N,)` for `N` draws.
pub fn categorical<S: Shape, L: Shape, E: Float>(
    key: &Key,
    logits: &Tensor<L, E>,
    shape: S,
) -> Result<Tensor<S, i32>> {
    sample(key, Dist::Categorical, &shape, &[logits.array()])
}

fn broadcast_param(op: &'static str, name: &str, a: &Array, shape: &[usize]) -> Result<Array> {
    broadcast_to(a, shape).map_err(|e| {
        Error::shape(
            op,
            format!(
                "{name} of shape {:?} does not broadcast to {shape:?}: {e}",
                a.shape()
            ),
        )
    })
}

/// `jax.random.gamma(key, alpha, shape)`: Gamma(alpha, 1) draws; `alpha` broadcasts to
/// `shape`. Same algorithm and key use as JAX (Marsaglia–Tsang).
pub fn gamma<S: Shape, Sa: Shape, E: Float>(
    key: &Key,
    alpha: &Tensor<Sa, E>,
    shape: S,
) -> Result<Tensor<S, E>> {
    let a = broadcast_param("gamma", "alpha", alpha.array(), &shape.dims())?;
    sample(key, Dist::Gamma { log_space: false }, &shape, &[&a])
}

/// `jax.random.loggamma(key, alpha, shape)`: the log of Gamma(alpha, 1) draws, accurate
/// for tiny `alpha` where the draws themselves underflow.
pub fn loggamma<S: Shape, Sa: Shape, E: Float>(
    key: &Key,
    alpha: &Tensor<Sa, E>,
    shape: S,
) -> Result<Tensor<S, E>> {
    let a = broadcast_param("loggamma", "alpha", alpha.array(), &shape.dims())?;
    sample(key, Dist::Gamma { log_space: true }, &shape, &[&a])
}

/// `jax.random.beta(key, a, b, shape)`: Beta(a, b) draws; `a` and `b` broadcast to `shape`.
pub fn beta<S: Shape, Sa: Shape, Sb: Shape, E: Float>(
    key: &Key,
    a: &Tensor<Sa, E>,
    b: &Tensor<Sb, E>,
    shape: S,
) -> Result<Tensor<S, E>> {
    let dims = shape.dims();
    let a = broadcast_param("beta", "a", a.array(), &dims)?;
    let b = broadcast_param("beta", "b", b.array(), &dims)?;
    sample(key, Dist::Beta, &shape, &[&a, &b])
}

/// `jax.random.dirichlet(key, alpha, shape[:-1])`: Dirichlet(alpha) draws over the last
/// axis. Here `shape` names the whole output, categories last: `alpha` of shape
/// `(..., K)` broadcasts to it (e.g. alpha `(K,)` with `shape = (N, K)` for `N` draws).
pub fn dirichlet<S: Shape, Sa: Shape, E: Float>(
    key: &Key,
    alpha: &Tensor<Sa, E>,
    shape: S,
) -> Result<Tensor<S, E>> {
    let dims = shape.dims();
    if dims.is_empty() {
        return Err(Error::shape(
            "dirichlet",
            "the output needs a category axis, got shape ()",
        ));
    }
    let a = broadcast_param("dirichlet", "alpha", alpha.array(), &dims)?;
    sample(key, Dist::Dirichlet, &shape, &[&a])
}
