//! Automatic differentiation as program transformations. Reverse mode re-emits a program's
//! equations on tracers of a new trace and then walks them backwards, calling each
//! primitive's `vjp` rule (written with lax functions, so the result is a program that can
//! be transformed again: grad of grad, jvp of grad). Forward mode is derived from the
//! reverse rules by the linearity trick: `u ↦ vjp(f, x)(u)` is linear, so its own vjp at
//! any point applied to a tangent `t` gives `J·t`. Partial evaluation splits such programs
//! into a part run now (the primal, residuals) and a part run later (the backward pass of
//! a [`Pullback`], the linear map of [`linearize`]).

use crate::array::{AVal, Array};
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use crate::trace::{trace_fn, TraceScope};
use crate::tree::{self, Path, Tree};
use std::collections::HashMap;

/// Evaluates a program on arguments by applying each equation with `bind`: on concrete
/// arrays it computes eagerly; on tracers it inlines the program into the current trace.
pub fn interpret(p: &Program, args: &[Array]) -> Result<Vec<Array>> {
    if args.len() != p.inputs.len() {
        return Err(Error::invalid(
            "interpret",
            format!(
                "program takes {} arguments, got {}",
                p.inputs.len(),
                args.len()
            ),
        ));
    }
    let mut env: HashMap<Var, Array> = HashMap::with_capacity(p.avals.len());
    for (v, a) in p.inputs.iter().zip(args) {
        env.insert(*v, a.clone());
    }
    for (v, a) in &p.consts {
        env.insert(*v, a.clone());
    }
    for e in &p.eqns {
        let ins: Vec<&Array> = e.ins.iter().map(|v| &env[v]).collect();
        let outs = crate::array::bind(e.prim.clone(), &ins)?;
        for (o, a) in e.outs.iter().zip(outs) {
            env.insert(*o, a);
        }
    }
    Ok(p.outputs.iter().map(|v| env[v].clone()).collect())
}

fn add_ct(acc: &mut HashMap<Var, Array>, v: Var, ct: Array) -> Result<()> {
    match acc.remove(&v) {
        None => {
            acc.insert(v, ct);
        }
        Some(prev) => {
            acc.insert(v, crate::prim::binary::add(&prev, &ct)?);
        }
    }
    Ok(())
}

/// Which variables depend on the differentiated inputs (only those need cotangents).
fn active_vars(p: &Program, wrt: &[bool]) -> Vec<bool> {
    let mut active = vec![false; p.avals.len()];
    for (v, w) in p.inputs.iter().zip(wrt) {
        active[v.index()] = *w && p.aval(*v).dtype.is_float();
    }
    for e in &p.eqns {
        if e.ins.iter().any(|v| active[v.index()]) {
            for o in &e.outs {
                active[o.index()] = p.aval(*o).dtype.is_float();
            }
        }
    }
    active
}

/// Emits into the current trace the forward pass of `p` on `args` and the backward pass
/// seeded with `cts` (one per output; `None` = zero). Returns the outputs and one cotangent
/// per input (zeros for inputs not in `wrt`, and for integer inputs).
pub fn vjp_emit(
    p: &Program,
    args: &[Array],
    wrt: &[bool],
    cts: &[Option<Array>],
) -> Result<(Vec<Array>, Vec<Array>)> {
    vjp_emit_known(p, args, wrt, cts, &HashMap::new())
}

