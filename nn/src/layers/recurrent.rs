//! Recurrent cells: [`LSTMCell`] and [`GRUCell`] (Flax's gate equations and initializers:
//! input kernels `lecun_normal`, recurrent kernels `orthogonal` per gate, biases zeros).
//! A cell maps `(carry, x_t)` to `(carry', y_t)`. Over a sequence's time axis, `scan`
//! ([`LSTMCell::scan`], [`GRUCell::scan`], and the [`Rnn`] wrapper, Flax's `nnx.RNN`) runs
//! the cell as one `scan` primitive whose body is the step, so a traced program holds the
//! step once whatever `T` is; [`LSTMCell::unroll`] / [`GRUCell::unroll`] repeat it `T`
//! times instead.

use crate::init::{self, Initializer};
use crate::layers::linear::linear;
use crate::rngs::Rngs;
use crate::util::{add, mul, sub, typed};
use ferrax_core::prim::concatenate::{concatenate, stack};
use ferrax_core::prim::reshape::squeeze;
use ferrax_core::prim::scan::scan;
use ferrax_core::prim::slice::slice_in_dim;
use ferrax_core::prim::transpose::transpose;
use ferrax_core::prim::unary::{logistic, tanh};
use ferrax_core::{Array, Dim, Float, Result, Tensor, C};
use ferrax_macros::Module;

/// `n` orthogonal `(h, h)` blocks side by side: `(h, n h)`.
fn recurrent_init<E: Float>(rngs: &mut Rngs, h: usize, n: usize) -> Result<Array> {
    let blocks = (0..n)
        .map(|_| init::orthogonal(1.0).init_array(&rngs.params()?, &[h, h], E::DTYPE))
        .collect::<Result<Vec<_>>>()?;
    concatenate(&blocks.iter().collect::<Vec<_>>(), 1)
}

fn gate(z: &Array, k: usize, h: usize) -> Result<Array> {
    slice_in_dim(z, z.rank() - 1, k * h, (k + 1) * h, 1)
}

/// Stacks per-step outputs `(B, H)` along a new time axis 1: `(B, T, H)`.
fn stack_time(ys: &[Array]) -> Result<Array> {
    stack(&ys.iter().collect::<Vec<_>>(), 1)
}

/// The time step `t` of a `(B, T, F)` sequence: `(B, F)`.
fn step(x: &Array, t: usize) -> Result<Array> {
    squeeze(&slice_in_dim(x, 1, t, t + 1, 1)?, &[1])
}

/// Runs `step(carry, x_t) -> (carry', y_t)` over the time axis 1 of `xs` `(B, T, F)` as one
/// `scan` (time-major inside), forwards or from the last step back; the final carry and
/// the outputs `(B, T, HD)`, indexed by time step in both directions.
fn scan_time(
    step: impl Fn(&[Array], &Array) -> Result<(Vec<Array>, Array)>,
    carry: &[Array],
    xs: &Array,
    reverse: bool,
) -> Result<(Vec<Array>, Array)> {
    let xt = transpose(xs, &[1, 0, 2])?;
    let (c, ys) = scan(
        |c, x| {
            let (c2, y) = step(c, &x[0])?;
            Ok((c2, vec![y]))
        },
        carry,
        &[xt],
        None,
        reverse,
    )?;
    Ok((c, transpose(&ys[0], &[1, 0, 2])?))
}

/// A long short-term memory cell from `I` inputs to `HD` hidden units. Gates
/// `i, f, g, o` are fused: input kernel `(I, 4 HD)`, recurrent kernel `(HD, 4 HD)` and bias
/// `(4 HD)`; `c' = σ(f) c + σ(i) tanh(g)`, `h' = σ(o) tanh(c')`. The carry is `(c, h)`.
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct LSTMCell<const I: usize, const HD: usize, E: Float = f32> {
    /// `(I, 4 HD)` input kernel, gates in the order i, f, g, o.
    pub input_kernel: Tensor<(C<I>, ferrax_core::Dyn), E>,
    /// `(HD, 4 HD)` recurrent kernel.
    pub recurrent_kernel: Tensor<(C<HD>, ferrax_core::Dyn), E>,
    /// `(4 HD,)` bias.
    pub bias: Tensor<(ferrax_core::Dyn,), E>,
}

/// An LSTM carry: `(c, h)`.
pub type LstmCarry<B, const HD: usize, E> = (Tensor<(B, C<HD>), E>, Tensor<(B, C<HD>), E>);

