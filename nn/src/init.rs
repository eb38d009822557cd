//! Initializers with the definitions of `jax.nn.initializers` (same fan computation, same
//! samplers, same constants), drawing from the jax-compatible PRNG: with the same key an
//! initializer gives the numbers JAX gives (to the samplers' last ulp).
//!
//! ```
//! use ferrax_nn::init;
//! use ferrax_core::{random::Key, Tensor, C};
//! # fn main() -> ferrax_core::Result<()> {
//! let w: Tensor<(C<64>, C<32>)> = init::glorot_uniform().init(&Key::new(0))?;
//! let limit = (6.0f32 / (64.0 + 32.0)).sqrt();
//! assert!(w.to_vec()?.iter().all(|x| x.abs() <= limit));
//! # Ok(())
//! # }
//! ```

use ferrax_core::prim::binary::{binary_scalar, BinaryOp};
use ferrax_core::prim::random::{random_sample, Dist};
use ferrax_core::random::Key;
use ferrax_core::{Array, DType, Error, Float, Result, Shape, StaticShape, Tensor};

/// Which fan [`Initializer::VarianceScaling`] divides the scale by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Input size times the receptive field.
    FanIn,
    /// Output size times the receptive field.
    FanOut,
    /// The mean of the two.
    FanAvg,
}

/// The distribution [`Initializer::VarianceScaling`] draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Normal truncated to ±2 standard deviations, rescaled to keep the variance.
    TruncatedNormal,
    /// Normal.
    Normal,
    /// Uniform on `±sqrt(3 variance)`.
    Uniform,
}

/// An initializer: a function of a key, a shape and a dtype (`jax.nn.initializers.*`).
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every element `value`.
    Constant(f64),
    /// `normal(key) * stddev`.
    Normal {
        /// Standard deviation.
        stddev: f64,
    },
    /// `uniform(key) * scale`: uniform on `[0, scale)`.
    Uniform {
        /// Upper bound.
        scale: f64,
    },
    /// `truncated_normal(key, lower, upper) * stddev`.
    TruncatedNormal {
        /// Scale of the draws.
        stddev: f64,
        /// Lower bound, in standard deviations.
        lower: f64,
        /// Upper bound, in standard deviations.
        upper: f64,
    },
    /// Variance `scale / fan` with the fans computed from `in_axis` and `out_axis`
    /// (negative counts from the end; the other axes are the receptive field).
    VarianceScaling {
        /// Variance numerator.
        scale: f64,
        /// Which fan.
        mode: FanMode,
        /// Which distribution.
        distribution: Distribution,
        /// Input axis (default -2).
        in_axis: isize,
        /// Output axis (default -1).
        out_axis: isize,
    },
    /// A (semi-)orthogonal matrix over `column_axis` and the flattened other axes, times
    /// `scale`.
    Orthogonal {
        /// Multiplier.
        scale: f64,
        /// The axis holding the columns (default -1).
        column_axis: isize,
    },
}