/// [`vjp_emit`] where some forward values are already known (`known` maps result variables
/// of `p` to their values): an equation whose results are all known is not re-emitted.
/// Remat policies use this to read saved residuals instead of recomputing them.
pub fn vjp_emit_known(
    p: &Program,
    args: &[Array],
    wrt: &[bool],
    cts: &[Option<Array>],
    known: &HashMap<Var, Array>,
) -> Result<(Vec<Array>, Vec<Array>)> {
    let active = active_vars(p, wrt);
    let mut env: HashMap<Var, Array> = HashMap::with_capacity(p.avals.len());
    for (v, a) in p.inputs.iter().zip(args) {
        env.insert(*v, a.clone());
    }
    for (v, a) in &p.consts {
        env.insert(*v, a.clone());
    }
    for e in &p.eqns {
        if !known.is_empty() && e.outs.iter().all(|o| known.contains_key(o)) {
            for o in &e.outs {
                env.insert(*o, known[o].clone());
            }
            continue;
        }
        let ins: Vec<&Array> = e.ins.iter().map(|v| &env[v]).collect();
        let outs = crate::array::bind(e.prim.clone(), &ins)?;
        for (o, a) in e.outs.iter().zip(outs) {
            env.insert(*o, a);
        }
    }
    let outputs: Vec<Array> = p.outputs.iter().map(|v| env[v].clone()).collect();
    let mut ct_env: HashMap<Var, Array> = HashMap::new();
    for (v, ct) in p.outputs.iter().zip(cts) {
        if let Some(ct) = ct {
            if active[v.index()] {
                add_ct(&mut ct_env, *v, ct.clone())?;
            }
        }
    }
    for e in p.eqns.iter().rev() {
        if !e.outs.iter().any(|o| active[o.index()]) {
            continue;
        }
        let out_cts: Vec<Option<Array>> = e.outs.iter().map(|o| ct_env.remove(o)).collect();
        if out_cts.iter().all(|c| c.is_none()) {
            continue;
        }
        let primals: Vec<Array> = e.ins.iter().map(|v| env[v].clone()).collect();
        let outs: Vec<Array> = e.outs.iter().map(|v| env[v].clone()).collect();
        let in_cts = e.prim.vjp(&primals, &outs, &out_cts)?;
        if in_cts.len() != e.ins.len() {
            return Err(Error::invalid(
                "vjp",
                format!(
                    "{}: rule returned {} cotangents for {} operands",
                    e.prim.name(),
                    in_cts.len(),
                    e.ins.len()
                ),
            ));
        }
        for (v, ct) in e.ins.iter().zip(in_cts) {
            if let Some(ct) = ct {
                if active[v.index()] {
                    if ct.aval() != p.aval(*v) {
                        return Err(Error::invalid(
                            "vjp",
                            format!(
                                "{}: rule gave a cotangent {} for an operand {}",
                                e.prim.name(),
                                ct.aval(),
                                p.aval(*v)
                            ),
                        ));
                    }
                    add_ct(&mut ct_env, *v, ct)?;
                }
            }
        }
    }
    let mut grads = Vec::with_capacity(p.inputs.len());
    for v in &p.inputs {
        let g = match ct_env.remove(v) {
            Some(g) => g,
            None => zeros_like_traced(p.aval(*v), args)?,
        };
        grads.push(g);
    }
    Ok((outputs, grads))
}

/// Zeros of an abstract value (a constant; it becomes part of whatever trace uses it).
fn zeros_like_traced(aval: &AVal, _ctx: &[Array]) -> Result<Array> {
    Ok(Array::zeros(&aval.shape, aval.dtype))
}

/// The joint forward+backward program of `p`: inputs are `p`'s inputs followed by one
/// cotangent per output; outputs are `p`'s outputs followed by one cotangent per input.
pub fn vjp_program(p: &Program, wrt: &[bool]) -> Result<Program> {
    let mut in_avals = p.input_avals();
    in_avals.extend(p.output_avals());
    let n_in = p.inputs.len();
    let (prog, captured) = trace_fn(&in_avals, |args| {
        let (xs, cts) = args.split_at(n_in);
        let cts: Vec<Option<Array>> = cts.iter().cloned().map(Some).collect();
        let (outs, grads) = vjp_emit(p, xs, wrt, &cts)?;
        Ok(outs.into_iter().chain(grads).collect())
    })?;
    debug_assert!(captured.is_empty());
    Ok(prog)
}

/// Forward mode on a program: returns (outputs, output tangents) for `args` and input
/// `tangents`, emitted into the current trace (or computed eagerly on concrete arrays).
/// Derived from the reverse rules: `g(u) = vjp(p, args)(u)` is linear in `u`, and
/// `vjp(g, u0)(tangents) = J·tangents`.
pub fn jvp_emit(
    p: &Program,
    args: &[Array],
    tangents: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let wrt: Vec<bool> = p
        .inputs
        .iter()
        .map(|v| p.aval(*v).dtype.is_float())
        .collect();
    // g: (args, u) -> cotangents of args, as a program of u (args are captured).
    let out_avals = p.output_avals();
    let (g, captured) = trace_fn(&out_avals, |us| {
        let cts: Vec<Option<Array>> = us.iter().cloned().map(Some).collect();
        let (_, grads) = vjp_emit(p, args, &wrt, &cts)?;
        Ok(grads)
    })?;
    let mut g_args: Vec<Array> = out_avals
        .iter()
        .map(|a| Array::zeros(&a.shape, a.dtype))
        .collect();
    g_args.extend(captured);
    let mut g_wrt = vec![true; out_avals.len()];
    g_wrt.extend(std::iter::repeat_n(false, g.inputs.len() - out_avals.len()));
    let seeds: Vec<Option<Array>> = tangents.iter().cloned().map(Some).collect();
    let (_, t_out) = vjp_emit(&g, &g_args, &g_wrt, &seeds)?;
    let outs = interpret(p, args)?;
    Ok((outs, t_out[..out_avals.len()].to_vec()))
}

