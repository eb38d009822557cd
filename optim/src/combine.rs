//! Combinators: [`chain`] (any number of pieces, applied in order), [`masked`] and
//! [`multi_transform`] (by a predicate or labels on leaf paths), and the wrappers
//! [`multi_steps`] (gradient accumulation), [`apply_if_finite`], [`inject_hyperparams`]
//! (hyperparameters as state arrays), [`lookahead`] and [`reduce_on_plateau`].
//!
//! Wrappers that decide at run time whether to apply an inner update (multi_steps,
//! apply_if_finite) compute it and `select` the result, so they trace into straight-line
//! programs (no data-dependent Rust branching on traced values).

use crate::base::{Mask, Transform, UpdateCtx};
use crate::num::{self, cast, konst};
use crate::state::OptState;
use crate::transform::LearningRate;
use ferrax_core::prim::binary::{binary_bcast, BinaryOp};
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::tree::{self, Path};
use ferrax_core::{Array, DType, Error, Result};

/// Applies `pieces` one after another (Optax's `chain`); the state holds one entry per piece,
/// tagged with the piece's transformation name (read it back typed with
/// [`OptState::piece`] or [`OptState::piece_by_name`]).
///
/// ```
/// use ferrax_optim::{chain, clip_by_global_norm, scale_by_adam, scale_by_learning_rate, AdamConfig};
/// let tx = chain([clip_by_global_norm(1.0), scale_by_adam(AdamConfig::default()), scale_by_learning_rate(1e-3)]);
/// # let _ = tx;
/// ```
pub fn chain(pieces: impl IntoIterator<Item = Transform>) -> Transform {
    const OP: &str = "chain";
    let pieces: Vec<Transform> = pieces.into_iter().collect();
    let init_pieces = pieces.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            Ok(OptState::Seq(
                init_pieces
                    .iter()
                    .map(|t| Ok(OptState::tagged(t.name(), t.init_leaves(p, paths)?)))
                    .collect::<Result<_>>()?,
            ))
        },
        move |mut u, st, ctx| {
            let states = st.seq(OP, pieces.len())?;
            let mut new_states = Vec::with_capacity(pieces.len());
            // Each piece sees exactly the state its init made (untagged); the tag is put
            // back so typed views keep knowing which transformation owns the piece.
            for (t, s) in pieces.iter().zip(states) {
                let mut s = s.untagged().clone();
                u = t.update_leaves(u, &mut s, ctx)?;
                new_states.push(OptState::tagged(t.name(), s));
            }
            *st = OptState::Seq(new_states);
            Ok(u)
        },
    )
}

fn subset<T: Clone>(xs: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| xs[i].clone()).collect()
}

/// Runs `inner` on the leaf subset `idx` of an update, writing its results back in place.
fn run_on_subset(
    inner: &Transform,
    idx: &[usize],
    u: &mut [Array],
    st: &mut OptState,
    ctx: &UpdateCtx<'_>,
) -> Result<()> {
    let sub_u = subset(u, idx);
    let paths = subset(ctx.paths, idx);
    let params = ctx.params.map(|p| subset(p, idx));
    let sub_ctx = UpdateCtx {
        paths: &paths,
        params: params.as_deref(),
        value: ctx.value,
    };
    let out = inner.update_leaves(sub_u, st, &sub_ctx)?;
    for (k, &i) in idx.iter().enumerate() {
        u[i] = out[k].clone();
    }
    Ok(())
}

