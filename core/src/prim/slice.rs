//! The `slice` primitive (being written).
