//! The `while_loop` primitive (`lax.while_loop`): repeats a body program on a carry tuple
//! while a predicate program returns true. The trip count is data dependent, so there is no
//! reverse-mode rule (as in JAX); `fori_loop` with static bounds goes through `scan`
//! instead and is differentiable.

use crate::array::{AVal, Array, HostView};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::Executable;
use crate::ir::Program;
use crate::prim::broadcast_in_dim::{batch_size, batch_to_front, broadcast_in_dim};
use crate::prim::cond::{check_avals, compiled, into_storage, trace_closure, views_to_arrays};
use crate::prim::Primitive;
use crate::storage::Storage;
use crate::trace::trace_fn;
use std::sync::{Arc, OnceLock};

/// `while[cond, body](cond_consts..., body_consts..., carry...)`: `while cond(cc, carry) {
/// carry = body(bc, carry) }`, returning the final carry.
#[derive(Debug)]
pub struct WhileLoop {
    /// `(cond_consts..., carry...) -> bool scalar`.
    pub cond: Arc<Program>,
    /// `(body_consts..., carry...) -> carry`.
    pub body: Arc<Program>,
    /// Number of leading operands that are the predicate's consts.
    pub cond_nconsts: usize,
    /// Number of operands after those that are the body's consts.
    pub body_nconsts: usize,
    exes: [OnceLock<Executable>; 2],
}

impl WhileLoop {
    /// A loop over these programs.
    pub fn new(
        cond: Arc<Program>,
        body: Arc<Program>,
        cond_nconsts: usize,
        body_nconsts: usize,
    ) -> Self {
        WhileLoop {
            cond,
            body,
            cond_nconsts,
            body_nconsts,
            exes: [OnceLock::new(), OnceLock::new()],
        }
    }
}

