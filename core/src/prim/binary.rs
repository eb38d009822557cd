//! The `binary` primitive (being written).
