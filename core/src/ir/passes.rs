//! Program-to-program passes that keep meaning exactly: dead-code elimination, common
//! subexpression elimination and constant folding. Fusion and buffer planning happen when a
//! backend compiles the program (see `exec`).

use super::{Eqn, Program, Var};
use crate::array::{bind, Array};
use crate::error::Result;
use std::collections::HashMap;

/// Runs the standard pipeline (fold, CSE, DCE), verifying after each pass in debug builds.
pub fn optimize(p: &Program) -> Result<Program> {
    let p = const_fold(p)?;
    check(&p)?;
    let p = simplify(&p);
    check(&p)?;
    let p = cse(&p);
    check(&p)?;
    let p = dce(&p);
    check(&p)?;
    Ok(p)
}

fn check(p: &Program) -> Result<()> {
    if cfg!(debug_assertions) {
        super::verify(p)?;
    }
    Ok(())
}

/// Removes equations whose results are never used (keeping side effects), and unused consts.
pub fn dce(p: &Program) -> Program {
    let mut live = vec![false; p.avals.len()];
    for &o in &p.outputs {
        live[o.index()] = true;
    }
    let mut keep = vec![false; p.eqns.len()];
    for (i, e) in p.eqns.iter().enumerate().rev() {
        if e.prim.has_side_effects() || e.outs.iter().any(|o| live[o.index()]) {
            keep[i] = true;
            for &v in &e.ins {
                live[v.index()] = true;
            }
        }
    }
    let mut out = p.clone();
    out.eqns = p
        .eqns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(e, _)| e.clone())
        .collect();
    out.consts.retain(|(v, _)| live[v.index()]);
    out
}

/// Merges equations that apply the same primitive with the same params to the same operands,
/// and constants that share a buffer.
pub fn cse(p: &Program) -> Program {
    let mut subst: HashMap<Var, Var> = HashMap::new();
    let mut out = p.clone();
    let mut seen_const: HashMap<usize, Var> = HashMap::new();
    out.consts.retain(|(v, a)| {
        let Some(ptr) = a.storage_arc().map(|s| std::sync::Arc::as_ptr(s) as usize) else {
            return true;
        };
        match seen_const.get(&ptr) {
            Some(&first) if p.aval(first) == p.aval(*v) => {
                subst.insert(*v, first);
                false
            }
            _ => {
                seen_const.insert(ptr, *v);
                true
            }
        }
    });
    let mut seen: HashMap<(String, String, Vec<Var>), Vec<Var>> = HashMap::new();
    let mut eqns = Vec::with_capacity(p.eqns.len());
    for e in &p.eqns {
        let ins: Vec<Var> = e.ins.iter().map(|v| *subst.get(v).unwrap_or(v)).collect();
        let e = Eqn {
            prim: e.prim.clone(),
            ins,
            outs: e.outs.clone(),
        };
        if !e.prim.has_side_effects() && e.prim.sub_programs().is_empty() {
            let key = (e.prim.name().to_string(), e.prim.params(), e.ins.clone());
            if let Some(prev) = seen.get(&key) {
                for (o, q) in e.outs.iter().zip(prev) {
                    subst.insert(*o, *q);
                }
                continue;
            }
            seen.insert(key, e.outs.clone());
        }
        eqns.push(e);
    }
    out.eqns = eqns;
    out.outputs = p
        .outputs
        .iter()
        .map(|v| *subst.get(v).unwrap_or(v))
        .collect();
    out
}

/// Evaluates equations whose operands are all constants, when that does not grow the data
/// (folding a broadcast would materialize what fusion gets for free).
pub fn const_fold(p: &Program) -> Result<Program> {
    let mut consts: HashMap<Var, Array> = p.consts.iter().cloned().collect();
    let mut out = p.clone();
    out.eqns.clear();
    let mut new_consts = p.consts.clone();
    for e in &p.eqns {
        let foldable = !e.ins.is_empty()
            && !e.prim.has_side_effects()
            && e.prim.sub_programs().is_empty()
            && e.ins.iter().all(|v| consts.contains_key(v));
        if foldable {
            let in_elems: usize = e.ins.iter().map(|v| p.aval(*v).numel()).sum();
            let out_elems: usize = e.outs.iter().map(|v| p.aval(*v).numel()).sum();
            if out_elems <= in_elems.max(1) {
                let args: Vec<&Array> = e.ins.iter().map(|v| &consts[v]).collect();
                let vals = bind(e.prim.clone(), &args)?;
                for (o, val) in e.outs.iter().zip(vals) {
                    consts.insert(*o, val.clone());
                    new_consts.push((*o, val));
                }
                continue;
            }
        }
        out.eqns.push(e.clone());
    }
    out.consts = new_consts;
    Ok(out)
}

