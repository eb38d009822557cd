//! Tracing: a thread-local stack of traces. Applying a primitive to a tracer records an
//! equation in the innermost trace instead of computing. The same user code runs eagerly on
//! concrete tensors or staged on tracers; helpers called inside need no annotation.
//!
//! Inputs an equation meets that are not this trace's variables are lifted: concrete arrays
//! become the program's constants, and tracers of an enclosing trace (a closure capturing an
//! outer value) become extra inputs recorded in [`TraceScope::captures`].

use crate::array::{AVal, Array, Tracer};
use crate::error::{Error, Result};
use crate::ir::{Eqn, Program, Var};
use crate::prim::Primitive;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_TRACE: AtomicU64 = AtomicU64::new(1);

struct Frame {
    id: u64,
    prog: Program,
    const_of_buffer: HashMap<usize, Var>,
    captured: Vec<(Array, Var)>,
    capture_of: HashMap<Tracer, Var>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// An open trace on this thread. Dropping it without [`TraceScope::finish`] discards it
/// (so a panic or an early `?` in the traced function leaves no stale trace behind).
#[derive(Debug)]
pub struct TraceScope {
    id: u64,
    done: bool,
}

impl TraceScope {
    /// Opens a new innermost trace.
    pub fn begin() -> TraceScope {
        let id = NEXT_TRACE.fetch_add(1, Ordering::Relaxed);
        STACK.with(|s| {
            s.borrow_mut().push(Frame {
                id,
                prog: Program::default(),
                const_of_buffer: HashMap::new(),
                captured: Vec::new(),
                capture_of: HashMap::new(),
            })
        });
        TraceScope { id, done: false }
    }
    /// This trace's id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// A new input variable of the program, returned as a tracer.
    pub fn new_input(&self, aval: AVal) -> Array {
        self.with_frame(|f| {
            let v = f.prog.new_var(aval.clone());
            f.prog.inputs.push(v);
            Array::from_tracer(
                aval,
                Tracer {
                    trace: f.id,
                    var: v.0,
                },
            )
        })
    }
    fn with_frame<R>(&self, g: impl FnOnce(&mut Frame) -> R) -> R {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            let f = s
                .last_mut()
                .expect("trace stack is not empty while a scope is open");
            assert_eq!(f.id, self.id, "trace scopes must close innermost first");
            g(f)
        })
    }
    /// Closes the trace with these results and returns the program plus the outer values it
    /// captured (appended, in order, after the declared inputs of the program).
    pub fn finish(mut self, outputs: &[Array]) -> Result<(Program, Vec<Array>)> {
        let mut outs = Vec::with_capacity(outputs.len());
        for o in outputs {
            let v = STACK.with(|s| lift(&mut s.borrow_mut(), o))?;
            outs.push(v);
        }
        self.done = true;
        let frame = STACK.with(|s| s.borrow_mut().pop()).expect("frame");
        assert_eq!(frame.id, self.id, "trace scopes must close innermost first");
        let mut prog = frame.prog;
        prog.outputs = outs;
        let mut captured = Vec::new();
        for (outer, v) in frame.captured {
            prog.inputs.push(v);
            captured.push(outer);
        }
        Ok((prog, captured))
    }
}

impl Drop for TraceScope {
    fn drop(&mut self) {
        if !self.done {
            STACK.with(|s| {
                let mut s = s.borrow_mut();
                if s.last().is_some_and(|f| f.id == self.id) {
                    s.pop();
                }
            });
        }
    }
}

/// Whether any trace is open on this thread.
pub fn is_tracing() -> bool {
    STACK.with(|s| !s.borrow().is_empty())
}

