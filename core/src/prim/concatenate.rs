//! The `concatenate` primitive (being written).
