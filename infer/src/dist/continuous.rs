//! Continuous univariate distributions (elementwise in their parameters: the batch shape
//! is the broadcast of the parameter shapes, the event shape is `[]`).

use super::{at, full_shape, promote, std_draw, Distribution, IntoArray};
use crate::constraints::Constraint;
use crate::error::Result;
use crate::math::{full_like, where_, ArrayMath};
use ferrax_core::prim::random::Dist as R;
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
        let z = x.div(&p[0])?;
        Ok(z.square()?
            .mulc(-0.5)?
            .sub(&p[0].log()?)?
            .addc(LN_2 - HALF_LN_2PI)?)
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
        let lx = x.log()?;
        let z = lx.sub(&p[0])?.div(&p[1])?;
        Ok(z.square()?
            .mulc(-0.5)?
            .sub(&p[1].log()?)?
            .addc(-HALF_LN_2PI)?
            .sub(&lx)?)
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
        Ok(full_like(&self.loc.bcast(&self.batch)?, f64::INFINITY)?)
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
        let z = x.div(&p[0])?;
        Ok(z.square()?
            .log1p()?
            .neg()?
            .sub(&p[0].log()?)?
            .addc(LN_2 - PI.ln())?)
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
    fn support(&self) -> Constraint {
        Constraint::Interval(self.low.clone(), self.high.clone())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        // As NumPyro: constant over the support (values outside are not masked).
        let (x, p) = at(value, &[&self.low, &self.high], self.dt)?;
        let shape = crate::math::bshape("Uniform", x.shape(), &self.batch)?;
        Ok(p[1].sub(&p[0])?.log()?.neg()?.bcast(&shape)?)
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
    fn support(&self) -> Constraint {
        Constraint::Positive
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn log_prob(&self, value: &Array) -> Result<Array> {
        let (x, p) = at(value, &[&self.rate], self.dt)?;
        Ok(p[0].log()?.sub(&p[0].mul(&x)?)?)
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
        gamma_lp(&x, &p[0], &p[1])
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
        let lx = x.log()?;
        Ok(c.mul(&r.log()?)?
            .sub(&c.lgamma()?)?
            .sub(&c.addc(1.0)?.mul(&lx)?)?
            .sub(&r.div(&x)?)?)
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
        Ok(a.addc(-1.0)?
            .xlogy(&x)?
            .add(&b.addc(-1.0)?.xlog1py(&x.neg()?)?)?
            .sub(&norm)?)
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
        let z = x.div(l)?;
        Ok(k.div(l)?
            .log()?
            .add(&k.addc(-1.0)?.mul(&z.log()?)?)?
            .sub(&z.pow(k)?)?)
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
        Ok(a.log()?
            .add(&a.mul(&s.log()?)?)?
            .sub(&a.addc(1.0)?.mul(&x.log()?)?)?)
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
