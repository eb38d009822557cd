//! The `reduce` primitive (being written).
