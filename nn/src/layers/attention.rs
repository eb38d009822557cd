//! [`MultiHeadAttention`] (scaled dot-product attention with `H` heads, causal and padding
//! masks, grouped key/value heads, a [`KvCache`] for decoding) and a pre-norm
//! [`TransformerBlock`].

use crate::layers::linear::{linear, Linear};
use crate::layers::norm::LayerNorm;
use crate::rngs::Rngs;
use crate::util::{add, scale, typed};
use ferrax_core::ops::composite::softmax;
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::prim::compare::{compare, CompareOp};
use ferrax_core::prim::dot_general::dot_general;
use ferrax_core::prim::dynamic_update_slice::dynamic_update_slice;
use ferrax_core::prim::iota::iota;
use ferrax_core::prim::reshape::reshape;
use ferrax_core::prim::select::select;
use ferrax_core::prim::transpose::transpose;
use ferrax_core::{Array, DType, Dim, Error, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// Multi-head self/cross attention over `D` features split into `H` heads (Flax's
/// `nnx.MultiHeadAttention`): `softmax(q kᵀ / sqrt(D / H) + mask) v`, then an output
/// projection. `H` must divide `D` (checked at compile time).
///
/// **Grouped key/value heads.** The last parameter `KVD` is the width of the key and value
/// projections (default `D`: one key/value head per query head). With `KVD = K * D / H`
/// there are `K` key/value heads, each shared by `H / K` consecutive query heads (grouped-
/// query attention; `K = 1` is multi-query attention), as `jax.nn.dot_product_attention`
/// groups them. `D / H` must divide `KVD` and `K` must divide `H` (checked at compile time).
///
/// **Decoding.** [`MultiHeadAttention::init_cache`] makes a [`KvCache`] of projected keys
/// and values; [`MultiHeadAttention::decode`] appends a chunk of new positions to it and
/// attends causally over everything cached so far, so feeding a sequence one token at a
/// time gives the full causal forward.
///
/// ```
/// use ferrax_nn::{MultiHeadAttention, Rngs};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let mha = MultiHeadAttention::<8, 2>::new(&mut Rngs::new(0))?;
/// let x = Tensor::<(C<3>, C<5>, C<8>)>::ones();
/// let y = mha.forward(&x, true); // causal self-attention
/// assert_eq!(y.dims(), &[3, 5, 8]);
/// // 4 query heads sharing 2 key/value heads of width 2.
/// let gqa = MultiHeadAttention::<8, 4, f32, 4>::new(&mut Rngs::new(0))?;
/// assert_eq!(gqa.forward(&x, true).dims(), &[3, 5, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct MultiHeadAttention<const D: usize, const H: usize, E: Float = f32, const KVD: usize = D>
{
    /// Query projection.
    pub query: Linear<D, D, E>,
    /// Key projection (`KVD = key/value heads x D / H`).
    pub key: Linear<D, KVD, E>,
    /// Value projection.
    pub value: Linear<D, KVD, E>,
    /// Output projection.
    pub out: Linear<D, D, E>,
}

/// The keys and values of the positions decoded so far (Flax's `cache_key`,
/// `cache_value`, `cache_index`), for up to `L` positions of a batch `B`. All three leaves
/// are state, and the cache is a tree, so a `#[jit]` decode step can take it as `&mut`.
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct KvCache<B: Dim, const L: usize, const KVD: usize, E: Float = f32> {
    /// Projected keys `(B, L, KVD)`; rows at and after `index` are not yet written.
    #[module(state)]
    pub key: Tensor<(B, C<L>, C<KVD>), E>,
    /// Projected values `(B, L, KVD)`.
    #[module(state)]
    pub value: Tensor<(B, C<L>, C<KVD>), E>,
    /// Number of positions written (the next position to write).
    #[module(state)]
    pub index: Tensor<(), i32>,
}

/// The additive mask value: the most negative finite number of the dtype, as Flax uses,
/// so a fully masked row still gives a finite (uniform) softmax.
fn big_neg(dt: DType) -> f64 {
    match dt {
        DType::F64 => f64::MIN,
        DType::BF16 => -3.389_531_389_251_535_5e38,
        DType::F16 => -65504.0,
        _ => f32::MIN as f64,
    }
}

/// Where a query at `offset + i` may see the key at `j`: `j <= offset + i`, shape `(tq, tk)`.
fn causal_allowed(tq: usize, tk: usize, offset: Option<&Array>) -> Result<Array> {
    let mut qi = iota(DType::I32, &[tq, tk], 0)?;
    if let Some(o) = offset {
        qi = add(&qi, &broadcast_in_dim(o, &[tq, tk], &[])?)?;
    }
    let ki = iota(DType::I32, &[tq, tk], 1)?;
    compare(CompareOp::Ge, &qi, &ki)
}

/// The attention mask `(B, TQ, TK)` from per-position validity flags: query `i` may attend
/// key `j` when both are valid (Flax's `nnx.make_attention_mask(q, k)` with `jnp.logical_and`),
/// e.g. a key padding mask from the lengths of padded sequences.
///
/// ```
/// use ferrax_nn::layers::attention::make_attention_mask;
/// use ferrax_core::{Tensor, C};
/// let q = Tensor::<(C<1>, C<2>), bool>::from_vec(vec![true, true]).unwrap();
/// let k = Tensor::<(C<1>, C<3>), bool>::from_vec(vec![true, true, false]).unwrap();
/// let m = make_attention_mask(&q, &k).to_vec().unwrap();
/// assert_eq!(m, vec![true, true, false, true, true, false]);
/// ```
pub fn make_attention_mask<B: Dim, const TQ: usize, const TK: usize>(
    query_valid: &Tensor<(B, C<TQ>), bool>,
    key_valid: &Tensor<(B, C<TK>), bool>,
) -> Tensor<(B, C<TQ>, C<TK>), bool> {
    let f = || -> Result<Array> {
        let b = query_valid.dims()[0];
        let shape = [b, TQ, TK];
        let q = broadcast_in_dim(query_valid.array(), &shape, &[0, 1])?;
        let k = broadcast_in_dim(key_valid.array(), &shape, &[0, 2])?;
        ferrax_core::prim::binary::and(&q, &k)
    };
    typed("make_attention_mask", f())
}

impl<const D: usize, const H: usize, E: Float, const KVD: usize> MultiHeadAttention<D, H, E, KVD> {
    const HEAD_DIM: usize = {
        assert!(
            H > 0 && D.is_multiple_of(H),
            "MultiHeadAttention: the head count H must divide the features D"
        );
        D / H
    };
    const KV_HEADS: usize = {
        let dh = Self::HEAD_DIM;
        assert!(
            KVD > 0 && KVD.is_multiple_of(dh) && H.is_multiple_of(KVD / dh),
            "MultiHeadAttention: KVD must be K * D / H for a key/value head count K dividing H"
        );
        KVD / dh
    };
    /// Four projections with the default initializers.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        Ok(MultiHeadAttention {
            query: Linear::new(rngs)?,
            key: Linear::new(rngs)?,
            value: Linear::new(rngs)?,
            out: Linear::new(rngs)?,
        })
    }
    /// Self-attention over a `(batch, time, D)` sequence; `causal` hides future positions.
    pub fn forward<B: Dim, const T: usize>(
        &self,
        x: &Tensor<(B, C<T>, C<D>), E>,
        causal: bool,
    ) -> Tensor<(B, C<T>, C<D>), E> {
        typed(
            "MultiHeadAttention",
            self.attend_array(x.array(), x.array(), None, causal),
        )
    }
    /// Attention of queries from `q` over keys and values from `kv`, with an optional mask
    /// (`true` = may attend, shape `(batch, TQ, TK)`, e.g. key padding) and causal masking.
    pub fn forward_masked<B: Dim, const TQ: usize, const TK: usize>(
        &self,
        q: &Tensor<(B, C<TQ>, C<D>), E>,
        kv: &Tensor<(B, C<TK>, C<D>), E>,
        mask: Option<&Tensor<(B, C<TQ>, C<TK>), bool>>,
        causal: bool,
    ) -> Result<Tensor<(B, C<TQ>, C<D>), E>> {
        Tensor::from_array(self.attend_array(
            q.array(),
            kv.array(),
            mask.map(|m| m.array()),
            causal,
        )?)
    }

    /// An empty cache for decoding up to `L` positions of a batch of `b`.
    pub fn init_cache<B: Dim, const L: usize>(&self, b: B) -> KvCache<B, L, KVD, E> {
        KvCache {
            key: Tensor::zeros_shape((b, C, C)),
            value: Tensor::zeros_shape((b, C, C)),
            index: Tensor::scalar(0),
        }
    }

    /// Causal self-attention for the `T` new positions `x` (a prompt, or one token), after
    /// the positions already in `cache`: their keys and values are written into the cache at
    /// `cache.index`, each new position attends to every cached position up to itself, and
    /// the index advances by `T`. Decoding a sequence in chunks gives the rows of
    /// [`forward`](Self::forward) with `causal = true`. Overflowing the cache is an error
    /// when the index is concrete; inside a trace the index is a value of the program and
    /// the caller keeps it below `L - T` (as with Flax's cache).
    pub fn decode<B: Dim, const T: usize, const L: usize>(
        &self,
        x: &Tensor<(B, C<T>, C<D>), E>,
        cache: &mut KvCache<B, L, KVD, E>,
    ) -> Result<Tensor<(B, C<T>, C<D>), E>> {
        const OP: &str = "MultiHeadAttention::decode";
        let idx = cache.index.array();
        if !idx.is_tracer() {
            let i = cache.index.item()?;
            if i < 0 || i as usize + T > L {
                return Err(Error::invalid(
                    OP,
                    format!("the cache holds {L} positions; {T} more after index {i} do not fit"),
                ));
            }
        }
        let xa = x.array();
        let k_new = self.key.forward(x);
        let v_new = self.value.forward(x);
        let zero = Array::scalar(0i32);
        let starts = [&zero, idx, &zero];
        let k = dynamic_update_slice(cache.key.array(), k_new.array(), &starts)?;
        let v = dynamic_update_slice(cache.value.array(), v_new.array(), &starts)?;
        let allowed = causal_allowed(T, L, Some(idx))?;
        let q = self.project(&self.query, xa)?;
        let q = scale(&q, 1.0 / (Self::HEAD_DIM as f64).sqrt())?;
        let y = self.attend_projected(&q, &k, &v, Some((allowed, &[3, 4])))?;
        cache.key = Tensor::from_array(k)?;
        cache.value = Tensor::from_array(v)?;
        cache.index = Tensor::from_array(add(idx, &Array::scalar(T as i32))?)?;
        Tensor::from_array(y)
    }

    fn project<const O: usize>(&self, l: &Linear<D, O, E>, x: &Array) -> Result<Array> {
        linear(x, l.kernel.array(), l.bias.as_ref().map(|b| b.array()))
    }

    fn attend_array(
        &self,
        qx: &Array,
        kvx: &Array,
        mask: Option<&Array>,
        causal: bool,
    ) -> Result<Array> {
        let q = scale(
            &self.project(&self.query, qx)?,
            1.0 / (Self::HEAD_DIM as f64).sqrt(),
        )?;
        let k = self.project(&self.key, kvx)?;
        let v = self.project(&self.value, kvx)?;
        let (tq, tk) = (q.shape()[1], k.shape()[1]);
        let mut allowed: Option<(Array, &[usize])> = None;
        if causal {
            allowed = Some((causal_allowed(tq, tk, None)?, &[3, 4]));
        }
        if let Some(m) = mask {
            let both = match allowed {
                Some((c, _)) => {
                    let full = m.shape().to_vec();
                    ferrax_core::prim::binary::and(&broadcast_in_dim(&c, &full, &[1, 2])?, m)?
                }
                None => m.clone(),
            };
            allowed = Some((both, &[0, 3, 4]));
        }
        self.attend_projected(&q, &k, &v, allowed)
    }

    /// Attention of projected, scaled queries `(B, TQ, D)` over projected keys and values
    /// `(B, TK, KVD)`. `allowed` is a boolean mask and where its axes go in the logits
    /// `(B, K, G, TQ, TK)` (`K` key/value heads, `G = H / K` query heads per group).
    fn attend_projected(
        &self,
        q: &Array,
        k: &Array,
        v: &Array,
        allowed: Option<(Array, &[usize])>,
    ) -> Result<Array> {
        let (kh, dh) = (Self::KV_HEADS, Self::HEAD_DIM);
        let g = H / kh;
        let (b, tq, tk) = (q.shape()[0], q.shape()[1], k.shape()[1]);
        // Query head h = kv_head * G + j, as jax.nn.dot_product_attention groups them.
        let q = transpose(&reshape(q, &[b, tq, kh, g, dh])?, &[0, 2, 3, 1, 4])?;
        let k = transpose(&reshape(k, &[b, tk, kh, dh])?, &[0, 2, 1, 3])?;
        let v = transpose(&reshape(v, &[b, tk, kh, dh])?, &[0, 2, 1, 3])?;
        // (B, K, G, TQ, TK)
        let logits = dot_general(&q, &k, &[4], &[3], &[0, 1], &[0, 1])?;
        let ls = logits.shape().to_vec();
        let logits = match allowed {
            Some((a, dims)) => select(
                &broadcast_in_dim(&a, &ls, dims)?,
                &logits,
                &Array::full(&ls, logits.dtype(), big_neg(logits.dtype())),
            )?,
            None => logits,
        };
        let w = softmax(&logits, &[4])?;
        // (B, K, G, TQ, Dh) -> (B, TQ, K, G, Dh) -> (B, TQ, D)
        let o = dot_general(&w, &v, &[4], &[2], &[0, 1], &[0, 1])?;
        let o = reshape(&transpose(&o, &[0, 3, 1, 2, 4])?, &[b, tq, D])?;
        self.project(&self.out, &o)
    }
}