impl<const I: usize, const HD: usize, E: Float> LSTMCell<I, HD, E> {
    /// Flax's initializers.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        let input_kernel = init::lecun_normal().init_array(&rngs.params()?, &[I, HD], E::DTYPE);
        // Per-gate input kernels (fan_in = I for each), drawn like Flax's four Denses.
        let mut ks = vec![input_kernel?];
        for _ in 1..4 {
            ks.push(init::lecun_normal().init_array(&rngs.params()?, &[I, HD], E::DTYPE)?);
        }
        let ik = concatenate(&ks.iter().collect::<Vec<_>>(), 1)?;
        let rk = recurrent_init::<E>(rngs, HD, 4)?;
        Ok(LSTMCell {
            input_kernel: Tensor::from_array(ik)?,
            recurrent_kernel: Tensor::from_array(rk)?,
            bias: Tensor::from_array(Initializer::Zeros.init_array(
                &rngs.params()?,
                &[4 * HD],
                E::DTYPE,
            )?)?,
        })
    }
    /// A zero carry for a batch of `b`.
    pub fn initialize_carry<B: Dim>(&self, b: B) -> LstmCarry<B, HD, E> {
        (Tensor::zeros_shape((b, C)), Tensor::zeros_shape((b, C)))
    }
    /// One step: `(carry, x) -> (carry', h')`.
    pub fn forward<B: Dim>(
        &self,
        carry: &LstmCarry<B, HD, E>,
        x: &Tensor<(B, C<I>), E>,
    ) -> (LstmCarry<B, HD, E>, Tensor<(B, C<HD>), E>) {
        let (c, h) = typed_pair(self.step_array(carry.0.array(), carry.1.array(), x.array()));
        ((c.clone(), h.clone()), h)
    }
    fn step_array(&self, c: &Array, h: &Array, x: &Array) -> Result<(Array, Array)> {
        let zx = linear(x, self.input_kernel.array(), Some(self.bias.array()))?;
        let z = add(&zx, &linear(h, self.recurrent_kernel.array(), None)?)?;
        let i = logistic(&gate(&z, 0, HD)?)?;
        let f = logistic(&gate(&z, 1, HD)?)?;
        let g = tanh(&gate(&z, 2, HD)?)?;
        let o = logistic(&gate(&z, 3, HD)?)?;
        let c2 = add(&mul(&f, c)?, &mul(&i, &g)?)?;
        let h2 = mul(&o, &tanh(&c2)?)?;
        Ok((c2, h2))
    }
    /// Runs the cell over the time axis of `(B, T, I)` from `carry`: the final carry and
    /// the outputs `(B, T, HD)`. The loop is unrolled when traced (T is static).
    pub fn unroll<B: Dim, const T: usize>(
        &self,
        carry: &LstmCarry<B, HD, E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<(LstmCarry<B, HD, E>, Tensor<(B, C<T>, C<HD>), E>)> {
        let (mut c, mut h) = (carry.0.array().clone(), carry.1.array().clone());
        let mut ys = Vec::with_capacity(T);
        for t in 0..T {
            (c, h) = self.step_array(&c, &h, &step(xs.array(), t)?)?;
            ys.push(h.clone());
        }
        let out = if T == 0 {
            Array::zeros(&[xs.dims()[0], 0, HD], E::DTYPE)
        } else {
            stack_time(&ys)?
        };
        Ok((
            (Tensor::from_array(c)?, Tensor::from_array(h)?),
            Tensor::from_array(out)?,
        ))
    }
}

impl<const I: usize, const HD: usize, E: Float> LSTMCell<I, HD, E> {
    /// Runs the cell over the time axis of `(B, T, I)` from `carry` as one `scan`
    /// (`reverse`: from the last step back): the final carry and the outputs
    /// `(B, T, HD)`. Gradients flow to the weights, the carry and the inputs.
    pub fn scan<B: Dim, const T: usize>(
        &self,
        carry: &LstmCarry<B, HD, E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
        reverse: bool,
    ) -> Result<(LstmCarry<B, HD, E>, Tensor<(B, C<T>, C<HD>), E>)> {
        let (c, ys) = scan_time(
            |c, x| {
                let (c2, h2) = self.step_array(&c[0], &c[1], x)?;
                Ok((vec![c2, h2.clone()], h2))
            },
            &[carry.0.array().clone(), carry.1.array().clone()],
            xs.array(),
            reverse,
        )?;
        let [c, h]: [Array; 2] = c
            .try_into()
            .map_err(|_| ferrax_core::Error::invalid("LSTMCell::scan", "expected two carries"))?;
        Ok((
            (Tensor::from_array(c)?, Tensor::from_array(h)?),
            Tensor::from_array(ys)?,
        ))
    }
}

