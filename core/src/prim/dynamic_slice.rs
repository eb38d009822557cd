//! The `dynamic_slice` primitive (being written).
