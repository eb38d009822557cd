//! Typed ops: composite (being written).
