//! The `scan` primitive (`lax.scan`): runs a body program `length` times, threading a carry
//! and slicing per-step inputs `xs` along their leading axis; per-step outputs `ys` are
//! stacked along a new leading axis. Reverse mode is JAX's scan transpose: a forward scan
//! that also stacks every step's input carry (the only residuals: memory is linear in the
//! number of steps times the carry size), then a reverse scan running the body's backward
//! program, accumulating the carry's and the consts' cotangents and stacking the xs'
//! cotangents. The backward step re-runs its step's forward equations from the saved carry
//! rather than saving every intermediate, so the rule already behaves like JAX's
//! `scan(remat(body))`: one extra forward step of compute per step for less memory.

use crate::array::{AVal, Array, HostView};
use crate::dtype::Elem;
use crate::error::{Error, Result};
use crate::exec::Executable;
use crate::ir::Program;
use crate::prim::broadcast_in_dim::{batch_size, batch_to_front};
use crate::prim::cond::{check_avals, compiled, ct_or_zeros, into_storage, trace_closure};
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::{Arc, OnceLock};

/// `scan[body, length, reverse](consts..., init..., xs...)` → `(final carry..., ys...)`.
/// `body: (consts..., carry..., x slices...) -> (carry..., y slices...)`.
#[derive(Debug)]
pub struct Scan {
    /// The step program.
    pub body: Arc<Program>,
    /// Number of steps (the leading size of every `xs` and `ys`).
    pub length: usize,
    /// Whether steps run from index `length - 1` down to 0 (ys stay indexed by step).
    pub reverse: bool,
    /// Number of carry operands (after the consts).
    pub num_carry: usize,
    /// Number of leading operands passed unchanged to every step.
    pub num_consts: usize,
    exe: OnceLock<Executable>,
}

impl Scan {
    /// A scan over this body.
    pub fn new(
        body: Arc<Program>,
        length: usize,
        reverse: bool,
        num_consts: usize,
        num_carry: usize,
    ) -> Scan {
        Scan {
            body,
            length,
            reverse,
            num_carry,
            num_consts,
            exe: OnceLock::new(),
        }
    }
}

/// Row `i` (of `rows`) of a row-major buffer, copied.
fn row(s: &Storage, i: usize, rows: usize) -> Storage {
    let m = s.len().checked_div(rows).unwrap_or(0);
    with_storage!(s, v, T => T::into_storage(v[i * m..(i + 1) * m].to_vec()))
}

/// The buffers concatenated (the stacking of per-step outputs).
fn concat(parts: &[Storage], dtype: crate::dtype::DType) -> Result<Storage> {
    let Some(first) = parts.first() else {
        return Ok(Storage::zeros(dtype, 0));
    };
    let total: usize = parts.iter().map(|p| p.len()).sum();
    Ok(with_storage!(first, _v, T => {
        let mut out: Vec<T> = Vec::with_capacity(total);
        for p in parts {
            out.extend_from_slice(<T as Elem>::slice(p).ok_or_else(|| Error::dtype_mismatch("scan", first.dtype(), p.dtype()))?);
        }
        T::into_storage(out)
    }))
}

