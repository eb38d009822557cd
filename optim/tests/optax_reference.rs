//! Reproduces every optimizer trajectory and schedule in `tests/reference/optax.json`
//! (generated with Optax 0.2.8 on JAX 0.10.2, CPU) within the stated tolerances.

use ferrax_core::{Array, DType};
use ferrax_optim::schedule::*;
use ferrax_optim::*;
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/reference/optax.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("optax.json")).expect("json")
}

fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(xs) => xs.iter().for_each(|x| flat(x, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::String(s) => out.push(s.parse::<f64>().unwrap_or(match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            _ => f64::NEG_INFINITY,
        })),
        other => panic!("unexpected {other}"),
    }
}

/// A `{dtype, shape, data}` tensor as an array of `dt`.
fn tensor(v: &Value, dt: DType) -> Array {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let mut data = Vec::new();
    flat(&v["data"], &mut data);
    match dt {
        DType::F64 => Array::from_vec(shape, data).unwrap(),
        _ => Array::from_vec(shape, data.iter().map(|&x| x as f32).collect::<Vec<f32>>()).unwrap(),
    }
}

fn values(a: &Array) -> Vec<f64> {
    match a.dtype() {
        DType::F64 => a.to_vec::<f64>().unwrap(),
        _ => a
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(|x| x as f64)
            .collect(),
    }
}

fn host(v: &[f64], like: &Array) -> Array {
    match like.dtype() {
        DType::F64 => Array::from_vec(like.shape().to_vec(), v.to_vec()).unwrap(),
        _ => Array::from_vec(
            like.shape().to_vec(),
            v.iter().map(|&x| x as f32).collect::<Vec<f32>>(),
        )
        .unwrap(),
    }
}

/// Round to the array's dtype (the gradient is computed in that dtype by JAX).
fn r(x: f64, f32_: bool) -> f64 {
    if f32_ {
        x as f32 as f64
    } else {
        x
    }
}

fn optimizer(name: &str) -> Transform {
    match name {
        "sgd_momentum" => sgd_with(0.01, Some(0.9), false),
        "sgd_nesterov" => sgd_with(0.01, Some(0.9), true),
        "adam" => adam(0.1),
        "adamw" => adamw(0.1, 0.01, None),
        "rmsprop" => rmsprop(0.01, RmsConfig::default(), false, None, false),
        "adagrad" => adagrad(0.1, 0.1, 1e-7),
        "lion" => lion(0.01, 0.9, 0.99, 0.001, None),
        "lamb" => lamb(0.01, lamb_config(), 0.0, None),
        "adafactor_default" => adafactor(Some(0.01.into()), AdafactorConfig::default()),
        "adafactor_factored_min_dim_2" => adafactor(
            Some(0.01.into()),
            AdafactorConfig {
                min_dim_size_to_factor: 2,
                ..AdafactorConfig::default()
            },
        ),
        "clip_by_global_norm_1_then_adam" => chain([clip_by_global_norm(1.0), adam(0.1)]),
        "adam_warmup_cosine_schedule" => {
            adam(warmup_cosine_decay_schedule(0.0, 0.1, 2, 5, 0.01, 1.0).unwrap())
        }
        other => panic!("no mapping for optimizer `{other}`"),
    }
}

/// The objectives' gradients, computed as JAX does in the array's dtype.
fn gradient(obj: &str, data: &Value, params: &[Array]) -> Vec<Array> {
    let f32_ = params[0].dtype() == DType::F32;
    match obj {
        "quadratic" => {
            // params are (b, w) in JAX's sorted-key order; g = curv * (p - target).
            let names = [("b_target", "b_curv"), ("w_target", "w_curv")];
            params
                .iter()
                .zip(names)
                .map(|(p, (t, c))| {
                    let (mut tv, mut cv) = (Vec::new(), Vec::new());
                    flat(&data[t]["data"], &mut tv);
                    flat(&data[c]["data"], &mut cv);
                    let pv = values(p);
                    let g: Vec<f64> = pv
                        .iter()
                        .zip(tv.iter().zip(&cv))
                        .map(|(&p, (&t, &c))| r(r(c, f32_) * r(p - r(t, f32_), f32_), f32_))
                        .collect();
                    host(&g, p)
                })
                .collect()
        }
        "rosenbrock" => {
            let v = values(&params[0]);
            let (x, y) = (v[0], v[1]);
            let d = y - x * x;
            let gx = -2.0 * (1.0 - x) - 400.0 * x * d;
            let gy = 200.0 * d;
            vec![host(&[r(gx, f32_), r(gy, f32_)], &params[0])]
        }
        other => panic!("unknown objective {other}"),
    }
}

fn params_of(obj: &str, v: &Value, dt: DType) -> Vec<Array> {
    match obj {
        "quadratic" => vec![tensor(&v["b"], dt), tensor(&v["w"], dt)],
        _ => vec![tensor(&v["xy"], dt)],
    }
}