/// Traces `f` on tracer copies of the tree `w` (other values `f` uses are captured) and
/// returns the program, the traced result (a structure template) and the captured values.
fn trace_tree<W: Tree, R: Tree>(
    w: &W,
    f: impl FnOnce(&W) -> R,
) -> Result<(Program, R, Vec<Array>)> {
    trace_tree_fallible(w, |w| Ok(f(w)))
}

fn trace_tree_fallible<W: Tree, R: Tree>(
    w: &W,
    f: impl FnOnce(&W) -> Result<R>,
) -> Result<(Program, R, Vec<Array>)> {
    let scope = TraceScope::begin();
    let wt = w.rebuild(&mut Path::default(), &mut |_, a| {
        Ok(scope.new_input(a.aval().clone()))
    })?;
    let r = f(&wt)?;
    let outs = tree::leaves(&r);
    let (prog, captured) = scope.finish(&outs)?;
    Ok((prog, r, captured))
}

fn rebuild_from<T: Tree>(template: &T, vals: &mut std::vec::IntoIter<Array>) -> Result<T> {
    template.rebuild(&mut Path::default(), &mut |p, _| {
        vals.next()
            .ok_or_else(|| Error::Tree(format!("missing leaf `{p}`")))
    })
}

/// `f`'s value and its gradient with respect to the tree `w`. The first leaf of `f`'s
/// result must be a float scalar (the loss); further leaves are auxiliary outputs, returned
/// but not differentiated (`has_aux`). The gradient has `w`'s type; integer leaves get
/// zeros. Works eagerly and inside staged functions (where it is inlined), and nests.
pub fn value_and_grad<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<(R, W)> {
    let (prog, template, captured) = trace_tree(w, f)?;
    let Some(&loss) = prog.outputs.first() else {
        return Err(Error::invalid("grad", "the function returned no tensors"));
    };
    let la = prog.aval(loss);
    if !la.shape.is_empty() || !la.dtype.is_float() {
        return Err(Error::invalid(
            "grad",
            format!("the differentiated output must be a float scalar, got {la}; use vjp for other outputs"),
        ));
    }
    let w_leaves = tree::leaves(w);
    let n_w = w_leaves.len();
    let mut wrt = vec![true; n_w];
    wrt.extend(std::iter::repeat_n(false, captured.len()));
    let mut args = w_leaves;
    args.extend(captured);
    let mut cts: Vec<Option<Array>> = vec![None; prog.outputs.len()];
    cts[0] = Some(Array::full(&[], la.dtype, 1.0));
    let (outs, grads) = vjp_emit(&prog, &args, &wrt, &cts)?;
    let r = rebuild_from(&template, &mut outs.into_iter())?;
    let g = rebuild_from(
        w,
        &mut grads.into_iter().take(n_w).collect::<Vec<_>>().into_iter(),
    )?;
    Ok((r, g))
}

/// The gradient of a scalar function with respect to the tree `w`.
pub fn grad<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<W> {
    Ok(value_and_grad(w, f)?.1)
}

/// `f`'s value and a pullback: the pullback maps a cotangent of the result (same structure
/// as the result) to the cotangent of `w`. The forward pass runs once, here; the joint
/// program is split ([`partial_eval`]) so the pullback runs only the backward equations on
/// the saved residuals.
pub fn vjp<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<(R, Pullback<W>)> {
    let (prog, template, captured) = trace_tree(w, f)?;
    let w_leaves = tree::leaves(w);
    let n_w = w_leaves.len();
    let mut wrt = vec![true; n_w];
    wrt.extend(std::iter::repeat_n(false, captured.len()));
    let joint = vjp_program(&prog, &wrt)?;
    let mut args = w_leaves;
    args.extend(captured);
    let n_out = prog.outputs.len();
    let mut unknown = vec![false; args.len()];
    unknown.extend(std::iter::repeat_n(true, n_out));
    let split = partial_eval(&joint, &unknown)?;
    let residuals = interpret(&split.known, &args)?;
    let outs: Vec<Array> = (0..n_out)
        .map(|i| residuals[split.known_outputs[i].expect("primal outputs are known")].clone())
        .collect();
    let r = rebuild_from(&template, &mut outs.into_iter())?;
    let (backward, residuals) = drop_unused_inputs(split.unknown, residuals);
    Ok((
        r,
        Pullback {
            backward,
            residuals,
            n_w,
            n_out,
            template_w: w.rebuild(&mut Path::default(), &mut |_, a| Ok(a.clone()))?,
        },
    ))
}