impl Primitive for Scan {
    fn name(&self) -> &'static str {
        "scan"
    }
    fn params(&self) -> String {
        format!(
            "length={} reverse={} num_consts={} num_carry={}",
            self.length, self.reverse, self.num_consts, self.num_carry
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let (nc, nk) = (self.num_consts, self.num_carry);
        if ins.len() < nc + nk {
            return Err(Error::invalid(
                "scan",
                format!("{} operands but {nc} consts and {nk} carries", ins.len()),
            ));
        }
        let mut want: Vec<AVal> = ins[..nc + nk].to_vec();
        for (i, x) in ins[nc + nk..].iter().enumerate() {
            if x.shape.first() != Some(&self.length) {
                return Err(Error::shape(
                    "scan",
                    format!(
                        "xs[{i}] is {x}, but its leading axis must be the length {}",
                        self.length
                    ),
                ));
            }
            want.push(AVal::new(x.shape[1..].to_vec(), x.dtype));
        }
        check_avals(
            "scan",
            "body inputs vs (consts, carry, x slices)",
            &self.body.input_avals(),
            &want,
        )?;
        let outs = self.body.output_avals();
        if outs.len() < nk {
            return Err(Error::invalid(
                "scan",
                format!(
                    "the body returns {} values, fewer than the {nk} carries",
                    outs.len()
                ),
            ));
        }
        check_avals(
            "scan",
            "body output carry vs input carry",
            &outs[..nk],
            &ins[nc..nc + nk],
        )?;
        let mut res: Vec<AVal> = outs[..nk].to_vec();
        for y in &outs[nk..] {
            let mut s = vec![self.length];
            s.extend(y.shape.iter().copied());
            res.push(AVal::new(s, y.dtype));
        }
        Ok(res)
    }
    fn eval(&self, ins: &[HostView<'_>], outs: &[AVal]) -> Result<Vec<Storage>> {
        let (nc, nk, len) = (self.num_consts, self.num_carry, self.length);
        let exe = compiled(&self.exe, &self.body)?;
        let consts = crate::prim::cond::views_to_arrays(&ins[..nc])?;
        let mut carry = crate::prim::cond::views_to_arrays(&ins[nc..nc + nk])?;
        let xs = &ins[nc + nk..];
        let ny = outs.len() - nk;
        let mut ys: Vec<Vec<Option<Storage>>> = vec![vec![None; len]; ny];
        for step in 0..len {
            let i = if self.reverse { len - 1 - step } else { step };
            let mut a = consts.clone();
            a.append(&mut carry);
            for x in xs {
                a.push(Array::from_storage(
                    x.shape[1..].to_vec(),
                    row(x.data, i, len),
                )?);
            }
            let mut o = exe.run_owned(a)?;
            let y = o.split_off(nk);
            carry = o;
            for (k, y) in y.into_iter().enumerate() {
                ys[k][i] = Some(into_storage(y)?);
            }
        }
        let mut res: Vec<Storage> = carry.into_iter().map(into_storage).collect::<Result<_>>()?;
        for (k, y) in ys.into_iter().enumerate() {
            let parts: Vec<Storage> = y.into_iter().flatten().collect();
            res.push(concat(&parts, outs[nk + k].dtype)?);
        }
        Ok(res)
    }
    fn sub_programs(&self) -> Vec<&Program> {
        vec![&self.body]
    }
    fn vjp(
        &self,
        primals: &[Array],
        outs: &[Array],
        cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        let (nc, nk, len) = (self.num_consts, self.num_carry, self.length);
        let body = &self.body;
        let b_in = body.input_avals();
        let b_out = body.output_avals();
        let nx = b_in.len() - nc - nk;
        let ny = b_out.len() - nk;
        // Forward: the same scan, also stacking each step's input carry (the residuals).
        let (fwd, caps) = trace_fn(&b_in, |a| {
            let mut o = crate::ad::interpret(body, a)?;
            o.extend(a[nc..nc + nk].iter().cloned());
            Ok(o)
        })?;
        if !caps.is_empty() {
            return Err(Error::invalid(
                "scan",
                "the forward body captured an outer value",
            ));
        }
        let refs: Vec<&Array> = primals.iter().collect();
        let fwd_outs = crate::array::bind(
            Arc::new(Scan::new(Arc::new(fwd), len, self.reverse, nc, nk)),
            &refs,
        )?;
        let saved = &fwd_outs[nk + ny..];
        // Backward step: (consts, [const ct accumulators, carry ct], [saved carry, x, y ct])
        // -> ([accumulators + const ct, carry ct in], x ct).
        let wrt: Vec<bool> = b_in.iter().map(|a| a.dtype.is_float()).collect();
        let mut avals: Vec<AVal> = b_in[..nc].to_vec();
        avals.extend(b_in[..nc].iter().cloned());
        avals.extend(b_in[nc..nc + nk].iter().cloned());
        avals.extend(b_in[nc..nc + nk].iter().cloned());
        avals.extend(b_in[nc + nk..].iter().cloned());
        avals.extend(b_out[nk..].iter().cloned());
        let (bwd, caps) = trace_fn(&avals, |a| {
            let (consts, rest) = a.split_at(nc);
            let (acc, rest) = rest.split_at(nc);
            let (ct_carry, rest) = rest.split_at(nk);
            let (carry, rest) = rest.split_at(nk);
            let (x, ct_y) = rest.split_at(nx);
            let mut args: Vec<Array> = consts.to_vec();
            args.extend(carry.iter().cloned());
            args.extend(x.iter().cloned());
            let seeds: Vec<Option<Array>> =
                ct_carry.iter().chain(ct_y).cloned().map(Some).collect();
            let (_, g) = crate::ad::vjp_emit(body, &args, &wrt, &seeds)?;
            let mut out = Vec::with_capacity(nc + nk + nx);
            for ((a, g), w) in acc.iter().zip(&g[..nc]).zip(&wrt) {
                out.push(if *w {
                    crate::prim::binary::add(a, g)?
                } else {
                    a.clone()
                });
            }
            out.extend(g[nc..].iter().cloned());
            Ok(out)
        })?;
        if !caps.is_empty() {
            return Err(Error::invalid(
                "scan",
                "the backward body captured an outer value",
            ));
        }
        let mut ops: Vec<Array> = primals[..nc].to_vec();
        ops.extend(b_in[..nc].iter().map(|a| Array::zeros(&a.shape, a.dtype)));
        let out_avals: Vec<AVal> = outs.iter().map(|a| a.aval().clone()).collect();
        ops.extend(
            cts[..nk]
                .iter()
                .zip(&out_avals[..nk])
                .map(|(c, a)| ct_or_zeros(c, a)),
        );
        ops.extend(saved.iter().cloned());
        ops.extend(primals[nc + nk..].iter().cloned());
        ops.extend(
            cts[nk..]
                .iter()
                .zip(&out_avals[nk..])
                .map(|(c, a)| ct_or_zeros(c, a)),
        );
        let refs: Vec<&Array> = ops.iter().collect();
        let g = crate::array::bind(
            Arc::new(Scan::new(Arc::new(bwd), len, !self.reverse, nc, nc + nk)),
            &refs,
        )?;
        Ok(g.into_iter()
            .zip(&wrt)
            .map(|(g, w)| w.then_some(g))
            .collect())
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        // Consts keep their batch axes; the whole carry is batched along axis 0 (an
        // unbatched initial carry usually becomes batched after one step); batched xs move
        // their batch axis to 1, right after the scanned axis, so a step's slice has it at 0.
        let n = batch_size("scan", args, dims)?;
        let (nc, nk) = (self.num_consts, self.num_carry);
        let mut ops: Vec<Array> = args[..nc].to_vec();
        let mut in_dims: Vec<Option<usize>> = dims[..nc].to_vec();
        for (a, d) in args[nc..nc + nk].iter().zip(&dims[nc..nc + nk]) {
            ops.push(batch_to_front(a, *d, n)?);
            in_dims.push(Some(0));
        }
        for (a, d) in args[nc + nk..].iter().zip(&dims[nc + nk..]) {
            match d {
                Some(d) => {
                    ops.push(crate::vmap::move_axis(a, *d, 1)?);
                    in_dims.push(Some(0));
                }
                None => {
                    ops.push(a.clone());
                    in_dims.push(None);
                }
            }
        }
        let avals: Vec<AVal> = ops
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i < nc + nk {
                    a.aval().clone()
                } else {
                    AVal::new(a.shape()[1..].to_vec(), a.dtype())
                }
            })
            .collect();
        let body = &self.body;
        let (p, caps) = trace_fn(&avals, |a| {
            let (outs, ods) = crate::vmap::batch_emit(body, a, &in_dims)?;
            outs.iter()
                .zip(ods)
                .map(|(o, d)| batch_to_front(o, d, n))
                .collect()
        })?;
        if !caps.is_empty() {
            return Err(Error::invalid(
                "scan",
                "a batched body captured an outer value",
            ));
        }
        let refs: Vec<&Array> = ops.iter().collect();
        let prim = Scan::new(Arc::new(p), self.length, self.reverse, nc, nk);
        let outs = crate::array::bind(Arc::new(prim), &refs)?;
        let nd = (0..outs.len())
            .map(|i| Some(if i < nk { 0 } else { 1 }))
            .collect();
        Ok((outs, nd))
    }
}

