//! The `cumulative` primitive (being written).
