//! [`LkjCholesky`]: the LKJ distribution over correlation matrices, on their lower
//! Cholesky factors (NumPyro's `LKJCholesky`, onion-method sampler).

use super::{full_shape, promote, Beta, Distribution, IntoArray};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::math::{index_last, to_f64, ArrayMath};
use ferrax_core::prim::random::Dist as R;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::f64::consts::PI;

/// LKJ(concentration) over `dimension x dimension` correlation matrices, as the law of
/// their Cholesky factors `L` (density `prop. prod_i L_ii^(2(eta-1) + D - 1 - i)`).
#[derive(Clone, Debug)]
pub struct LkjCholesky {
    /// Matrix size D (at least 2).
    pub dimension: usize,
    /// eta > 0; 1 is uniform over correlation matrices, larger favors the identity.
    pub concentration: Array,
    batch: Vec<usize>,
    dt: DType,
}

impl LkjCholesky {
    /// Builds it.
    pub fn new(dimension: usize, concentration: impl IntoArray) -> Result<Self> {
        if dimension < 2 {
            return Err(Error::invalid(
                "LKJCholesky",
                format!("dimension must be at least 2, got {dimension}"),
            ));
        }
        let (mut ps, batch, dt) = promote("LKJCholesky", vec![concentration.into_array()])?;
        Ok(LkjCholesky {
            dimension,
            concentration: ps.remove(0),
            batch,
            dt,
        })
    }
}

impl Distribution for LkjCholesky {
    fn name(&self) -> &'static str {
        "LKJCholesky"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.batch.clone()
    }
    fn event_shape(&self) -> Vec<usize> {
        vec![self.dimension, self.dimension]
    }
    fn dtype(&self) -> DType {
        self.dt
    }
    fn support(&self) -> Constraint {
        Constraint::CorrCholesky
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let d = self.dimension;
        let s = value.shape();
        if s.len() < 2 || s[s.len() - 1] != d || s[s.len() - 2] != d {
            return Err(Error::invalid(
                "LKJCholesky",
                format!("value must end in [{d}, {d}], got shape {s:?}"),
            ));
        }
        let x = if value.dtype().is_float() {
            value.clone()
        } else {
            value.cast(self.dt)?
        };
        let eta = self.concentration.cast(x.dtype())?;
        // Unnormalized: sum_{i=1}^{D-1} (2(eta - 1) + D - 1 - i) ln L_ii.
        let mut un: Option<Array> = None;
        for i in 1..d {
            let lii = index_last(&index_last(&x, i)?, i)?;
            let order = eta.mulc(2.0)?.addc(-2.0 + (d - 1 - i) as f64)?;
            let t = order.mul(&lii.log()?)?;
            un = Some(match un {
                None => t,
                Some(a) => a.add(&t)?,
            });
        }
        let un = un.expect("dimension >= 2");
        // Normalizer (NumPyro's): pi term + mvgammaln(alpha - 1/2, D-1) - (D-1) lgamma(alpha)
        // with alpha = eta + (D-1)/2.
        let dm1 = (d - 1) as f64;
        let alpha = eta.addc(0.5 * dm1)?;
        let mut mvg = alpha.addc(-0.5)?.lgamma()?;
        for j in 1..d - 1 {
            mvg = mvg.add(&alpha.addc(-0.5 - 0.5 * j as f64)?.lgamma()?)?;
        }
        let mvg = mvg.addc(dm1 * (dm1 - 1.0) / 4.0 * PI.ln())?;
        let norm = mvg
            .sub(&alpha.lgamma()?.mulc(dm1)?)?
            .addc(0.5 * dm1 * PI.ln())?;
        Ok(un.sub(&norm)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // Onion method: row i is sqrt(y_i) u_i with y_i ~ Beta(i/2, eta + (D-2)/2 - (i-1)/2)
        // and u_i uniform on the unit sphere in R^i, then the diagonal fills the row to
        // norm 1.
        let d = self.dimension;
        let outer_shape = full_shape(s, &self.batch, &[]);
        let n: usize = outer_shape.iter().product();
        let eta = to_f64(&self.concentration.bcast(&self.batch)?)?;
        let (k_beta, k_norm) = key.split2()?;
        let bkeys = k_beta.split(d - 1)?;
        let mut ys = Vec::with_capacity(d - 1);
        for (i, bk) in (1..d).zip(&bkeys) {
            let c0: Vec<f64> = eta
                .iter()
                .map(|e| e + 0.5 * (d as f64 - 2.0) - 0.5 * (i as f64 - 1.0))
                .collect();
            let c0 = Array::from_vec(self.batch.clone(), c0)?;
            let b = Beta::new(0.5 * i as f64, c0)?;
            ys.push(to_f64(&b.sample(bk, s)?.bcast(&outer_shape)?)?);
        }
        let z = to_f64(&super::std_draw(
            &k_norm,
            R::Normal,
            &[n, d, d],
            DType::F64,
            &[],
        )?)?;
        let mut out = vec![0.0; n * d * d];
        for o in 0..n {
            let m = &mut out[o * d * d..(o + 1) * d * d];
            m[0] = 1.0;
            for i in 1..d {
                let zi = &z[(o * d + i) * d..(o * d + i) * d + i];
                let norm = zi.iter().map(|v| v * v).sum::<f64>().sqrt();
                let y = ys[i - 1][o];
                let mut ss = 0.0;
                for j in 0..i {
                    let w = y.sqrt() * zi[j] / norm;
                    m[i * d + j] = w;
                    ss += w * w;
                }
                m[i * d + i] = (1.0 - ss).max(0.0).sqrt();
            }
        }
        Ok(Array::from_vec(full_shape(s, &self.batch, &[d, d]), out)?.cast(self.dt)?)
    }
}
