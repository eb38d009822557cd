//! Typed ops: shape_ops (being written).
