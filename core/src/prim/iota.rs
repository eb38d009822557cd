//! The `iota` primitive (being written).
