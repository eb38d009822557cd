//! The `transpose` primitive (being written).
