//! The random primitives: everything that consumes a PRNG key (`random_split`,
//! `random_fold_in`, `random_bits`, `random_sample`). Keys are `u32[2]` operands, so the
//! same calls record equations when the key is a tracer inside a staged function. The
//! host kernels (threefry2x32 and `jax.random`'s sampling algorithms) live in
//! [`crate::random`]; the typed API over these functions is there too.

use crate::array::{bind, bind1, AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::prim::Primitive;
use crate::random::kernels::{self, Elementwise, Fmt, IntFmt, Layout};
use crate::random::threefry;
use crate::storage::Storage;
use half::{bf16, f16};
use std::sync::Arc;

/// Checks that an operand is a key: `u32[2]`.
fn check_key(op: &'static str, k: &AVal) -> Result<()> {
    if k.dtype != DType::U32 || k.shape != [2] {
        return Err(Error::shape(op, format!("a PRNG key is u32[2], got {k}")));
    }
    Ok(())
}

fn check_arity(op: &'static str, ins: &[AVal], n: usize) -> Result<()> {
    if ins.len() != n {
        return Err(Error::invalid(
            op,
            format!("takes {n} operands (key first), got {}", ins.len()),
        ));
    }
    Ok(())
}

/// Reads the key data of a host operand (shape-checked already).
fn key_of(v: &HostView<'_>) -> Result<[u32; 2]> {
    match v.data {
        Storage::U32(d) if d.len() == 2 => Ok([d[0], d[1]]),
        _ => Err(Error::dtype("random", "a PRNG key is u32[2]")),
    }
}

/// `random_split[n](key)`: `n` new keys, one output each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RandomSplit {
    /// Number of keys.
    pub n: usize,
    /// Counter layout.
    pub layout: Layout,
}

impl Primitive for RandomSplit {
    fn name(&self) -> &'static str {
        "random_split"
    }
    fn params(&self) -> String {
        format!("n={} layout={:?}", self.n, self.layout)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        check_arity("random_split", ins, 1)?;
        check_key("random_split", &ins[0])?;
        Ok(vec![AVal::new(vec![2], DType::U32); self.n])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let key = key_of(&ins[0])?;
        Ok(kernels::split_keys(key, self.n, self.layout)
            .into_iter()
            .map(|k| Storage::U32(k.to_vec()))
            .collect())
    }
}

/// `random_fold_in(key, data)`: a key derived from `key` and a `u32` scalar.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RandomFoldIn;

impl Primitive for RandomFoldIn {
    fn name(&self) -> &'static str {
        "random_fold_in"
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        check_arity("random_fold_in", ins, 2)?;
        check_key("random_fold_in", &ins[0])?;
        if ins[1].dtype != DType::U32 || ins[1].rank() != 0 {
            return Err(Error::shape(
                "random_fold_in",
                format!("the data to fold in is a u32 scalar, got {}", ins[1]),
            ));
        }
        Ok(vec![AVal::new(vec![2], DType::U32)])
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let key = key_of(&ins[0])?;
        let d = match ins[1].data {
            Storage::U32(v) => v[0],
            _ => unreachable!("checked by the shape rule"),
        };
        Ok(vec![Storage::U32(threefry::fold_in(key, d).to_vec())])
    }
}

/// `random_bits[shape, width](key)`: raw random bits; `width` 32 gives `u32`, 64 gives the
/// 64-bit patterns as `i64` (ferrax has no `u64` element type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RandomBits {
    /// Output shape.
    pub shape: Vec<usize>,
    /// Bits per element: 32 or 64.
    pub width: u32,
    /// Counter layout.
    pub layout: Layout,
}

impl Primitive for RandomBits {
    fn name(&self) -> &'static str {
        "random_bits"
    }
    fn params(&self) -> String {
        format!(
            "shape={:?} width={} layout={:?}",
            self.shape, self.width, self.layout
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        check_arity("random_bits", ins, 1)?;
        check_key("random_bits", &ins[0])?;
        let dtype = match self.width {
            32 => DType::U32,
            64 => DType::I64,
            w => {
                return Err(Error::invalid(
                    "random_bits",
                    format!("bit width must be 32 or 64, got {w}"),
                ))
            }
        };
        Ok(vec![AVal::new(self.shape.clone(), dtype)])
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let key = key_of(&ins[0])?;
        let n = outs[0].numel();
        Ok(vec![match self.width {
            32 => Storage::U32(kernels::random_bits32(key, n, self.layout)),
            _ => Storage::I64(kernels::random_bits64(key, n, self.layout)?),
        }])
    }
}

