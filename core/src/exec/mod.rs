//! The CPU executor: compiles a program into a list of steps and runs it. Chains of
//! elementwise equations (with broadcast operands) become one fused step that walks its
//! operands in L1-sized chunks, so intermediates never reach memory; everything else runs
//! its primitive's host kernel. Buffers are dropped after their last use, and a fused step
//! writes into a dying operand's buffer when it can (in-place execution).

mod codegen;
mod fused;
mod kernels;
mod pool;

use crate::array::{Array, HostView, Repr};
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

pub use fused::Region;
pub use pool::{clear_buffer_pool, pooled_idle_bytes};

thread_local! {
    static BYTES_ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

/// Bytes of output buffers the executor allocated on this thread so far (instrumentation
/// for tests: fusion and in-place reuse show up as fewer bytes).
pub fn bytes_allocated() -> u64 {
    BYTES_ALLOCATED.with(|c| c.get())
}

/// Drops the buffer pool's reference to `s` (see [`JitArgs::donate`](crate::jit::JitArgs::donate)).
pub(crate) fn forget_pooled(s: &Arc<crate::storage::Storage>) {
    pool::forget(s)
}

/// A buffer of `len` elements of `dtype` that the executor's pool holds and nobody else
/// references (already faulted in), for host kernels that overwrite every element of their
/// output (gemm with β = 0). Large fresh outputs otherwise cost a page fault per page.
pub(crate) fn take_pooled(
    dtype: crate::dtype::DType,
    len: usize,
) -> Option<crate::storage::Storage> {
    pool::take(dtype, len)
}

pub(crate) fn note_alloc(bytes: usize) {
    BYTES_ALLOCATED.with(|c| c.set(c.get() + bytes as u64));
}

#[derive(Debug)]
enum StepKind {
    /// Run equation `eqn` of the program with its host kernel.
    Prim(usize),
    /// Run a fused elementwise region.
    Fused(Box<Region>),
}

#[derive(Debug)]
struct Step {
    kind: StepKind,
    /// Variables whose last use is this step.
    frees: Vec<Var>,
}

/// A compiled program, ready to run many times.
pub struct Executable {
    prog: Program,
    steps: Vec<Step>,
}

impl fmt::Debug for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executable")
            .field("steps", &self.describe())
            .finish()
    }
}

/// Options for compilation.
#[derive(Clone, Copy, Debug)]
pub struct CompileOptions {
    /// Fuse elementwise chains (on by default; off to compare).
    pub fuse: bool,
    /// Run fused f32 regions as generated machine code where the CPU and the region allow
    /// it (on by default; off runs them on the chunked interpreter, to compare). The
    /// environment variable `FERRAX_NO_CODEGEN=1` turns it off everywhere.
    pub codegen: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            fuse: true,
            codegen: true,
        }
    }
}

impl Executable {
    /// Optimizes and compiles a program with default options.
    pub fn compile(prog: &Program) -> Result<Executable> {
        Self::compile_with(prog, CompileOptions::default())
    }

    /// Optimizes and compiles a program.
    pub fn compile_with(prog: &Program, opts: CompileOptions) -> Result<Executable> {
        let prog = crate::ir::passes::optimize(prog)?;
        let mut steps: Vec<Step> = Vec::new();
        let groups = if opts.fuse {
            fused::partition(&prog)
        } else {
            fused::no_fusion(&prog)
        };
        for g in groups {
            match g {
                fused::Group::Single(i) => steps.push(Step {
                    kind: StepKind::Prim(i),
                    frees: vec![],
                }),
                fused::Group::Region(mut r) => steps.push(Step {
                    kind: StepKind::Fused(Box::new({
                        if !opts.codegen {
                            r.drop_codegen();
                        }
                        r
                    })),
                    frees: vec![],
                }),
            }
        }
        // Last-use analysis: free each variable after the last step that reads it.
        let mut last_use: Vec<Option<usize>> = vec![None; prog.avals.len()];
        for (si, s) in steps.iter().enumerate() {
            for v in step_inputs(&prog, s) {
                last_use[v.index()] = Some(si);
            }
        }
        for &o in &prog.outputs {
            last_use[o.index()] = None;
        }
        for (v, lu) in last_use.iter().enumerate() {
            if let Some(si) = lu {
                steps[*si].frees.push(Var(v as u32));
            }
        }
        Ok(Executable { prog, steps })
    }