/// The backward half of [`vjp`]: the backward program and the residuals it reads.
#[derive(Debug)]
pub struct Pullback<W> {
    backward: Program,
    residuals: Vec<Array>,
    n_w: usize,
    n_out: usize,
    template_w: W,
}

impl<W: Tree> Pullback<W> {
    /// Maps a result cotangent (a tree shaped like the result) to `w`'s cotangent.
    pub fn call<R: Tree>(&self, ct: &R) -> Result<W> {
        let cts = tree::leaves(ct);
        if cts.len() != self.n_out {
            return Err(Error::Tree(format!(
                "pullback: the cotangent has {} leaves, the result has {}",
                cts.len(),
                self.n_out
            )));
        }
        let mut a = self.residuals.clone();
        a.extend(cts);
        let outs = interpret(&self.backward, &a)?;
        let grads: Vec<Array> = outs[self.n_out..self.n_out + self.n_w].to_vec();
        rebuild_from(&self.template_w, &mut grads.into_iter())
    }
    /// Number of residual arrays the pullback holds (forward values its backward reads,
    /// the differentiated arguments included).
    pub fn num_residuals(&self) -> usize {
        self.residuals.len()
    }
}

/// A program split by [`partial_eval`] into the part computable from the known inputs and
/// the part that needs the unknown ones.
#[derive(Debug, Clone)]
pub struct PartialEval {
    /// Known inputs (in order) -> residuals.
    pub known: Program,
    /// Residuals ++ unknown inputs (in order) -> every output of the original program.
    pub unknown: Program,
    /// For each output of the original program: `Some(i)` if it is known (residual `i`).
    pub known_outputs: Vec<Option<usize>>,
    /// Residuals read by equations of the unknown part (the other residuals are known
    /// outputs passed through).
    pub saved: Vec<Var>,
}

/// Partial evaluation (JAX's `partial_eval_jaxpr`): splits `p` given which inputs are
/// unknown. An equation is unknown if any operand is; known values that unknown equations
/// read (or that are outputs) become residuals, outputs of the known program and inputs of
/// the unknown one. Constants stay in both programs. Used to run a forward pass once and
/// keep only residuals ([`vjp`], [`linearize`]); the count of residuals is what remat
/// policies reduce.
pub fn partial_eval(p: &Program, unknown_inputs: &[bool]) -> Result<PartialEval> {
    if unknown_inputs.len() != p.inputs.len() {
        return Err(Error::invalid(
            "partial_eval",
            format!(
                "{} input flags for a program of {} inputs",
                unknown_inputs.len(),
                p.inputs.len()
            ),
        ));
    }
    let mut unk = vec![false; p.avals.len()];
    let mut is_const = vec![false; p.avals.len()];
    for (v, _) in &p.consts {
        is_const[v.index()] = true;
    }
    for (v, u) in p.inputs.iter().zip(unknown_inputs) {
        unk[v.index()] = *u;
    }
    let mut known_eqns = Vec::new();
    let mut unknown_eqns = Vec::new();
    let mut residual_of: HashMap<Var, usize> = HashMap::new();
    let mut residuals: Vec<Var> = Vec::new();
    let mut saved = Vec::new();
    fn need(
        v: Var,
        residual_of: &mut HashMap<Var, usize>,
        residuals: &mut Vec<Var>,
        saved: Option<&mut Vec<Var>>,
    ) -> usize {
        if let Some(i) = residual_of.get(&v) {
            return *i;
        }
        residual_of.insert(v, residuals.len());
        residuals.push(v);
        if let Some(s) = saved {
            s.push(v);
        }
        residuals.len() - 1
    }
    for e in &p.eqns {
        if e.ins.iter().any(|v| unk[v.index()]) {
            for v in &e.ins {
                if !unk[v.index()] && !is_const[v.index()] {
                    need(*v, &mut residual_of, &mut residuals, Some(&mut saved));
                }
            }
            for o in &e.outs {
                unk[o.index()] = true;
            }
            unknown_eqns.push(e.clone());
        } else {
            known_eqns.push(e.clone());
        }
    }
    let mut known_outputs = Vec::with_capacity(p.outputs.len());
    for o in &p.outputs {
        if unk[o.index()] {
            known_outputs.push(None);
        } else {
            // Constants are passed through too, so every known output has an index.
            let i = need(*o, &mut residual_of, &mut residuals, None);
            known_outputs.push(Some(i));
        }
    }
    let known = crate::ir::passes::dce(&Program {
        avals: p.avals.clone(),
        inputs: p
            .inputs
            .iter()
            .zip(unknown_inputs)
            .filter(|(_, u)| !**u)
            .map(|(v, _)| *v)
            .collect(),
        consts: p.consts.clone(),
        eqns: known_eqns,
        outputs: residuals.clone(),
    });
    let mut u_inputs = residuals.clone();
    u_inputs.extend(
        p.inputs
            .iter()
            .zip(unknown_inputs)
            .filter(|(_, u)| **u)
            .map(|(v, _)| *v),
    );
    // A residual that is a constant of `p` would be defined twice in the unknown part.
    let unknown_consts: Vec<(Var, Array)> = p
        .consts
        .iter()
        .filter(|(v, _)| !residual_of.contains_key(v))
        .cloned()
        .collect();
    let unknown = crate::ir::passes::dce(&Program {
        avals: p.avals.clone(),
        inputs: u_inputs,
        consts: unknown_consts,
        eqns: unknown_eqns,
        outputs: p.outputs.clone(),
    });
    Ok(PartialEval {
        known,
        unknown,
        known_outputs,
        saved,
    })
}

