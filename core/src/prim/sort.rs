//! The `sort` primitive (being written).