/// Applies `inner` only to the leaves `mask` selects; the other leaves' updates pass
/// through unchanged (Optax's `masked`). The inner state covers only the selected leaves.
pub fn masked(inner: Transform, mask: impl Into<Mask>) -> Transform {
    const OP: &str = "masked";
    let mask: Mask = mask.into();
    let (mi, ti) = (mask.clone(), inner.clone());
    Transform::from_fns(
        OP,
        move |p, paths| {
            let idx: Vec<usize> = (0..p.len()).filter(|&i| mi.contains(&paths[i])).collect();
            Ok(OptState::node(vec![(
                "inner",
                ti.init_leaves(&subset(p, &idx), &subset(paths, &idx))?,
            )]))
        },
        move |mut u, st, ctx| {
            let idx: Vec<usize> = (0..u.len())
                .filter(|&i| mask.contains(&ctx.paths[i]))
                .collect();
            let mut s = st.field(OP, "inner")?.clone();
            run_on_subset(&inner, &idx, &mut u, &mut s, ctx)?;
            *st = OptState::node(vec![("inner", s)]);
            Ok(u)
        },
    )
}

/// Applies a different transformation to each group of leaves, the group of a leaf given by
/// `label(path)` (Optax's `multi_transform`). Every label must name one of `transforms`.
///
/// ```
/// use ferrax_optim::{adam, multi_transform, set_to_zero};
/// use ferrax_core::tree::Path;
/// // Freeze everything under `encoder`, train the rest with Adam.
/// let tx = multi_transform(
///     vec![("train", adam(1e-3)), ("frozen", set_to_zero())],
///     |p: &Path| if p.to_string().starts_with("encoder") { "frozen" } else { "train" },
/// );
/// # let _ = tx;
/// ```
pub fn multi_transform(
    transforms: Vec<(&'static str, Transform)>,
    label: impl Fn(&Path) -> &'static str + Send + Sync + 'static,
) -> Transform {
    const OP: &str = "multi_transform";
    let label = std::sync::Arc::new(label);
    let groups = move |paths: &[Path], names: &[&'static str]| -> Result<Vec<Vec<usize>>> {
        let mut g = vec![Vec::new(); names.len()];
        for (i, p) in paths.iter().enumerate() {
            let l = label(p);
            let k = names.iter().position(|n| *n == l).ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!(
                        "leaf {} has label `{l}`, which names no transformation",
                        p.describe()
                    ),
                )
            })?;
            g[k].push(i);
        }
        Ok(g)
    };
    let groups = std::sync::Arc::new(groups);
    let names: Vec<&'static str> = transforms.iter().map(|t| t.0).collect();
    let (ti, gi, ni) = (transforms.clone(), groups.clone(), names.clone());
    Transform::from_fns(
        OP,
        move |p, paths| {
            let g = gi(paths, &ni)?;
            let entries = ti
                .iter()
                .zip(&g)
                .map(|((n, t), idx)| Ok((*n, t.init_leaves(&subset(p, idx), &subset(paths, idx))?)))
                .collect::<Result<_>>()?;
            Ok(OptState::Node(entries))
        },
        move |mut u, st, ctx| {
            let g = groups(ctx.paths, &names)?;
            let mut entries = Vec::with_capacity(transforms.len());
            for ((n, t), idx) in transforms.iter().zip(&g) {
                let mut s = st.field(OP, n)?.clone();
                run_on_subset(t, idx, &mut u, &mut s, ctx)?;
                entries.push((*n, s));
            }
            *st = OptState::Node(entries);
            Ok(u)
        },
    )
}

/// Leafwise `select(pred, a, b)` over two states of the same structure.
fn select_state(pred: &Array, a: &OptState, b: &OptState) -> Result<OptState> {
    let (la, lb) = (tree::leaves(a), tree::leaves(b));
    let out = la
        .iter()
        .zip(&lb)
        .map(|(x, y)| num::select(pred, x, y))
        .collect::<Result<Vec<_>>>()?;
    tree::unflatten(a, out)
}

fn zeros_of(u: &[Array]) -> Vec<Array> {
    u.iter()
        .map(|g| Array::zeros(g.shape(), g.dtype()))
        .collect()
}

