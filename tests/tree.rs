//! Trees: `#[derive(Tree)]` on every struct form, the built-in tree types, exact leaf paths,
//! flatten/unflatten round trips and their structure errors, the leaf-wise operations and
//! the summary table.

use ferrax::tree::{self, Path, PathElem};
use ferrax::{Array, DType, Dyn, Error, Shape, Tensor, Tree, C};
use std::marker::PhantomData;

type Vec3 = Tensor<(C<3>,)>;

fn t<S: ferrax::StaticShape>(data: &[f32]) -> Tensor<S> {
    Tensor::from_slice(data).unwrap()
}

fn path_strings<T: Tree>(x: &T) -> Vec<String> {
    tree::paths(x).iter().map(|p| p.to_string()).collect()
}

fn f32s(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().unwrap()
}

/// Adds two f32 leaves elementwise on the host (kept independent of the op library).
fn add(x: &Array, y: &Array) -> ferrax::Result<Array> {
    let v: Vec<f32> = f32s(x).iter().zip(f32s(y)).map(|(a, b)| a + b).collect();
    Array::from_vec(x.shape().to_vec(), v)
}

#[derive(Tree, Clone)]
struct Linear<const I: usize, const O: usize> {
    w: Tensor<(C<I>, C<O>)>,
    b: Tensor<(C<O>,)>,
}

impl<const I: usize, const O: usize> Linear<I, O> {
    fn new(seed: f32) -> Self {
        let w: Vec<f32> = (0..I * O).map(|k| seed + k as f32).collect();
        let b: Vec<f32> = (0..O).map(|k| -(seed + k as f32)).collect();
        Linear {
            w: Tensor::from_vec(w).unwrap(),
            b: Tensor::from_vec(b).unwrap(),
        }
    }
}

#[derive(Tree, Clone)]
struct Block {
    b: Vec3,
}

#[derive(Tree, Clone)]
struct Mlp {
    l1: Linear<2, 3>,
    layers: Vec<Block>,
    head: Option<Linear<3, 1>>,
    #[tree(static)]
    name: String,
    #[tree(static)]
    hidden: usize,
}

fn mlp() -> Mlp {
    Mlp {
        l1: Linear::new(1.0),
        layers: (0..4)
            .map(|k| Block {
                b: t(&[k as f32, 0.0, 0.0]),
            })
            .collect(),
        head: Some(Linear::new(10.0)),
        name: "mlp".to_string(),
        hidden: 3,
    }
}

#[test]
fn derive_nested_struct_paths() {
    let m = mlp();
    assert_eq!(
        path_strings(&m),
        [
            "l1.w",
            "l1.b",
            "layers.0.b",
            "layers.1.b",
            "layers.2.b",
            "layers.3.b",
            "head.w",
            "head.b",
        ]
    );
    let p = &tree::paths(&m)[5];
    assert_eq!(
        p.0,
        vec![
            PathElem::Field("layers"),
            PathElem::Index(3),
            PathElem::Field("b")
        ]
    );
    assert_eq!(tree::leaf_count(&m), 8);
    // 6 + 3 + 4 * 3 + 3 + 1
    assert_eq!(tree::numel(&m), 25);
    assert_eq!(tree::size_bytes(&m), 100);
}

