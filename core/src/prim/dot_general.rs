//! The `dot_general` primitive (being written).
