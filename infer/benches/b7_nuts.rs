//! B7: NUTS throughput as minimum bulk ESS per second (filled in below).
fn main() {}