/// A distribution drawn by [`RandomSample`], with its static parameters. Array parameters
/// (probabilities, logits, concentrations) are operands after the key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Uniform on `[min, max)`; operands: key.
    Uniform { min: f64, max: f64 },
    /// Standard normal; operands: key.
    Normal,
    /// Standard normal truncated to `(lower, upper)`; operands: key.
    TruncatedNormal { lower: f64, upper: f64 },
    /// Exponential with rate 1; operands: key.
    Exponential,
    /// Standard Gumbel; operands: key.
    Gumbel,
    /// `true` with probability `p`; operands: key, `p` (float, a scalar or the output's
    /// shape); bool out.
    Bernoulli,
    /// Integers uniform on `[min, max)`; operands: key; i32/u32/i64 out.
    RandInt { min: i64, max: i64 },
    /// The rows (axis 0) of `x` in random order; operands: key, `x`; out like `x`.
    Permutation,
    /// Category indices by the Gumbel-max trick; operands: key, `logits` (`batch ++ [k]`);
    /// i32 out of a shape ending in `batch`.
    Categorical,
    /// Gamma(alpha) (or its log); operands: key, `alpha` (the output's shape and dtype).
    Gamma { log_space: bool },
    /// Beta(a, b); operands: key, `a`, `b` (the output's shape and dtype).
    Beta,
    /// Dirichlet over the last axis; operands: key, `alpha` (the output's shape and dtype).
    Dirichlet,
}

impl Dist {
    fn name(&self) -> &'static str {
        match self {
            Dist::Uniform { .. } => "uniform",
            Dist::Normal => "normal",
            Dist::TruncatedNormal { .. } => "truncated_normal",
            Dist::Exponential => "exponential",
            Dist::Gumbel => "gumbel",
            Dist::Bernoulli => "bernoulli",
            Dist::RandInt { .. } => "randint",
            Dist::Permutation => "permutation",
            Dist::Categorical => "categorical",
            Dist::Gamma { .. } => "gamma",
            Dist::Beta => "beta",
            Dist::Dirichlet => "dirichlet",
        }
    }
}

/// `random_sample[dist, shape, dtype](key, params...)`: draws from one distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomSample {
    /// What to draw.
    pub dist: Dist,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Output dtype.
    pub dtype: DType,
    /// Counter layout.
    pub layout: Layout,
}

fn want_float(op: &'static str, what: &str, a: &AVal) -> Result<()> {
    if !a.dtype.is_float() {
        return Err(Error::dtype(
            op,
            format!("{what} must be floating, got {a}"),
        ));
    }
    Ok(())
}

fn want_shape(op: &'static str, what: &str, a: &AVal, shape: &[usize], dtype: DType) -> Result<()> {
    if a.shape != shape || a.dtype != dtype {
        return Err(Error::shape(
            op,
            format!("{what} must be {dtype}{shape:?} (broadcast it first), got {a}"),
        ));
    }
    Ok(())
}

