//! The `select` primitive (being written).
