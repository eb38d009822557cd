//! Continuous univariate distributions (elementwise in their parameters: the batch shape
//! is the broadcast of the parameter shapes, the event shape is `[]`).

use super::{at, full_shape, on_support, promote, std_draw, Distribution, IntoArray};
use crate::constraints::Constraint;
use crate::error::Result;
use crate::math::{full_like, where_, ArrayMath};
use ferrax_core::prim::random::Dist as R;
use ferrax_core::prim::unary as un;
use ferrax_core::random::Key;
use ferrax_core::{Array, DType};
use std::f64::consts::{LN_2, PI};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Defines a distribution struct whose parameters are arrays broadcast together.
macro_rules! params_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$pm:meta])* $p:ident),+ }) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $($(#[$pm])* pub $p: Array,)+
            batch: Vec<usize>,
            dt: DType,
        }
        impl $name {
            /// Builds the distribution; the parameters broadcast against each other and are
            /// promoted to one float dtype.
            pub fn new($($p: impl IntoArray),+) -> Result<Self> {
                let (ps, batch, dt) = promote(stringify!($name), vec![$($p.into_array()),+])?;
                let mut it = ps.into_iter();
                $(let $p = it.next().expect("one per parameter");)+
                Ok($name { $($p,)+ batch, dt })
            }
        }
    };
}
pub(crate) use params_struct;

/// The trait items every elementwise distribution shares.
macro_rules! common {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn batch_shape(&self) -> Vec<usize> {
            self.batch.clone()
        }
        fn dtype(&self) -> DType {
            self.dt
        }
    };
}
pub(crate) use common;

fn draw(key: &Key, d: R, sample: &[usize], batch: &[usize], dt: DType) -> Result<Array> {
    std_draw(key, d, &full_shape(sample, batch, &[]), dt, &[])
}

fn unif(key: &Key, sample: &[usize], batch: &[usize], dt: DType) -> Result<Array> {
    // Open at 0 so logs and inverse CDFs stay finite (NumPyro uses minval=finfo.tiny).
    let tiny = if dt == DType::F32 {
        f32::MIN_POSITIVE as f64
    } else {
        f64::MIN_POSITIVE
    };
    draw(
        key,
        R::Uniform {
            min: tiny,
            max: 1.0,
        },
        sample,
        batch,
        dt,
    )
}

fn nan_where(pred: &Array, x: &Array) -> Result<Array> {
    Ok(where_(pred, &full_like(x, f64::NAN)?, x)?)
}