/// Gradient accumulation: averages `every_k_schedule` micro-batch gradients in one running
/// mean (no copy per micro-step) and applies `inner` to it on every k-th call; the calls in
/// between return zero updates and leave the inner state alone. The inner update is
/// computed on every call and selected, so the step traces without control flow.
pub fn multi_steps(inner: Transform, every_k: u32) -> Transform {
    const OP: &str = "multi_steps";
    let ti = inner.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            Ok(OptState::node(vec![
                ("mini_step", OptState::Leaf(num::zero_count())),
                ("gradient_step", OptState::Leaf(num::zero_count())),
                ("inner", ti.init_leaves(p, paths)?),
                ("acc_grads", OptState::Leaves(zeros_of(p))),
            ]))
        },
        move |u, st, ctx| {
            let mini = st.array(OP, "mini_step")?;
            let gstep = st.array(OP, "gradient_step")?;
            let inner_old = st.field(OP, "inner")?.clone();
            let acc = st.per_param(OP, "acc_grads", u.len())?;
            let n1 = num::addc(&mini, 1.0)?;
            let acc_new = u
                .iter()
                .zip(&acc)
                .map(|(g, a)| num::add(a, &num::div(&num::sub(g, a)?, &cast(&n1, g.dtype())?)?))
                .collect::<Result<Vec<_>>>()?;
            let emit = num::cmpc(CompareOp::Ge, &n1, every_k as f64)?;
            let mut inner_new = inner_old.clone();
            let upd = inner.update_leaves(acc_new.clone(), &mut inner_new, ctx)?;
            let out = upd
                .iter()
                .map(|x| num::select(&emit, x, &konst(x.dtype(), 0.0)))
                .collect::<Result<Vec<_>>>()?;
            let acc_next = acc_new
                .iter()
                .map(|x| num::select(&emit, &konst(x.dtype(), 0.0), x))
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![
                (
                    "mini_step",
                    OptState::Leaf(num::select(&emit, &num::zero_count(), &n1)?),
                ),
                (
                    "gradient_step",
                    OptState::Leaf(num::select(&emit, &num::safe_increment(&gstep)?, &gstep)?),
                ),
                ("inner", select_state(&emit, &inner_new, &inner_old)?),
                ("acc_grads", OptState::Leaves(acc_next)),
            ]);
            Ok(out)
        },
    )
}

/// Applies `inner` only when every update is finite; otherwise returns zeros and keeps the
/// inner state, unless more than `max_consecutive_errors` non-finite steps came in a row.
pub fn apply_if_finite(inner: Transform, max_consecutive_errors: i32) -> Transform {
    const OP: &str = "apply_if_finite";
    let ti = inner.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            Ok(OptState::node(vec![
                ("notfinite_count", OptState::Leaf(num::zero_count())),
                ("last_finite", OptState::Leaf(Array::scalar(true))),
                ("total_notfinite", OptState::Leaf(num::zero_count())),
                ("inner", ti.init_leaves(p, paths)?),
            ]))
        },
        move |u, st, ctx| {
            let nf = st.array(OP, "notfinite_count")?;
            let total = st.array(OP, "total_notfinite")?;
            let inner_old = st.field(OP, "inner")?.clone();
            let mut finite = Array::scalar(true);
            for g in &u {
                finite = num::and(&finite, &num::all_finite(g)?)?;
            }
            let nf_new = num::select(&finite, &num::zero_count(), &num::safe_increment(&nf)?)?;
            let ok = num::or(
                &finite,
                &num::cmpc(CompareOp::Gt, &nf_new, max_consecutive_errors as f64)?,
            )?;
            let mut inner_new = inner_old.clone();
            let upd = inner.update_leaves(u, &mut inner_new, ctx)?;
            let out = upd
                .iter()
                .map(|x| num::select(&ok, x, &konst(x.dtype(), 0.0)))
                .collect::<Result<Vec<_>>>()?;
            let bad = num::rsubc(1.0, &cast(&finite, DType::I32)?)?;
            *st = OptState::node(vec![
                ("notfinite_count", OptState::Leaf(nf_new)),
                ("last_finite", OptState::Leaf(finite)),
                ("total_notfinite", OptState::Leaf(num::add(&total, &bad)?)),
                ("inner", select_state(&ok, &inner_new, &inner_old)?),
            ]);
            Ok(out)
        },
    )
}