    /// The optimized program this executable runs.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// Number of steps (kernels) one run executes.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Number of fused steps.
    pub fn fused_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Fused(_)))
            .count()
    }

    /// Number of fused steps that run as generated machine code (see `CompileOptions`).
    pub fn generated_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(&s.kind, StepKind::Fused(r) if r.is_generated()))
            .count()
    }

    /// One line per step: the primitive name, or `fused[...]` with its members.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Prim(i) => self.prog.eqns[*i].prim.name().to_string(),
                StepKind::Fused(r) => r.describe(&self.prog),
            })
            .collect()
    }

    /// Runs the program on concrete arguments (one per program input).
    pub fn run(&self, args: &[Array]) -> Result<Vec<Array>> {
        self.run_owned(args.to_vec())
    }

    /// Runs the program, taking ownership of the arguments so their buffers can be reused
    /// when they die inside the program (donation).
    pub fn run_owned(&self, args: Vec<Array>) -> Result<Vec<Array>> {
        let p = &self.prog;
        if args.len() != p.inputs.len() {
            return Err(Error::invalid(
                "Executable::run",
                format!(
                    "program takes {} arguments, got {}",
                    p.inputs.len(),
                    args.len()
                ),
            ));
        }
        let nan_check = crate::debug::debug_nans_enabled();
        let saved_args = if nan_check { Some(args.clone()) } else { None };
        let mut env: Vec<Option<Array>> = vec![None; p.avals.len()];
        for (a, &v) in args.into_iter().zip(&p.inputs) {
            if a.aval() != p.aval(v) {
                return Err(Error::shape(
                    "Executable::run",
                    format!(
                        "argument for {} has {}, the program expects {}",
                        v.0,
                        a.aval(),
                        p.aval(v)
                    ),
                ));
            }
            if a.is_tracer() {
                return Err(Error::invalid(
                    "Executable::run",
                    "a compiled program runs on concrete arrays; inline the function when tracing",
                ));
            }
            // The CPU executor reads a device argument through its host copy.
            let a = if a.is_on_device() {
                a.to_device(&crate::device::Device::Cpu)?
            } else {
                a
            };
            // The pool's own reference must not make an argument look shared.
            if let Repr::Host(s) = &a.repr {
                pool::forget(s);
            }
            env[v.index()] = Some(a);
        }
        for (v, a) in &p.consts {
            env[v.index()] = Some(if a.is_on_device() {
                a.to_device(&crate::device::Device::Cpu)?
            } else {
                a.clone()
            });
        }
        let profiling = crate::profiler::is_active();
        for s in &self.steps {
            let t0 = profiling.then(std::time::Instant::now);
            let name = match &s.kind {
                StepKind::Prim(i) => {
                    let e = &p.eqns[*i];
                    let outs = {
                        let views: Vec<HostView<'_>> = e
                            .ins
                            .iter()
                            .map(|v| {
                                let a = env[v.index()].as_ref().expect("operand computed");
                                match &a.repr {
                                    Repr::Host(s) => HostView {
                                        shape: &a.aval.shape,
                                        data: s,
                                    },
                                    Repr::Tracer(_) | Repr::Device(_) => {
                                        unreachable!("executables run on host arrays")
                                    }
                                }
                            })
                            .collect();
                        let out_avals: Vec<_> = e.outs.iter().map(|v| p.aval(*v).clone()).collect();
                        let outs = e.prim.eval(&views, &out_avals)?;
                        outs.into_iter()
                            .zip(out_avals)
                            .map(|(st, aval)| {
                                note_alloc(st.size_bytes());
                                Array {
                                    aval,
                                    repr: Repr::Host(Arc::new(st)),
                                }
                            })
                            .collect::<Vec<_>>()
                    };
                    crate::debug::check_outputs(e.prim.name(), &outs)?;
                    for (o, a) in e.outs.iter().zip(outs) {
                        env[o.index()] = Some(a);
                    }
                    e.prim.name()
                }
                StepKind::Fused(r) => {
                    r.run(p, &mut env, &s.frees)?;
                    if let Some(args) = &saved_args {
                        let outs: Vec<Array> = r
                            .output_vars()
                            .iter()
                            .filter_map(|v| env[v.index()].clone())
                            .collect();
                        if crate::debug::check_outputs("fused", &outs).is_err() {
                            // Find the culprit as JAX does: re-run op by op, where every
                            // primitive's outputs are checked.
                            crate::ad::interpret(p, args)?;
                        }
                        crate::debug::check_outputs(&r.describe(p), &outs)?;
                    }
                    "fused"
                }
            };
            for v in &s.frees {
                // A dead intermediate nobody else holds goes back to the pool.
                if let Some(Array {
                    repr: Repr::Host(st),
                    ..
                }) = env[v.index()].take()
                {
                    if Arc::strong_count(&st) == 1 {
                        pool::keep(&st);
                    }
                }
            }
            if let Some(t0) = t0 {
                // A fused step is named by its members (`fused[mul,reduce_sum]`), so the
                // profile still shows which primitives ran.
                let described;
                let name = match &s.kind {
                    StepKind::Fused(r) => {
                        described = r.describe(p);
                        described.as_str()
                    }
                    StepKind::Prim(_) => name,
                };
                crate::profiler::record_step(name, t0.elapsed());
            }
        }
        let outs: Vec<Array> = p
            .outputs
            .iter()
            .map(|v| env[v.index()].clone().expect("output computed"))
            .collect();
        // Remembered so that, once the caller drops an output, the next run can refill its
        // (already faulted-in) buffer instead of allocating a fresh one.
        for a in &outs {
            if let Repr::Host(s) = &a.repr {
                pool::keep(s);
            }
        }
        Ok(outs)
    }
}

fn step_inputs(p: &Program, s: &Step) -> Vec<Var> {
    match &s.kind {
        StepKind::Prim(i) => p.eqns[*i].ins.clone(),
        StepKind::Fused(r) => r.input_vars(),
    }
}