#[track_caller]
fn typed_pair<B: Dim, const HD: usize, E: Float>(r: Result<(Array, Array)>) -> LstmCarry<B, HD, E> {
    let (a, b) = match r {
        Ok(v) => (Ok(v.0), Ok(v.1)),
        Err(e) => (Err(e.clone()), Err(e)),
    };
    (typed("recurrent cell", a), typed("recurrent cell", b))
}

/// A gated recurrent unit from `I` inputs to `HD` hidden units (Flax's `GRUCell`):
/// `r = σ(x W_ir + b_ir + h W_hr)`, `z = σ(x W_iz + b_iz + h W_hz)`,
/// `n = tanh(x W_in + b_in + r (h W_hn + b_hn))`, `h' = (1 - z) n + z h`.
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct GRUCell<const I: usize, const HD: usize, E: Float = f32> {
    /// `(I, 3 HD)` input kernel, gates r, z, n.
    pub input_kernel: Tensor<(C<I>, ferrax_core::Dyn), E>,
    /// `(3 HD,)` input bias.
    pub input_bias: Tensor<(ferrax_core::Dyn,), E>,
    /// `(HD, 3 HD)` recurrent kernel.
    pub recurrent_kernel: Tensor<(C<HD>, ferrax_core::Dyn), E>,
    /// `(HD,)` bias of the candidate's recurrent term.
    pub recurrent_bias: Tensor<(C<HD>,), E>,
}