/// A pre-norm transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))` with a
/// `D -> F -> D` MLP using [`gelu`](crate::activation::gelu) (the tanh approximation, as
/// `nn.gelu` in Flax's transformer examples). `KVD` is the attention's key/value width
/// (grouped heads, see [`MultiHeadAttention`]); [`TransformerBlock::decode`] runs the block
/// over new positions with a [`KvCache`].
///
/// ```
/// use ferrax_nn::{Rngs, TransformerBlock};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let block = TransformerBlock::<8, 2, 32>::new(&mut Rngs::new(0))?;
/// let y = block.forward(&Tensor::<(C<1>, C<4>, C<8>)>::ones(), true);
/// assert_eq!(y.dims(), &[1, 4, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct TransformerBlock<
    const D: usize,
    const H: usize,
    const F: usize,
    E: Float = f32,
    const KVD: usize = D,
> {
    /// Norm before attention.
    pub ln1: LayerNorm<D, E>,
    /// Self-attention.
    pub attn: MultiHeadAttention<D, H, E, KVD>,
    /// Norm before the MLP.
    pub ln2: LayerNorm<D, E>,
    /// MLP input projection.
    pub mlp_in: Linear<D, F, E>,
    /// MLP output projection.
    pub mlp_out: Linear<F, D, E>,
}