/// Maps an array met by the innermost trace to one of its variables.
fn lift(stack: &mut [Frame], a: &Array) -> Result<Var> {
    let depth = stack.len();
    let top = &mut stack[depth - 1];
    match a.tracer() {
        Some(t) if t.trace == top.id => Ok(Var(t.var)),
        Some(t) => {
            if let Some(v) = top.capture_of.get(&t) {
                return Ok(*v);
            }
            let outer_alive = stack[..depth - 1].iter().any(|f| f.id == t.trace);
            if !outer_alive {
                return Err(Error::Concretization(format!(
                    "a traced value {} escaped the function that was being staged (it was \
                     stored outside it, e.g. in a static or a captured variable) and was used \
                     after that trace ended; return it from the function instead",
                    a.aval()
                )));
            }
            let top = &mut stack[depth - 1];
            let v = top.prog.new_var(a.aval().clone());
            top.capture_of.insert(t, v);
            top.captured.push((a.clone(), v));
            Ok(v)
        }
        None => {
            let ptr = a
                .storage_arc()
                .map(|s| Arc::as_ptr(s) as usize)
                .unwrap_or(0);
            if let Some(v) = top.const_of_buffer.get(&ptr) {
                if top.prog.aval(*v) == a.aval() {
                    return Ok(*v);
                }
            }
            let v = top.prog.new_var(a.aval().clone());
            top.prog.consts.push((v, a.clone()));
            top.const_of_buffer.insert(ptr, v);
            Ok(v)
        }
    }
}

/// Records `prim(ins)` into the innermost trace and returns tracers for its outputs.
pub(crate) fn record(
    prim: Arc<dyn Primitive>,
    ins: &[&Array],
    outs: Vec<AVal>,
) -> Result<Vec<Array>> {
    STACK.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_empty() {
            return Err(Error::Concretization(format!(
                "{}: a traced value was used after the function that was being staged \
                 returned; return it from the function instead of storing it",
                prim.name()
            )));
        }
        let mut in_vars = Vec::with_capacity(ins.len());
        for a in ins {
            in_vars.push(lift(&mut s, a)?);
        }
        let top = s.last_mut().expect("nonempty");
        let mut out_vars = Vec::with_capacity(outs.len());
        let mut results = Vec::with_capacity(outs.len());
        for aval in outs {
            let v = top.prog.new_var(aval.clone());
            out_vars.push(v);
            results.push(Array::from_tracer(
                aval,
                Tracer {
                    trace: top.id,
                    var: v.0,
                },
            ));
        }
        top.prog.eqns.push(Eqn {
            prim,
            ins: in_vars,
            outs: out_vars,
        });
        Ok(results)
    })
}

/// Hook run after every eager op (profiling and NaN checks hang off it).
#[inline]
pub(crate) fn after_eager(prim: &dyn Primitive, outs: &[Array]) -> Result<()> {
    crate::debug::check_outputs(prim.name(), outs)
}

/// Traces `f` on fresh tracers with the given abstract inputs and returns the program.
/// Values `f` captures from enclosing traces become extra inputs (returned second).
pub fn trace_fn(
    in_avals: &[AVal],
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
) -> Result<(Program, Vec<Array>)> {
    let scope = TraceScope::begin();
    let ins: Vec<Array> = in_avals
        .iter()
        .map(|a| scope.new_input(a.clone()))
        .collect();
    let outs = f(&ins)?;
    scope.finish(&outs)
}

/// Turns a concrete array into a tracer (a constant of the innermost trace), so that ops on
/// it are recorded rather than computed at trace time. Used where a constant meets a tracer
/// through a composite (broadcasting a scalar to a traced operand's shape would otherwise
/// materialize the full-size constant while tracing).
pub fn lift_concrete(a: &Array) -> Result<Array> {
    if a.is_tracer() {
        return Ok(a.clone());
    }
    STACK.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_empty() {
            return Ok(a.clone());
        }
        let v = lift(&mut s, a)?;
        let top = s.last().expect("nonempty");
        Ok(Array::from_tracer(
            a.aval().clone(),
            Tracer {
                trace: top.id,
                var: v.0,
            },
        ))
    })
}
