//! [`Rngs`]: named PRNG streams (`params`, `dropout`, ...) as in Flax NNX. Each stream holds
//! a key and a counter; drawing from it returns `fold_in(key, count)` and increments the
//! counter, so the same seed gives the same keys in the same order.
//!
//! The counter is a `u32` tensor leaf, not a host integer: `Rngs` is a [`Tree`], so a
//! `#[jit]` step can take `&mut Rngs` and each call draws fresh keys (a host counter would
//! be frozen into the staged program at trace time).
//!
//! ```
//! use ferrax_nn::Rngs;
//! use ferrax_core::random::Key;
//! # fn main() -> ferrax_core::Result<()> {
//! let mut rngs = Rngs::new(0).with_stream("dropout", 1);
//! let k0 = rngs.params()?; // no `params` stream: falls back to `default`
//! assert_eq!(k0.data()?, Key::new(0).fold_in(0)?.data()?);
//! let d0 = rngs.dropout()?;
//! assert_eq!(d0.data()?, Key::new(1).fold_in(0)?.data()?);
//! assert_eq!(rngs.params()?.data()?, Key::new(0).fold_in(1)?.data()?);
//! # Ok(())
//! # }
//! ```

use crate::module::{Module, VarKind};
use ferrax_core::random::Key;
use ferrax_core::tree::{Path, PathElem, Tree};
use ferrax_core::{Array, Error, Result, Tensor};

#[derive(Clone, Debug)]
struct Stream {
    name: &'static str,
    key: Key,
    count: Tensor<(), u32>,
}

/// Named PRNG streams. The stream `default` serves every name that has no stream of its
/// own.
#[derive(Clone, Debug)]
pub struct Rngs {
    streams: Vec<Stream>,
}

impl Rngs {
    /// A `default` stream seeded with `seed` (`nnx.Rngs(seed)`).
    pub fn new(seed: u64) -> Rngs {
        Rngs::from_key(Key::new(seed))
    }
    /// A `default` stream from a key.
    pub fn from_key(key: Key) -> Rngs {
        Rngs {
            streams: vec![Stream {
                name: "default",
                key,
                count: Tensor::scalar(0),
            }],
        }
    }
    /// Adds (or replaces) the stream `name` seeded with `seed` (`nnx.Rngs(0, dropout=1)`).
    pub fn with_stream(self, name: &'static str, seed: u64) -> Rngs {
        self.with_stream_key(name, Key::new(seed))
    }
    /// Adds (or replaces) the stream `name` with a key.
    pub fn with_stream_key(mut self, name: &'static str, key: Key) -> Rngs {
        self.streams.retain(|s| s.name != name);
        self.streams.push(Stream {
            name,
            key,
            count: Tensor::scalar(0),
        });
        self
    }
    /// The stream names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.streams.iter().map(|s| s.name).collect()
    }
    /// The next key of stream `name` (or of `default` if there is no such stream):
    /// `fold_in(key, count)`, then the count increments.
    pub fn next(&mut self, name: &str) -> Result<Key> {
        let i = self
            .streams
            .iter()
            .position(|s| s.name == name)
            .or_else(|| self.streams.iter().position(|s| s.name == "default"))
            .ok_or_else(|| {
                Error::invalid(
                    "Rngs::next",
                    format!("no stream `{name}` and no `default` stream"),
                )
            })?;
        let s = &mut self.streams[i];
        let key = s.key.fold_in_tensor(&s.count)?;
        s.count = &s.count + 1u32;
        Ok(key)
    }
    /// The next key of the `params` stream (initializers draw from it).
    pub fn params(&mut self) -> Result<Key> {
        self.next("params")
    }
    /// The next key of the `dropout` stream.
    pub fn dropout(&mut self) -> Result<Key> {
        self.next("dropout")
    }
    /// The next key of the `default` stream.
    pub fn default_key(&mut self) -> Result<Key> {
        self.next("default")
    }
}

impl Tree for Rngs {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        for s in &self.streams {
            path.with(PathElem::Field(s.name), |p| {
                p.with(PathElem::Field("key"), |p| s.key.visit(p, f));
                p.with(PathElem::Field("count"), |p| s.count.visit(p, f));
            });
        }
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let streams = self
            .streams
            .iter()
            .map(|s| {
                path.with(PathElem::Field(s.name), |p| {
                    Ok(Stream {
                        name: s.name,
                        key: p.with(PathElem::Field("key"), |p| s.key.rebuild(p, f))?,
                        count: p.with(PathElem::Field("count"), |p| s.count.rebuild(p, f))?,
                    })
                })
            })
            .collect::<Result<_>>()?;
        Ok(Rngs { streams })
    }
}

/// Streams are state: never trained.
impl Module for Rngs {
    fn visit_vars(
        &self,
        path: &mut Path,
        _: Option<VarKind>,
        f: &mut dyn FnMut(&Path, VarKind, &Array),
    ) {
        self.visit(path, &mut |p, a| f(p, VarKind::State, a))
    }
    fn set_training(&mut self, _: bool) {}
}
