//! The `compare` primitive (being written).
