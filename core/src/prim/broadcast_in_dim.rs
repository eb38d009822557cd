//! The `broadcast_in_dim` primitive (being written).
