//! Typed ops: reduce (being written).
