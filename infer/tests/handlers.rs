//! Effect handlers: seed, trace, substitute, condition, block, replay, scale, mask, plate,
//! and the duplicate-name error.

use ferrax_core::random::Key;
use ferrax_core::Array;
use ferrax_infer::dist::{Distribution, Normal};
use ferrax_infer::handlers::*;
use ferrax_infer::math::to_f64;
use ferrax_infer::Error;
use std::collections::HashMap;

fn model() -> ferrax_infer::Result<Array> {
    let mu = sample("mu", Normal::new(0.0, 1.0)?, None)?;
    plate("data", 3, None, |_| {
        sample(
            "y",
            Normal::new(&mu, 1.0)?,
            Some(Array::from_vec(vec![3], vec![0.5f64, 1.0, 1.5]).unwrap()),
        )
    })?;
    deterministic("two_mu", ferrax_infer::math::ArrayMath::mulc(&mu, 2.0)?)
}

#[test]
fn seed_is_required_and_deterministic() {
    let e = trace(model).unwrap_err();
    assert!(
        matches!(e, Error::Site { ref site, .. } if site == "mu"),
        "{e}"
    );
    let (a, _) = trace(|| seed(Key::new(3), model)).unwrap();
    let (b, _) = trace(|| seed(Key::new(3), model)).unwrap();
    assert_eq!(to_f64(&a).unwrap(), to_f64(&b).unwrap());
}

#[test]
fn trace_records_sites_and_log_density() {
    let (_, tr) = trace(|| seed(Key::new(0), model)).unwrap();
    assert_eq!(tr.names(), vec!["mu", "y", "two_mu"]);
    let y = tr.get("y").unwrap();
    assert!(y.is_observed);
    assert_eq!(y.plates[0].name, "data");
    assert_eq!(y.dist.as_ref().unwrap().batch_shape(), vec![3]);
    let mu = to_f64(tr.value("mu").unwrap()).unwrap()[0];
    let want: f64 = Normal::new(0.0, 1.0)
        .unwrap()
        .log_prob(&Array::scalar(mu))
        .unwrap()
        .to_vec::<f64>()
        .unwrap()[0]
        + [0.5, 1.0, 1.5]
            .iter()
            .map(|y| -0.5 * (y - mu) * (y - mu) - 0.918_938_533_204_672_8)
            .sum::<f64>();
    let got = to_f64(&tr.log_prob_sum().unwrap()).unwrap()[0];
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn substitute_condition_replay() {
    let vals = HashMap::from([("mu".to_string(), Array::scalar(0.25f64))]);
    let (r, tr) = trace(|| substitute(vals.clone(), model)).unwrap();
    assert_eq!(to_f64(&r).unwrap(), vec![0.5]);
    assert!(!tr.get("mu").unwrap().is_observed);
    let (_, tr) = trace(|| condition(vals.clone(), model)).unwrap();
    assert!(tr.get("mu").unwrap().is_observed);
    let (_, t1) = trace(|| seed(Key::new(5), model)).unwrap();
    let (_, t2) = trace(|| replay(&t1, model)).unwrap();
    assert_eq!(
        to_f64(t1.value("mu").unwrap()).unwrap(),
        to_f64(t2.value("mu").unwrap()).unwrap()
    );
}

#[test]
fn block_scale_mask() {
    let (_, tr) = trace(|| block(|s| s.name == "mu", || seed(Key::new(0), model))).unwrap();
    assert_eq!(tr.names(), vec!["y", "two_mu"]);
    let vals = HashMap::from([("mu".to_string(), Array::scalar(0.0f64))]);
    let (_, t1) = trace(|| substitute(vals.clone(), model)).unwrap();
    let (_, t2) = trace(|| scale(2.0, || substitute(vals.clone(), model))).unwrap();
    let (a, b) = (
        to_f64(&t1.log_prob_sum().unwrap()).unwrap()[0],
        to_f64(&t2.log_prob_sum().unwrap()).unwrap()[0],
    );
    assert!((2.0 * a - b).abs() < 1e-12);
    let m = Array::from_vec(vec![3], vec![true, false, false]).unwrap();
    let (_, t3) = trace(|| {
        block(
            |s| s.name != "y",
            || substitute(vals.clone(), || mask(m.clone(), model)),
        )
    })
    .unwrap();
    let only_y = to_f64(&t3.log_prob_sum().unwrap()).unwrap()[0];
    assert!(
        (only_y - (-0.125 - 0.918_938_533_204_672_8)).abs() < 1e-12,
        "{only_y}"
    );
    assert!(scale(-1.0, || Ok(())).is_err());
}

#[test]
fn duplicate_names_are_an_error() {
    let m = || -> ferrax_infer::Result<()> {
        sample("x", Normal::new(0.0, 1.0)?, None)?;
        sample("x", Normal::new(0.0, 1.0)?, None)?;
        Ok(())
    };
    let e = trace(|| seed(Key::new(0), m)).unwrap_err();
    assert_eq!(e, Error::DuplicateSite("x".into()));
    assert!(e.to_string().contains("duplicate site name `x`"));
}

#[test]
fn plate_subsampling_scales() {
    let data = Array::from_vec(vec![10], (0..10).map(|i| i as f64).collect::<Vec<_>>()).unwrap();
    let m = || -> ferrax_infer::Result<()> {
        plate("n", 10, Some(4), |idx| {
            assert_eq!(idx.shape(), &[4]);
            let y = ferrax_core::prim::gather::take(&data, idx, 0)?;
            sample("y", Normal::new(0.0, 1.0)?, Some(y))?;
            Ok(())
        })
    };
    let (_, tr) = trace(|| seed(Key::new(1), m)).unwrap();
    let s = tr.get("y").unwrap();
    assert_eq!(s.scale, 2.5);
    assert!(trace(m).is_err(), "subsampling without a seed must fail");
    let bad = || {
        plate("p", 3, None, |_| {
            sample("z", Normal::new(vec![0.0, 0.0], 1.0)?, None)
        })
    };
    assert!(trace(|| seed(Key::new(0), bad)).is_err());
}