/// `jax.nn.initializers.zeros`.
pub fn zeros() -> Initializer {
    Initializer::Zeros
}
/// `jax.nn.initializers.ones`.
pub fn ones() -> Initializer {
    Initializer::Ones
}
/// `jax.nn.initializers.constant(value)`.
pub fn constant(value: f64) -> Initializer {
    Initializer::Constant(value)
}
/// `jax.nn.initializers.normal(stddev)` (JAX's default stddev is 1e-2).
pub fn normal(stddev: f64) -> Initializer {
    Initializer::Normal { stddev }
}
/// `jax.nn.initializers.uniform(scale)` (JAX's default scale is 1e-2).
pub fn uniform(scale: f64) -> Initializer {
    Initializer::Uniform { scale }
}
/// `jax.nn.initializers.truncated_normal(stddev, lower=-2, upper=2)`.
pub fn truncated_normal(stddev: f64) -> Initializer {
    Initializer::TruncatedNormal {
        stddev,
        lower: -2.0,
        upper: 2.0,
    }
}
/// `jax.nn.initializers.variance_scaling(scale, mode, distribution)` with the default axes.
pub fn variance_scaling(scale: f64, mode: FanMode, distribution: Distribution) -> Initializer {
    Initializer::VarianceScaling {
        scale,
        mode,
        distribution,
        in_axis: -2,
        out_axis: -1,
    }
}
/// LeCun normal: variance `1 / fan_in`, truncated normal.
pub fn lecun_normal() -> Initializer {
    variance_scaling(1.0, FanMode::FanIn, Distribution::TruncatedNormal)
}
/// LeCun uniform: variance `1 / fan_in`, uniform.
pub fn lecun_uniform() -> Initializer {
    variance_scaling(1.0, FanMode::FanIn, Distribution::Uniform)
}
/// Glorot (Xavier) normal: variance `2 / (fan_in + fan_out)`, truncated normal.
pub fn glorot_normal() -> Initializer {
    variance_scaling(1.0, FanMode::FanAvg, Distribution::TruncatedNormal)
}
/// Glorot (Xavier) uniform: variance `2 / (fan_in + fan_out)`, uniform.
pub fn glorot_uniform() -> Initializer {
    variance_scaling(1.0, FanMode::FanAvg, Distribution::Uniform)
}
/// He (Kaiming) normal: variance `2 / fan_in`, truncated normal.
pub fn he_normal() -> Initializer {
    variance_scaling(2.0, FanMode::FanIn, Distribution::TruncatedNormal)
}
/// He (Kaiming) uniform: variance `2 / fan_in`, uniform.
pub fn he_uniform() -> Initializer {
    variance_scaling(2.0, FanMode::FanIn, Distribution::Uniform)
}
/// `jax.nn.initializers.orthogonal(scale, column_axis=-1)`.
pub fn orthogonal(scale: f64) -> Initializer {
    Initializer::Orthogonal {
        scale,
        column_axis: -1,
    }
}

/// The standard deviation of a standard normal truncated to (-2, 2), which the truncated
/// variance-scaling draws divide by to keep the requested variance (JAX's constant).
const TRUNC_STD: f64 = 0.879_625_661_034_239_8;

fn axis(op: &'static str, a: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let i = if a < 0 { a + r } else { a };
    if i < 0 || i >= r {
        return Err(Error::invalid(
            op,
            format!("axis {a} is out of range for rank {rank}"),
        ));
    }
    Ok(i as usize)
}

/// `(fan_in, fan_out)` as `jax.nn.initializers` computes them: the in and out axes' sizes
/// times the product of the remaining (receptive field) axes.
pub fn compute_fans(shape: &[usize], in_axis: isize, out_axis: isize) -> Result<(f64, f64)> {
    if shape.len() < 2 {
        return Err(Error::shape(
            "variance_scaling",
            format!(
                "cannot compute fans of a rank-{} weight {shape:?}: it must be at least 2-D",
                shape.len()
            ),
        ));
    }
    let i = axis("variance_scaling", in_axis, shape.len())?;
    let o = axis("variance_scaling", out_axis, shape.len())?;
    let total: usize = shape.iter().product();
    let (fi, fo) = (shape[i] as f64, shape[o] as f64);
    let receptive = if fi * fo == 0.0 {
        0.0
    } else {
        total as f64 / fi / fo
    };
    Ok((fi * receptive, fo * receptive))
}

