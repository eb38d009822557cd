//! The `scatter_add` primitive (being written).
