//! Schedule-free optimization (Defazio et al. 2024; Optax's `contrib.schedule_free`): the
//! base optimizer steps a sequence `z`, the parameters `y` the gradient is taken at are an
//! interpolation of `z` and a running weighted average `x` of it, so no decay schedule is
//! needed. Evaluate the model at `x` ([`schedule_free_eval_params`]), not at `y`.

use crate::base::{Transform, UpdateCtx};
use crate::num::{self, cast, konst};
use crate::schedule::warmup_constant_schedule;
use crate::state::OptState;
use crate::transform::{
    add_decayed_weights, scale_by_learning_rate, scale_by_rms, LearningRate, RmsConfig,
};
use crate::{chain, sgd};
use ferrax_core::prim::compare::CompareOp;
use ferrax_core::tree::{self, Tree};
use ferrax_core::{Array, DType, Error, Result};

/// The dtype `z` is kept in: f32 for half-precision parameters (as Optax's `state_dtype`
/// default), the parameters' own dtype for f32 and f64.
fn z_dtype(dt: DType) -> DType {
    num::compute_dtype(dt)
}

/// Wraps `base` (whose updates move `z`) into a schedule-free optimizer. `learning_rate`
/// must be the one `base` uses: it weighs the average (`weight = max_lr^weight_lr_power`).
pub fn schedule_free(
    base: Transform,
    learning_rate: impl Into<LearningRate>,
    b1: f64,
    weight_lr_power: f64,
) -> Transform {
    const OP: &str = "schedule_free";
    let lr: LearningRate = learning_rate.into();
    let bi = base.clone();
    Transform::from_fns(
        OP,
        move |p, paths| {
            if b1 == 0.0 {
                return Err(Error::invalid(
                    OP,
                    "b1 = 0 is not supported (the evaluation point divides by b1)",
                ));
            }
            let z = p
                .iter()
                .map(|x| cast(x, z_dtype(x.dtype())))
                .collect::<Result<Vec<_>>>()?;
            Ok(OptState::node(vec![
                ("b1", OptState::Leaf(konst(DType::F32, b1))),
                ("weight_sum", OptState::Leaf(konst(DType::F32, 0.0))),
                ("step_count", OptState::Leaf(konst(DType::I32, 1.0))),
                ("max_lr", OptState::Leaf(konst(DType::F32, 0.0))),
                ("base", bi.init_leaves(p, paths)?),
                ("z", OptState::Leaves(z)),
            ]))
        },
        move |u, st, ctx: &UpdateCtx<'_>| {
            let params = ctx.params(OP)?;
            let count = st.array(OP, "step_count")?;
            let weight_sum = st.array(OP, "weight_sum")?;
            let max_lr = st.array(OP, "max_lr")?;
            let z = st.per_param(OP, "z", u.len())?;
            let mut base_state = st.field(OP, "base")?.clone();
            let lr_now = match &lr {
                LearningRate::Const(x) => konst(DType::F32, *x),
                LearningRate::Schedule(s) => s.eval(&count, DType::F32)?,
                LearningRate::Array(a) => cast(a, DType::F32)?,
            };
            let max_lr = num::max(&max_lr, &lr_now)?;
            let weight = num::pow(&max_lr, &konst(DType::F32, weight_lr_power))?;
            let total = num::add(&weight_sum, &weight)?;
            // weight / total, with 0/0 (a zero learning rate so far) read as 0 unless an
            // input was already NaN (Optax's nan_to_num dance).
            let ratio = num::div(&weight, &total)?;
            let input_nan = num::or(&is_nan(&weight)?, &is_nan(&total)?)?;
            let zero = num::and(&is_nan(&ratio)?, &num::not(&input_nan)?)?;
            let ck = num::select(&zero, &konst(DType::F32, 0.0), &ratio)?;
            let base_u = base.update_leaves(u, &mut base_state, ctx)?;
            let (mut out, mut new_z) = (Vec::with_capacity(z.len()), Vec::with_capacity(z.len()));
            for ((y, zi), bu) in params.iter().zip(&z).zip(&base_u) {
                let zd = zi.dtype();
                let zn = num::add(zi, &cast(bu, zd)?)?;
                let yz = cast(y, zd)?;
                let prev_x = num::divc(&num::sub(&yz, &num::mulc(zi, 1.0 - b1)?)?, b1)?;
                let c = cast(&ck, zd)?;
                let x = num::add(
                    &num::mul(&num::rsubc(1.0, &c)?, &prev_x)?,
                    &num::mul(&c, &zn)?,
                )?;
                let ny = num::add(&num::mulc(&x, b1)?, &num::mulc(&zn, 1.0 - b1)?)?;
                out.push(cast(&num::sub(&ny, &yz)?, y.dtype())?);
                new_z.push(zn);
            }
            *st = OptState::node(vec![
                ("b1", OptState::Leaf(konst(DType::F32, b1))),
                ("weight_sum", OptState::Leaf(total)),
                ("step_count", OptState::Leaf(num::safe_increment(&count)?)),
                ("max_lr", OptState::Leaf(max_lr)),
                ("base", base_state),
                ("z", OptState::Leaves(new_z)),
            ]);
            Ok(out)
        },
    )
}