/// `lax.scan(f, init, xs, length, reverse)`: `f(carry, x) -> (carry, y)` applied along the
/// leading axis of every `xs` array; returns the final carry and the `ys` stacked along a
/// new leading axis. `length` is required when there are no `xs` and must agree with them
/// otherwise. Values `f` captures are passed as consts (and get cotangents).
pub fn scan(
    f: impl FnOnce(&[Array], &[Array]) -> Result<(Vec<Array>, Vec<Array>)>,
    init: &[Array],
    xs: &[Array],
    length: Option<usize>,
    reverse: bool,
) -> Result<(Vec<Array>, Vec<Array>)> {
    let mut len = length;
    for x in xs {
        let Some(&l) = x.shape().first() else {
            return Err(Error::shape(
                "scan",
                format!("xs must have a leading axis to scan over, got {}", x.aval()),
            ));
        };
        match len {
            None => len = Some(l),
            Some(m) if m != l => {
                return Err(Error::shape(
                    "scan",
                    format!(
                        "xs disagree on the length: {m} vs {l} (shape {:?})",
                        x.shape()
                    ),
                ))
            }
            _ => {}
        }
    }
    let Some(len) = len else {
        return Err(Error::invalid(
            "scan",
            "with no xs, the length must be given",
        ));
    };
    let nk = init.len();
    let mut avals: Vec<AVal> = init.iter().map(|a| a.aval().clone()).collect();
    avals.extend(
        xs.iter()
            .map(|x| AVal::new(x.shape()[1..].to_vec(), x.dtype())),
    );
    let (p, caps) = trace_closure(&avals, |a| {
        let (c, x) = a.split_at(nk);
        let (c2, y) = f(c, x)?;
        if c2.len() != nk {
            return Err(Error::invalid(
                "scan",
                format!(
                    "the body returned {} carries for {nk} in the init",
                    c2.len()
                ),
            ));
        }
        Ok(c2.into_iter().chain(y).collect())
    })?;
    let mut ops: Vec<&Array> = caps.iter().collect();
    ops.extend(init.iter());
    ops.extend(xs.iter());
    let prim = Scan::new(Arc::new(p), len, reverse, caps.len(), nk);
    let mut outs = crate::array::bind(Arc::new(prim), &ops)?;
    let ys = outs.split_off(nk);
    Ok((outs, ys))
}

