//! The `convert` primitive (being written).
