//! `#[derive(Module)]`: kinds, paths, filters, train/eval mode, summary, update_from, Rngs,
//! Sequential.

extern crate ferrax_core as ferrax;

use ferrax_core::random::Key;
use ferrax_core::{tree, Tensor, C};
use ferrax_nn::{
    BatchNorm, Dropout, Filter, Layer, Linear, Module, Relu, Rngs, Sequential, VarKind,
};

#[derive(Module, Clone, Debug)]
#[module(crate = ferrax_nn)]
struct Net {
    l1: Linear<3, 4>,
    bn: BatchNorm<4>,
    drop: Dropout,
    layers: Vec<Linear<4, 4>>,
    #[module(state)]
    steps: Tensor<()>,
    #[module(static)]
    name: String,
    #[module(training)]
    training: bool,
}

fn net() -> Net {
    let mut rngs = Rngs::new(0);
    Net {
        l1: Linear::new(&mut rngs).unwrap(),
        bn: BatchNorm::new(),
        drop: Dropout::new(0.5).unwrap(),
        layers: vec![
            Linear::new(&mut rngs).unwrap(),
            Linear::no_bias(&mut rngs).unwrap(),
        ],
        steps: Tensor::scalar(0.0),
        name: "net".into(),
        training: true,
    }
}

#[test]
fn paths_and_kinds() {
    let m = net();
    let vars: Vec<(String, VarKind)> = m
        .vars()
        .iter()
        .map(|v| (v.path.to_string(), v.kind))
        .collect();
    let expect = [
        ("l1.kernel", VarKind::Param),
        ("l1.bias", VarKind::Param),
        ("bn.scale", VarKind::Param),
        ("bn.bias", VarKind::Param),
        ("bn.mean", VarKind::State),
        ("bn.var", VarKind::State),
        ("layers.0.kernel", VarKind::Param),
        ("layers.0.bias", VarKind::Param),
        ("layers.1.kernel", VarKind::Param),
        ("steps", VarKind::State),
    ];
    let expect: Vec<(String, VarKind)> = expect.iter().map(|(p, k)| (p.to_string(), *k)).collect();
    assert_eq!(vars, expect);
    // The Tree view visits the same leaves in the same order.
    let tp: Vec<String> = tree::paths(&m).iter().map(|p| p.to_string()).collect();
    assert_eq!(tp, vars.iter().map(|v| v.0.clone()).collect::<Vec<_>>());
    assert_eq!(m.num_params(), 3 * 4 + 4 + 4 + 4 + 4 * 4 + 4 + 4 * 4);
}

#[test]
fn filters_select_by_kind_and_path() {
    let m = net();
    let names = |f: &Filter| {
        m.select(f)
            .iter()
            .map(|v| v.path.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&Filter::State), ["bn.mean", "bn.var", "steps"]);
    assert_eq!(names(&Filter::path("layers.1")), ["layers.1.kernel"]);
    assert_eq!(
        names(&Filter::name("bias").and(Filter::path("layers"))),
        ["layers.0.bias"]
    );
    assert_eq!(
        names(&Filter::path("bn").and(Filter::Param)),
        ["bn.scale", "bn.bias"]
    );
    assert_eq!(m.mask(&Filter::State).iter().filter(|b| **b).count(), 3);
    assert!(names(&Filter::Nothing).is_empty());
    assert_eq!(names(&Filter::Param.or(Filter::State)).len(), 10);
    let custom = Filter::from_fn(|p, _| p.0.len() == 1);
    assert_eq!(names(&custom), ["steps"]);
}

#[test]
fn train_eval_reaches_every_submodule() {
    let mut m = net();
    assert!(m.training && m.bn.training && m.drop.training);
    m.eval();
    assert!(!m.training && !m.bn.training && !m.drop.training);
    m.train();
    assert!(m.training && m.bn.training && m.drop.training);
}