impl Initializer {
    /// A tensor of a static shape.
    pub fn init<S: StaticShape, E: Float>(&self, key: &Key) -> Result<Tensor<S, E>> {
        self.init_shape(key, S::default())
    }
    /// A tensor of a shape value (which may have `Dyn` axes).
    pub fn init_shape<S: Shape, E: Float>(&self, key: &Key, shape: S) -> Result<Tensor<S, E>> {
        Tensor::from_array(self.init_array(key, &shape.dims(), E::DTYPE)?)
    }
    /// An untyped array of `shape` and float `dtype`.
    pub fn init_array(&self, key: &Key, shape: &[usize], dtype: DType) -> Result<Array> {
        if !dtype.is_float() {
            return Err(Error::dtype(
                "initializer",
                format!("initializers make float arrays, asked for {dtype}"),
            ));
        }
        let k = key.array();
        let scaled = |x: Array, c: f64| binary_scalar(BinaryOp::Mul, &x, c);
        match *self {
            Initializer::Zeros => Ok(Array::zeros(shape, dtype)),
            Initializer::Ones => Ok(Array::full(shape, dtype, 1.0)),
            Initializer::Constant(v) => Ok(Array::full(shape, dtype, v)),
            Initializer::Normal { stddev } => {
                scaled(random_sample(k, Dist::Normal, shape, dtype, &[])?, stddev)
            }
            Initializer::Uniform { scale } => scaled(
                random_sample(k, Dist::Uniform { min: 0.0, max: 1.0 }, shape, dtype, &[])?,
                scale,
            ),
            Initializer::TruncatedNormal {
                stddev,
                lower,
                upper,
            } => {
                if lower.is_nan() || upper.is_nan() || lower >= upper {
                    return Err(Error::invalid(
                        "truncated_normal",
                        format!("needs lower < upper, got {lower}, {upper}"),
                    ));
                }
                let d = Dist::TruncatedNormal { lower, upper };
                scaled(random_sample(k, d, shape, dtype, &[])?, stddev)
            }
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                in_axis,
                out_axis,
            } => {
                if scale.is_nan() || scale < 0.0 {
                    return Err(Error::invalid(
                        "variance_scaling",
                        format!("scale must be non-negative, got {scale}"),
                    ));
                }
                let (fan_in, fan_out) = compute_fans(shape, in_axis, out_axis)?;
                let denom = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                    FanMode::FanAvg => (fan_in + fan_out) / 2.0,
                };
                let variance = scale / denom.max(1.0);
                match distribution {
                    Distribution::TruncatedNormal => {
                        let d = Dist::TruncatedNormal {
                            lower: -2.0,
                            upper: 2.0,
                        };
                        let x = random_sample(k, d, shape, dtype, &[])?;
                        scaled(x, variance.sqrt() / TRUNC_STD)
                    }
                    Distribution::Normal => scaled(
                        random_sample(k, Dist::Normal, shape, dtype, &[])?,
                        variance.sqrt(),
                    ),
                    Distribution::Uniform => {
                        let d = Dist::Uniform {
                            min: -1.0,
                            max: 1.0,
                        };
                        let x = random_sample(k, d, shape, dtype, &[])?;
                        scaled(x, (3.0 * variance).sqrt())
                    }
                }
            }
            Initializer::Orthogonal { scale, column_axis } => {
                orthogonal_array(key, shape, dtype, scale, column_axis)
            }
        }
    }
}