/// NaN test as `x != x`.
fn is_nan(x: &Array) -> Result<Array> {
    num::cmp(CompareOp::Ne, x, x)
}

/// The point to evaluate a schedule-free model at: `x = (y - (1 - b1) z) / b1`, from the
/// parameters `y` and the state of a [`schedule_free`] transformation (found anywhere in
/// `state`, e.g. an [`Optimizer`](crate::Optimizer)'s).
pub fn schedule_free_eval_params<T: Tree>(state: &OptState, params: &T) -> Result<T> {
    const OP: &str = "schedule_free_eval_params";
    let missing = || Error::invalid(OP, "the state holds no schedule_free state (`z`, `b1`)");
    let z = state
        .find("z")
        .and_then(|s| s.as_leaves())
        .ok_or_else(missing)?;
    let b1 = state
        .find("b1")
        .and_then(|s| s.as_array())
        .ok_or_else(missing)?;
    let leaves = tree::leaves(params);
    num::check_len(OP, "the schedule_free state", leaves.len(), z.len())?;
    let out = leaves
        .iter()
        .zip(z)
        .map(|(y, zi)| {
            let zd = zi.dtype();
            let b = cast(b1, zd)?;
            let x = num::div(
                &num::sub(&cast(y, zd)?, &num::mul(&num::rsubc(1.0, &b)?, zi)?)?,
                &b,
            )?;
            cast(&x, y.dtype())
        })
        .collect::<Result<Vec<_>>>()?;
    tree::unflatten(params, out)
}

fn warmed(lr: f64, warmup_steps: Option<i64>) -> Result<LearningRate> {
    Ok(match warmup_steps {
        Some(w) => warmup_constant_schedule(0.0, lr, w)?.into(),
        None => lr.into(),
    })
}

/// Schedule-free SGD (Optax's defaults: `b1 = 0.9`, `weight_lr_power = 2`), with an
/// optional linear warmup and weight decay (applied at `y`).
pub fn schedule_free_sgd(
    learning_rate: f64,
    warmup_steps: Option<i64>,
    b1: f64,
    weight_decay: Option<f64>,
) -> Result<Transform> {
    let lr = warmed(learning_rate, warmup_steps)?;
    let mut base = sgd(lr.clone());
    if let Some(wd) = weight_decay {
        base = chain([add_decayed_weights(wd, None), base]);
    }
    Ok(schedule_free(base, lr, b1, 2.0))
}

/// Schedule-free AdamW (Optax's defaults: `lr = 0.0025, b1 = 0.9, b2 = 0.999,
/// eps = 1e-8`): AdamW without its momentum (bias-corrected RMS scaling, decoupled weight
/// decay), wrapped by [`schedule_free`].
pub fn schedule_free_adamw(
    learning_rate: f64,
    warmup_steps: Option<i64>,
    b1: f64,
    b2: f64,
    eps: f64,
    weight_decay: f64,
) -> Result<Transform> {
    let lr = warmed(learning_rate, warmup_steps)?;
    let base = chain([
        scale_by_rms(RmsConfig {
            decay: b2,
            eps,
            initial_scale: 0.0,
            eps_in_sqrt: false,
            bias_correction: true,
        }),
        add_decayed_weights(weight_decay, None),
        scale_by_learning_rate(lr.clone()),
    ]);
    Ok(schedule_free(base, lr, b1, 2.0))
}
