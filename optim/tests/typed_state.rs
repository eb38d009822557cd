//! Typed views of optimizer state: moments read back in the user's own parameter type
//! equal a naive f64 loop transcribing the update rules; chain pieces by position and by
//! name; errors that name what was asked and what was found; the chain's tags are
//! invisible to the tree (paths, leaves) and survive a rebuild.

use ferrax_core::tree::{self, Path, PathElem, Tree};
use ferrax_core::{Array, Result, Tensor, C};
use ferrax_optim::*;

/// Both sides compute in f64 with the same formulas, possibly in another order.
const TOL: f64 = 1e-12;

/// A user's parameter type with a hand-written `Tree` impl (what `#[derive(Tree)]` emits).
#[derive(Clone, Debug)]
struct Model {
    w: Tensor<(C<2>, C<3>), f64>,
    b: Tensor<(C<3>,), f64>,
}

impl Tree for Model {
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Array)) {
        path.with(PathElem::Field("w"), |p| self.w.visit(p, f));
        path.with(PathElem::Field("b"), |p| self.b.visit(p, f));
    }
    fn rebuild(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        Ok(Model {
            w: path.with(PathElem::Field("w"), |p| self.w.rebuild(p, f))?,
            b: path.with(PathElem::Field("b"), |p| self.b.rebuild(p, f))?,
        })
    }
}

fn model(v: &[f64]) -> Model {
    Model {
        w: Tensor::from_vec(v[..6].to_vec()).unwrap(),
        b: Tensor::from_vec(v[6..9].to_vec()).unwrap(),
    }
}

fn flat(m: &Model) -> Vec<f64> {
    let mut v = m.w.to_vec().unwrap();
    v.extend(m.b.to_vec().unwrap());
    v
}

/// A deterministic gradient for step `t` (9 values: w then b).
fn grad(t: usize) -> Vec<f64> {
    (0..9)
        .map(|i| (0.7 * i as f64 + 1.1 * t as f64).sin() * (1.0 + 0.25 * i as f64))
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= TOL * b.abs().max(1.0),
            "{what}[{i}]: got {a}, want {b}"
        );
    }
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn adam_moments_in_the_params_type_equal_hand_computed_moments() {
    let (b1, b2) = (0.9, 0.999);
    let steps = 4;
    let mut m = model(&[0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.1, -0.2, 0.3]);
    let mut opt = Optimizer::new(&m, adam(0.01)).unwrap();
    let (mut mu, mut nu) = (vec![0.0; 9], vec![0.0; 9]);
    for t in 0..steps {
        let g = grad(t);
        for i in 0..9 {
            mu[i] = b1 * mu[i] + (1.0 - b1) * g[i];
            nu[i] = b2 * nu[i] + (1.0 - b2) * g[i] * g[i];
        }
        opt.update(&mut m, &model(&g)).unwrap();
    }
    // Every way in reaches the same moments, as `Model`s.
    let by_pos: ScaleByAdamState<Model> = opt.piece(0, &m).unwrap();
    let by_name: ScaleByAdamState<Model> = opt.piece_by_name("scale_by_adam", &m).unwrap();
    let by_type: ScaleByAdamState<Model> = opt.find_typed(&m).unwrap();
    for s in [&by_pos, &by_name, &by_type] {
        assert_eq!(s.count.to_vec::<i32>().unwrap(), vec![steps as i32]);
        assert_close("mu", &flat(&s.mu), &mu);
        assert_close("nu", &flat(&s.nu), &nu);
        // The fields are the user's type: typed access to one parameter's moment.
        assert_close("mu.b", &s.mu.b.to_vec().unwrap(), &mu[6..]);
    }
    assert_close("tree(mu)", &flat(&opt.state_tree("mu", &m).unwrap()), &mu);
    assert_close("tree(nu)", &flat(&opt.state().tree("nu", &m).unwrap()), &nu);
}

#[test]
fn chain_pieces_by_position() {
    // chain(trace, ema, lr): trace t = g + 0.9 t; ema e = 0.8 e + 0.2 t (no debias).
    let tx = chain([
        trace(0.9, false),
        ema(0.8, false),
        scale_by_learning_rate(0.1),
    ]);
    let mut m = model(&[0.0; 9]);
    let mut opt = Optimizer::new(&m, tx).unwrap();
    let (mut tr, mut e) = (vec![0.0; 9], vec![0.0; 9]);
    for t in 0..3 {
        let g = grad(t);
        for i in 0..9 {
            tr[i] = g[i] + 0.9 * tr[i];
            e[i] = 0.8 * e[i] + 0.2 * tr[i];
        }
        opt.update(&mut m, &model(&g)).unwrap();
    }
    let s0: TraceState<Model> = opt.piece(0, &m).unwrap();
    assert_close("trace", &flat(&s0.trace), &tr);
    let s1: EmaState<Model> = opt.piece(1, &m).unwrap();
    assert_eq!(s1.count.to_vec::<i32>().unwrap(), vec![3]);
    assert_close("ema", &flat(&s1.ema), &e);
    // The chain's pieces, by the name of the transformation that made each.
    let names: Vec<_> = opt
        .state()
        .chain_pieces()
        .unwrap()
        .iter()
        .map(|p| p.transform_name().unwrap())
        .collect();
    // A constant learning rate is `scale(-lr)`, as in Optax.
    assert_eq!(names, ["trace", "ema", "scale"]);

    // Wrong type at a position: the error names the piece, its transformation and the type.
    let msg = err_text(opt.piece::<TraceState<Model>>(2, &m));
    assert!(
        msg.contains("piece 2")
            && msg.contains("`scale`")
            && msg.contains("stateless")
            && msg.contains("TraceState"),
        "{msg}"
    );
    let msg = err_text(opt.piece::<ScaleByAdamState<Model>>(0, &m));
    assert!(
        msg.contains("`trace`") && msg.contains("ScaleByAdamState"),
        "{msg}"
    );
    // Out of range: says how many pieces there are and what they are.
    let msg = err_text(opt.piece::<TraceState<Model>>(3, &m));
    assert!(msg.contains("3 pieces") && msg.contains("ema"), "{msg}");
}