params_struct!(
    /// Normal(loc, scale).
    Normal { /** Mean. */ loc, /** Standard deviation. */ scale }
);
impl Distribution for Normal {
    common!("Normal");
    fn as_normal(&self) -> Option<(Array, Array)> {
        Some((self.loc.clone(), self.scale.clone()))
    }
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(un::erfc(&z.mulc(-std::f64::consts::FRAC_1_SQRT_2)?)?.mulc(0.5)?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(un::erfc(&z.mulc(std::f64::consts::FRAC_1_SQRT_2)?)?.mulc(0.5)?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.loc, &self.scale], self.dt)?;
        let z = un::erf_inv(&q.mulc(2.0)?.addc(-1.0)?)?.mulc(std::f64::consts::SQRT_2)?;
        Ok(p[0].add(&z.mul(&p[1])?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(z.square()?
            .mulc(-0.5)?
            .sub(&p[1].log()?)?
            .addc(-HALF_LN_2PI)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let eps = draw(key, R::Normal, s, &self.batch, self.dt)?;
        Ok(self.loc.add(&eps.mul(&self.scale)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.loc.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self.scale.square()?.bcast(&self.batch)?)
    }
}

params_struct!(
    /// HalfNormal(scale): |Normal(0, scale)|.
    HalfNormal { /** Scale of the underlying normal. */ scale }
);
impl Distribution for HalfNormal {
    common!("HalfNormal");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.scale], self.dt)?;
        on_support(&x, &x.gec(0.0)?, &full_like(&x, 1.0)?, |x| {
            let z = x.div(&p[0])?;
            Ok(z.square()?
                .mulc(-0.5)?
                .sub(&p[0].log()?)?
                .addc(LN_2 - HALF_LN_2PI)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let eps = draw(key, R::Normal, s, &self.batch, self.dt)?;
        Ok(eps.abs()?.mul(&self.scale)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.scale.mulc((2.0 / PI).sqrt())?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .scale
            .square()?
            .mulc(1.0 - 2.0 / PI)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// LogNormal(loc, scale): exp of a Normal(loc, scale).
    LogNormal { /** Mean of the log. */ loc, /** Standard deviation of the log. */ scale }
);
impl Distribution for LogNormal {
    common!("LogNormal");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        on_support(&x, &x.gtc(0.0)?, &full_like(&x, 1.0)?, |x| {
            let lx = x.log()?;
            let z = lx.sub(&p[0])?.div(&p[1])?;
            Ok(z.square()?
                .mulc(-0.5)?
                .sub(&p[1].log()?)?
                .addc(-HALF_LN_2PI)?
                .sub(&lx)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let eps = draw(key, R::Normal, s, &self.batch, self.dt)?;
        Ok(self.loc.add(&eps.mul(&self.scale)?)?.exp()?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self
            .loc
            .add(&self.scale.square()?.mulc(0.5)?)?
            .exp()?
            .bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let s2 = self.scale.square()?;
        Ok(s2
            .expm1()?
            .mul(&self.loc.mulc(2.0)?.add(&s2)?.exp()?)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// Student's t with `df` degrees of freedom, location and scale.
    StudentT { /** Degrees of freedom. */ df, /** Location. */ loc, /** Scale. */ scale }
);
impl Distribution for StudentT {
    common!("StudentT");
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.df, &self.loc, &self.scale], self.dt)?;
        let (df, loc, scale) = (&p[0], &p[1], &p[2]);
        let y = x.sub(loc)?.div(scale)?;
        let z = scale
            .log()?
            .add(&df.log()?.mulc(0.5)?)?
            .addc(0.5 * PI.ln())?
            .add(&df.mulc(0.5)?.lgamma()?)?
            .sub(&df.addc(1.0)?.mulc(0.5)?.lgamma()?)?;
        Ok(df
            .addc(1.0)?
            .mulc(-0.5)?
            .mul(&y.square()?.div(df)?.log1p()?)?
            .sub(&z)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // NumPyro: eps * sqrt(df / chi2(df)), chi2 = 2 Gamma(df / 2).
        let (k1, k2) = key.split2()?;
        let shape = full_shape(s, &self.batch, &[]);
        let half = self.df.mulc(0.5)?.bcast(&shape)?;
        let g = std_draw(
            &k2,
            R::Gamma { log_space: false },
            &shape,
            self.dt,
            &[&half],
        )?;
        let chi2 = g.mulc(2.0)?;
        let eps = std_draw(&k1, R::Normal, &shape, self.dt, &[])?;
        let t = eps.mul(&self.df.div(&chi2)?.sqrt()?)?;
        Ok(self.loc.add(&self.scale.mul(&t)?)?)
    }
    fn mean(&self) -> Result<Array> {
        let m = self.loc.bcast(&self.batch)?;
        nan_where(&self.df.lec(1.0)?.bcast(&self.batch)?, &m)
    }
    fn variance(&self) -> Result<Array> {
        let v = self
            .scale
            .square()?
            .mul(&self.df)?
            .div(&self.df.addc(-2.0)?)?
            .bcast(&self.batch)?;
        let v = where_(&self.df.lec(2.0)?, &full_like(&v, f64::INFINITY)?, &v)?;
        nan_where(&self.df.lec(1.0)?.bcast(&self.batch)?, &v)
    }
}

params_struct!(
    /// Cauchy(loc, scale).
    Cauchy { /** Location (median). */ loc, /** Scale (half width at half maximum). */ scale }
);
impl Distribution for Cauchy {
    common!("Cauchy");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        Ok(x.sub(&p[0])?
            .div(&p[1])?
            .atan()?
            .mulc(1.0 / PI)?
            .addc(0.5)?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        // atan(1/z) / pi above the median: 0.5 - atan(z) / pi would cancel there.
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        // 1 / z only where it is used, so the unused branch has no infinite gradient.
        let pos = z.gtc(0.0)?;
        let zp = where_(&pos, &z, &full_like(&z, 1.0)?)?;
        let upper = zp.rdivc(1.0)?.atan()?.mulc(1.0 / PI)?;
        let lower = z.atan()?.mulc(-1.0 / PI)?.addc(0.5)?;
        Ok(where_(&pos, &upper, &lower)?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.loc, &self.scale], self.dt)?;
        let z = un::tan(&q.addc(-0.5)?.mulc(PI)?)?;
        Ok(p[0].add(&z.mul(&p[1])?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(z.square()?
            .log1p()?
            .neg()?
            .sub(&p[1].log()?)?
            .addc(-PI.ln())?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let u = unif(key, s, &self.batch, self.dt)?;
        let eps = ferrax_core::prim::unary::tan(&u.addc(-0.5)?.mulc(PI)?)?;
        Ok(self.loc.add(&eps.mul(&self.scale)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(full_like(&self.loc.bcast(&self.batch)?, f64::NAN)?)
    }
    fn variance(&self) -> Result<Array> {
        // Undefined (no mean to be the variance about): NaN, as NumPyro.
        Ok(full_like(&self.loc.bcast(&self.batch)?, f64::NAN)?)
    }
}

params_struct!(
    /// HalfCauchy(scale): |Cauchy(0, scale)|.
    HalfCauchy { /** Scale. */ scale }
);
impl Distribution for HalfCauchy {
    common!("HalfCauchy");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.scale], self.dt)?;
        on_support(&x, &x.gec(0.0)?, &full_like(&x, 1.0)?, |x| {
            let z = x.div(&p[0])?;
            Ok(z.square()?
                .log1p()?
                .neg()?
                .sub(&p[0].log()?)?
                .addc(LN_2 - PI.ln())?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let u = unif(key, s, &self.batch, self.dt)?;
        let eps = ferrax_core::prim::unary::tan(&u.addc(-0.5)?.mulc(PI)?)?;
        Ok(eps.abs()?.mul(&self.scale)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(full_like(&self.scale.bcast(&self.batch)?, f64::INFINITY)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(full_like(&self.scale.bcast(&self.batch)?, f64::INFINITY)?)
    }
}

params_struct!(
    /// Laplace(loc, scale): double exponential.
    Laplace { /** Location. */ loc, /** Scale. */ scale }
);
impl Distribution for Laplace {
    common!("Laplace");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        // 0.5 exp(-|z|) is the tail on either side; forming it as 0.5 + 0.5 expm1(-|z|)
        // would lose its relative accuracy.
        let t = z.abs()?.neg()?.exp()?.mulc(0.5)?;
        Ok(where_(&z.ltc(0.0)?, &t, &t.rsubc(1.0)?)?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        let t = z.abs()?.neg()?.exp()?.mulc(0.5)?;
        Ok(where_(&z.gtc(0.0)?, &t, &t.rsubc(1.0)?)?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.loc, &self.scale], self.dt)?;
        let a = q.addc(-0.5)?;
        let z = un::sign(&a)?.neg()?.mul(&a.abs()?.mulc(-2.0)?.log1p()?)?;
        Ok(p[0].add(&z.mul(&p[1])?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.abs()?.div(&p[1])?;
        Ok(z.neg()?.sub(&p[1].log()?)?.addc(-LN_2)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // Inverse CDF: u in (-1, 1), x = -sign(u) log(1 - |u|).
        let u = unif(key, s, &self.batch, self.dt)?.mulc(2.0)?.addc(-1.0)?;
        let eps = ferrax_core::prim::unary::sign(&u)?
            .neg()?
            .mul(&u.abs()?.neg()?.log1p()?)?;
        Ok(self.loc.add(&eps.mul(&self.scale)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.loc.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self.scale.square()?.mulc(2.0)?.bcast(&self.batch)?)
    }
}

params_struct!(
    /// Logistic(loc, scale).
    Logistic { /** Location. */ loc, /** Scale. */ scale }
);
impl Distribution for Logistic {
    common!("Logistic");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        Ok(x.sub(&p[0])?.div(&p[1])?.sigmoid()?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        Ok(p[0].sub(&x)?.div(&p[1])?.sigmoid()?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.loc, &self.scale], self.dt)?;
        let z = q.log()?.sub(&q.neg()?.log1p()?)?;
        Ok(p[0].add(&z.mul(&p[1])?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(z.neg()?
            .sub(&z.neg()?.softplus()?.mulc(2.0)?)?
            .sub(&p[1].log()?)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let u = unif(key, s, &self.batch, self.dt)?;
        let eps = u.log()?.sub(&u.neg()?.log1p()?)?;
        Ok(self.loc.add(&eps.mul(&self.scale)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.loc.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .scale
            .square()?
            .mulc(PI * PI / 3.0)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// Uniform(low, high).
    Uniform { /** Lower bound. */ low, /** Upper bound. */ high }
);
impl Distribution for Uniform {
    common!("Uniform");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.low, &self.high], self.dt)?;
        let c = x.sub(&p[0])?.div(&p[1].sub(&p[0])?)?;
        Ok(c.maximum(&full_like(&c, 0.0)?)?
            .minimum(&full_like(&c, 1.0)?)?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.low, &self.high], self.dt)?;
        Ok(p[0].add(&q.mul(&p[1].sub(&p[0])?)?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Interval(self.low.clone(), self.high.clone())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.low, &self.high], self.dt)?;
        let shape = crate::math::bshape("Uniform", x.shape(), &self.batch)?;
        let inside = crate::math::and(&x.ge(&p[0])?, &x.le(&p[1])?)?;
        on_support(&x, &inside, &p[0], |_| {
            Ok(p[1].sub(&p[0])?.log()?.neg()?.bcast(&shape)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let u = draw(
            key,
            R::Uniform { min: 0.0, max: 1.0 },
            s,
            &self.batch,
            self.dt,
        )?;
        Ok(self.low.add(&u.mul(&self.high.sub(&self.low)?)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.low.add(&self.high)?.mulc(0.5)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .high
            .sub(&self.low)?
            .square()?
            .divc(12.0)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// Exponential(rate).
    Exponential { /** Rate (inverse mean). */ rate }
);
impl Distribution for Exponential {
    common!("Exponential");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.rate], self.dt)?;
        Ok(p[0].mul(&x)?.neg()?.expm1()?.neg()?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.rate], self.dt)?;
        Ok(p[0].mul(&x)?.neg()?.exp()?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.rate], self.dt)?;
        Ok(q.neg()?.log1p()?.neg()?.div(&p[0])?)
    }
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.rate], self.dt)?;
        on_support(&x, &x.gec(0.0)?, &full_like(&x, 1.0)?, |x| {
            Ok(p[0].log()?.sub(&p[0].mul(x)?)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        Ok(draw(key, R::Exponential, s, &self.batch, self.dt)?.div(&self.rate)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.rate.rdivc(1.0)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self.rate.square()?.rdivc(1.0)?.bcast(&self.batch)?)
    }
}

params_struct!(
    /// Gamma(concentration, rate).
    Gamma { /** Shape parameter. */ concentration, /** Rate (inverse scale). */ rate }
);
pub(crate) fn gamma_lp(x: &Array, c: &Array, r: &Array) -> Result<Array> {
    let norm = c.lgamma()?.sub(&c.mul(&r.log()?)?)?;
    Ok(c.addc(-1.0)?.xlogy(x)?.sub(&r.mul(x)?)?.sub(&norm)?)
}
impl Distribution for Gamma {
    common!("Gamma");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.concentration, &self.rate], self.dt)?;
        on_support(&x, &x.gec(0.0)?, &full_like(&x, 1.0)?, |x| {
            gamma_lp(x, &p[0], &p[1])
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        let c = self.concentration.bcast(&shape)?;
        let g = std_draw(key, R::Gamma { log_space: false }, &shape, self.dt, &[&c])?;
        Ok(g.div(&self.rate)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.concentration.div(&self.rate)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .concentration
            .div(&self.rate.square()?)?
            .bcast(&self.batch)?)
    }
}

/// Chi-squared with `df` degrees of freedom: Gamma(df / 2, 1 / 2).
#[derive(Clone, Debug)]
pub struct Chi2 {
    /// Degrees of freedom.
    pub df: Array,
    gamma: Gamma,
}
impl Chi2 {
    /// Builds it.
    pub fn new(df: impl IntoArray) -> Result<Self> {
        let df = df.into_array();
        let gamma = Gamma::new(df.mulc(0.5)?, 0.5)?;
        let df = df.cast(gamma.dt)?;
        Ok(Chi2 { df, gamma })
    }
}
impl Distribution for Chi2 {
    fn name(&self) -> &'static str {
        "Chi2"
    }
    fn batch_shape(&self) -> Vec<usize> {
        self.gamma.batch_shape()
    }
    fn dtype(&self) -> DType {
        self.gamma.dt
    }
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        self.gamma.log_prob(value)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        self.gamma.sample(key, s)
    }
    fn mean(&self) -> Result<Array> {
        self.gamma.mean()
    }
    fn variance(&self) -> Result<Array> {
        self.gamma.variance()
    }
}

params_struct!(
    /// InverseGamma(concentration, rate): 1 / Gamma(concentration, rate).
    InverseGamma { /** Shape parameter. */ concentration, /** Rate of the underlying Gamma (the scale of this one). */ rate }
);
impl Distribution for InverseGamma {
    common!("InverseGamma");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.concentration, &self.rate], self.dt)?;
        let (c, r) = (&p[0], &p[1]);
        // Gamma density of 1/x plus the Jacobian -2 log x.
        on_support(&x, &x.gtc(0.0)?, &full_like(&x, 1.0)?, |x| {
            let lx = x.log()?;
            Ok(c.mul(&r.log()?)?
                .sub(&c.lgamma()?)?
                .sub(&c.addc(1.0)?.mul(&lx)?)?
                .sub(&r.div(x)?)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        let c = self.concentration.bcast(&shape)?;
        let g = std_draw(key, R::Gamma { log_space: false }, &shape, self.dt, &[&c])?;
        Ok(self.rate.div(&g)?)
    }
    fn mean(&self) -> Result<Array> {
        let c = &self.concentration;
        let m = self.rate.div(&c.addc(-1.0)?)?.bcast(&self.batch)?;
        Ok(where_(&c.lec(1.0)?, &full_like(&m, f64::INFINITY)?, &m)?)
    }
    fn variance(&self) -> Result<Array> {
        let c = &self.concentration;
        let v = self
            .rate
            .square()?
            .div(&c.addc(-1.0)?.square()?.mul(&c.addc(-2.0)?)?)?
            .bcast(&self.batch)?;
        Ok(where_(&c.lec(2.0)?, &full_like(&v, f64::INFINITY)?, &v)?)
    }
}

params_struct!(
    /// Beta(concentration1, concentration0) on (0, 1).
    Beta { /** The `alpha` of x^(alpha-1). */ concentration1, /** The `beta` of (1-x)^(beta-1). */ concentration0 }
);
impl Distribution for Beta {
    common!("Beta");
    fn support(&self) -> Constraint {
        Constraint::UnitInterval
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(
            value,
            &[&self.concentration1, &self.concentration0],
            self.dt,
        )?;
        let (a, b) = (&p[0], &p[1]);
        let norm = a.lgamma()?.add(&b.lgamma()?)?.sub(&a.add(b)?.lgamma()?)?;
        let inside = crate::math::and(&x.gec(0.0)?, &x.lec(1.0)?)?;
        on_support(&x, &inside, &full_like(&x, 0.5)?, |x| {
            Ok(a.addc(-1.0)?
                .xlogy(x)?
                .add(&b.addc(-1.0)?.xlog1py(&x.neg()?)?)?
                .sub(&norm)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let shape = full_shape(s, &self.batch, &[]);
        let a = self.concentration1.bcast(&shape)?;
        let b = self.concentration0.bcast(&shape)?;
        std_draw(key, R::Beta, &shape, self.dt, &[&a, &b])
    }
    fn mean(&self) -> Result<Array> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        Ok(a.div(&a.add(b)?)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let (a, b) = (&self.concentration1, &self.concentration0);
        let t = a.add(b)?;
        Ok(a.mul(b)?
            .div(&t.square()?.mul(&t.addc(1.0)?)?)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// Weibull(scale, concentration).
    Weibull { /** Scale lambda. */ scale, /** Shape k. */ concentration }
);
impl Distribution for Weibull {
    common!("Weibull");
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.scale, &self.concentration], self.dt)?;
        let (l, k) = (&p[0], &p[1]);
        on_support(&x, &x.gec(0.0)?, &full_like(&x, 1.0)?, |x| {
            let z = x.div(l)?;
            Ok(k.div(l)?
                .log()?
                .add(&k.addc(-1.0)?.mul(&z.log()?)?)?
                .sub(&z.pow(k)?)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let e = draw(key, R::Exponential, s, &self.batch, self.dt)?;
        Ok(self.scale.mul(&e.pow(&self.concentration.rdivc(1.0)?)?)?)
    }
    fn mean(&self) -> Result<Array> {
        let g = self.concentration.rdivc(1.0)?.addc(1.0)?.lgamma()?.exp()?;
        Ok(self.scale.mul(&g)?.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        let k = &self.concentration;
        let g1 = k.rdivc(1.0)?.addc(1.0)?.lgamma()?.exp()?;
        let g2 = k.rdivc(2.0)?.addc(1.0)?.lgamma()?.exp()?;
        Ok(self
            .scale
            .square()?
            .mul(&g2.sub(&g1.square()?)?)?
            .bcast(&self.batch)?)
    }
}

params_struct!(
    /// Pareto(scale, alpha) on (scale, inf).
    Pareto { /** Minimum value. */ scale, /** Tail index. */ alpha }
);
impl Distribution for Pareto {
    common!("Pareto");
    fn support(&self) -> Constraint {
        Constraint::GreaterThan(self.scale.clone())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.scale, &self.alpha], self.dt)?;
        let (s, a) = (&p[0], &p[1]);
        on_support(&x, &x.ge(s)?, s, |x| {
            Ok(a.log()?
                .add(&a.mul(&s.log()?)?)?
                .sub(&a.addc(1.0)?.mul(&x.log()?)?)?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let e = draw(key, R::Exponential, s, &self.batch, self.dt)?;
        Ok(self.scale.mul(&e.div(&self.alpha)?.exp()?)?)
    }
    fn mean(&self) -> Result<Array> {
        let a = &self.alpha;
        let m = a
            .mul(&self.scale)?
            .div(&a.addc(-1.0)?)?
            .bcast(&self.batch)?;
        Ok(where_(&a.lec(1.0)?, &full_like(&m, f64::INFINITY)?, &m)?)
    }
    fn variance(&self) -> Result<Array> {
        let a = &self.alpha;
        let v = self
            .scale
            .square()?
            .mul(a)?
            .div(&a.addc(-1.0)?.square()?.mul(&a.addc(-2.0)?)?)?
            .bcast(&self.batch)?;
        Ok(where_(&a.lec(2.0)?, &full_like(&v, f64::INFINITY)?, &v)?)
    }
}

params_struct!(
    /// Gumbel(loc, scale).
    Gumbel { /** Location (mode). */ loc, /** Scale. */ scale }
);
impl Distribution for Gumbel {
    common!("Gumbel");
    fn cdf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        Ok(x.sub(&p[0])?.div(&p[1])?.neg()?.exp()?.neg()?.exp()?)
    }
    fn sf(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        Ok(x.sub(&p[0])?
            .div(&p[1])?
            .neg()?
            .exp()?
            .neg()?
            .expm1()?
            .neg()?)
    }
    fn icdf(&self, q: &Array) -> Result<Array> {
        let (q, p) = at(q, &[&self.loc, &self.scale], self.dt)?;
        Ok(p[0].sub(&q.log()?.neg()?.log()?.mul(&p[1])?)?)
    }
    fn support(&self) -> Constraint {
        Constraint::Real
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.scale], self.dt)?;
        let z = x.sub(&p[0])?.div(&p[1])?;
        Ok(z.add(&z.neg()?.exp()?)?.neg()?.sub(&p[1].log()?)?)
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        let g = draw(key, R::Gumbel, s, &self.batch, self.dt)?;
        Ok(self.loc.add(&g.mul(&self.scale)?)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self
            .loc
            .add(&self.scale.mulc(EULER_GAMMA)?)?
            .bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        Ok(self
            .scale
            .square()?
            .mulc(PI * PI / 6.0)?
            .bcast(&self.batch)?)
    }
}

// Cephes' Chebyshev coefficients for exp(-x) I0(x) on [0, 8] and exp(-x) sqrt(x) I0(x)
// on (8, inf), the same tables jax.scipy.special.i0e evaluates.
#[allow(clippy::excessive_precision)]
const I0E_A: [f64; 30] = [
    -4.41534164647933937950E-18,
    3.33079451882223809783E-17,
    -2.43127984654795469359E-16,
    1.71539128555513303061E-15,
    -1.16853328779934516808E-14,
    7.67618549860493561688E-14,
    -4.85644678311192946090E-13,
    2.95505266312963983461E-12,
    -1.72682629144155570723E-11,
    9.67580903537323691224E-11,
    -5.18979560163526290666E-10,
    2.65982372468238665035E-9,
    -1.30002500998624804212E-8,
    6.04699502254191894932E-8,
    -2.67079385394061173391E-7,
    1.11738753912010371815E-6,
    -4.41673835845875056359E-6,
    1.64484480707288970893E-5,
    -5.75419501008210370398E-5,
    1.88502885095841655729E-4,
    -5.76375574538582365885E-4,
    1.63947561694133579842E-3,
    -4.32430999505057594430E-3,
    1.05464603945949983183E-2,
    -2.37374148058994688156E-2,
    4.93052842396707084878E-2,
    -9.49010970480476444210E-2,
    1.71620901522208775349E-1,
    -3.04682672343198398683E-1,
    6.76795274409476084995E-1,
];
#[allow(clippy::excessive_precision)]
const I0E_B: [f64; 25] = [
    -7.23318048787475395456E-18,
    -4.83050448594418207126E-18,
    4.46562142029675999901E-17,
    3.46122286769746109310E-17,
    -2.82762398051658348494E-16,
    -3.42548561967721913462E-16,
    1.77256013305652638360E-15,
    3.81168066935262242075E-15,
    -9.55484669882830764870E-15,
    -4.15056934728722208663E-14,
    1.54008621752140982691E-14,
    3.85277838274214270114E-13,
    7.18012445138366623367E-13,
    -1.79417853150680611778E-12,
    -1.32158118404477131188E-11,
    -3.14991652796324136454E-11,
    1.18891471078464383424E-11,
    4.94060238822496958910E-10,
    3.39623202570838634515E-9,
    2.26666899049817806459E-8,
    2.04891858946906374183E-7,
    2.89137052083475648297E-6,
    6.88975834691682398426E-5,
    3.36911647825569408990E-3,
    8.04490411014108831608E-1,
];

/// Clenshaw evaluation of a Chebyshev series (Cephes' `chbevl`) on arrays.
fn chbevl(x: &Array, coef: &[f64]) -> Result<Array> {
    let mut b0 = full_like(x, coef[0])?;
    let mut b1 = full_like(x, 0.0)?;
    let mut b2 = b1.clone();
    for &c in &coef[1..] {
        b2 = b1;
        b1 = b0;
        b0 = x.mul(&b1)?.sub(&b2)?.addc(c)?;
    }
    Ok(b0.sub(&b2)?.mulc(0.5)?)
}

/// `ln I0(x)` for `x >= 0` (modified Bessel function of the first kind, order 0), from
/// ops so it traces and differentiates: `ln i0e(x) + x`.
pub fn log_i0(x: &Array) -> Result<Array> {
    let x = x.abs()?;
    let small = chbevl(&x.mulc(0.5)?.addc(-2.0)?, &I0E_A)?;
    // Both branches are evaluated; keep the large-x argument finite where x is small.
    let xl = x.maximum(&full_like(&x, 8.0)?)?;
    let large = chbevl(&xl.rdivc(32.0)?.addc(-2.0)?, &I0E_B)?.div(&xl.sqrt()?)?;
    let i0e = where_(&x.lec(8.0)?, &small, &large)?;
    Ok(i0e.log()?.add(&x)?)
}

/// `ln I0(x)` on the host (same series), for tests and samplers.
pub fn log_i0_f64(x: f64) -> f64 {
    let cheb = |t: f64, c: &[f64]| {
        let (mut b0, mut b1, mut b2) = (c[0], 0.0, 0.0);
        for &k in &c[1..] {
            b2 = b1;
            b1 = b0;
            b0 = t * b1 - b2 + k;
        }
        0.5 * (b0 - b2)
    };
    let x = x.abs();
    let i0e = if x <= 8.0 {
        cheb(x / 2.0 - 2.0, &I0E_A)
    } else {
        cheb(32.0 / x - 2.0, &I0E_B) / x.sqrt()
    };
    i0e.ln() + x
}

params_struct!(
    /// VonMises(loc, concentration): the circular normal on `[-pi, pi)`.
    VonMises { /** Mean direction. */ loc, /** Concentration (kappa >= 0). */ concentration }
);
impl Distribution for VonMises {
    common!("VonMises");
    fn support(&self) -> Constraint {
        Constraint::Interval(Array::scalar(-PI), Array::scalar(PI))
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.loc, &self.concentration], self.dt)?;
        let k = &p[1];
        let inside = crate::math::and(&x.gec(-PI)?, &x.lec(PI)?)?;
        on_support(&x, &inside, &full_like(&x, 0.0)?, |x| {
            Ok(k.mul(&x.sub(&p[0])?.cos()?)?
                .sub(&log_i0(k)?)?
                .addc(-(2.0 * PI).ln())?)
        })
    }
    fn sample(&self, key: &Key, s: &[usize]) -> Result<Array> {
        // Best & Fisher (1979) rejection on the host, as numpy; rejected entries redraw
        // from a fresh key, a bounded number of rounds (acceptance is above 0.65 for any
        // kappa, so 60 rounds leave ~1e-11 of entries unfinished).
        let shape = full_shape(s, &self.batch, &[]);
        let n: usize = shape.iter().product();
        let loc = crate::math::to_f64(&self.loc.bcast(&shape)?)?;
        let kap = crate::math::to_f64(&self.concentration.bcast(&shape)?)?;
        let mut out = vec![f64::NAN; n];
        let mut todo: Vec<usize> = (0..n).collect();
        let mut k = key.clone();
        for _ in 0..60 {
            if todo.is_empty() {
                break;
            }
            let (k_next, k_u) = k.split2()?;
            k = k_next;
            let u = crate::math::to_f64(&std_draw(
                &k_u,
                R::Uniform { min: 0.0, max: 1.0 },
                &[todo.len(), 3],
                DType::F64,
                &[],
            )?)?;
            let mut rest = Vec::new();
            for (j, &i) in todo.iter().enumerate() {
                let (u1, u2, u3) = (u[3 * j], u[3 * j + 1], u[3 * j + 2]);
                let kappa = kap[i];
                if kappa.is_nan() || kappa <= 1e-8 {
                    // kappa -> 0 is the uniform distribution on the circle.
                    out[i] = if kappa >= 0.0 {
                        PI * (2.0 * u1 - 1.0)
                    } else {
                        f64::NAN
                    };
                    continue;
                }
                let tau = 1.0 + (1.0 + 4.0 * kappa * kappa).sqrt();
                let rho = (tau - (2.0 * tau).sqrt()) / (2.0 * kappa);
                let r = (1.0 + rho * rho) / (2.0 * rho);
                let z = (PI * u1).cos();
                let f = (1.0 + r * z) / (r + z);
                let c = kappa * (r - f);
                if c * (2.0 - c) - u2 > 0.0 || (c / u2).ln() + 1.0 - c >= 0.0 {
                    let theta = if u3 > 0.5 { f.acos() } else { -f.acos() };
                    let t = theta + loc[i] + PI;
                    out[i] = t.rem_euclid(2.0 * PI) - PI;
                } else {
                    rest.push(i);
                }
            }
            todo = rest;
        }
        Ok(Array::from_vec(shape, out)?.cast(self.dt)?)
    }
    fn mean(&self) -> Result<Array> {
        Ok(self.loc.bcast(&self.batch)?)
    }
    fn variance(&self) -> Result<Array> {
        // Circular variance 1 - I1(k) / I0(k), as NumPyro.
        let k = crate::math::to_f64(&self.concentration.bcast(&self.batch)?)?;
        let v: Vec<f64> = k.iter().map(|&k| 1.0 - bessel_ratio_i1_i0(k)).collect();
        Ok(Array::from_vec(self.batch.clone(), v)?.cast(self.dt)?)
    }
}

/// `I1(k) / I0(k)` on the host by the continued fraction
/// `I1/I0 = 1 / (2/k + 1 / (4/k + 1 / (6/k + ...)))`, evaluated bottom-up.
fn bessel_ratio_i1_i0(k: f64) -> f64 {
    if k <= 0.0 {
        return 0.0;
    }
    let mut t = 0.0;
    // The fraction needs on the order of k terms to converge.
    let terms = (200.0 + 2.0 * k).min(1e6) as usize;
    for n in (1..=terms).rev() {
        t = 1.0 / (2.0 * n as f64 / k + t);
    }
    t
}