impl Primitive for RandomSample {
    fn name(&self) -> &'static str {
        "random_sample"
    }
    fn params(&self) -> String {
        format!(
            "dist={:?} shape={:?} dtype={} layout={:?}",
            self.dist, self.shape, self.dtype, self.layout
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let op = self.dist.name();
        let (shape, dtype) = (&self.shape[..], self.dtype);
        match self.dist {
            Dist::Uniform { .. }
            | Dist::Normal
            | Dist::TruncatedNormal { .. }
            | Dist::Exponential
            | Dist::Gumbel => {
                check_arity(op, ins, 1)?;
                Fmt::of(op, dtype)?;
            }
            Dist::Bernoulli => {
                check_arity(op, ins, 2)?;
                want_float(op, "p", &ins[1])?;
                if ins[1].rank() != 0 {
                    want_shape(op, "p", &ins[1], shape, ins[1].dtype)?;
                }
                if dtype != DType::Bool {
                    return Err(Error::dtype(
                        op,
                        format!("output dtype is bool, got {dtype}"),
                    ));
                }
            }
            Dist::RandInt { .. } => {
                check_arity(op, ins, 1)?;
                if !matches!(dtype, DType::I32 | DType::U32 | DType::I64) {
                    return Err(Error::dtype(
                        op,
                        format!("needs i32, u32 or i64, got {dtype}"),
                    ));
                }
            }
            Dist::Permutation => {
                check_arity(op, ins, 2)?;
                if ins[1].rank() == 0 {
                    return Err(Error::shape(op, "cannot permute a rank-0 operand"));
                }
                want_shape(op, "the operand", &ins[1], shape, dtype)?;
            }
            Dist::Categorical => {
                check_arity(op, ins, 2)?;
                let l = &ins[1];
                want_float(op, "logits", l)?;
                let r = l.rank();
                if r == 0 || l.shape[r - 1] == 0 {
                    return Err(Error::shape(
                        op,
                        format!("logits need a non-empty last (category) axis, got {l}"),
                    ));
                }
                let batch = &l.shape[..r - 1];
                if shape.len() < batch.len() || &shape[shape.len() - batch.len()..] != batch {
                    return Err(Error::shape(
                        op,
                        format!(
                            "output shape {shape:?} must end with the logits' batch shape {batch:?} (logits {l})"
                        ),
                    ));
                }
                if dtype != DType::I32 {
                    return Err(Error::dtype(
                        op,
                        format!("output dtype is i32, got {dtype}"),
                    ));
                }
            }
            Dist::Gamma { .. } | Dist::Dirichlet => {
                check_arity(op, ins, 2)?;
                Fmt::of(op, dtype)?;
                want_shape(op, "alpha", &ins[1], shape, dtype)?;
                if self.dist == Dist::Dirichlet && shape.is_empty() {
                    return Err(Error::shape(
                        op,
                        "alpha needs a category axis, got a scalar",
                    ));
                }
            }
            Dist::Beta => {
                check_arity(op, ins, 3)?;
                Fmt::of(op, dtype)?;
                want_shape(op, "a", &ins[1], shape, dtype)?;
                want_shape(op, "b", &ins[2], shape, dtype)?;
            }
        }
        check_key(op, &ins[0])?;
        Ok(vec![AVal::new(self.shape.clone(), self.dtype)])
    }

    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let op = self.dist.name();
        let key = key_of(&ins[0])?;
        let n = outs[0].numel();
        let layout = self.layout;
        let out = match self.dist {
            Dist::Uniform { min, max } => elementwise(
                op,
                Elementwise::Uniform { min, max },
                self.dtype,
                key,
                n,
                layout,
            )?,
            Dist::Normal => elementwise(op, Elementwise::Normal, self.dtype, key, n, layout)?,
            Dist::TruncatedNormal { lower, upper } => elementwise(
                op,
                Elementwise::TruncatedNormal { lower, upper },
                self.dtype,
                key,
                n,
                layout,
            )?,
            Dist::Exponential => {
                elementwise(op, Elementwise::Exponential, self.dtype, key, n, layout)?
            }
            Dist::Gumbel => elementwise(op, Elementwise::Gumbel, self.dtype, key, n, layout)?,
            Dist::Bernoulli => {
                let fmt = Fmt::of(op, ins[1].data.dtype())?;
                Storage::Bool(match fmt {
                    Fmt::F64 => kernels::bernoulli(fmt, key, n, f64s(ins[1].data), layout)?,
                    _ => kernels::bernoulli(fmt, key, n, &f32s(ins[1].data), layout)?,
                })
            }
            Dist::RandInt { min, max } => {
                let fmt = match self.dtype {
                    DType::I32 => IntFmt::I32,
                    DType::U32 => IntFmt::U32,
                    _ => IntFmt::I64,
                };
                let v = kernels::randint(fmt, key, n, min, max, layout)?;
                match fmt {
                    IntFmt::I32 => Storage::I32(v.into_iter().map(|x| x as i32).collect()),
                    IntFmt::U32 => Storage::U32(v.into_iter().map(|x| x as u32).collect()),
                    IntFmt::I64 => Storage::I64(v),
                }
            }
            Dist::Permutation => {
                let x = ins[1];
                let rows = x.shape[0];
                let row = n.checked_div(rows).unwrap_or(0);
                let perm = kernels::permutation_indices(key, rows, layout);
                with_storage!(x.data, v, T => {
                    let mut out: Vec<T> = Vec::with_capacity(n);
                    for &r in &perm {
                        out.extend_from_slice(&v[r * row..(r + 1) * row]);
                    }
                    <T as crate::dtype::Elem>::into_storage(out)
                })
            }
            Dist::Categorical => {
                let l = ins[1];
                let k = l.shape[l.shape.len() - 1];
                let fmt = Fmt::of(op, l.data.dtype())?;
                check_layout(op, fmt, layout)?;
                Storage::I32(match fmt {
                    Fmt::F64 => kernels::categorical(fmt, key, f64s(l.data), k, n, layout)?,
                    _ => kernels::categorical(fmt, key, &f32s(l.data), k, n, layout)?,
                })
            }
            Dist::Gamma { log_space } => {
                let fmt = Fmt::of(op, self.dtype)?;
                check_layout(op, fmt, layout)?;
                match fmt {
                    Fmt::F64 => Storage::F64(kernels::gamma(
                        fmt,
                        key,
                        f64s(ins[1].data),
                        log_space,
                        layout,
                    )),
                    _ => store32(
                        fmt,
                        kernels::gamma(fmt, key, &f32s(ins[1].data), log_space, layout),
                    ),
                }
            }
            Dist::Beta => {
                let fmt = Fmt::of(op, self.dtype)?;
                check_layout(op, fmt, layout)?;
                match fmt {
                    Fmt::F64 => Storage::F64(kernels::beta(
                        fmt,
                        key,
                        f64s(ins[1].data),
                        f64s(ins[2].data),
                        layout,
                    )),
                    _ => store32(
                        fmt,
                        kernels::beta(fmt, key, &f32s(ins[1].data), &f32s(ins[2].data), layout),
                    ),
                }
            }
            Dist::Dirichlet => {
                let fmt = Fmt::of(op, self.dtype)?;
                check_layout(op, fmt, layout)?;
                let k = self.shape[self.shape.len() - 1];
                match fmt {
                    Fmt::F64 => {
                        Storage::F64(kernels::dirichlet(fmt, key, f64s(ins[1].data), k, layout))
                    }
                    _ => store32(
                        fmt,
                        kernels::dirichlet(fmt, key, &f32s(ins[1].data), k, layout),
                    ),
                }
            }
        };
        Ok(vec![out])
    }
}