/// `jax.nn.initializers.orthogonal`: QR of a normal matrix, signs fixed by `diag(R)` so the
/// result does not depend on the QR algorithm. The QR runs on the host in f64 (an
/// initializer runs once, eagerly; a traced key is an error).
fn orthogonal_array(
    key: &Key,
    shape: &[usize],
    dtype: DType,
    scale: f64,
    column_axis: isize,
) -> Result<Array> {
    if shape.len() < 2 {
        return Err(Error::shape(
            "orthogonal",
            format!("the shape must be at least 2-D, got {shape:?}"),
        ));
    }
    let ca = axis("orthogonal", column_axis, shape.len())?;
    let n_cols = shape[ca];
    let total: usize = shape.iter().product();
    let n_rows = total.checked_div(n_cols).unwrap_or(0);
    let (m, n) = if n_rows < n_cols {
        (n_cols, n_rows)
    } else {
        (n_rows, n_cols)
    };
    let a = random_sample(key.array(), Dist::Normal, &[m, n], dtype, &[])?;
    let a: Vec<f64> = a.storage("orthogonal")?.to_f64_vec();
    let q = qr_q(&a, m, n);
    // q is m x n (m >= n); transpose when the matrix was drawn transposed.
    let q2: Vec<f64> = if n_rows < n_cols {
        let mut t = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                t[j * m + i] = q[i * n + j];
            }
        }
        t
    } else {
        q
    };
    // q2 is n_rows x n_cols; lay it out as shape-without-column-axis ++ [n_cols], then move
    // the last axis to `column_axis`.
    let mut rest: Vec<usize> = shape.to_vec();
    rest.remove(ca);
    let mut out = vec![0.0; total];
    let mut out_strides = vec![1usize; shape.len()];
    for i in (0..shape.len() - 1).rev() {
        out_strides[i] = out_strides[i + 1] * shape[i + 1];
    }
    for r in 0..n_rows {
        // Multi-index of row r over `rest`.
        let mut idx = vec![0usize; rest.len()];
        let mut x = r;
        for d in (0..rest.len()).rev() {
            idx[d] = x % rest[d];
            x /= rest[d];
        }
        for c in 0..n_cols {
            let mut off = 0;
            let mut k = 0;
            for (d, s) in out_strides.iter().enumerate() {
                let v = if d == ca {
                    c
                } else {
                    let v = idx[k];
                    k += 1;
                    v
                };
                off += v * s;
            }
            out[off] = scale * q2[r * n_cols + c];
        }
    }
    ferrax_core::prim::convert::convert(&Array::from_vec(shape.to_vec(), out)?, dtype)
}

/// The `m x n` (m >= n) factor Q of a Householder QR of the row-major `a`, with each
/// column multiplied by the sign of `R`'s diagonal entry (so `diag(R) >= 0`).
fn qr_q(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut r = a.to_vec();
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(n);
    for k in 0..n {
        let mut v: Vec<f64> = (k..m).map(|i| r[i * n + k]).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if vn > 0.0 {
            v.iter_mut().for_each(|x| *x /= vn);
            for j in k..n {
                let d: f64 = (k..m).map(|i| v[i - k] * r[i * n + j]).sum();
                for i in k..m {
                    r[i * n + j] -= 2.0 * v[i - k] * d;
                }
            }
        }
        vs.push(v);
    }
    // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * n + j] = 1.0;
    }
    for k in (0..n).rev() {
        let v = &vs[k];
        for j in 0..n {
            let d: f64 = (k..m).map(|i| v[i - k] * q[i * n + j]).sum();
            for i in k..m {
                q[i * n + j] -= 2.0 * v[i - k] * d;
            }
        }
    }
    for j in 0..n {
        if r[j * n + j] < 0.0 {
            for i in 0..m {
                q[i * n + j] = -q[i * n + j];
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_jax() {
        assert_eq!(compute_fans(&[3, 5], -2, -1).unwrap(), (3.0, 5.0));
        // A 3x3 conv kernel, HWIO: receptive field 9.
        assert_eq!(compute_fans(&[3, 3, 4, 8], -2, -1).unwrap(), (36.0, 72.0));
        assert!(compute_fans(&[4], -2, -1).is_err());
    }

    #[test]
    fn qr_is_orthonormal_with_positive_diag() {
        let a = [2.0, -1.0, 0.5, 1.0, 3.0, -2.0, 0.0, 1.0, 4.0, 1.0, 1.0, 1.0];
        let q = qr_q(&a, 4, 3);
        for i in 0..3 {
            for j in 0..3 {
                let d: f64 = (0..4).map(|k| q[k * 3 + i] * q[k * 3 + j]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        // R = Qᵀ A has a non-negative diagonal.
        for j in 0..3 {
            let r: f64 = (0..4).map(|k| q[k * 3 + j] * a[k * 3 + j]).sum();
            assert!(r >= 0.0);
        }
    }
}
