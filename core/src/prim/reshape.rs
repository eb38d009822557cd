//! The `reshape` primitive (being written).