impl<const I: usize, const HD: usize, E: Float> GRUCell<I, HD, E> {
    /// Flax's initializers.
    pub fn new(rngs: &mut Rngs) -> Result<Self> {
        let ks = (0..3)
            .map(|_| init::lecun_normal().init_array(&rngs.params()?, &[I, HD], E::DTYPE))
            .collect::<Result<Vec<_>>>()?;
        let ik = concatenate(&ks.iter().collect::<Vec<_>>(), 1)?;
        let rk = recurrent_init::<E>(rngs, HD, 3)?;
        Ok(GRUCell {
            input_kernel: Tensor::from_array(ik)?,
            input_bias: Tensor::from_array(Array::zeros(&[3 * HD], E::DTYPE))?,
            recurrent_kernel: Tensor::from_array(rk)?,
            recurrent_bias: Tensor::zeros(),
        })
    }
    /// A zero carry for a batch of `b`.
    pub fn initialize_carry<B: Dim>(&self, b: B) -> Tensor<(B, C<HD>), E> {
        Tensor::zeros_shape((b, C))
    }
    /// One step: `(h, x) -> (h', h')`.
    pub fn forward<B: Dim>(
        &self,
        h: &Tensor<(B, C<HD>), E>,
        x: &Tensor<(B, C<I>), E>,
    ) -> (Tensor<(B, C<HD>), E>, Tensor<(B, C<HD>), E>) {
        let h2: Tensor<(B, C<HD>), E> = typed("GRUCell", self.step_array(h.array(), x.array()));
        (h2.clone(), h2)
    }
    fn step_array(&self, h: &Array, x: &Array) -> Result<Array> {
        let zx = linear(x, self.input_kernel.array(), Some(self.input_bias.array()))?;
        let zh = linear(h, self.recurrent_kernel.array(), None)?;
        let r = logistic(&add(&gate(&zx, 0, HD)?, &gate(&zh, 0, HD)?)?)?;
        let z = logistic(&add(&gate(&zx, 1, HD)?, &gate(&zh, 1, HD)?)?)?;
        let hn = add(
            &gate(&zh, 2, HD)?,
            &crate::util::along_last(self.recurrent_bias.array(), h.shape())?,
        )?;
        let n = tanh(&add(&gate(&zx, 2, HD)?, &mul(&r, &hn)?)?)?;
        // (1 - z) n + z h = n + z (h - n)
        add(&n, &mul(&z, &sub(h, &n)?)?)
    }
    /// Runs the cell over the time axis of `(B, T, I)`: the final carry and the outputs.
    pub fn unroll<B: Dim, const T: usize>(
        &self,
        h: &Tensor<(B, C<HD>), E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<(Tensor<(B, C<HD>), E>, Tensor<(B, C<T>, C<HD>), E>)> {
        let mut h = h.array().clone();
        let mut ys = Vec::with_capacity(T);
        for t in 0..T {
            h = self.step_array(&h, &step(xs.array(), t)?)?;
            ys.push(h.clone());
        }
        let out = if T == 0 {
            Array::zeros(&[xs.dims()[0], 0, HD], E::DTYPE)
        } else {
            stack_time(&ys)?
        };
        Ok((Tensor::from_array(h)?, Tensor::from_array(out)?))
    }
    /// Runs the cell over the time axis of `(B, T, I)` as one `scan` (`reverse`: from the
    /// last step back): the final carry and the outputs `(B, T, HD)`.
    pub fn scan<B: Dim, const T: usize>(
        &self,
        h: &Tensor<(B, C<HD>), E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
        reverse: bool,
    ) -> Result<(Tensor<(B, C<HD>), E>, Tensor<(B, C<T>, C<HD>), E>)> {
        let (c, ys) = scan_time(
            |c, x| {
                let h2 = self.step_array(&c[0], x)?;
                Ok((vec![h2.clone()], h2))
            },
            std::slice::from_ref(h.array()),
            xs.array(),
            reverse,
        )?;
        let h = c
            .into_iter()
            .next()
            .ok_or_else(|| ferrax_core::Error::invalid("GRUCell::scan", "expected one carry"))?;
        Ok((Tensor::from_array(h)?, Tensor::from_array(ys)?))
    }
}

/// A recurrent layer: a cell run over the time axis 1 of `(B, T, F)` inputs with `scan`,
/// from a zero carry or a given one, optionally in reverse (Flax's `nnx.RNN` with
/// `time_major=False`).
///
/// ```
/// use ferrax_nn::{LSTMCell, Rngs, Rnn};
/// use ferrax_core::{Tensor, C};
/// # fn main() -> ferrax_core::Result<()> {
/// let rnn = Rnn::new(LSTMCell::<3, 5>::new(&mut Rngs::new(0))?);
/// let ys = rnn.forward(&Tensor::<(C<2>, C<7>, C<3>)>::ones())?;
/// assert_eq!(ys.dims(), &[2, 7, 5]);
/// # Ok(())
/// # }
/// ```
#[derive(Module, Clone, Debug)]
#[module(crate = crate)]
pub struct Rnn<Cell> {
    /// The step.
    pub cell: Cell,
    /// Whether to run from the last time step back.
    #[module(static)]
    pub reverse: bool,
}

impl<Cell> Rnn<Cell> {
    /// Runs `cell` forwards in time.
    pub fn new(cell: Cell) -> Self {
        Rnn {
            cell,
            reverse: false,
        }
    }
    /// Runs `cell` from the last time step back (outputs stay indexed by time step).
    pub fn reversed(cell: Cell) -> Self {
        Rnn {
            cell,
            reverse: true,
        }
    }
}

impl<const I: usize, const HD: usize, E: Float> Rnn<LSTMCell<I, HD, E>> {
    /// The outputs `(B, T, HD)` from a zero carry.
    pub fn forward<B: Dim, const T: usize>(
        &self,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<Tensor<(B, C<T>, C<HD>), E>> {
        let carry = self.cell.initialize_carry(xs.shape().0);
        Ok(self.cell.scan(&carry, xs, self.reverse)?.1)
    }
    /// The final carry and the outputs from `carry`.
    pub fn forward_with_carry<B: Dim, const T: usize>(
        &self,
        carry: &LstmCarry<B, HD, E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<(LstmCarry<B, HD, E>, Tensor<(B, C<T>, C<HD>), E>)> {
        self.cell.scan(carry, xs, self.reverse)
    }
}

impl<const I: usize, const HD: usize, E: Float> Rnn<GRUCell<I, HD, E>> {
    /// The outputs `(B, T, HD)` from a zero carry.
    pub fn forward<B: Dim, const T: usize>(
        &self,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<Tensor<(B, C<T>, C<HD>), E>> {
        let carry = self.cell.initialize_carry(xs.shape().0);
        Ok(self.cell.scan(&carry, xs, self.reverse)?.1)
    }
    /// The final carry and the outputs from `carry`.
    pub fn forward_with_carry<B: Dim, const T: usize>(
        &self,
        carry: &Tensor<(B, C<HD>), E>,
        xs: &Tensor<(B, C<T>, C<I>), E>,
    ) -> Result<(Tensor<(B, C<HD>), E>, Tensor<(B, C<T>, C<HD>), E>)> {
        self.cell.scan(carry, xs, self.reverse)
    }
}
