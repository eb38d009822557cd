//! Automatic differentiation as program transformations. Reverse mode re-emits a program's
//! equations on tracers of a new trace and then walks them backwards, calling each
//! primitive's `vjp` rule (written with lax functions, so the result is a program that can
//! be transformed again: grad of grad, jvp of grad). Forward mode is derived from the
//! reverse rules by the linearity trick: `u ↦ vjp(f, x)(u)` is linear, so its own vjp at
//! any point applied to a tangent `t` gives `J·t`.

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
    let active = active_vars(p, wrt);
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
/// as the result) to the cotangent of `w`. The forward pass runs once; the pullback runs
/// only the backward equations (residuals are the forward values it reads).
pub fn vjp<W: Tree, R: Tree>(w: &W, f: impl FnOnce(&W) -> R) -> Result<(R, Pullback<W>)> {
    let (prog, template, captured) = trace_tree(w, f)?;
    let w_leaves = tree::leaves(w);
    let n_w = w_leaves.len();
    let mut wrt = vec![true; n_w];
    wrt.extend(std::iter::repeat_n(false, captured.len()));
    let joint = vjp_program(&prog, &wrt)?;
    let mut args = w_leaves;
    args.extend(captured);
    let outs = interpret(&prog, &args)?;
    let r = rebuild_from(&template, &mut outs.into_iter())?;
    Ok((
        r,
        Pullback {
            joint,
            args,
            n_w,
            n_out: prog.outputs.len(),
            template_w: w.rebuild(&mut Path::default(), &mut |_, a| Ok(a.clone()))?,
        },
    ))
}

/// The backward half of [`vjp`].
#[derive(Debug)]
pub struct Pullback<W> {
    joint: Program,
    args: Vec<Array>,
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
        let mut a = self.args.clone();
        a.extend(cts);
        let outs = interpret(&crate::ir::passes::dce(&self.joint), &a)?;
        let grads: Vec<Array> = outs[self.n_out..self.n_out + self.n_w].to_vec();
        rebuild_from(&self.template_w, &mut grads.into_iter())
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
