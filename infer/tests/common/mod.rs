//! Shared helpers for reading the reference JSON files.
#![allow(dead_code)]

use ferrax_core::Array;
use serde_json::Value;

pub fn load(name: &str) -> Value {
    let p = format!("{}/../tests/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"));
    serde_json::from_str(&s).expect("valid json")
}

pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("f64"),
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => s.parse().expect("number"),
        },
        _ => panic!("not a number: {v}"),
    }
}

/// Flattens nested lists into (shape, data).
pub fn flat(v: &Value) -> (Vec<usize>, Vec<f64>) {
    match v {
        Value::Array(xs) => {
            let mut data = Vec::new();
            let mut inner = Vec::new();
            for x in xs {
                let (s, d) = flat(x);
                inner = s;
                data.extend(d);
            }
            let mut shape = vec![xs.len()];
            shape.extend(inner);
            (shape, data)
        }
        _ => (vec![], vec![num(v)]),
    }
}

pub fn arr64(v: &Value) -> Array {
    let (s, d) = flat(v);
    Array::from_vec(s, d).unwrap()
}

pub fn arr32(v: &Value) -> Array {
    let (s, d) = flat(v);
    Array::from_vec(s, d.into_iter().map(|x| x as f32).collect::<Vec<f32>>()).unwrap()
}

pub fn vals(a: &Array) -> Vec<f64> {
    ferrax_infer::math::to_f64(a).unwrap()
}

pub fn close(got: &[f64], want: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // An infinite `w` must be matched exactly: `rtol * |w|` would accept anything.
        let ok = (g == w)
            || (g.is_nan() && w.is_nan())
            || (w.is_finite() && (g - w).abs() <= atol + rtol * w.abs());
        assert!(
            ok,
            "{what}[{i}]: got {g:e}, want {w:e} (diff {:e})",
            (g - w).abs()
        );
    }
}