#[test]
fn map_vars_and_update_from() {
    let m = net();
    let zeroed = m
        .map_vars(&Filter::Param, |_, _, a| {
            Ok(ferrax_core::Array::zeros(a.shape(), a.dtype()))
        })
        .unwrap();
    assert!(zeroed.l1.kernel.to_vec().unwrap().iter().all(|v| *v == 0.0));
    assert_eq!(
        zeroed.bn.var.to_vec().unwrap(),
        vec![1.0; 4],
        "state untouched"
    );
    assert_eq!(zeroed.name, "net", "static fields are cloned");
    let mut a = net();
    let mut b = zeroed.clone();
    b.steps = Tensor::scalar(7.0);
    a.update_from(&b, &Filter::State).unwrap();
    assert_eq!(a.steps.item().unwrap(), 7.0);
    assert!(
        a.l1.kernel.to_vec().unwrap().iter().any(|v| *v != 0.0),
        "params untouched"
    );
    // A new leaf must keep its shape.
    let bad = m.map_vars(&Filter::name("steps"), |_, _, _| {
        Ok(ferrax_core::Array::zeros(&[2], ferrax_core::DType::F32))
    });
    assert!(bad.is_err());
}

#[test]
fn summary_table_has_kinds_and_totals() {
    let m = net();
    let s = m.summary();
    let text = s.to_string();
    assert!(
        text.contains("bn.mean") && text.contains("state") && text.contains("[3, 4]"),
        "{text}"
    );
    assert_eq!(s.totals(Some(VarKind::Param)).0, m.num_params());
    assert_eq!(s.totals(Some(VarKind::State)).0, 4 + 4 + 1);
    assert_eq!(s.totals(None).1, 4 * (m.num_params() + 9));
    assert!(text.lines().last().unwrap().starts_with("total"));
}

#[test]
fn rngs_follow_flax_fold_in_count() {
    let mut r = Rngs::new(3).with_stream("dropout", 7);
    for i in 0..3 {
        assert_eq!(
            r.params().unwrap().data().unwrap(),
            Key::new(3).fold_in(i).unwrap().data().unwrap()
        );
    }
    assert_eq!(
        r.dropout().unwrap().data().unwrap(),
        Key::new(7).fold_in(0).unwrap().data().unwrap()
    );
    // Rngs is a tree of state: keys and counters.
    let paths: Vec<String> = r
        .vars()
        .iter()
        .map(|v| format!("{}:{}", v.path, v.kind))
        .collect();
    assert_eq!(
        paths,
        [
            "default.key:state",
            "default.count:state",
            "dropout.key:state",
            "dropout.count:state"
        ]
    );
    assert!(
        Rngs::new(0).with_stream("x", 1).next("y").is_ok(),
        "unknown names use default"
    );
}

#[test]
fn sequential_chains_types() {
    let mut rngs = Rngs::new(1);
    let s = Sequential::new((
        Linear::<2, 3>::new(&mut rngs).unwrap(),
        Relu,
        Linear::<3, 1>::new(&mut rngs).unwrap(),
    ));
    let x = Tensor::<(C<4>, C<2>)>::ones();
    let y: Tensor<(C<4>, C<1>)> = s.apply(&x).unwrap();
    let manual = s.layers.2.forward(&s.layers.0.forward(&x).relu());
    assert_eq!(y.to_vec().unwrap(), manual.to_vec().unwrap());
    assert_eq!(s.vars().len(), 4);
    // Norms are layers too. GroupNorm<2, 1> on (4, 2): one group holding both features of
    // each row, so each row becomes [-1, 1] (or zeros when its two values are equal).
    let g = Sequential::new((ferrax_nn::GroupNorm::<2, 1>::new(),));
    let z: Tensor<(C<4>, C<2>)> = g
        .apply(&Tensor::<(C<4>, C<2>)>::from_vec(vec![1., 3., 2., 2., 0., 4., 5., 7.]).unwrap())
        .unwrap();
    let zv = z.to_vec().unwrap();
    for (r, want) in [[-1f32, 1.], [0., 0.], [-1., 1.], [-1., 1.]]
        .iter()
        .enumerate()
    {
        for c in 0..2 {
            assert!((zv[r * 2 + c] - want[c]).abs() < 1e-4, "row {r}: {zv:?}");
        }
    }
}
