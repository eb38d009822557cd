//! The verifier: every variable defined once before use, every equation's recorded avals
//! equal to its primitive's shape rule, nested programs verified too. Run after every pass
//! in debug builds and tests.

use super::Program;
use crate::error::{Error, Result};

/// Checks a program's SSA form, shapes and dtypes (recursively).
pub fn verify(p: &Program) -> Result<()> {
    let err = |m: String| {
        Err(Error::Invalid {
            op: "verify",
            msg: m,
        })
    };
    let mut defined = vec![false; p.avals.len()];
    fn define(defined: &mut [bool], v: super::Var, what: &str) -> Result<()> {
        if v.index() >= defined.len() {
            return Err(Error::Invalid {
                op: "verify",
                msg: format!("{what} uses undeclared variable {}", v.0),
            });
        }
        if defined[v.index()] {
            return Err(Error::Invalid {
                op: "verify",
                msg: format!("variable {} defined twice ({what})", v.0),
            });
        }
        defined[v.index()] = true;
        Ok(())
    }
    for &v in &p.inputs {
        define(&mut defined, v, "input")?;
    }
    for (v, a) in &p.consts {
        define(&mut defined, *v, "const")?;
        if a.aval() != p.aval(*v) {
            return err(format!(
                "const {} has aval {} but is declared {}",
                v.0,
                a.aval(),
                p.aval(*v)
            ));
        }
    }
    for (i, e) in p.eqns.iter().enumerate() {
        for &v in &e.ins {
            if v.index() >= p.avals.len() || !defined_check(&defined, v) {
                return err(format!(
                    "eqn {i} ({}) uses variable {} before it is defined",
                    e.prim.name(),
                    v.0
                ));
            }
        }
        let ins: Vec<_> = e.ins.iter().map(|&v| p.aval(v).clone()).collect();
        let outs = e.prim.abstract_eval(&ins)?;
        if outs.len() != e.outs.len() {
            return err(format!(
                "eqn {i} ({}) has {} outputs, its rule gives {}",
                e.prim.name(),
                e.outs.len(),
                outs.len()
            ));
        }
        for (o, a) in e.outs.iter().zip(&outs) {
            if p.aval(*o) != a {
                return err(format!(
                    "eqn {i} ({}) output {} declared {} but the shape rule gives {}",
                    e.prim.name(),
                    o.0,
                    p.aval(*o),
                    a
                ));
            }
        }
        for &o in &e.outs {
            define(&mut defined, o, e.prim.name())?;
        }
        for sub in e.prim.sub_programs() {
            verify(sub)?;
        }
    }
    for &o in &p.outputs {
        if o.index() >= p.avals.len() || !defined_check(&defined, o) {
            return err(format!("output variable {} is never defined", o.0));
        }
    }
    Ok(())
}

fn defined_check(defined: &[bool], v: super::Var) -> bool {
    defined[v.index()]
}
