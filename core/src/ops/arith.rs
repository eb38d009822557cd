//! Typed ops: arith (being written).