/// The residuals reverse mode saves for `f` at `w` (`jax.ad_checkpoint.print_saved_residuals`):
/// the abstract values of the forward intermediates its backward pass reads, in program
/// order (arguments, which are alive anyway, are not listed). Remat and its policies shrink
/// this list.
pub fn saved_residuals<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<Vec<AVal>> {
    let (prog, _, captured) = trace_tree(w, f)?;
    let n_w = tree::leaves(w).len();
    let mut wrt = vec![true; n_w];
    wrt.extend(std::iter::repeat_n(false, captured.len()));
    let joint = vjp_program(&prog, &wrt)?;
    let mut unknown = vec![false; prog.inputs.len()];
    unknown.extend(std::iter::repeat_n(true, prog.outputs.len()));
    let split = partial_eval(&joint, &unknown)?;
    Ok(split
        .saved
        .iter()
        .filter(|v| !joint.inputs.contains(v))
        .map(|v| joint.aval(*v).clone())
        .collect())
}

/// `f`'s value and its linearization at `w` (`jax.linearize`): the primal runs once, here;
/// the returned [`Linearized`] holds the linear part of the forward-mode program (only
/// operations on tangents, whose coefficients are saved residuals) and maps a tangent of
/// `w` to the tangent of the result without re-running the primal.
pub fn linearize<W: Tree, R: Tree>(
    w: &W,
    f: impl FnOnce(&W) -> R,
) -> Result<(R, Linearized<W, R>)> {
    let (prog, template, captured) = trace_tree(w, f)?;
    let w_leaves = tree::leaves(w);
    let n_w = w_leaves.len();
    let n_out = prog.outputs.len();
    let mut args = w_leaves;
    args.extend(captured);
    // The jvp program: (primals, tangents of w) -> (outputs, output tangents). Captured
    // values have zero tangents (constants, hence known).
    let mut avals: Vec<AVal> = args.iter().map(|a| a.aval().clone()).collect();
    avals.extend(args[..n_w].iter().map(|a| a.aval().clone()));
    let n_args = args.len();
    let (jprog, cap) = trace_fn(&avals, |xs| {
        let (ps, ts) = xs.split_at(n_args);
        let mut tangents = ts.to_vec();
        for c in &ps[n_w..] {
            tangents.push(Array::zeros(c.shape(), c.dtype()));
        }
        let (outs, touts) = jvp_emit(&prog, ps, &tangents)?;
        Ok(outs.into_iter().chain(touts).collect())
    })?;
    debug_assert!(cap.is_empty());
    let mut unknown = vec![false; n_args];
    unknown.extend(std::iter::repeat_n(true, n_w));
    let split = partial_eval(&jprog, &unknown)?;
    let residuals = interpret(&split.known, &args)?;
    let mut outs = Vec::with_capacity(n_out);
    for i in 0..n_out {
        let k = split.known_outputs[i].ok_or_else(|| {
            Error::invalid("linearize", "a primal output depends on the tangents")
        })?;
        outs.push(residuals[k].clone());
    }
    let mut linear = split.unknown;
    linear.outputs = linear.outputs[n_out..].to_vec();
    let linear = crate::ir::passes::optimize(&linear)?;
    let (linear, residuals) = drop_unused_inputs(linear, residuals);
    let r = rebuild_from(&template, &mut outs.into_iter())?;
    let template_r = tree_clone(&r);
    // Applied eagerly many times (jacobian columns, iterative solvers): compile it once.
    let compiled = if !crate::trace::is_tracing() && residuals.iter().all(|a| !a.is_tracer()) {
        Some(crate::exec::Executable::compile(&linear)?)
    } else {
        None
    };
    Ok((
        r,
        Linearized {
            linear,
            compiled,
            residuals,
            n_w,
            template_r,
            _w: std::marker::PhantomData,
        },
    ))
}

