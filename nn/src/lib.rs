//! ferrax-nn: Flax-NNX-style modules. A model is a plain struct owning its layers;
//! `#[derive(Module)]` makes it a [`Tree`](ferrax_core::Tree) whose leaves are parameters
//! or state ([`VarKind`]), selectable with [`Filter`]s, switchable between training and
//! evaluation mode, and printable with [`Module::summary`]. Layers ([`Linear`],
//! [`Conv1d`], [`Conv2d`], [`ConvTranspose2d`], [`Embed`], norms, [`Dropout`],
//! [`MultiHeadAttention`] with a [`KvCache`], recurrent cells run by [`Rnn`]) carry their
//! sizes in their types; [`init`] has `jax.nn.initializers`, [`losses`] and
//! [`metrics`] the usual training pieces, [`Rngs`] named PRNG streams.
//!
//! ```
//! # extern crate ferrax_core as ferrax;
//! use ferrax_nn::{losses, Linear, Module, Rngs};
//! use ferrax_core::{ad, Tensor, C};
//!
//! #[derive(Module)]
//! #[module(crate = ferrax_nn)] // not needed through the `ferrax` facade (`ferrax::nn`)
//! struct Mlp {
//!     l1: Linear<4, 8>,
//!     l2: Linear<8, 3>,
//! }
//!
//! impl Mlp {
//!     fn forward(&self, x: &Tensor<(C<2>, C<4>)>) -> Tensor<(C<2>, C<3>)> {
//!         self.l2.forward(&self.l1.forward(x).relu())
//!     }
//! }
//!
//! # fn main() -> ferrax_core::Result<()> {
//! let mut rngs = Rngs::new(0);
//! let model = Mlp { l1: Linear::new(&mut rngs)?, l2: Linear::new(&mut rngs)? };
//! let x = Tensor::<(C<2>, C<4>)>::ones();
//! let y = Tensor::<(C<2>,), i32>::from_vec(vec![0, 2])?;
//! let loss = losses::softmax_cross_entropy_with_integer_labels(&model.forward(&x), &y).mean();
//! assert!(loss.item()? > 0.0);
//! assert_eq!(model.num_params(), 4 * 8 + 8 + 8 * 3 + 3);
//! # let _ = ad::tree_clone(&model);
//! # Ok(())
//! # }
//! ```
//!
//! **Paths in generated code.** The derive names the runtime as `::ferrax::__rt` (this crate
//! declares `extern crate ferrax_core as ferrax`, as every workspace library using the
//! macros does) and this crate as `::ferrax::nn` unless `#[module(crate = path)]` says
//! otherwise (inside this crate: `crate`; in its tests: `ferrax_nn`).

extern crate ferrax_core as ferrax;

pub mod activation;
pub mod init;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod module;
pub mod rngs;
pub mod sequential;
pub mod util;

pub use activation::{Gelu, GeluExact, Relu, Sigmoid, Silu, Softplus, Tanh};
pub use ferrax_macros::Module;
pub use layers::attention::{make_attention_mask, KvCache, MultiHeadAttention, TransformerBlock};
pub use layers::conv::{avg_pool2d, max_pool2d, Conv1d, Conv1dOpts, Conv2d, ConvTranspose2d};
pub use layers::dropout::Dropout;
pub use layers::linear::{Embed, Linear};
pub use layers::norm::{BatchNorm, GroupNorm, LayerNorm, RMSNorm};
pub use layers::recurrent::{GRUCell, LSTMCell, LstmCarry, Rnn};
pub use module::{Filter, Module, ModuleSummary, Var, VarKind};
pub use rngs::Rngs;
pub use sequential::{Layer, Sequential};
pub use util::LastDim;