struct Ctx<'a> {
    p: &'a Program,
    e: &'a Eqn,
    in_avals: Vec<crate::array::AVal>,
    consts: &'a HashMap<Var, Array>,
    producers: &'a HashMap<Var, usize>,
    eqns: &'a [Eqn],
}

impl crate::prim::SimplifyCtx for Ctx<'_> {
    fn in_avals(&self) -> &[crate::array::AVal] {
        &self.in_avals
    }
    fn out_aval(&self) -> &crate::array::AVal {
        self.p.aval(self.e.outs[0])
    }
    fn splat(&self, i: usize) -> Option<f64> {
        let mut v = self.e.ins[i];
        // Follow broadcasts back to a constant: `x * 2.0` traces as a broadcast scalar.
        loop {
            if let Some(a) = self.consts.get(&v) {
                let s = a.storage_arc()?;
                let first = s.get_f64(0);
                let all_same = (0..s.len()).all(|k| s.get_f64(k).to_bits() == first.to_bits());
                return (!s.is_empty() && all_same).then_some(first);
            }
            let &k = self.producers.get(&v)?;
            let pe = &self.eqns[k];
            pe.prim.broadcast_pattern()?;
            v = pe.ins[0];
        }
    }
    fn producer(&self, i: usize) -> Option<(&dyn crate::prim::Primitive, &[Var])> {
        let &k = self.producers.get(&self.e.ins[i])?;
        let pe = &self.eqns[k];
        Some((pe.prim.as_ref(), &pe.ins))
    }
}

/// Drops equations whose result provably equals an existing value (each primitive's
/// `simplify` rule decides; only bit-exact rewrites), renaming their uses.
pub fn simplify(p: &Program) -> Program {
    let consts: HashMap<Var, Array> = p.consts.iter().cloned().collect();
    let mut producers: HashMap<Var, usize> = HashMap::new();
    let mut subst: HashMap<Var, Var> = HashMap::new();
    let mut eqns: Vec<Eqn> = Vec::with_capacity(p.eqns.len());
    for e in &p.eqns {
        let ins: Vec<Var> = e.ins.iter().map(|v| *subst.get(v).unwrap_or(v)).collect();
        let e = Eqn {
            prim: e.prim.clone(),
            ins,
            outs: e.outs.clone(),
        };
        // A transpose feeding a dot_general becomes strides of its operand.
        let e = crate::prim::dot_general::absorb_transposes(&e, |v| {
            producers.get(&v).map(|&i| &eqns[i])
        })
        .unwrap_or(e);
        if e.outs.len() == 1 && !e.prim.has_side_effects() {
            let ctx = Ctx {
                p,
                e: &e,
                in_avals: e.ins.iter().map(|v| p.aval(*v).clone()).collect(),
                consts: &consts,
                producers: &producers,
                eqns: &eqns,
            };
            let target = match e.prim.simplify(&ctx) {
                Some(crate::prim::Simplified::Operand(i)) => e.ins.get(i).copied(),
                Some(crate::prim::Simplified::Var(v)) => Some(v),
                None => None,
            };
            if let Some(t) = target.filter(|t| p.aval(*t) == p.aval(e.outs[0])) {
                subst.insert(e.outs[0], t);
                continue;
            }
        }
        for o in &e.outs {
            producers.insert(*o, eqns.len());
        }
        eqns.push(e);
    }
    let mut out = p.clone();
    out.eqns = eqns;
    out.outputs = p
        .outputs
        .iter()
        .map(|v| *subst.get(v).unwrap_or(v))
        .collect();
    dce(&out)
}
