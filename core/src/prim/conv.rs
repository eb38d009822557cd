//! The `conv` primitive (being written).
