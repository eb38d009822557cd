//! The `rev` primitive (being written).
