//! The Threefry-2x32 block cipher (Random123, 20 rounds) and the counter layouts
//! `jax.random` feeds it, for the host kernels of the random primitives.
//!
//! Every output element is a pure function of (key, counter), so filling a buffer in
//! parallel chunks gives the same bits whatever the thread count.

use rayon::prelude::*;

/// Below this many elements a fill runs on the calling thread.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;
/// Elements per parallel task; fixed so the split never depends on the pool size.
const CHUNK: usize = 1 << 14;

/// Threefry-2x32 with 20 rounds: encrypts the counter `(x0, x1)` under `key`.
///
/// This is `jax.random`'s `threefry2x32`; every bit `ferrax` draws comes from it.
///
/// ```
/// use ferrax_core::random::threefry2x32;
/// // split(PRNGKey(0))[0] is threefry((0, 0), (0, 0)).
/// assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
/// ```
#[inline(always)]
pub fn threefry2x32(key: [u32; 2], x: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], key[0] ^ key[1] ^ 0x1BD1_1BDA];
    let mut x0 = x[0].wrapping_add(ks[0]);
    let mut x1 = x[1].wrapping_add(ks[1]);
    macro_rules! round {
        ($r:expr) => {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left($r);
            x1 ^= x0;
        };
    }
    macro_rules! four {
        ($a:expr, $b:expr, $c:expr, $d:expr, $i:expr) => {
            round!($a);
            round!($b);
            round!($c);
            round!($d);
            x0 = x0.wrapping_add(ks[($i + 1) % 3]);
            x1 = x1.wrapping_add(ks[($i + 2) % 3].wrapping_add($i + 1));
        };
    }
    four!(13, 15, 26, 6, 0);
    four!(17, 29, 16, 24, 1);
    four!(13, 15, 26, 6, 2);
    four!(17, 29, 16, 24, 3);
    four!(13, 15, 26, 6, 4);
    [x0, x1]
}

/// The partitionable counter for linear index `i`: `(hi32(i), lo32(i))`.
#[inline(always)]
pub(crate) fn counter(i: u64) -> [u32; 2] {
    [(i >> 32) as u32, i as u32]
}

/// Block `i` of the partitionable stream of `key`.
#[inline(always)]
pub(crate) fn block(key: [u32; 2], i: u64) -> [u32; 2] {
    threefry2x32(key, counter(i))
}

/// 32 random bits at linear index `i` (`x0 ^ x1` of block `i`).
#[inline(always)]
pub(crate) fn bits32(key: [u32; 2], i: u64) -> u32 {
    let [a, b] = block(key, i);
    a ^ b
}

/// 64 random bits at linear index `i` (`x0 << 32 | x1` of block `i`).
#[inline(always)]
pub(crate) fn bits64(key: [u32; 2], i: u64) -> u64 {
    let [a, b] = block(key, i);
    ((a as u64) << 32) | b as u64
}

/// Key `i` of `split(key, n)` (partitionable): block `i` itself.
#[inline(always)]
pub(crate) fn split_at(key: [u32; 2], i: u64) -> [u32; 2] {
    block(key, i)
}

/// `fold_in(key, d)`: the block at counter `(0, d)`.
#[inline(always)]
pub(crate) fn fold_in(key: [u32; 2], d: u32) -> [u32; 2] {
    threefry2x32(key, [0, d])
}

/// Fills `out[i] = f(i)`, in fixed-size parallel chunks above [`PAR_THRESHOLD`].
pub(crate) fn fill_indexed<T: Send>(out: &mut [T], f: impl Fn(usize) -> T + Sync) {
    if out.len() < PAR_THRESHOLD {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(i);
        }
        return;
    }
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let base = c * CHUNK;
            for (j, o) in chunk.iter_mut().enumerate() {
                *o = f(base + j);
            }
        });
}

/// A new vector of `n` elements `f(0), ..., f(n-1)`, filled as [`fill_indexed`].
pub(crate) fn collect_indexed<T: Send + Copy + Default>(
    n: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let mut v = vec![T::default(); n];
    fill_indexed(&mut v, f);
    v
}

/// The legacy (`jax_threefry_partitionable=False`) layout of `n` 32-bit words: the
/// counters `iota(n)` (padded to even length) are halved into the two cipher lanes.
pub(crate) fn bits32_legacy(key: [u32; 2], n: usize) -> Vec<u32> {
    let m = n.div_ceil(2);
    let count = |i: usize| if i < n { i as u32 } else { 0 };
    let mut out = vec![0u32; 2 * m];
    let (lo, hi) = out.split_at_mut(m);
    for j in 0..m {
        let [a, b] = threefry2x32(key, [count(j), count(j + m)]);
        lo[j] = a;
        hi[j] = b;
    }
    out.truncate(n);
    out
}
