//! Pseudo-random numbers: threefry2x32 keys bit-compatible with `jax.random` (being written).
