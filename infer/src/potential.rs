//! The potential energy of a model: minus its log joint density in unconstrained space
//! (log|det J| of each latent site's bijection included), traced once, differentiated by
//! `ferrax_core::ad::vjp_program`, and compiled with `ferrax_core::exec::Executable`. An
//! evaluation of the potential and its gradient then runs only the compiled arithmetic.

use crate::dist::Distribution;
use crate::error::{Error, Result};
use crate::handlers::{seed, substitute, trace, SiteKind, Trace};
use crate::math::{to_f64, ArrayMath};
use crate::transforms::{biject_to, Transform};
use ferrax_core::exec::Executable;
use ferrax_core::random::Key;
use ferrax_core::{AVal, Array, DType};
use std::collections::HashMap;

/// A latent (unobserved sample) site and its place in the flat unconstrained vector.
#[derive(Clone, Debug)]
pub struct LatentSite {
    /// Site name.
    pub name: String,
    /// Shape of the constrained value.
    pub shape: Vec<usize>,
    /// Shape of the unconstrained value.
    pub unconstrained_shape: Vec<usize>,
    /// The bijection from unconstrained space onto the support.
    pub transform: Transform,
    /// Value dtype.
    pub dtype: DType,
    /// Offset into the flat vector.
    pub offset: usize,
    /// Number of unconstrained entries.
    pub size: usize,
}

/// A model's compiled potential energy and gradient over a flat `f64` vector.
pub struct Potential {
    sites: Vec<LatentSite>,
    joint: ferrax_core::ir::Program,
    grad_exe: Executable,
    constrain_exe: Executable,
    out_names: Vec<(String, Vec<usize>)>,
    dim: usize,
}

impl std::fmt::Debug for Potential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Potential")
            .field("sites", &self.sites)
            .field("dim", &self.dim)
            .finish()
    }
}

