//! Typed ops: linalg (being written).