/// Removes the leading inputs of `p` (bound to `vals`) that nothing reads, with their values.
fn drop_unused_inputs(mut p: Program, vals: Vec<Array>) -> (Program, Vec<Array>) {
    let mut used = vec![false; p.avals.len()];
    for e in &p.eqns {
        for v in &e.ins {
            used[v.index()] = true;
        }
    }
    for v in &p.outputs {
        used[v.index()] = true;
    }
    let n = vals.len();
    let mut kept = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(p.inputs.len());
    for (v, a) in p.inputs[..n].iter().zip(vals) {
        if used[v.index()] {
            inputs.push(*v);
            kept.push(a);
        }
    }
    inputs.extend_from_slice(&p.inputs[n..]);
    p.inputs = inputs;
    (p, kept)
}

/// The linear map returned by [`linearize`]: `t ↦ J·t` at the linearization point.
#[derive(Debug)]
pub struct Linearized<W, R> {
    linear: Program,
    compiled: Option<crate::exec::Executable>,
    residuals: Vec<Array>,
    n_w: usize,
    template_r: R,
    _w: std::marker::PhantomData<fn(&W)>,
}

impl<W: Tree, R: Tree> Linearized<W, R> {
    /// The result tangent for the tangent `t` of the argument (same structure as `w`).
    pub fn call(&self, t: &W) -> Result<R> {
        let ts = tree::leaves(t);
        if ts.len() != self.n_w {
            return Err(Error::Tree(format!(
                "linearize: the tangent has {} leaves, the argument has {}",
                ts.len(),
                self.n_w
            )));
        }
        let n_res = self.residuals.len();
        for (i, (tv, v)) in ts.iter().zip(&self.linear.inputs[n_res..]).enumerate() {
            if tv.aval() != self.linear.aval(*v) {
                return Err(Error::invalid(
                    "linearize",
                    format!(
                        "tangent leaf {i} is {}, the argument's leaf is {}",
                        tv.aval(),
                        self.linear.aval(*v)
                    ),
                ));
            }
        }
        let traced = crate::trace::is_tracing() || ts.iter().any(|t| t.is_tracer());
        let mut a = self.residuals.clone();
        a.extend(ts);
        let outs = match &self.compiled {
            Some(exe) if !traced => exe.run_owned(a)?,
            _ => interpret(&self.linear, &a)?,
        };
        rebuild_from(&self.template_r, &mut outs.into_iter())
    }
    /// The linear program: inputs are the residuals then the tangent leaves; outputs are
    /// the result's tangent leaves.
    pub fn program(&self) -> &Program {
        &self.linear
    }
    /// Number of saved residual arrays.
    pub fn num_residuals(&self) -> usize {
        self.residuals.len()
    }
}

/// Forward mode: `f`'s value and its directional derivative along `t` (same structure as
/// `w`).
pub fn jvp<W: Tree, R: Tree>(w: &W, t: &W, f: impl FnOnce(&W) -> R) -> Result<(R, R)> {
    jvp_fallible(w, t, |w| Ok(f(w)))
}