/// A tree of `template`'s structure with these leaves, which may differ in shape from the
/// template's (a slice or a stack of it); typed leaves check their own shape.
fn rebuild_leaves<T: crate::tree::Tree>(template: &T, leaves: Vec<Array>) -> Result<T> {
    let mut it = leaves.into_iter();
    template.rebuild(&mut crate::tree::Path::default(), &mut |p, _| {
        it.next()
            .ok_or_else(|| Error::Tree(format!("scan: missing leaf `{}`", p.describe())))
    })
}

/// [`scan`] over trees: `f(carry, x) -> (carry, y)` where the carry is any tree (typed
/// tensors included: its shapes never change) and `x`/`y` are trees of per-step slices.
/// `xs` is `x`'s tree stacked along a new leading axis, and so is the returned `ys`; since
/// a slice and a stack of one tree type have different shapes, `X` and `Y` need leaves that
/// take any shape (`Array`, and `Vec`s, tuples, structs of them). A typed leaf there gives
/// a tree error naming its path, not a panic.
pub fn scan_tree<K: crate::tree::Tree, X: crate::tree::Tree, Y: crate::tree::Tree>(
    f: impl FnOnce(K, X) -> Result<(K, Y)>,
    init: &K,
    xs: &X,
    length: Option<usize>,
    reverse: bool,
) -> Result<(K, Y)> {
    let init_l = crate::tree::leaves(init);
    let xs_l = crate::tree::leaves(xs);
    // The traced `y` only lends its structure to the stacked result.
    let mut y_template: Option<Y> = None;
    let (c, ys) = scan(
        |c, x| {
            let (c2, y) = f(
                rebuild_leaves(init, c.to_vec())?,
                rebuild_leaves(xs, x.to_vec())?,
            )?;
            let yl = crate::tree::leaves(&y);
            y_template = Some(y);
            Ok((crate::tree::leaves(&c2), yl))
        },
        &init_l,
        &xs_l,
        length,
        reverse,
    )?;
    let y_template = y_template.ok_or_else(|| Error::invalid("scan", "the body was not traced"))?;
    Ok((rebuild_leaves(init, c)?, rebuild_leaves(&y_template, ys)?))
}