#[test]
fn wrong_names_are_errors_that_list_what_exists() {
    let m = model(&[1.0; 9]);
    let opt = Optimizer::new(&m, adam(0.1)).unwrap();
    let msg = err_text(opt.piece_by_name::<ScaleByAdamState<Model>>("scale_by_adamw", &m));
    assert!(
        msg.contains("`scale_by_adamw`") && msg.contains("scale_by_adam, scale"),
        "{msg}"
    );
    // A transformation that is there but whose state is another type.
    let msg = err_text(opt.piece_by_name::<TraceState<Model>>("scale_by_adam", &m));
    assert!(
        msg.contains("`scale_by_adam`") && msg.contains("TraceState") && msg.contains("trace"),
        "{msg}"
    );
    // A type no piece has.
    let msg = err_text(opt.find_typed::<ScaleByLionState<Model>>(&m));
    assert!(
        msg.contains("ScaleByLionState") && msg.contains("scale_by_lion"),
        "{msg}"
    );
    // A field that does not exist, and one that is not per-parameter.
    let msg = err_text(opt.state_tree("velocity", &m));
    assert!(
        msg.contains("`velocity`") && msg.contains("count, mu, nu"),
        "{msg}"
    );
    let msg = err_text(opt.state_tree("count", &m));
    assert!(msg.contains("`count`") && msg.contains("single"), "{msg}");
}

#[test]
fn views_check_the_parameters_they_rebuild_into() {
    let m = model(&[1.0; 9]);
    let st = adam(0.1).init(&m).unwrap();
    // Another structure: one tensor of 9 where the state has two leaves.
    let other = Tensor::<(C<9>,), f64>::zeros();
    let msg = err_text(st.tree("mu", &other));
    assert!(
        msg.contains("2 arrays") && msg.contains("1 leaves"),
        "{msg}"
    );
    // Same leaf count, wrong shapes.
    let swapped = (
        Tensor::<(C<3>,), f64>::zeros(),
        Tensor::<(C<2>, C<3>), f64>::zeros(),
    );
    let msg = err_text(st.tree("mu", &swapped));
    assert!(msg.contains("does not fit"), "{msg}");
    // mu stored in bf16 (mu_dtype) cannot be read into f64 parameters.
    let cfg = AdamConfig {
        mu_dtype: Some(ferrax_core::DType::BF16),
        ..AdamConfig::default()
    };
    let st = adam_with(0.1, cfg).init(&m).unwrap();
    let msg = err_text(st.piece::<ScaleByAdamState<Model>>(0, &m));
    assert!(
        msg.contains("ScaleByAdamState.mu") && msg.contains("dtype"),
        "{msg}"
    );
}

#[test]
fn tags_are_invisible_to_the_tree_and_survive_rebuilds() {
    let m = model(&[1.0; 9]);
    let st = adam(0.1).init(&m).unwrap();
    let paths: Vec<String> = tree::paths(&st).iter().map(|p| p.to_string()).collect();
    assert_eq!(paths, ["0.count", "0.mu.0", "0.mu.1", "0.nu.0", "0.nu.1"]);
    // A rebuild (what jit and checkpoint restore do) keeps the tags: views still work.
    let doubled = tree::map_leaves(&st, |_, a| Ok(a.clone())).unwrap();
    assert_eq!(
        doubled.chain_pieces().unwrap()[0].transform_name(),
        Some("scale_by_adam")
    );
    // Under a wrapper (inject_hyperparams -> inner chain), position 0 is still Adam's.
    let tx = inject_hyperparams(vec![("learning_rate", 0.1.into())], |h| {
        Ok(adam(h.get("learning_rate")?))
    });
    let mut st = tx.init(&m).unwrap();
    let g = model(&grad(0));
    tx.update(&g, &mut st, Some(&m)).unwrap();
    let s: ScaleByAdamState<Model> = st.piece(0, &m).unwrap();
    let want: Vec<f64> = grad(0).iter().map(|g| 0.1 * g).collect();
    assert_close("mu after one step", &flat(&s.mu), &want);
    // A bare transformation's state reads with `typed`.
    let st = trace(0.5, false).init(&m).unwrap();
    let s: TraceState<Model> = st.typed(&m).unwrap();
    assert_close("zero trace", &flat(&s.trace), &[0.0; 9]);
}
