//! The `dynamic_update_slice` primitive (being written).
