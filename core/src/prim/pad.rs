//! The `pad` primitive (being written).