impl Primitive for WhileLoop {
    fn name(&self) -> &'static str {
        "while"
    }
    fn params(&self) -> String {
        format!(
            "cond_nconsts={} body_nconsts={}",
            self.cond_nconsts, self.body_nconsts
        )
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let (nc, nb) = (self.cond_nconsts, self.body_nconsts);
        if ins.len() < nc + nb {
            return Err(Error::invalid(
                "while",
                format!("{} operands but {} consts", ins.len(), nc + nb),
            ));
        }
        let carry = &ins[nc + nb..];
        let mut want: Vec<AVal> = ins[..nc].to_vec();
        want.extend(carry.iter().cloned());
        check_avals(
            "while",
            "predicate inputs vs (cond consts, carry)",
            &self.cond.input_avals(),
            &want,
        )?;
        check_avals(
            "while",
            "predicate output",
            &self.cond.output_avals(),
            &[AVal::new(Vec::<usize>::new(), DType::Bool)],
        )?;
        let mut want: Vec<AVal> = ins[nc..nc + nb].to_vec();
        want.extend(carry.iter().cloned());
        check_avals(
            "while",
            "body inputs vs (body consts, carry)",
            &self.body.input_avals(),
            &want,
        )?;
        check_avals(
            "while",
            "body output carry vs input carry",
            &self.body.output_avals(),
            carry,
        )?;
        Ok(carry.to_vec())
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let (nc, nb) = (self.cond_nconsts, self.body_nconsts);
        let ins = views_to_arrays(ins)?;
        let cexe = compiled(&self.exes[0], &self.cond)?;
        let bexe = compiled(&self.exes[1], &self.body)?;
        let mut carry: Vec<Array> = ins[nc + nb..].to_vec();
        loop {
            let mut a: Vec<Array> = ins[..nc].to_vec();
            a.extend(carry.iter().cloned());
            let p = cexe.run_owned(a)?;
            if p[0].storage("while")?.get_f64(0) == 0.0 {
                break;
            }
            let mut a: Vec<Array> = ins[nc..nc + nb].to_vec();
            a.append(&mut carry);
            carry = bexe.run_owned(a)?;
        }
        carry.into_iter().map(into_storage).collect()
    }
    fn sub_programs(&self) -> Vec<&Program> {
        vec![&self.cond, &self.body]
    }
    fn vjp(&self, _p: &[Array], _o: &[Array], _c: &[Option<Array>]) -> Result<Vec<Option<Array>>> {
        Err(Error::unsupported(
            "while",
            "reverse-mode differentiation of while_loop with a traced trip count is not supported; \
             use fori_loop with a static trip count or scan",
        ))
    }
    fn batch(
        &self,
        args: &[Array],
        dims: &[Option<usize>],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        // JAX's rule: the whole carry is batched (along axis 0); the loop runs while any
        // example's predicate holds, and each step only updates the examples whose predicate
        // still holds (a `select`), so finished examples keep their final carry.
        let n = batch_size("while", args, dims)?;
        let (nc, nb) = (self.cond_nconsts, self.body_nconsts);
        let cconsts = &args[..nc];
        let bconsts = &args[nc..nc + nb];
        let (cdims, bdims) = (&dims[..nc], &dims[nc..nc + nb]);
        let carry: Vec<Array> = args[nc + nb..]
            .iter()
            .zip(&dims[nc + nb..])
            .map(|(a, d)| batch_to_front(a, *d, n))
            .collect::<Result<_>>()?;
        let carry_avals: Vec<AVal> = carry.iter().map(|a| a.aval().clone()).collect();
        let mut cond_in_dims: Vec<Option<usize>> = cdims.to_vec();
        cond_in_dims.extend(std::iter::repeat_n(Some(0), carry.len()));
        let cond = &self.cond;
        // Each example's predicate, a bool vector of length n.
        let preds = |a: &[Array]| -> Result<Array> {
            let (p, d) = crate::vmap::batch_emit(cond, a, &cond_in_dims)?;
            batch_to_front(&p[0], d[0], n)
        };
        let mut avals: Vec<AVal> = cconsts.iter().map(|a| a.aval().clone()).collect();
        avals.extend(carry_avals.iter().cloned());
        let (new_cond, caps) = trace_fn(&avals, |a| {
            let p = preds(a)?;
            Ok(vec![crate::prim::reduce::reduce_max(&p, &[0])?])
        })?;
        if !caps.is_empty() {
            return Err(Error::invalid(
                "while",
                "a batched predicate captured an outer value",
            ));
        }
        let mut avals: Vec<AVal> = cconsts
            .iter()
            .chain(bconsts)
            .map(|a| a.aval().clone())
            .collect();
        avals.extend(carry_avals.iter().cloned());
        let mut body_in_dims: Vec<Option<usize>> = bdims.to_vec();
        body_in_dims.extend(std::iter::repeat_n(Some(0), carry.len()));
        let body = &self.body;
        let (new_body, caps) = trace_fn(&avals, |a| {
            let (cc, rest) = a.split_at(nc);
            let (bc, c) = rest.split_at(nb);
            let mut pa: Vec<Array> = cc.to_vec();
            pa.extend(c.iter().cloned());
            let p = preds(&pa)?;
            let mut ba: Vec<Array> = bc.to_vec();
            ba.extend(c.iter().cloned());
            let (outs, ods) = crate::vmap::batch_emit(body, &ba, &body_in_dims)?;
            outs.iter()
                .zip(ods)
                .zip(c)
                .map(|((o, d), old)| {
                    let new = batch_to_front(o, d, n)?;
                    let pb = broadcast_in_dim(&p, new.shape(), &[0])?;
                    crate::prim::select::select(&pb, &new, old)
                })
                .collect()
        })?;
        if !caps.is_empty() {
            return Err(Error::invalid(
                "while",
                "a batched body captured an outer value",
            ));
        }
        let mut ops: Vec<&Array> = cconsts.iter().collect();
        ops.extend(cconsts.iter().chain(bconsts));
        ops.extend(carry.iter());
        let prim = WhileLoop::new(Arc::new(new_cond), Arc::new(new_body), nc, nc + nb);
        let outs = crate::array::bind(Arc::new(prim), &ops)?;
        let nd = vec![Some(0); outs.len()];
        Ok((outs, nd))
    }
}