/// [`jvp`] of a fallible function.
pub fn jvp_fallible<W: Tree, R: Tree>(
    w: &W,
    t: &W,
    f: impl FnOnce(&W) -> Result<R>,
) -> Result<(R, R)> {
    let (prog, template, captured) = trace_tree_fallible(w, f)?;
    let mut args = tree::leaves(w);
    let mut tangents = tree::leaves(t);
    for c in &captured {
        tangents.push(Array::zeros(c.shape(), c.dtype()));
    }
    args.extend(captured);
    let (outs, touts) = jvp_emit(&prog, &args, &tangents)?;
    let r = rebuild_from(&template, &mut outs.into_iter())?;
    let tr = rebuild_from(&template, &mut touts.into_iter())?;
    Ok((r, tr))
}

/// An owned copy of a tree that shares its leaves' buffers (needs no `Clone` on the type).
pub fn tree_clone<T: Tree>(t: &T) -> T {
    t.rebuild(&mut Path::default(), &mut |_, a| Ok(a.clone()))
        .expect("rebuilding a tree from its own leaves cannot fail")
}

/// Hessian-vector product `H·v` of a scalar function at `w` (forward over reverse:
/// `jvp(grad f)(w; v)`), without forming the Hessian.
pub fn hvp<W: Tree, R: Tree>(w: &W, v: &W, f: impl Fn(&W) -> R) -> Result<W> {
    Ok(jvp_fallible(w, v, |w| grad(w, &f))?.1)
}

fn basis(n: usize, i: usize, dtype: crate::dtype::DType, shape: &[usize]) -> Result<Array> {
    let mut v = vec![0.0f64; n];
    v[i] = 1.0;
    crate::prim::convert::convert(&Array::from_vec(shape.to_vec(), v)?, dtype)
}

fn stack_jacobian(
    rows: Vec<Array>,
    out_shape: &[usize],
    in_shape: &[usize],
    rows_are_outputs: bool,
) -> Result<Array> {
    let refs: Vec<&Array> = rows.iter().collect();
    let stacked = crate::prim::concatenate::stack(&refs, 0)?;
    let mut shape = out_shape.to_vec();
    shape.extend_from_slice(in_shape);
    if rows_are_outputs {
        crate::prim::reshape::reshape(&stacked, &shape)
    } else {
        // Rows indexed by input elements: (in..., out...) -> (out..., in...).
        let mut tshape = in_shape.to_vec();
        tshape.extend_from_slice(out_shape);
        let t = crate::prim::reshape::reshape(&stacked, &tshape)?;
        let (ri, ro) = (in_shape.len(), out_shape.len());
        let perm: Vec<usize> = (ri..ri + ro).chain(0..ri).collect();
        crate::prim::transpose::transpose(&t, &perm)
    }
}

/// The Jacobian of an array function by reverse mode (one pullback per output element),
/// shaped `out.shape ++ x.shape` like `jax.jacrev`.
pub fn jacrev(x: &Array, f: impl Fn(&Array) -> Result<Array>) -> Result<Array> {
    let (prog, captured) = trace_fn(std::slice::from_ref(x.aval()), |a| Ok(vec![f(&a[0])?]))?;
    let mut args = vec![x.clone()];
    args.extend(captured);
    let mut wrt = vec![true];
    wrt.resize(args.len(), false);
    let out = prog.aval(prog.outputs[0]).clone();
    let n = out.numel();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let ct = basis(n, i, out.dtype, &out.shape)?;
        let (_, g) = vjp_emit(&prog, &args, &wrt, &[Some(ct)])?;
        rows.push(g[0].clone());
    }
    stack_jacobian(rows, &out.shape, x.shape(), true)
}

/// The Jacobian of an array function by forward mode (one tangent per input element),
/// shaped `out.shape ++ x.shape` like `jax.jacfwd`.
pub fn jacfwd(x: &Array, f: impl Fn(&Array) -> Result<Array>) -> Result<Array> {
    let (prog, captured) = trace_fn(std::slice::from_ref(x.aval()), |a| Ok(vec![f(&a[0])?]))?;
    let mut args = vec![x.clone()];
    let extra: Vec<Array> = captured
        .iter()
        .map(|c| Array::zeros(c.shape(), c.dtype()))
        .collect();
    args.extend(captured);
    let out = prog.aval(prog.outputs[0]).clone();
    let n = x.numel();
    let mut cols = Vec::with_capacity(n);
    for i in 0..n {
        let mut tangents = vec![basis(n, i, x.dtype(), x.shape())?];
        tangents.extend(extra.iter().cloned());
        let (_, t) = jvp_emit(&prog, &args, &tangents)?;
        cols.push(t[0].clone());
    }
    stack_jacobian(cols, &out.shape, x.shape(), false)
}