/// The current hyperparameter values handed to an [`inject_hyperparams`] factory.
#[derive(Clone, Debug)]
pub struct HyperValues(Vec<(&'static str, Array)>);

impl HyperValues {
    /// The value of `name` as a rank-0 array (pass it where a [`LearningRate`] is taken).
    pub fn get(&self, name: &str) -> Result<Array> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| {
                Error::invalid("inject_hyperparams", format!("no hyperparameter `{name}`"))
            })
    }
}

/// Builds the transformation from hyperparameters held in the state as rank-0 arrays
/// (Optax's `inject_hyperparams`): a schedule is evaluated on the wrapper's own step count
/// at each update, a constant can be changed with
/// [`OptState::set_hyperparam`] without rebuilding (or recompiling a jitted step), and the
/// value used by the last update is read back with [`OptState::hyperparam`] /
/// [`OptState::learning_rate`].
///
/// ```
/// use ferrax_optim::{inject_hyperparams, sgd, apply_updates};
/// use ferrax_core::{Tensor, C};
/// let tx = inject_hyperparams(vec![("learning_rate", 0.1.into())], |h| Ok(sgd(h.get("learning_rate")?)));
/// let p = Tensor::<(C<1>,)>::from_vec(vec![1.0]).unwrap();
/// let mut s = tx.init(&p).unwrap();
/// s.set_hyperparam("learning_rate", 0.5).unwrap();
/// let u = tx.update(&p, &mut s, Some(&p)).unwrap();
/// assert_eq!(u.to_vec().unwrap(), vec![-0.5]);
/// assert_eq!(s.learning_rate().unwrap().to_vec::<f32>().unwrap(), vec![0.5]);
/// ```
pub fn inject_hyperparams(
    hyperparams: Vec<(&'static str, LearningRate)>,
    factory: impl Fn(&HyperValues) -> Result<Transform> + Send + Sync + 'static,
) -> Transform {
    const OP: &str = "inject_hyperparams";
    let factory = std::sync::Arc::new(factory);
    let (hi, fi) = (hyperparams.clone(), factory.clone());
    // Hyperparameters live in f64 when the parameters are f64, f32 otherwise.
    let hp_dtype = |p: &[Array]| {
        if !p.is_empty() && p.iter().all(|x| x.dtype() == DType::F64) {
            DType::F64
        } else {
            DType::F32
        }
    };
    let values = move |hps: &[(&'static str, LearningRate)],
                       count: &Array,
                       current: Option<&OptState>,
                       dt: DType| {
        hps.iter()
            .map(|(n, h)| {
                let v = match h {
                    LearningRate::Schedule(s) => s.eval(count, dt)?,
                    _ => match current.and_then(|c| c.get(n)).and_then(|s| s.as_array()) {
                        Some(a) => a.clone(),
                        None => match h {
                            LearningRate::Const(x) => konst(dt, *x),
                            LearningRate::Array(a) => cast(a, dt)?,
                            LearningRate::Schedule(_) => unreachable!("handled above"),
                        },
                    },
                };
                Ok((*n, v))
            })
            .collect::<Result<Vec<_>>>()
    };
    let values = std::sync::Arc::new(values);
    let vi = values.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            let dt = hp_dtype(p);
            let count = num::zero_count();
            let vals = vi(&hi, &count, None, dt)?;
            let inner = fi(&HyperValues(vals.clone()))?;
            Ok(OptState::node(vec![
                ("count", OptState::Leaf(count)),
                (
                    "hyperparams",
                    OptState::Node(
                        vals.into_iter()
                            .map(|(n, a)| (n, OptState::Leaf(a)))
                            .collect(),
                    ),
                ),
                ("inner", inner.init_leaves(p, paths)?),
            ]))
        },
        move |u, st, ctx| {
            let count = st.array(OP, "count")?;
            let current = st.field(OP, "hyperparams")?.clone();
            let dt = current
                .children()
                .first()
                .and_then(|s| s.as_array())
                .map_or(DType::F32, |a| a.dtype());
            let vals = values(&hyperparams, &count, Some(&current), dt)?;
            let inner = factory(&HyperValues(vals.clone()))?;
            let mut inner_state = st.field(OP, "inner")?.clone();
            let out = inner.update_leaves(u, &mut inner_state, ctx)?;
            *st = OptState::node(vec![
                ("count", OptState::Leaf(num::safe_increment(&count)?)),
                (
                    "hyperparams",
                    OptState::Node(
                        vals.into_iter()
                            .map(|(n, a)| (n, OptState::Leaf(a)))
                            .collect(),
                    ),
                ),
                ("inner", inner_state),
            ]);
            Ok(out)
        },
    )
}

/// Lookahead: `fast` takes the steps; every `sync_period` steps the parameters are pulled
/// to `slow + slow_step_size * (fast - slow)` and the slow weights move there. The slow
/// weights live in this transformation's state (Optax keeps them in the parameters), so it
/// works on any parameter tree. Needs the parameters.
pub fn lookahead(fast: Transform, sync_period: u32, slow_step_size: f64) -> Transform {
    const OP: &str = "lookahead";
    let fi = fast.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            Ok(OptState::node(vec![
                ("count", OptState::Leaf(num::zero_count())),
                ("slow", OptState::Leaves(p.to_vec())),
                ("fast", fi.init_leaves(p, paths)?),
            ]))
        },
        move |u, st, ctx| {
            let params = ctx.params(OP)?;
            let count = st.array(OP, "count")?;
            let slow = st.per_param(OP, "slow", u.len())?;
            let mut fs = st.field(OP, "fast")?.clone();
            let fu = fast.update_leaves(u, &mut fs, ctx)?;
            let c = num::safe_increment(&count)?;
            let rem = binary_bcast(
                BinaryOp::Rem,
                &c,
                &konst(DType::I32, sync_period.max(1) as f64),
            )?;
            let sync = num::cmpc(CompareOp::Eq, &rem, 0.0)?;
            let (mut out, mut new_slow) = (Vec::new(), Vec::new());
            for i in 0..fu.len() {
                let fast_p = num::add(&params[i], &fu[i])?;
                let moved = num::add(
                    &slow[i],
                    &num::mulc(&num::sub(&fast_p, &slow[i])?, slow_step_size)?,
                )?;
                out.push(num::select(&sync, &num::sub(&moved, &params[i])?, &fu[i])?);
                new_slow.push(num::select(&sync, &moved, &slow[i])?);
            }
            *st = OptState::node(vec![
                ("count", OptState::Leaf(c)),
                ("slow", OptState::Leaves(new_slow)),
                ("fast", fs),
            ]);
            Ok(out)
        },
    )
}