/// Runs `body` inside `trace_fn`, carrying an infer error out through core's error type.
fn trace_with(
    avals: &[AVal],
    body: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
) -> Result<ferrax_core::ir::Program> {
    let mut err = None;
    let r = ferrax_core::trace::trace_fn(avals, |xs| match body(xs) {
        Ok(v) => Ok(v),
        Err(e) => {
            err = Some(e);
            Err(ferrax_core::Error::invalid(
                "potential",
                "the model failed while being traced",
            ))
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let (prog, captured) = r?;
    if !captured.is_empty() {
        return Err(Error::invalid(
            "potential",
            "the model captured a traced value from an enclosing trace",
        ));
    }
    Ok(prog)
}

impl Potential {
    /// Traces `model` (once under `seed(key)` to discover its latent sites, then on
    /// tracers) and compiles the potential, its gradient and the map back to
    /// constrained values and deterministic sites.
    pub fn new<R>(model: &(impl Fn() -> Result<R> + ?Sized), key: &Key) -> Result<Potential> {
        let (_, tr) = trace(|| seed(key.clone(), model))?;
        let mut sites = Vec::new();
        let mut offset = 0;
        for s in tr.sites() {
            if s.kind != SiteKind::Sample || s.is_observed {
                continue;
            }
            let d = s.dist.as_ref().expect("sample sites carry a distribution");
            if d.is_discrete() {
                return Err(Error::unsupported(
                    "potential",
                    format!("latent site `{}` is discrete ({}); HMC/NUTS need continuous latent sites (enumeration is not implemented)", s.name, d.name()),
                ));
            }
            let v = s.value.as_ref().expect("sampled");
            let transform = biject_to(&d.support())?;
            let ushape = transform.inverse_shape(v.shape());
            let size = ushape.iter().product();
            sites.push(LatentSite {
                name: s.name.clone(),
                shape: v.shape().to_vec(),
                unconstrained_shape: ushape,
                transform,
                dtype: if v.dtype().is_float() {
                    v.dtype()
                } else {
                    DType::F64
                },
                offset,
                size,
            });
            offset += size;
        }
        let avals: Vec<AVal> = sites
            .iter()
            .map(|s| AVal::new(s.unconstrained_shape.clone(), s.dtype))
            .collect();
        let names: Vec<String> = sites.iter().map(|s| s.name.clone()).collect();
        // Potential energy: -(log joint at t(u) + sum log|det J_t(u)|).
        let prog = trace_with(&avals, |us| {
            let (vals, ladj) = Self::constrain_traced(&sites, us)?;
            let (_, tr) = trace(|| substitute(vals, model))?;
            Self::check_structure(&tr, &names)?;
            let lp = tr.log_prob_sum()?.cast(DType::F64)?;
            let total = match ladj {
                Some(l) => lp.add(&l.cast(DType::F64)?)?,
                None => lp,
            };
            Ok(vec![total.neg()?])
        })?;
        let joint = ferrax_core::ad::vjp_program(&prog, &vec![true; sites.len()])?;
        let grad_exe = Executable::compile(&joint)?;
        // Constrained values and deterministic sites, for the output.
        let mut out_names: Vec<(String, Vec<usize>)> = sites
            .iter()
            .map(|s| (s.name.clone(), s.shape.clone()))
            .collect();
        for s in tr.sites() {
            if s.kind == SiteKind::Deterministic {
                out_names.push((
                    s.name.clone(),
                    s.value
                        .as_ref()
                        .map(|v| v.shape().to_vec())
                        .unwrap_or_default(),
                ));
            }
        }
        let det_names: Vec<String> = out_names[sites.len()..]
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let cprog = trace_with(&avals, |us| {
            let (vals, _) = Self::constrain_traced(&sites, us)?;
            let (_, tr) = trace(|| substitute(vals.clone(), model))?;
            let mut outs: Vec<Array> = sites
                .iter()
                .map(|s| vals[&s.name].cast(DType::F64))
                .collect::<ferrax_core::Result<_>>()?;
            for n in &det_names {
                let v = tr
                    .value(n)
                    .ok_or_else(|| Error::site(n, "deterministic site missing in a later run"))?;
                outs.push(v.cast(DType::F64)?);
            }
            Ok(outs)
        })?;
        let constrain_exe = Executable::compile(&cprog)?;
        Ok(Potential {
            sites,
            joint,
            grad_exe,
            constrain_exe,
            out_names,
            dim: offset,
        })
    }

    fn constrain_traced(
        sites: &[LatentSite],
        us: &[Array],
    ) -> Result<(HashMap<String, Array>, Option<Array>)> {
        let mut vals = HashMap::new();
        let mut ladj: Option<Array> = None;
        for (s, u) in sites.iter().zip(us) {
            let v = s.transform.forward(u)?;
            if !matches!(s.transform, Transform::Identity) {
                let l = s.transform.log_abs_det_jacobian(u, &v)?.sum_all()?;
                ladj = Some(match ladj {
                    None => l,
                    Some(a) => a.add(&l.cast(a.dtype())?)?,
                });
            }
            vals.insert(s.name.clone(), v);
        }
        Ok((vals, ladj))
    }

    fn check_structure(tr: &Trace, names: &[String]) -> Result<()> {
        for s in tr.sites() {
            if s.kind == SiteKind::Sample && !s.is_observed && !names.contains(&s.name) {
                return Err(Error::site(&s.name, "a latent site appeared that the first run of the model did not have; the model's structure must not depend on random values"));
            }
        }
        Ok(())
    }

    /// The latent sites, in the order of the flat vector.
    pub fn sites(&self) -> &[LatentSite] {
        &self.sites
    }
    /// Length of the flat unconstrained vector.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Names and shapes of [`Potential::constrain`]'s outputs: the latent sites, then the
    /// deterministic sites.
    pub fn output_sites(&self) -> &[(String, Vec<usize>)] {
        &self.out_names
    }

    fn split(&self, z: &[f64]) -> Result<Vec<Array>> {
        if z.len() != self.dim {
            return Err(Error::invalid(
                "potential",
                format!(
                    "expected {} unconstrained values, got {}",
                    self.dim,
                    z.len()
                ),
            ));
        }
        self.sites
            .iter()
            .map(|s| {
                Ok(Array::from_vec(
                    s.unconstrained_shape.clone(),
                    z[s.offset..s.offset + s.size].to_vec(),
                )?
                .cast(s.dtype)?)
            })
            .collect()
    }

    /// Potential energy at `z`.
    pub fn energy(&self, z: &[f64]) -> Result<f64> {
        Ok(self.value_and_grad(z)?.0)
    }

    /// Potential energy and its gradient at `z` (one run of the compiled program).
    pub fn value_and_grad(&self, z: &[f64]) -> Result<(f64, Vec<f64>)> {
        let mut args = self.split(z)?;
        args.push(Array::scalar(1.0f64));
        let outs = self.grad_exe.run_owned(args)?;
        let pe = to_f64(&outs[0])?[0];
        let mut g = Vec::with_capacity(self.dim);
        for o in &outs[1..] {
            g.extend(to_f64(o)?);
        }
        Ok((pe, g))
    }

    /// The potential and gradient mapped over `num_chains` points at once: the traced
    /// value-and-gradient program batched by `ferrax_core::vmap::batch_emit` (vmap over a
    /// leading chain axis) and compiled once.
    pub fn batched(&self, num_chains: usize) -> Result<BatchedPotential> {
        let avals: Vec<AVal> = self
            .sites
            .iter()
            .map(|s| {
                let mut sh = vec![num_chains];
                sh.extend_from_slice(&s.unconstrained_shape);
                AVal::new(sh, s.dtype)
            })
            .collect();
        let n = self.sites.len();
        let joint = &self.joint;
        let prog = trace_with(&avals, |us| {
            let mut args = us.to_vec();
            args.push(Array::scalar(1.0f64));
            let mut dims = vec![Some(0); n];
            dims.push(None);
            let (outs, out_dims) = ferrax_core::vmap::batch_emit(joint, &args, &dims)?;
            outs.into_iter()
                .zip(out_dims)
                .map(|(o, d)| Ok(ferrax_core::vmap::finish_output(o, d, Some(0), num_chains)?))
                .collect()
        })?;
        Ok(BatchedPotential {
            exe: Executable::compile(&prog)?,
            sites: self.sites.clone(),
            num_chains,
            dim: self.dim,
        })
    }

    /// Constrained latent values and deterministic sites at `z`, flattened, in
    /// [`Potential::output_sites`] order.
    pub fn constrain(&self, z: &[f64]) -> Result<Vec<Vec<f64>>> {
        let outs = self.constrain_exe.run_owned(self.split(z)?)?;
        outs.iter().map(|o| Ok(to_f64(o)?)).collect()
    }

    /// The flat unconstrained vector of constrained site values (missing sites are an
    /// error).
    pub fn unconstrain(&self, values: &HashMap<String, Array>) -> Result<Vec<f64>> {
        let mut z = vec![0.0; self.dim];
        for s in &self.sites {
            let v = values
                .get(&s.name)
                .ok_or_else(|| Error::site(&s.name, "no value given for this latent site"))?;
            let u = to_f64(&s.transform.inverse(&v.cast(s.dtype)?)?)?;
            if u.len() != s.size {
                return Err(Error::site(
                    &s.name,
                    format!("expected {} unconstrained entries, got {}", s.size, u.len()),
                ));
            }
            z[s.offset..s.offset + s.size].copy_from_slice(&u);
        }
        Ok(z)
    }
}

/// A potential and gradient evaluated for a batch of chains in one run of one compiled
/// (vmapped) program; see [`Potential::batched`].
pub struct BatchedPotential {
    exe: Executable,
    sites: Vec<LatentSite>,
    num_chains: usize,
    dim: usize,
}

impl std::fmt::Debug for BatchedPotential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedPotential")
            .field("num_chains", &self.num_chains)
            .field("dim", &self.dim)
            .finish()
    }
}

impl BatchedPotential {
    /// Number of points per evaluation.
    pub fn num_chains(&self) -> usize {
        self.num_chains
    }
    /// Potential energies and gradients at `zs` (exactly `num_chains` points).
    pub fn value_and_grad(&self, zs: &[&[f64]]) -> Result<Vec<(f64, Vec<f64>)>> {
        let c = self.num_chains;
        if zs.len() != c || zs.iter().any(|z| z.len() != self.dim) {
            return Err(Error::invalid(
                "potential",
                format!(
                    "expected {c} points of {} unconstrained values each",
                    self.dim
                ),
            ));
        }
        let mut args = Vec::with_capacity(self.sites.len());
        for s in &self.sites {
            let mut data = Vec::with_capacity(c * s.size);
            for z in zs {
                data.extend_from_slice(&z[s.offset..s.offset + s.size]);
            }
            let mut sh = vec![c];
            sh.extend_from_slice(&s.unconstrained_shape);
            args.push(Array::from_vec(sh, data)?.cast(s.dtype)?);
        }
        let outs = self.exe.run_owned(args)?;
        let pe = to_f64(&outs[0])?;
        let grads: Vec<Vec<f64>> = outs[1..]
            .iter()
            .map(to_f64)
            .collect::<ferrax_core::Result<_>>()?;
        Ok((0..c)
            .map(|i| {
                let mut g = Vec::with_capacity(self.dim);
                for (s, gs) in self.sites.iter().zip(&grads) {
                    g.extend_from_slice(&gs[i * s.size..(i + 1) * s.size]);
                }
                (pe[i], g)
            })
            .collect())
    }
}