impl<const D: usize, const H: usize, const F: usize, E: Float, const KVD: usize>
    TransformerBlock<D, H, F, E, KVD>
{
    /// Default initializers.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        Ok(TransformerBlock {
            ln1: LayerNorm::new(),
            attn: MultiHeadAttention::new(rngs)?,
            ln2: LayerNorm::new(),
            mlp_in: Linear::new(rngs)?,
            mlp_out: Linear::new(rngs)?,
        })
    }
    /// Applies the block; `causal` for decoder-style self-attention.
    pub fn forward<B: Dim, const T: usize>(
        &self,
        x: &Tensor<(B, C<T>, C<D>), E>,
        causal: bool,
    ) -> Tensor<(B, C<T>, C<D>), E> {
        let a = self.attn.forward(&self.ln1.forward(x), causal);
        typed("TransformerBlock", self.residual_mlp(x.array(), a.array()))
    }
    /// The block over `T` new positions after those in `cache` (see
    /// [`MultiHeadAttention::decode`]): decoding a sequence in chunks gives the rows of
    /// `forward(x, true)`.
    pub fn decode<B: Dim, const T: usize, const L: usize>(
        &self,
        x: &Tensor<(B, C<T>, C<D>), E>,
        cache: &mut KvCache<B, L, KVD, E>,
    ) -> Result<Tensor<(B, C<T>, C<D>), E>> {
        let a = self.attn.decode(&self.ln1.forward(x), cache)?;
        Tensor::from_array(self.residual_mlp(x.array(), a.array())?)
    }
    /// `x1 + mlp(ln2(x1))` with `x1 = x + a`.
    fn residual_mlp(&self, x: &Array, a: &Array) -> Result<Array> {
        let x1 = add(x, a)?;
        let n =
            Tensor::<(ferrax_core::Dyn, C<D>), E>::from_array(reshape(&x1, &[x1.numel() / D, D])?)?;
        let h = self.mlp_in.forward(&self.ln2.forward(&n));
        // `nn.gelu` as Flax's transformer examples use it: the tanh approximation.
        let h: Tensor<(ferrax_core::Dyn, C<F>), E> =
            Tensor::from_array(ferrax_core::ops::arith::gelu_tanh(h.array())?)?;
        let m = reshape(self.mlp_out.forward(&h).array(), x1.shape())?;
        add(&x1, &m)
    }
}
