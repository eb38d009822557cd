//! [`MultiHeadAttention`] (scaled dot-product attention with `H` heads, causal and padding
//! masks) and a pre-norm [`TransformerBlock`].

use crate::layers::linear::{linear, Linear};
use crate::layers::norm::LayerNorm;
use crate::rngs::Rngs;
use crate::util::{add, scale, typed};
use ferrax_core::ops::composite::softmax;
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::prim::compare::{compare, CompareOp};
use ferrax_core::prim::dot_general::dot_general;
use ferrax_core::prim::iota::iota;
use ferrax_core::prim::reshape::reshape;
use ferrax_core::prim::select::select;
use ferrax_core::prim::transpose::transpose;
use ferrax_core::{Array, DType, Dim, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// Multi-head self/cross attention over `D` features split into `H` heads (Flax's
/// `nnx.MultiHeadAttention`): `softmax(q kᵀ / sqrt(D / H) + mask) v`, then an output
/// projection. `H` must divide `D` (checked at compile time).
///
/// ```
/// use ferrax_nn::{MultiHeadAttention, Rngs};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let mha = MultiHeadAttention::<8, 2>::new(&mut Rngs::new(0))?;
/// let x = Tensor::<(C<3>, C<5>, C<8>)>::ones();
/// let y = mha.forward(&x, true); // causal self-attention
/// assert_eq!(y.dims(), &[3, 5, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct MultiHeadAttention<const D: usize, const H: usize, E: Float = f32> {
    /// Query projection.
    pub query: Linear<D, D, E>,
    /// Key projection.
    pub key: Linear<D, D, E>,
    /// Value projection.
    pub value: Linear<D, D, E>,
    /// Output projection.
    pub out: Linear<D, D, E>,
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

impl<const D: usize, const H: usize, E: Float> MultiHeadAttention<D, H, E> {
    const HEAD_DIM: usize = {
        assert!(
            H > 0 && D.is_multiple_of(H),
            "MultiHeadAttention: the head count H must divide the features D"
        );
        D / H
    };
    /// Four `Linear<D, D>` projections with the default initializers.
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

    fn heads(&self, x: &Array) -> Result<Array> {
        // (B, T, D) -> (B, T, H, Dh) -> (B, H, T, Dh)
        let s = x.shape();
        let r = reshape(x, &[s[0], s[1], H, Self::HEAD_DIM])?;
        transpose(&r, &[0, 2, 1, 3])
    }

    fn attend_array(
        &self,
        qx: &Array,
        kvx: &Array,
        mask: Option<&Array>,
        causal: bool,
    ) -> Result<Array> {
        let p = |l: &Linear<D, D, E>, x: &Array| {
            linear(x, l.kernel.array(), l.bias.as_ref().map(|b| b.array()))
        };
        let q = self.heads(&scale(
            &p(&self.query, qx)?,
            1.0 / (Self::HEAD_DIM as f64).sqrt(),
        )?)?;
        let k = self.heads(&p(&self.key, kvx)?)?;
        let v = self.heads(&p(&self.value, kvx)?)?;
        // (B, H, TQ, TK)
        let logits = dot_general(&q, &k, &[3], &[3], &[0, 1], &[0, 1])?;
        let ls = logits.shape().to_vec();
        let (b, tq, tk) = (ls[0], ls[2], ls[3]);
        let mut allowed: Option<Array> = None;
        if causal {
            let qi = iota(DType::I32, &[tq, tk], 0)?;
            let ki = iota(DType::I32, &[tq, tk], 1)?;
            let c = broadcast_in_dim(&compare(CompareOp::Ge, &qi, &ki)?, &ls, &[2, 3])?;
            allowed = Some(c);
        }
        if let Some(m) = mask {
            let m = broadcast_in_dim(m, &ls, &[0, 2, 3])?;
            allowed = Some(match allowed {
                Some(a) => ferrax_core::prim::binary::and(&a, &m)?,
                None => m,
            });
        }
        let logits = match allowed {
            Some(a) => select(
                &a,
                &logits,
                &Array::full(&ls, logits.dtype(), big_neg(logits.dtype())),
            )?,
            None => logits,
        };
        let w = softmax(&logits, &[3])?;
        // (B, H, TQ, Dh) -> (B, TQ, H, Dh) -> (B, TQ, D)
        let o = dot_general(&w, &v, &[3], &[2], &[0, 1], &[0, 1])?;
        let o = reshape(&transpose(&o, &[0, 2, 1, 3])?, &[b, tq, D])?;
        p(&self.out, &o)
    }
}

/// A pre-norm transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))` with a
/// `D -> F -> D` GELU MLP.
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
pub struct TransformerBlock<const D: usize, const H: usize, const F: usize, E: Float = f32> {
    /// Norm before attention.
    pub ln1: LayerNorm<D, E>,
    /// Self-attention.
    pub attn: MultiHeadAttention<D, H, E>,
    /// Norm before the MLP.
    pub ln2: LayerNorm<D, E>,
    /// MLP input projection.
    pub mlp_in: Linear<D, F, E>,
    /// MLP output projection.
    pub mlp_out: Linear<F, D, E>,
}

impl<const D: usize, const H: usize, const F: usize, E: Float> TransformerBlock<D, H, F, E> {
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
        let x1: Tensor<(B, C<T>, C<D>), E> = typed("TransformerBlock", add(x.array(), a.array()));
        let h = self.mlp_in.forward(&self.ln2.forward(&x1));
        let h = typed::<(B, C<T>, C<F>), E>(
            "TransformerBlock",
            ferrax_core::ops::arith::gelu(h.array()),
        );
        let m = self.mlp_out.forward(&h);
        typed("TransformerBlock", add(x1.array(), m.array()))
    }
}
