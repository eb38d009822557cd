//! The `unary` primitive (being written).
