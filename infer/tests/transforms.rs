//! The 10 `biject_to` transforms of tests/reference/distributions.json: forward values,
//! log|det J|, its gradient, and the inverse round trip.

mod common;
use common::*;
use ferrax_core::Array;
use ferrax_infer::constraints::Constraint;
use ferrax_infer::math::ArrayMath;
use ferrax_infer::transforms::biject_to;

fn constraint(key: &str) -> Constraint {
    match key {
        "real" => Constraint::Real,
        "positive" => Constraint::Positive,
        "unit_interval" => Constraint::UnitInterval,
        "interval(-1, 3)" => Constraint::Interval(Array::scalar(-1.0f64), Array::scalar(3.0f64)),
        "greater_than(2)" => Constraint::GreaterThan(Array::scalar(2.0f64)),
        "simplex (K=4)" => Constraint::Simplex,
        "ordered_vector" => Constraint::OrderedVector,
        "lower_cholesky (3x3)" => Constraint::LowerCholesky,
        "corr_cholesky (3x3)" => Constraint::CorrCholesky,
        "positive_definite (3x3)" => Constraint::PositiveDefinite,
        k => panic!("unknown transform {k}"),
    }
}

#[test]
fn transforms_match_numpyro() {
    let r = load("distributions.json");
    let ts = r["transforms"].as_object().unwrap();
    assert_eq!(ts.len(), 10);
    let mut grad_failures = Vec::new();
    for (key, t) in ts {
        let tr = biject_to(&constraint(key)).unwrap();
        for (i, p) in t["points"].as_array().unwrap().iter().enumerate() {
            let what = format!("{key} point {i}");
            let x = arr64(&p["x"]);
            let y = tr.forward(&x).unwrap();
            let (_, want_y) = flat(&p["y"]);
            close(&vals(&y), &want_y, 1e-12, 1e-12, &format!("{what} y"));
            let l = tr.log_abs_det_jacobian(&x, &y).unwrap();
            let (_, want_l) = flat(&p["log_abs_det_jacobian"]);
            close(&vals(&l), &want_l, 1e-12, 1e-12, &format!("{what} ladj"));
            let back = tr.inverse(&y).unwrap();
            close(
                &vals(&back),
                &vals(&x),
                1e-9,
                1e-9,
                &format!("{what} inverse"),
            );
            match ferrax_core::ad::grad(&x, |x| {
                let y = tr.forward(x).unwrap();
                tr.log_abs_det_jacobian(x, &y).unwrap().sum_all().unwrap()
            }) {
                Ok(g) => {
                    let (_, want_g) = flat(&p["grad_x_of_log_abs_det_jacobian"]);
                    close(&vals(&g), &want_g, 1e-9, 1e-10, &format!("{what} grad"));
                }
                Err(e) => grad_failures.push(format!("{what}: {e}")),
            }
        }
    }
    assert!(grad_failures.is_empty(), "{grad_failures:#?}");
}

#[test]
fn discrete_constraints_have_no_bijection() {
    assert!(biject_to(&Constraint::Boolean).is_err());
    assert!(biject_to(&Constraint::NonNegativeInteger).is_err());
}
