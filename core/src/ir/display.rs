//! The text form of programs, like a jaxpr: `{ lambda ; a:f32[3]. let b:f32[3] = exp a in (b) }`.

use super::{Program, Var};
use std::fmt;

fn var_name(v: Var) -> String {
    // a..z, then ba, bb, ... like jaxprs.
    let mut n = v.0 as usize;
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

impl Program {
    fn fmt_indented(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = " ".repeat(indent);
        let typed = |v: Var| format!("{}:{}", var_name(v), self.aval(v));
        let consts: Vec<String> = self.consts.iter().map(|(v, _)| typed(*v)).collect();
        let ins: Vec<String> = self.inputs.iter().map(|&v| typed(v)).collect();
        writeln!(f, "{{ lambda {}; {}. let", consts.join(" "), ins.join(" "))?;
        for e in &self.eqns {
            let outs: Vec<String> = e.outs.iter().map(|&v| typed(v)).collect();
            let args: Vec<String> = e.ins.iter().map(|&v| var_name(v)).collect();
            let params = e.prim.params();
            let params = if params.is_empty() {
                String::new()
            } else {
                format!("[{params}]")
            };
            writeln!(
                f,
                "{pad}    {} = {}{} {}",
                outs.join(" "),
                e.prim.name(),
                params,
                args.join(" ")
            )?;
            for sub in e.prim.sub_programs() {
                write!(f, "{pad}      ")?;
                sub.fmt_indented(f, indent + 6)?;
                writeln!(f)?;
            }
        }
        let outs: Vec<String> = self.outputs.iter().map(|&v| var_name(v)).collect();
        write!(f, "{pad}  in ({}) }}", outs.join(", "))
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indented(f, 0)
    }
}