/// `lax.while_loop(cond_fn, body_fn, init)`: `carry = init; while cond_fn(carry) { carry =
/// body_fn(carry) }`. `cond_fn` returns a bool scalar; `body_fn` returns a carry with the
/// same shapes and dtypes. Values the functions capture are passed as consts. Not
/// differentiable in reverse mode (use [`fori_loop`] with static bounds or `scan`).
pub fn while_loop(
    cond_fn: impl FnOnce(&[Array]) -> Result<Array>,
    body_fn: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    init: &[Array],
) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = init.iter().map(|a| a.aval().clone()).collect();
    let (cp, ccaps) = trace_closure(&avals, |a| Ok(vec![cond_fn(a)?]))?;
    let (bp, bcaps) = trace_closure(&avals, body_fn)?;
    let mut ops: Vec<&Array> = ccaps.iter().chain(&bcaps).collect();
    ops.extend(init.iter());
    let prim = WhileLoop::new(Arc::new(cp), Arc::new(bp), ccaps.len(), bcaps.len());
    crate::array::bind(Arc::new(prim), &ops)
}

/// `lax.fori_loop(lo, hi, body_fn, init)` with static bounds: `for i in lo..hi { carry =
/// body_fn(i, carry) }`, `i` an i32 scalar. Lowered to a `scan` of `hi - lo` steps, so it is
/// differentiable (reverse and forward mode).
pub fn fori_loop(
    lo: usize,
    hi: usize,
    body_fn: impl Fn(&Array, &[Array]) -> Result<Vec<Array>>,
    init: &[Array],
) -> Result<Vec<Array>> {
    if hi <= lo {
        return Ok(init.to_vec());
    }
    let lo_i = i32::try_from(lo)
        .map_err(|_| Error::invalid("fori_loop", format!("lower bound {lo} exceeds i32")))?;
    i32::try_from(hi)
        .map_err(|_| Error::invalid("fori_loop", format!("upper bound {hi} exceeds i32")))?;
    let mut carry0 = vec![Array::scalar(lo_i)];
    carry0.extend(init.iter().cloned());
    let (carry, _) = crate::prim::scan::scan(
        |c, _| {
            let i = &c[0];
            let mut next = vec![crate::prim::binary::binary_scalar(
                crate::prim::binary::BinaryOp::Add,
                i,
                1.0,
            )?];
            next.extend(body_fn(i, &c[1..])?);
            Ok((next, vec![]))
        },
        &carry0,
        &[],
        Some(hi - lo),
        false,
    )?;
    Ok(carry[1..].to_vec())
}

/// `lax.fori_loop` with traced bounds (integer scalars): a `while_loop` over `(i, hi,
/// carry)`. Not differentiable in reverse mode, as in JAX.
pub fn fori_loop_traced(
    lo: &Array,
    hi: &Array,
    body_fn: impl Fn(&Array, &[Array]) -> Result<Vec<Array>>,
    init: &[Array],
) -> Result<Vec<Array>> {
    let as_i32 = |a: &Array, what: &str| -> Result<Array> {
        if a.rank() != 0 || a.dtype().is_float() || a.dtype() == DType::Bool {
            return Err(Error::dtype(
                "fori_loop",
                format!(
                    "the {what} bound must be an integer scalar, got {}",
                    a.aval()
                ),
            ));
        }
        crate::prim::convert::convert(a, DType::I32)
    };
    let mut carry0 = vec![as_i32(lo, "lower")?, as_i32(hi, "upper")?];
    carry0.extend(init.iter().cloned());
    let out = while_loop(
        |c| crate::prim::compare::compare(crate::prim::compare::CompareOp::Lt, &c[0], &c[1]),
        |c| {
            let mut next = vec![
                crate::prim::binary::binary_scalar(crate::prim::binary::BinaryOp::Add, &c[0], 1.0)?,
                c[1].clone(),
            ];
            next.extend(body_fn(&c[0], &c[2..])?);
            Ok(next)
        },
        &carry0,
    )?;
    Ok(out[2..].to_vec())
}