/// Hyperparameters of [`reduce_on_plateau`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Multiplier applied to the scale on a plateau.
    pub factor: f64,
    /// Accumulated evaluations without improvement before reducing.
    pub patience: i32,
    /// Relative improvement needed.
    pub rtol: f64,
    /// Absolute improvement needed.
    pub atol: f64,
    /// Evaluations to wait after a reduction.
    pub cooldown: i32,
    /// Number of loss values averaged into one evaluation.
    pub accumulation_size: i32,
    /// Lower bound of the scale.
    pub min_scale: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            factor: 0.1,
            patience: 10,
            rtol: 1e-4,
            atol: 0.0,
            cooldown: 0,
            accumulation_size: 1,
            min_scale: 0.0,
        }
    }
}

/// Scales updates by a factor that shrinks when the (averaged) loss stops improving. The
/// loss is passed with [`Transform::update_with_value`].
pub fn reduce_on_plateau(cfg: PlateauConfig) -> Transform {
    const OP: &str = "reduce_on_plateau";
    Transform::from_fns(
        OP,
        |_, _| {
            Ok(OptState::node(vec![
                (
                    "best_value",
                    OptState::Leaf(konst(DType::F32, f64::INFINITY)),
                ),
                ("plateau_count", OptState::Leaf(num::zero_count())),
                ("scale", OptState::Leaf(konst(DType::F32, 1.0))),
                ("cooldown_count", OptState::Leaf(num::zero_count())),
                ("count", OptState::Leaf(num::zero_count())),
                ("avg_value", OptState::Leaf(konst(DType::F32, 0.0))),
            ]))
        },
        move |u, st, ctx| {
            let value = ctx.value.ok_or_else(|| {
                Error::invalid(OP, "needs the loss value: call `update_with_value`")
            })?;
            let g = |n| st.array(OP, n);
            let (best, plateau, scale, cool, count, avg) = (
                g("best_value")?,
                g("plateau_count")?,
                g("scale")?,
                g("cooldown_count")?,
                g("count")?,
                g("avg_value")?,
            );
            let i32c = |x: f64| konst(DType::I32, x);
            let value = cast(value, DType::F32)?;
            let new_count = num::safe_increment(&count)?;
            let new_avg = num::div(
                &num::add(&num::mul(&cast(&count, DType::F32)?, &avg)?, &value)?,
                &cast(&new_count, DType::F32)?,
            )?;
            let do_scale = num::cmpc(CompareOp::Eq, &new_count, cfg.accumulation_size as f64)?;
            // The evaluation step (Optax's `_update_scale`), selected by `do_scale`.
            let improved = num::cmp(
                CompareOp::Lt,
                &new_avg,
                &num::subc(&num::mulc(&best, 1.0 - cfg.rtol)?, cfg.atol)?,
            )?;
            let e_best = num::select(&improved, &new_avg, &best)?;
            let curr = num::select(&improved, &i32c(0.0), &num::safe_increment(&plateau)?)?;
            let hit = num::cmpc(CompareOp::Eq, &curr, cfg.patience as f64)?;
            let nc_plateau = num::select(&hit, &i32c(0.0), &curr)?;
            let nc_scale = num::maxc(
                &num::select(&hit, &num::mulc(&scale, cfg.factor)?, &scale)?,
                cfg.min_scale,
            )?;
            let nc_cool = num::select(&hit, &i32c(cfg.cooldown as f64), &i32c(0.0))?;
            let ready = num::cmpc(CompareOp::Eq, &cool, 0.0)?;
            let e_plateau = num::select(&ready, &nc_plateau, &i32c(0.0))?;
            let e_scale = num::select(&ready, &nc_scale, &scale)?;
            let e_cool = num::select(&ready, &nc_cool, &num::subc(&cool, 1.0)?)?;
            let pick = |a: &Array, b: &Array| num::select(&do_scale, a, b);
            let scale_new = pick(&e_scale, &scale)?;
            let out = u
                .iter()
                .map(|x| num::mul(x, &cast(&scale_new, x.dtype())?))
                .collect::<Result<Vec<_>>>()?;
            *st = OptState::node(vec![
                ("best_value", OptState::Leaf(pick(&e_best, &best)?)),
                ("plateau_count", OptState::Leaf(pick(&e_plateau, &plateau)?)),
                ("scale", OptState::Leaf(scale_new)),
                ("cooldown_count", OptState::Leaf(pick(&e_cool, &cool)?)),
                ("count", OptState::Leaf(pick(&i32c(0.0), &new_count)?)),
                (
                    "avg_value",
                    OptState::Leaf(pick(&konst(DType::F32, 0.0), &new_avg)?),
                ),
            ]);
            Ok(out)
        },
    )
}