#[test]
fn static_fields_are_cloned_not_visited() {
    let m = mlp();
    let z = tree::zeros_like(&m);
    assert_eq!(z.name, "mlp");
    assert_eq!(z.hidden, 3);
    assert_eq!(tree::leaf_count(&z), 8);
    for a in tree::leaves(&z) {
        assert!(f32s(&a).iter().all(|&x| x == 0.0));
    }
    // The original is untouched.
    assert_eq!(m.l1.w.to_vec().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
}

#[test]
fn option_none_has_no_leaves_and_stays_none() {
    let mut m = mlp();
    m.head = None;
    assert_eq!(tree::leaf_count(&m), 6);
    assert!(!path_strings(&m).iter().any(|p| p.starts_with("head")));
    let z = tree::zeros_like(&m);
    assert!(z.head.is_none());
    let back = tree::unflatten(&m, tree::leaves(&m)).unwrap();
    assert!(back.head.is_none());
}

#[derive(Tree)]
struct Pair(Vec3, #[tree(static)] f32, Linear<1, 2>);

#[derive(Tree, Debug, PartialEq)]
struct Unit;

#[test]
fn tuple_and_unit_structs() {
    let p = Pair(t(&[1., 2., 3.]), 0.5, Linear::new(0.0));
    assert_eq!(path_strings(&p), ["0", "2.w", "2.b"]);
    let z = tree::zeros_like(&p);
    assert_eq!(z.1, 0.5);
    assert_eq!(z.0.to_vec().unwrap(), vec![0.0; 3]);

    assert_eq!(tree::leaf_count(&Unit), 0);
    assert_eq!(tree::unflatten(&Unit, vec![]).unwrap(), Unit);
    assert!(tree::unflatten(&Unit, vec![Array::scalar(1.0f32)]).is_err());
}

/// Generic over a subtree type, a shape, an element type and a const; with a marker.
#[derive(Tree, Clone)]
struct Generic<T, S: Shape, E: ferrax::Elem, const N: usize> {
    items: [T; N],
    x: Tensor<S, E>,
    #[tree(static)]
    tag: Option<T>,
    marker: PhantomData<S>,
}

#[test]
fn derive_on_generic_struct() {
    let g: Generic<Vec3, (Dyn, C<2>), f64, 2> = Generic {
        items: [t(&[1., 2., 3.]), t(&[4., 5., 6.])],
        x: Tensor::from_vec_shape((Dyn(2), C), vec![1.0f64; 4]).unwrap(),
        tag: Some(t(&[9., 9., 9.])),
        marker: PhantomData,
    };
    assert_eq!(path_strings(&g), ["items.0", "items.1", "x"]);
    let leaves = tree::leaves(&g);
    assert_eq!(leaves[2].dtype(), DType::F64);
    assert_eq!(leaves[2].shape(), &[2, 2]);
    let back = tree::unflatten(&g, leaves).unwrap();
    assert_eq!(back.items[1].to_vec().unwrap(), vec![4., 5., 6.]);
    assert_eq!(back.x.dims(), &[2, 2]);
    // The static field's tensor is cloned, not replaced.
    let z = tree::zeros_like(&g);
    assert_eq!(z.tag.unwrap().to_vec().unwrap(), vec![9.0; 3]);
}

/// Raw identifiers lose their `r#` in paths.
#[derive(Tree)]
struct Raw {
    r#type: Vec3,
}

#[test]
fn builtin_trees_and_raw_field_names() {
    let x = (
        t::<(C<2>,)>(&[1., 2.]),
        [t::<(C<1>,)>(&[3.]), t(&[4.])],
        vec![Some(t::<(C<1>,)>(&[5.])), None, Some(t(&[6.]))],
        Box::new(Array::scalar(7i32)),
        (),
    );
    assert_eq!(path_strings(&x), ["0", "1.0", "1.1", "2.0", "2.2", "3"]);
    let vals: Vec<f64> = tree::leaves(&x)
        .iter()
        .map(|a| a.storage("test").unwrap().get_f64(0))
        .collect();
    assert_eq!(vals, [1., 3., 4., 5., 6., 7.]);

    let eight = (
        Array::scalar(0f32),
        Array::scalar(1f32),
        Array::scalar(2f32),
        Array::scalar(3f32),
        Array::scalar(4f32),
        Array::scalar(5f32),
        Array::scalar(6f32),
        Array::scalar(7f32),
    );
    assert_eq!(tree::leaf_count(&eight), 8);
    assert_eq!(tree::paths(&eight)[7], Path(vec![PathElem::Index(7)]));

    // A single tensor is a tree with one leaf at the root.
    let single = t::<(C<2>,)>(&[1., 2.]);
    assert_eq!(tree::paths(&single), vec![Path::default()]);

    let r = Raw {
        r#type: t(&[0., 0., 0.]),
    };
    assert_eq!(path_strings(&r), ["type"]);
}

#[test]
fn flatten_unflatten_round_trip() {
    let m = mlp();
    let leaves = tree::leaves(&m);
    let back = tree::unflatten(&m, leaves.clone()).unwrap();
    let again = tree::leaves(&back);
    assert_eq!(leaves.len(), again.len());
    for (a, b) in leaves.iter().zip(&again) {
        assert!(a.bit_eq(b));
    }
    assert_eq!(back.name, "mlp");

    // New values (not the template's) of the right shapes go in at the right places.
    let new: Vec<Array> = tree::avals_with_paths(&m)
        .iter()
        .enumerate()
        .map(|(i, (_, av))| Array::full(&av.shape, av.dtype, i as f64))
        .collect();
    let m2 = tree::unflatten(&m, new).unwrap();
    assert_eq!(m2.layers[3].b.to_vec().unwrap(), vec![5.0; 3]);
    assert_eq!(m2.head.unwrap().b.to_vec().unwrap(), vec![7.0]);
}

fn tree_msg(e: Error) -> String {
    assert!(
        matches!(e, Error::Tree(_)),
        "expected a tree error, got {e:?}"
    );
    e.to_string()
}

#[test]
fn unflatten_errors_name_the_path() {
    let m = mlp();
    let mut leaves = tree::leaves(&m);

    let short = leaves[..7].to_vec();
    let msg = tree_msg(tree::unflatten(&m, short).err().unwrap());
    assert_eq!(
        msg,
        "tree: unflatten: the template has 8 leaves but 7 were given"
    );
    let mut long = leaves.clone();
    long.push(Array::scalar(0f32));
    let msg = tree_msg(tree::unflatten(&m, long).err().unwrap());
    assert!(msg.contains("8 leaves but 9 were given"), "{msg}");

    leaves[5] = Array::zeros(&[4], DType::F32);
    let msg = tree_msg(tree::unflatten(&m, leaves.clone()).err().unwrap());
    assert_eq!(
        msg,
        "tree: unflatten: leaf `layers.3.b` has shape [4] but the template's leaf there has \
         shape [3]"
    );

    leaves[5] = m.layers[3].b.array().clone();
    leaves[0] = Array::zeros(&[2, 3], DType::F64);
    let msg = tree_msg(tree::unflatten(&m, leaves).err().unwrap());
    assert_eq!(
        msg,
        "tree: unflatten: leaf `l1.w` has dtype f64 but the template's leaf there has dtype f32"
    );

    // At the root, the message says so rather than printing empty backticks.
    let single = t::<(C<2>,)>(&[1., 2.]);
    let msg = tree_msg(tree::unflatten(&single, vec![Array::zeros(&[3], DType::F32)]).unwrap_err());
    assert!(msg.contains("leaf the root has shape [3]"), "{msg}");
}

#[test]
fn map_leaves_sees_paths_and_checks_types() {
    let m = mlp();
    let mut seen = Vec::new();
    let doubled = tree::map_leaves(&m, |p, a| {
        seen.push(p.to_string());
        add(a, a)
    })
    .unwrap();
    assert_eq!(seen, path_strings(&m));
    assert_eq!(doubled.l1.b.to_vec().unwrap(), vec![-2., -4., -6.]);
    assert_eq!(doubled.hidden, 3);

    // A new leaf that does not fit the tensor type is an error naming the leaf.
    let err = tree::map_leaves(&m, |p, a| {
        if p.to_string() == "head.w" {
            Ok(Array::zeros(&[2, 2], DType::F32))
        } else {
            Ok(a.clone())
        }
    })
    .err()
    .unwrap();
    let msg = tree_msg(err);
    assert!(msg.starts_with("tree: leaf `head.w`: "), "{msg}");
    assert!(msg.contains("[2, 2]") && msg.contains("(3, 1)"), "{msg}");

    // The first error from `f` stops the map and comes back unchanged.
    let err = tree::map_leaves(&m, |_, _| Err(Error::invalid("test", "boom")))
        .err()
        .unwrap();
    assert_eq!(err, Error::invalid("test", "boom"));
}

#[test]
fn zip_map_combines_and_checks_structure() {
    let a = mlp();
    let b = tree::map_leaves(&a, |_, x| add(x, x)).unwrap();
    let sum = tree::zip_map(&a, &b, |_, x, y| add(x, y)).unwrap();
    assert_eq!(sum.l1.w.to_vec().unwrap(), vec![3., 6., 9., 12., 15., 18.]);

    // Different `Vec` lengths: the leaf counts differ.
    let mut short = a.clone();
    short.layers.pop();
    let msg = tree_msg(
        tree::zip_map(&a, &short, |_, x, _| Ok(x.clone()))
            .err()
            .unwrap(),
    );
    assert_eq!(
        msg,
        "tree: zip_map: the first tree has 8 leaves, the second 7"
    );

    // Same count, different structure.
    let x = vec![Some(t::<(C<1>,)>(&[1.])), None];
    let y = vec![None, Some(t::<(C<1>,)>(&[1.]))];
    let msg = tree_msg(
        tree::zip_map(&x, &y, |_, x, _| Ok(x.clone()))
            .err()
            .unwrap(),
    );
    assert!(msg.contains("at `0` in the first tree is at `1`"), "{msg}");

    // Same structure, different `Dyn` sizes.
    let p = vec![Tensor::<(Dyn,)>::zeros_shape((Dyn(2),))];
    let q = vec![Tensor::<(Dyn,)>::zeros_shape((Dyn(3),))];
    let msg = tree_msg(
        tree::zip_map(&p, &q, |_, x, _| Ok(x.clone()))
            .err()
            .unwrap(),
    );
    assert_eq!(
        msg,
        "tree: zip_map: leaf `0` has shape [2] in the first tree but [3] in the second"
    );
}

#[test]
fn fold_and_counts() {
    let m = mlp();
    let total: f32 = tree::fold(&m, 0.0, |acc, _, a| acc + f32s(a).iter().sum::<f32>());
    // l1: w 1..=6 (21), b -(1+2+3); layers: 0+1+2+3; head: w 10,11,12, b -10.
    assert_eq!(total, 21.0 - 6.0 + 6.0 + 33.0 - 10.0);
    let longest = tree::fold(&m, String::new(), |best, p, _| {
        let s = p.to_string();
        if s.len() > best.len() {
            s
        } else {
            best
        }
    });
    assert_eq!(longest, "layers.0.b");

    let r: ferrax::Result<usize> = tree::try_fold(&m, 0, |n, p, _| {
        if p.to_string() == "layers.2.b" {
            Err(Error::invalid("fold", format!("stopped after {n}")))
        } else {
            Ok(n + 1)
        }
    });
    assert_eq!(r.unwrap_err(), Error::invalid("fold", "stopped after 4"));
    assert_eq!(tree::try_fold(&m, 0, |n, _, _| Ok(n + 1)).unwrap(), 8);

    let mixed = (
        Array::zeros(&[2, 2], DType::BF16),
        Array::zeros(&[3], DType::I64),
        Array::zeros(&[5], DType::Bool),
    );
    assert_eq!(tree::numel(&mixed), 12);
    assert_eq!(tree::size_bytes(&mixed), 8 + 24 + 5);
    let z = tree::zeros_like(&mixed);
    assert_eq!(z.1.dtype(), DType::I64);
    assert_eq!(z.2.shape(), &[5]);
}

#[test]
fn summary_table() {
    let m = mlp();
    let s = tree::tree_summary(&m);
    assert_eq!(s.leaf_count(), 8);
    assert_eq!(s.numel(), 25);
    assert_eq!(s.size_bytes(), 100);
    assert_eq!(s.rows()[5].path.to_string(), "layers.3.b");

    let text = s.to_string();
    let expected = "\
path    shape   dtype  elements  bytes
--------------------------------------
l1                            9   36 B
  w     [2, 3]  f32           6   24 B
  b     [3]     f32           3   12 B
layers                       12   48 B
  0                           3   12 B
    b   [3]     f32           3   12 B
  1                           3   12 B
    b   [3]     f32           3   12 B
  2                           3   12 B
    b   [3]     f32           3   12 B
  3                           3   12 B
    b   [3]     f32           3   12 B
head                          4   16 B
  w     [3, 1]  f32           3   12 B
  b     [1]     f32           1    4 B
--------------------------------------
total (8 leaves)             25  100 B";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn summary_of_a_large_and_a_single_leaf_tree() {
    let big = (
        Array::zeros(&[1024, 1024], DType::F32),
        Array::zeros(&[1000], DType::BF16),
    );
    let text = tree::tree_summary(&big).to_string();
    assert!(text.contains("1,048,576"), "{text}");
    assert!(text.contains("4.0 MiB"), "{text}");
    assert!(
        text.contains("1     [1000]        bf16       1,000  2.0 KiB"),
        "{text}"
    );
    assert!(
        text.ends_with("\ntotal (2 leaves)           1,049,576  4.0 MiB"),
        "{text}"
    );

    let single = tree::tree_summary(&Array::scalar(1.0f64)).to_string();
    assert!(
        single.contains("\n(root)  []     f64           1    8 B\n"),
        "{single}"
    );
    assert!(single.contains("total (1 leaf)"), "{single}");
}

/// A recursive (non-generic) struct: paths nest as deep as the data.
#[derive(Tree)]
struct Node {
    w: Tensor<(C<1>,)>,
    kids: Vec<Node>,
}

#[test]
fn recursive_struct() {
    let leaf = |x: f32| Node {
        w: t(&[x]),
        kids: vec![],
    };
    let n = Node {
        w: t(&[0.]),
        kids: vec![
            leaf(1.),
            Node {
                w: t(&[2.]),
                kids: vec![leaf(3.)],
            },
        ],
    };
    assert_eq!(
        path_strings(&n),
        ["w", "kids.0.w", "kids.1.w", "kids.1.kids.0.w"]
    );
    let back = tree::unflatten(&n, tree::leaves(&n)).unwrap();
    assert_eq!(back.kids[1].kids[0].w.to_vec().unwrap(), vec![3.0]);
}
