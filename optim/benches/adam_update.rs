//! B8: one Adam update on 10M f32 parameters, eager and jitted (placeholder body replaced below).
fn main() {}
