use ferrax::prim::argreduce::argmax;
use ferrax::prim::cumulative::cumulative;
use ferrax::prim::reduce::{reduce, ReduceOp};
use ferrax::prim::sort::sort;
use ferrax::ops::composite::softmax;
use ferrax::Array;
use std::time::Instant;
#[test]
fn perf() {
    let n = 16_000_000;
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 0.001).collect();
    let x = Array::from_vec(vec![n], v.clone()).unwrap();
    let x2 = Array::from_vec(vec![4000, 4000], v.clone()).unwrap();
    let t = |name: &str, f: &dyn Fn()| { f(); let s = Instant::now(); for _ in 0..5 { f(); } println!("{name}: {:.2} ms", s.elapsed().as_secs_f64() * 200.0); };
    t("sum full 16M", &|| { reduce(&x, ReduceOp::Sum, &[0]).unwrap(); });
    t("max full 16M", &|| { reduce(&x, ReduceOp::Max, &[0]).unwrap(); });
    t("sum axis1 4Kx4K", &|| { reduce(&x2, ReduceOp::Sum, &[1]).unwrap(); });
    t("sum axis0 4Kx4K", &|| { reduce(&x2, ReduceOp::Sum, &[0]).unwrap(); });
    t("argmax 16M", &|| { argmax(&x, 0).unwrap(); });
    t("cumsum 16M", &|| { cumulative(&x, ReduceOp::Sum, 0, false).unwrap(); });
    t("softmax axis1 4Kx4K", &|| { softmax(&x2, &[1]).unwrap(); });
    let xs = Array::from_vec(vec![1_000_000], v[..1_000_000].to_vec()).unwrap();
    t("sort 1M", &|| { sort(&xs, 0, false).unwrap(); });
}
