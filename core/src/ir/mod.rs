//! The IR: a program is a list of equations `outs = prim[params](ins)` over SSA variables
//! with concrete shapes and dtypes. Tracing produces programs; transformations and passes
//! map programs to programs; backends compile them. Nested programs (control flow) live
//! inside primitives' params and are reached through [`Primitive::sub_programs`].

mod display;
pub mod passes;
mod verify;

use crate::array::{AVal, Array};
use crate::prim::Primitive;
use std::sync::Arc;

pub use verify::verify;

/// An SSA variable: an index into [`Program::avals`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

impl Var {
    /// The variable's index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One equation: `outs = prim(ins)`.
#[derive(Clone, Debug)]
pub struct Eqn {
    /// The primitive with its static params.
    pub prim: Arc<dyn Primitive>,
    /// Operand variables.
    pub ins: Vec<Var>,
    /// Result variables (each defined exactly once in a program).
    pub outs: Vec<Var>,
}

/// A staged program.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Abstract value of every variable, indexed by `Var`.
    pub avals: Vec<AVal>,
    /// Variables bound to the arguments, in order.
    pub inputs: Vec<Var>,
    /// Variables bound to constant arrays captured while tracing.
    pub consts: Vec<(Var, Array)>,
    /// Equations in execution order.
    pub eqns: Vec<Eqn>,
    /// Result variables, in order (may repeat, and may be inputs or constants).
    pub outputs: Vec<Var>,
}

impl Program {
    /// Allocates a fresh variable of the given abstract value.
    pub fn new_var(&mut self, aval: AVal) -> Var {
        self.avals.push(aval);
        Var((self.avals.len() - 1) as u32)
    }
    /// The abstract value of a variable.
    pub fn aval(&self, v: Var) -> &AVal {
        &self.avals[v.index()]
    }
    /// Abstract values of the inputs.
    pub fn input_avals(&self) -> Vec<AVal> {
        self.inputs.iter().map(|&v| self.aval(v).clone()).collect()
    }
    /// Abstract values of the outputs.
    pub fn output_avals(&self) -> Vec<AVal> {
        self.outputs.iter().map(|&v| self.aval(v).clone()).collect()
    }
    /// Number of equations, counting those of nested programs.
    pub fn eqn_count(&self) -> usize {
        self.eqns
            .iter()
            .map(|e| {
                1 + e
                    .prim
                    .sub_programs()
                    .iter()
                    .map(|p| p.eqn_count())
                    .sum::<usize>()
            })
            .sum()
    }
    /// Whether some equation (at any depth) applies a primitive of this name.
    pub fn contains_prim(&self, name: &str) -> bool {
        self.eqns.iter().any(|e| {
            e.prim.name() == name || e.prim.sub_programs().iter().any(|p| p.contains_prim(name))
        })
    }
}