fn close(got: &[f64], want: &[f64], rtol: f64, atol: f64) -> Option<(usize, f64, f64)> {
    got.iter().zip(want).enumerate().find_map(|(i, (&g, &w))| {
        // Diverging references (SGD on Rosenbrock) reach the same infinity.
        let ok = g == w || (g - w).abs() <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan());
        (!ok).then_some((i, g, w))
    })
}

#[test]
fn every_optimizer_trajectory_matches_optax() {
    let r = reference();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, o) in r["optimizers"].as_object().unwrap() {
        for (obj, traj) in o["trajectories"].as_object().unwrap() {
            let data = &r["objectives"][obj]["data"];
            for (key, dt, rtol, atol) in [
                ("float64", DType::F64, 1e-10, 1e-12),
                ("float32", DType::F32, 1e-5, 1e-6),
            ] {
                let t = &traj[key];
                let steps = t["params"].as_array().unwrap();
                let tx = optimizer(name);
                let mut params = params_of(obj, &steps[0], dt);
                let paths: Vec<_> = (0..params.len())
                    .map(|i| ferrax_core::tree::Path(vec![ferrax_core::tree::PathElem::Index(i)]))
                    .collect();
                let mut state = tx.init_leaves(&params, &paths).unwrap();
                for (k, want) in steps.iter().enumerate().skip(1) {
                    let g = gradient(obj, data, &params);
                    let ctx = UpdateCtx {
                        paths: &paths,
                        params: Some(&params),
                        value: None,
                    };
                    let u = tx.update_leaves(g, &mut state, &ctx).unwrap();
                    if key == "float64" {
                        let want_u = params_of(obj, &t["updates"][k - 1], dt);
                        for (got, want) in u.iter().zip(&want_u) {
                            if let Some((i, g, w)) = close(&values(got), &values(want), rtol, atol)
                            {
                                failures.push(format!(
                                    "{name}/{obj}/{key} update {}: [{i}] {g} vs {w}",
                                    k - 1
                                ));
                            }
                        }
                    }
                    params = params
                        .iter()
                        .zip(&u)
                        .map(|(p, u)| ferrax_core::prim::binary::add(p, u).unwrap())
                        .collect();
                    let want = params_of(obj, want, dt);
                    for (got, want) in params.iter().zip(&want) {
                        assert_eq!(got.dtype(), dt, "{name}: dtype preserved");
                        if let Some((i, g, w)) = close(&values(got), &values(want), rtol, atol) {
                            failures
                                .push(format!("{name}/{obj}/{key} params {k}: [{i}] {g} vs {w}"));
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 12 * 2 * 2 * 5);
}

fn schedule(name: &str, kw: &Value) -> Schedule {
    let f = |k: &str| kw[k].as_f64().unwrap();
    let i = |k: &str| kw[k].as_i64().unwrap();
    match name {
        "warmup_cosine_decay_schedule" => warmup_cosine_decay_schedule(
            f("init_value"),
            f("peak_value"),
            i("warmup_steps"),
            i("decay_steps"),
            f("end_value"),
            f("exponent"),
        )
        .unwrap(),
        n if n.starts_with("exponential_decay") => exponential_decay(
            f("init_value"),
            i("transition_steps"),
            f("decay_rate"),
            i("transition_begin"),
            kw["staircase"].as_bool().unwrap(),
            kw["end_value"].as_f64(),
        ),
        "piecewise_constant_schedule" => {
            let bs: Vec<(i64, f64)> = kw["boundaries_and_scales"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_f64().unwrap()))
                .collect();
            piecewise_constant_schedule(f("init_value"), &bs).unwrap()
        }
        "linear_schedule" => linear_schedule(
            f("init_value"),
            f("end_value"),
            i("transition_steps"),
            i("transition_begin"),
        ),
        "cosine_decay_schedule" => {
            cosine_decay_schedule(f("init_value"), i("decay_steps"), f("alpha"), f("exponent"))
                .unwrap()
        }
        other => panic!("no mapping for schedule `{other}`"),
    }
}

#[test]
fn every_schedule_matches_optax() {
    let r = reference();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, s) in r["schedules"].as_object().unwrap() {
        let sch = schedule(name, &s["kwargs_with_defaults"]);
        let steps = s["steps"].as_array().unwrap();
        for (key, rtol, atol) in [("float64", 1e-12, 1e-14), ("float32", 1e-6, 1e-7)] {
            let mut want = Vec::new();
            flat(&s[key], &mut want);
            for (st, w) in steps.iter().zip(&want) {
                let st = st.as_i64().unwrap() as i32;
                let got = if key == "float64" {
                    sch.value(st).unwrap()
                } else {
                    sch.value_f32(st).unwrap() as f64
                };
                if (got - w).abs() > atol + rtol * w.abs() {
                    failures.push(format!("{name}/{key} step {st}: {got} vs {w}"));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 7 * 2 * 21);
}