/// The legacy layout is implemented for f32 sampling only.
fn check_layout(op: &'static str, fmt: Fmt, layout: Layout) -> Result<()> {
    if layout == Layout::Legacy && fmt != Fmt::F32 {
        return Err(Error::unsupported(
            op,
            "non-f32 sampling is implemented only for the partitionable threefry layout (JAX's default)",
        ));
    }
    Ok(())
}

fn elementwise(
    op: &'static str,
    dist: Elementwise,
    dtype: DType,
    key: [u32; 2],
    n: usize,
    layout: Layout,
) -> Result<Storage> {
    let fmt = Fmt::of(op, dtype)?;
    Ok(match fmt {
        Fmt::F64 => Storage::F64(kernels::sample_elementwise::<f64>(
            op, dist, fmt, key, n, layout,
        )?),
        _ => store32(
            fmt,
            kernels::sample_elementwise::<f32>(op, dist, fmt, key, n, layout)?,
        ),
    })
}

/// The f64 elements of an f64 storage (the shape rule guarantees the dtype).
fn f64s(s: &Storage) -> &[f64] {
    match s {
        Storage::F64(v) => v,
        _ => unreachable!("checked by the shape rule"),
    }
}

/// The elements of an f32/bf16/f16 storage widened to f32.
fn f32s(s: &Storage) -> std::borrow::Cow<'_, [f32]> {
    match s {
        Storage::F32(v) => std::borrow::Cow::Borrowed(v),
        Storage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
        Storage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        _ => unreachable!("checked by the shape rule"),
    }
}

/// f32 results stored in their format (bf16/f16 round once here).
fn store32(fmt: Fmt, v: Vec<f32>) -> Storage {
    match fmt {
        Fmt::BF16 => Storage::BF16(v.into_iter().map(bf16::from_f32).collect()),
        Fmt::F16 => Storage::F16(v.into_iter().map(f16::from_f32).collect()),
        _ => Storage::F32(v),
    }
}

/// `split(key, n)`: `n` independent keys.
pub fn random_split(key: &Array, n: usize) -> Result<Vec<Array>> {
    let layout = crate::random::threefry_layout();
    bind(Arc::new(RandomSplit { n, layout }), &[key])
}

/// `fold_in(key, data)` with `data` a `u32` scalar array.
pub fn random_fold_in(key: &Array, data: &Array) -> Result<Array> {
    bind1(RandomFoldIn, &[key, data])
}

/// `random_bits(key, width, shape)`: `u32` for width 32, `i64` bit patterns for width 64.
pub fn random_bits(key: &Array, shape: &[usize], width: u32) -> Result<Array> {
    let layout = crate::random::threefry_layout();
    bind1(
        RandomBits {
            shape: shape.to_vec(),
            width,
            layout,
        },
        &[key],
    )
}

/// Draws `dist` with output `shape` and `dtype`; `params` are the distribution's array
/// operands after the key (see [`Dist`]).
pub fn random_sample(
    key: &Array,
    dist: Dist,
    shape: &[usize],
    dtype: DType,
    params: &[&Array],
) -> Result<Array> {
    let layout = crate::random::threefry_layout();
    let mut ins = Vec::with_capacity(1 + params.len());
    ins.push(key);
    ins.extend_from_slice(params);
    bind1(
        RandomSample {
            dist,
            shape: shape.to_vec(),
            dtype,
            layout,
        },
        &ins,
    )
}