/// The Hessian of a scalar array function (`jacfwd(jacrev(f))`), shaped `x.shape ++ x.shape`.
pub fn hessian(x: &Array, f: impl Fn(&Array) -> Result<Array>) -> Result<Array> {
    jacfwd(x, |y| {
        let (prog, captured) = trace_fn(std::slice::from_ref(y.aval()), |a| Ok(vec![f(&a[0])?]))?;
        let mut args = vec![y.clone()];
        args.extend(captured);
        let mut wrt = vec![true];
        wrt.resize(args.len(), false);
        let la = prog.aval(prog.outputs[0]).clone();
        let one = Array::full(&[], la.dtype, 1.0);
        let (_, g) = vjp_emit(&prog, &args, &wrt, &[Some(one)])?;
        Ok(g[0].clone())
    })
}

/// The Hessian of a scalar function of a tree (`jax.hessian` over a pytree, flattened):
/// the float leaves of `w` are concatenated in leaf order into one vector of `n` elements
/// and the result is the `n x n` Hessian of the loss (the first leaf of `f`'s result) with
/// respect to it. For a single tensor leaf of shape `S` the result has shape `S ++ S`, as
/// `jax.hessian`. Integer leaves are held fixed. Float leaves must share one dtype.
pub fn hessian_tree<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<Array> {
    // `hessian` traces its function exactly once; the cell lets `f` be `FnOnce`.
    let f = std::cell::Cell::new(Some(f));
    let leaves = tree::leaves(w);
    let floats: Vec<&Array> = leaves.iter().filter(|a| a.dtype().is_float()).collect();
    let Some(first) = floats.first() else {
        return Err(Error::invalid(
            "hessian",
            "the differentiated argument has no float leaves",
        ));
    };
    let dtype = first.dtype();
    if let Some(o) = floats.iter().find(|a| a.dtype() != dtype) {
        return Err(Error::invalid(
            "hessian",
            format!("float leaves of mixed dtypes: {dtype} and {}", o.dtype()),
        ));
    }
    let flat: Vec<Array> = floats
        .iter()
        .map(|a| crate::prim::reshape::reshape(a, &[a.numel()]))
        .collect::<Result<_>>()?;
    let refs: Vec<&Array> = flat.iter().collect();
    let x = crate::prim::concatenate::concatenate(&refs, 0)?;
    let h = hessian(&x, |xv| {
        let mut offset = 0;
        let wv = w.rebuild(&mut Path::default(), &mut |_, a| {
            if !a.dtype().is_float() {
                return Ok(a.clone());
            }
            let n = a.numel();
            let piece = crate::prim::slice::slice(xv, &[offset], &[offset + n], None)?;
            offset += n;
            crate::prim::reshape::reshape(&piece, a.shape())
        })?;
        let f = f
            .take()
            .ok_or_else(|| Error::invalid("hessian", "the function was traced twice"))?;
        let r = f(&wv);
        let loss = tree::leaves(&r)
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("hessian", "the function returned no tensors"))?;
        if !loss.shape().is_empty() || !loss.dtype().is_float() {
            return Err(Error::invalid(
                "hessian",
                format!(
                    "the differentiated output must be a float scalar, got {}",
                    loss.aval()
                ),
            ));
        }
        Ok(loss)
    })?;
    if floats.len() == 1 {
        let mut shape = floats[0].shape().to_vec();
        shape.extend_from_slice(floats[0].shape());
        crate::prim::reshape::reshape(&h, &shape)
    } else {
        Ok(h)
    }
}

/// Types `#[grad]` can differentiate as a loss: float scalar tensors.
#[diagnostic::on_unimplemented(
    message = "#[grad] differentiates a scalar loss, but the output is `{Self}`",
    label = "the loss must be a float scalar, `Tensor<(), f32>` or `Tensor<(), f64>`",
    note = "reduce the output first (`.sum()`, `.mean()`), or use `vjp` for non-scalar outputs"
)]
pub trait ScalarLoss {}
impl<E: crate::dtype::Float> ScalarLoss for crate::Tensor<(), E> {}

/// Compile-time check used by `#[grad]`: the loss type must be a float scalar.
#[doc(hidden)]
pub fn assert_scalar_loss<T: ScalarLoss>(_: &T) {}
