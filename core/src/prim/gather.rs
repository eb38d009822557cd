//! The `gather` primitive (being written).
